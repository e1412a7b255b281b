"""``telemeter-upgrade``'s Gnocchi part: resource types and archive policies.

Idempotent: a missing resource type is created with every attribute of
``gnocchi_resources.yaml``; an existing one gets the attributes it lacks
(Gnocchi requires a default, ``fill``, to add a required attribute to a
type that has resources, so attributes are added as optional). Attributes
are never removed or changed.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from oslo_log import log

from telemeter.gnocchi import client as gnocchi_client
from telemeter.gnocchi import resources

LOG = log.getLogger(__name__)


def upgrade_resource_types(client: Any, definitions: resources.Definitions
                           ) -> dict[str, str]:
    """Create or complete each resource type; returns ``{type: what was
    done}`` with ``created``, ``updated (+a, +b)`` or ``unchanged``."""
    from gnocchiclient import exceptions as gexc

    done = {}
    for name, attributes in sorted(definitions.resource_types().items()):
        try:
            current = client.resource_type.get(name)
        except gexc.ResourceTypeNotFound:
            try:
                client.resource_type.create(
                    {'name': name, 'attributes': attributes})
            except gexc.ResourceTypeAlreadyExists:
                current = client.resource_type.get(name)
            else:
                done[name] = 'created'
                LOG.info('Created the Gnocchi resource type %s', name)
                continue
        missing = sorted(set(attributes) - set(current.get('attributes')
                                                or {}))
        if not missing:
            done[name] = 'unchanged'
            continue
        client.resource_type.update(name, [
            {'op': 'add', 'path': f'/attributes/{attribute}',
             'value': {**attributes[attribute], 'required': False}}
            for attribute in missing])
        done[name] = f'updated (+{", +".join(missing)})'
        LOG.info('Added the attributes %s to the Gnocchi resource type %s',
                 ', '.join(missing), name)
    return done


def run(conf: cfg.ConfigOpts, resources_file: str | None = None) -> dict:
    """Archive policies then resource types, from ``resources_file``
    (default ``[dispatcher_gnocchi] resources_definition_file``)."""
    from telemeter.dispatcher import gnocchi as gnocchi_dispatcher

    gnocchi_dispatcher.register_opts(conf)
    name = resources_file or conf.dispatcher_gnocchi.resources_definition_file
    definitions = resources.load(conf, name)
    client = gnocchi_client.get_client(conf)
    created = resources.ensure_archive_policies(client, definitions)
    done = upgrade_resource_types(client, definitions)
    LOG.info('Gnocchi upgraded from %s: %d archive policies created; '
             'resource types: %s', definitions.source, created,
             ', '.join(f'{k} {v}' for k, v in done.items()))
    return {'archive_policies_created': created, 'resource_types': done}
