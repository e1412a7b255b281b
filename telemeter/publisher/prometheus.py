"""The ``prometheus://`` publisher: samples pushed to a Pushgateway.

``prometheus://host:9091/metrics/job/<job>`` pushes the Prometheus text
exposition format, one POST per resource to ``.../resource_id/<id>`` (a
Pushgateway keeps one group per grouping key, so two resources pushed into
one group would replace each other). With grouping labels already in the
path (``.../job/<job>/<label>/<value>``) one POST carries every sample.
``ssl=1`` makes the requests HTTPS. Events are not supported.
"""

from __future__ import annotations

import collections
import urllib.parse
from typing import TYPE_CHECKING, Any

import telemeter
from telemeter import sample as sample_mod
from telemeter.publisher import http

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

TYPES = {sample_mod.TYPE_CUMULATIVE: 'counter',
         sample_mod.TYPE_GAUGE: 'gauge'}


def metric_name(meter: str) -> str:
    """The Prometheus name of a meter: ``.`` and ``-`` become ``_``."""
    return meter.replace('.', '_').replace('-', '_')


def label_value(value: Any) -> str:
    """A label value escaped as the text format requires."""
    return (str(value).replace('\\', '\\\\').replace('"', '\\"')
            .replace('\n', '\\n'))


def exposition(samples: list[Any]) -> str:
    """The text body for ``samples``, a ``# TYPE`` line before the first
    sample of each counter or gauge (none for delta samples)."""
    lines = []
    typed = set()
    for s in samples:
        name = metric_name(s.name)
        kind = TYPES.get(s.type)
        if kind and name not in typed:
            lines.append(f'# TYPE {name} {kind}\n')
            typed.add(name)
        lines.append(
            f'{name}{{resource_id="{label_value(s.resource_id)}", '
            f'user_id="{label_value(s.user_id)}", '
            f'project_id="{label_value(s.project_id)}"}} {s.volume}\n')
    return ''.join(lines)


class PrometheusPublisher(http.HttpPublisher):
    """Pushgateway publisher (all http:// URL parameters apply)."""

    OWN_PARAMS = (*http.HttpPublisher.OWN_PARAMS, 'ssl')
    HEADERS = {'Content-type': 'plain/text'}

    def request_scheme(self, parsed_url: Any, params: dict[str, str]) -> str:
        return 'https' if http.bool_param(params, 'ssl', False) else 'http'

    def _grouped_by_path(self) -> bool:
        path = urllib.parse.urlsplit(self.target).path
        return len([part for part in path.split('/') if part]) > 3

    def publish_samples(self, samples: list[Sample]) -> None:
        if not samples:
            return
        if self._grouped_by_path():
            self._do_post(exposition(samples))
            return
        by_resource: dict[Any, list[Any]] = collections.defaultdict(list)
        for s in samples:
            by_resource[s.resource_id].append(s)
        base = urllib.parse.urlsplit(self.target)
        for resource_id, group in by_resource.items():
            quoted = urllib.parse.quote(str(resource_id), safe='')
            target = base._replace(
                path=f'{base.path.rstrip("/")}/resource_id/{quoted}')
            self._do_post(exposition(group), target=target.geturl())

    def publish_events(self, events: list[Event]) -> None:
        raise telemeter.NotImplementedError('The prometheus publisher does '
                                            'not support events')
