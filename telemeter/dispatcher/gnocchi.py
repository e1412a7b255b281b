"""The ``gnocchi`` meter dispatcher: the collector stores measures in Gnocchi.

``[DEFAULT] meter_dispatchers = gnocchi``; ``[dispatcher_gnocchi]`` chooses
the resources file, an archive policy override and the filtered project,
``[gnocchi]`` where Gnocchi is. When Gnocchi cannot take a batch (and the
backlog is full) :class:`~telemeter.gnocchi.calls.GnocchiUnavailable` - a
``ConnectionError`` - makes the collector requeue it.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from oslo_log import log

from telemeter import dispatcher, sample
from telemeter.gnocchi import store

LOG = log.getLogger(__name__)

GROUP = 'dispatcher_gnocchi'

OPTS = [
    cfg.StrOpt('filter_project',
               default='service',
               help='Project (Keystone name, or id) whose samples are not '
                    'stored: Gnocchi\'s own activity would otherwise feed '
                    'back into it. Empty: store everything.'),
    cfg.StrOpt('archive_policy',
               help='Archive policy of every metric, overriding '
                    'gnocchi_resources.yaml.'),
    cfg.StrOpt('resources_definition_file',
               default='gnocchi_resources.yaml',
               help='The resources file: an absolute path, a file next to '
                    'the configuration files, or the packaged one.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register ``[dispatcher_gnocchi]`` (idempotent)."""
    conf.register_opts(OPTS, group=GROUP)


class GnocchiDispatcher(dispatcher.MeterDispatcherBase):
    """Stores metering dicts as Gnocchi measures."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        register_opts(conf)
        options = conf[GROUP]
        self.store = store.GnocchiStore(conf, store.Settings(
            archive_policy=options.archive_policy,
            filter_project=options.filter_project or None,
            resources_definition_file=options.resources_definition_file))

    def record_metering_data(self, data: list[dict] | dict) -> None:
        if isinstance(data, dict):
            data = [data]
        samples: list[Any] = [sample.from_metering_dict(item,
                                                        id=item.get(
                                                            'message_id'))
                              for item in data]
        self.store.write(samples)
