"""Checks of everything a daemon will load, before it starts.

A daemon's workers build their pipelines, definitions, publishers and
dispatchers after cotyledon has forked them; a bad file found there kills
the worker, and cotyledon forks it again for ever. So each daemon's master
process runs :func:`check` first and, with any problem, exits with
:data:`EX_CONFIG` (78) before forking anything; the systemd units do not
restart on that status. ``telemeter-validate`` runs the same checks without
starting anything, and ``telemeter-status upgrade check`` reports them.

The checks build the same objects the workers build (nothing connects: a
database or broker that is down is not a configuration error) and are
stricter than the workers on two points: a publisher that cannot be loaded
and a meter or event definition that is skipped are problems here, where
the pipeline logs and goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_log import log
from stevedore import extension

from telemeter import utils

LOG = log.getLogger(__name__)

#: sysexits.h EX_CONFIG: what a daemon refusing its configuration exits
#: with (``RestartPreventExitStatus=78`` in the systemd units).
EX_CONFIG = 78

DAEMONS = ('polling', 'notification', 'collector')


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong: where (a file, or ``[section] option``) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        # One line each, whatever the libraries' messages look like.
        return ' '.join(f'{self.where}: {self.reason}'.split())


Check = Callable[[cfg.ConfigOpts], Iterator[Problem]]


def _transport_urls(conf: cfg.ConfigOpts, extra: list[str]
                    ) -> Iterator[Problem]:
    urls = [('[DEFAULT] transport_url', conf.transport_url)]
    urls += [(f'[notification] messaging_urls #{i}', url)
             for i, url in enumerate(extra, 1)]
    for where, url in urls:
        try:
            transport = oslo_messaging.get_notification_transport(conf, url)
        except Exception as err:
            yield Problem(where, f'{type(err).__name__}: {err}')
        else:
            transport.cleanup()


def _bus(conf: cfg.ConfigOpts) -> Iterator[Problem]:
    yield from _transport_urls(conf, [])


def _pipelines(conf: cfg.ConfigOpts) -> Iterator[Problem]:
    from telemeter import pipeline

    for option, setup in (('pipeline_cfg_file', pipeline.setup_pipeline),
                          ('event_pipeline_cfg_file',
                           pipeline.setup_event_pipeline)):
        try:
            manager = setup(conf)
        except pipeline.base.ConfigException as err:
            yield Problem(err.cfg_file or getattr(conf, option),
                          f'{err.cfg_type} {err.cfg}: {err.msg}')
        except (OSError, ValueError) as err:
            yield Problem(f'[DEFAULT] {option}', str(err))
        else:
            for url, reason in manager.publisher_errors.items():
                yield Problem(manager.cfg_file,
                              f'publisher {url} cannot be loaded: {reason}')


def _definitions(conf: cfg.ConfigOpts) -> Iterator[Problem]:
    from telemeter import declarative
    from telemeter.notification import event_converter, meters

    plugins: extension.ExtensionManager[Any] = extension.ExtensionManager(
        meters.TRAIT_PLUGIN_NAMESPACE)
    _definitions_loaded, errors = meters.load_definitions(conf, plugins)
    for error in errors:
        yield Problem('meter definitions', error)
    try:
        converter = event_converter.setup_events(conf, plugins)
    except declarative.DefinitionFileError as err:
        yield Problem('[event] definitions_cfg_file', str(err))
    else:
        for error in converter.definition_errors:
            yield Problem('event definitions', error)


def _notification_bus(conf: cfg.ConfigOpts) -> Iterator[Problem]:
    yield from _transport_urls(conf, conf.notification.messaging_urls)


def _dispatchers(conf: cfg.ConfigOpts) -> Iterator[Problem]:
    from telemeter import storage

    for kind, option in (('meter', 'meter_dispatchers'),
                         ('event', 'event_dispatchers')):
        namespace = f'telemeter.dispatcher.{kind}'
        known = utils.entry_point_names(namespace)
        for name in getattr(conf, option):
            if name not in known:
                yield Problem(f'[DEFAULT] {option}',
                              f'unknown dispatcher {name!r}; the known '
                              f'ones are {", ".join(known)}')
        if 'database' not in getattr(conf, option):
            continue
        purpose = 'metering' if kind == 'meter' else 'event'
        url = (getattr(conf.database, f'{purpose}_connection')
               or conf.database.connection)
        where = f'[database] {purpose}_connection / connection'
        if not url:
            yield Problem(where, 'not set, and the database dispatcher '
                                 'needs it')
            continue
        try:
            storage.check_url(url, f'telemeter.{purpose}.storage')
        except storage.StorageConfigError as err:
            yield Problem(where, str(err))


def _polling(conf: cfg.ConfigOpts) -> Iterator[Problem]:
    from telemeter.pipeline import base
    from telemeter.polling import definitions

    try:
        definitions.setup_polling(conf)
    except base.ConfigException as err:
        yield Problem(err.cfg_file or conf.polling.cfg_file,
                      f'{err.cfg_type} {err.cfg}: {err.msg}')
    except (OSError, ValueError) as err:
        yield Problem('[polling] cfg_file', str(err))


CHECKS: dict[str, tuple[Check, ...]] = {
    'polling': (_bus, _polling),
    'notification': (_notification_bus, _pipelines, _definitions),
    'collector': (_bus, _dispatchers),
}


def check(conf: cfg.ConfigOpts, daemons: tuple[str, ...] = DAEMONS
          ) -> list[Problem]:
    """Every problem of the configuration the ``daemons`` would load.

    The libraries' own logging is muted meanwhile: what is wrong comes
    back as :class:`Problem` lines, once each.
    """
    from telemeter import messaging

    problems: list[Problem] = []
    logging.disable(logging.ERROR)
    try:
        for daemon in daemons:
            for run in CHECKS[daemon]:
                for problem in run(conf):
                    if problem not in problems:
                        problems.append(problem)
    finally:
        logging.disable(logging.NOTSET)
        # Publishers cache their transports; the workers make their own.
        messaging.cleanup()
    return problems


def require(conf: cfg.ConfigOpts, daemon: str, prog: str) -> None:
    """Exit with :data:`EX_CONFIG` if ``daemon``'s configuration has a
    problem, printing each (to stderr, and to the log if it is a file)."""
    problems = check(conf, (daemon,))
    if not problems:
        return
    for problem in problems:
        print(f'{prog}: {problem}', file=sys.stderr)
        if conf.log_file:
            LOG.error('%s', problem)
    print(f'{prog}: not started: {len(problems)} configuration '
          f'problem(s) above (telemeter-validate checks a configuration '
          f'without starting anything)', file=sys.stderr)
    sys.exit(EX_CONFIG)
