"""Build dynamic pollster Extensions from ``pollsters_definitions_dirs``.

Every ``*.yaml`` file of every directory (files sorted by name) holds a
list of definitions. The first definition of a name wins; an invalid one
is logged and skipped; one whose ``namespaces`` do not meet the agent's is
left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from oslo_config import cfg
from oslo_log import log
from stevedore import extension

from telemeter import utils
from telemeter.polling.dynamic import definitions, pollster

LOG = log.getLogger(__name__)


def _read_definitions(path: Path) -> list[Any]:
    try:
        content = utils.load_yaml(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        LOG.error('Cannot read dynamic pollsters file %(path)s: %(err)s. '
                  'Fix the file; its pollsters are not loaded.',
                  {'path': path, 'err': err})
        return []
    if content is None:
        return []
    if not isinstance(content, list):
        LOG.error('Dynamic pollsters file %s must hold a YAML list of '
                  'definitions; its pollsters are not loaded.', path)
        return []
    return content


def definition_files(conf: cfg.ConfigOpts) -> list[Path]:
    """The ``*.yaml`` files of the configured directories, in order."""
    files: list[Path] = []
    for directory in conf.polling.pollsters_definitions_dirs or []:
        path = Path(directory)
        if not path.is_dir():
            LOG.debug('No dynamic pollsters directory %s', path)
            continue
        files.extend(sorted(path.glob('*.yaml')))
    return files


def load_dynamic_pollsters(conf: cfg.ConfigOpts, namespaces: list[str]
                           ) -> list[extension.Extension]:
    """Extensions of the valid definitions for ``namespaces``."""
    pollsters: list[extension.Extension] = []
    names: set[str] = set()
    for path in definition_files(conf):
        for raw in _read_definitions(path):
            name = raw.get('name') if isinstance(raw, dict) else None
            if name in names:
                LOG.info('Dynamic pollster %(name)s of %(path)s ignored: '
                         'the first definition of this name wins',
                         {'name': name, 'path': path})
                continue
            try:
                definition = definitions.validate(raw)
                obj = pollster.DynamicPollster(conf, definition)
            except Exception as err:
                LOG.error('Error [%(err)s] while loading dynamic pollster '
                          '[%(name)s].', {'err': err, 'name': name})
                continue
            names.add(definition['name'])
            if not set(definition['namespaces']) & set(namespaces):
                LOG.debug('Dynamic pollster %(name)s is for %(ns)s only',
                          {'name': name, 'ns': definition['namespaces']})
                continue
            LOG.info('Dynamic pollster %(name)s loaded from %(path)s',
                     {'name': definition['name'], 'path': path})
            pollsters.append(extension.Extension(
                definition['name'], None, pollster.DynamicPollster, obj))
    return pollsters
