"""The ``gnocchi://`` publisher: samples as measures, delete events as
``ended_at`` (both pipelines).

URL parameters::

    gnocchi://?archive_policy=telemeter-high&filter_project=service
              &resources_definition_file=gnocchi_resources.yaml

``archive_policy`` overrides the policy of every metric; samples of the
``filter_project`` project (Gnocchi's own activity: by name through
Keystone, or the project id itself) are not sent, an empty value disables
the filter (as does ``enable_filter_project=false``). Where Gnocchi is and
how to authenticate is ``[gnocchi]``; delivery (retries, back-off, backlog,
redelivery) is :mod:`telemeter.gnocchi.store`'s. Nothing is sent while the
publisher is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslo_config import cfg
from oslo_log import log
from oslo_utils import strutils

from telemeter import publisher
from telemeter.gnocchi import store
from telemeter.publisher.http import last_values

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

LOG = log.getLogger(__name__)


def settings_from_url(parsed_url: Any) -> store.Settings:
    """The :class:`~telemeter.gnocchi.store.Settings` of a publisher URL."""
    params = last_values(parsed_url.query)
    settings = store.Settings()
    if params.get('archive_policy'):
        settings.archive_policy = params['archive_policy']
    if 'filter_project' in params:
        settings.filter_project = params['filter_project'] or None
    if not strutils.bool_from_string(
            params.get('enable_filter_project', 'true'), default=True):
        settings.filter_project = None
    if params.get('resources_definition_file'):
        settings.resources_definition_file = \
            params['resources_definition_file']
    return settings


class GnocchiPublisher(publisher.ConfigPublisherBase):
    """Publishes samples and delete events to Gnocchi."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url)
        self.store = store.GnocchiStore(conf, settings_from_url(parsed_url))

    def publish_samples(self, samples: list[Sample]) -> None:
        self.store.write(list(samples))

    def publish_events(self, events: list[Event]) -> None:
        self.store.end_resources(list(events))

    def close(self) -> None:
        self.store.close()
