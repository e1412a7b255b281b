"""Write samples into Gnocchi without silent loss.

One :class:`GnocchiStore` per publisher or dispatcher. ``write(samples)``
groups the samples into one request of Gnocchi's batch API
(``POST /v1/batch/resources/metrics/measures?create_metrics=true``):

- a resource Gnocchi does not know (``400 Unknown resources``) is created
  with the mapped attributes, then the batch is sent again;
- the attributes of a resource are updated (``PATCH``) when they differ
  from what this process last wrote or read;
- Gnocchi unreachable, timing out or answering 5xx: the batch is retried
  ``[gnocchi] retries`` times with exponential back-off, then kept in a
  bounded in-memory backlog (sent first as soon as Gnocchi answers); past
  ``backlog_size`` measures :class:`GnocchiUnavailable` is raised, so the
  caller does not acknowledge the notification and the broker redelivers it;
- any other 4xx is narrowed down to the measures Gnocchi refuses: those
  alone are dropped, logged and counted (``dropped``).

Gnocchi keeps one value per metric and timestamp, so a batch sent twice (a
retry after a timeout, a redelivered notification) stores nothing twice.

The calls and their retries are :mod:`.calls`'; resources ended by delete
events, :mod:`.ends`' (``end_resources``).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from oslo_config import cfg
from oslo_log import log

from telemeter.gnocchi import calls, ends, resources
from telemeter.gnocchi import client as gnocchi_client
from telemeter.gnocchi.calls import GnocchiUnavailable, Transient

LOG = log.getLogger(__name__)

# measures[resource_id][metric] = {'archive_policy_name', 'unit',
#                                  'measures': [{'timestamp', 'value'}]}
Measures = dict[str, dict[str, dict[str, Any]]]


@dataclasses.dataclass
class Settings:
    """What a publisher URL or ``[dispatcher_gnocchi]`` chooses."""

    archive_policy: str | None = None
    filter_project: str | None = 'service'
    resources_definition_file: str = 'gnocchi_resources.yaml'


@dataclasses.dataclass
class _Batch:
    measures: Measures
    resources: dict[str, tuple[str, dict[str, Any]]]

    def count(self) -> int:
        return sum(len(metric['measures'])
                   for metrics in self.measures.values()
                   for metric in metrics.values())


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None."""
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _hash(attributes: dict[str, Any]) -> str:
    payload = json.dumps(attributes, sort_keys=True, default=str)
    return hashlib.sha1(payload.encode(), usedforsecurity=False).hexdigest()


class GnocchiStore:
    """See the module documentation. Thread-safe (one write at a time)."""

    ATTRIBUTE_CACHE_SIZE = 20000

    def __init__(self, conf: cfg.ConfigOpts, settings: Settings,
                 client_factory: Callable[[cfg.ConfigOpts], Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        gnocchi_client.register_opts(conf)
        self.conf = conf
        self.options = conf[gnocchi_client.GROUP]
        if self.options.auth_mode == 'basic' and not self.options.url:
            # Refused at start-up (the preflight builds the publishers)
            # rather than at the first write.
            raise ValueError('[gnocchi] url is required with auth_mode = '
                             'basic')
        self.settings = settings
        self.definitions = resources.load(
            conf, settings.resources_definition_file,
            settings.archive_policy)
        self._lock = threading.RLock()
        self._backlog: collections.deque[_Batch] = collections.deque()
        self._backlog_count = 0
        self._attributes: collections.OrderedDict[str, str] = \
            collections.OrderedDict()
        self._policies_ready = False
        self._filter_ids: set[str] | None = None
        self._unmapped_logged: set[str] = set()
        self.counters = collections.Counter({
            'posted': 0, 'dropped': 0, 'filtered': 0, 'unmapped': 0,
            'retries': 0, 'backlogged': 0, 'refused': 0,
            'resources_created': 0, 'resources_updated': 0,
            'resources_ended': 0})
        self.calls = calls.GnocchiCalls(
            conf, client_factory or gnocchi_client.get_client, sleep,
            self.counters)
        self.ends = ends.ResourceEnds(self.calls, self.definitions,
                                      self._lock, self.counters)

    @property
    def client(self) -> Any:
        """The gnocchiclient, built on first use."""
        return self.calls.client

    def stats(self) -> dict[str, int]:
        """Counters plus the current ``backlog`` (measures)."""
        return {**self.counters, 'backlog': self._backlog_count}

    def end_resources(self, events: list[Any]) -> None:
        """Set ``ended_at`` of the resources that delete events name
        (:mod:`.ends`); raises :class:`GnocchiUnavailable` when Gnocchi
        cannot be reached."""
        self.ends.end_resources(events)

    # ------------------------------------------------------------ filter
    def _filtered_project_ids(self) -> set[str]:
        if self._filter_ids is not None:
            return self._filter_ids
        name = self.settings.filter_project
        if not name:
            self._filter_ids = set()
            return self._filter_ids
        ids = {name}
        if self.options.auth_mode == 'keystone':
            try:
                from telemeter import keystone_client

                keystone = keystone_client.get_client(self.conf)
                ids.update(p['id'] for p in keystone.list_projects()
                           if p.get('name') == name)
            except Exception as err:
                # Looked up again at the next write.
                LOG.warning('Cannot look up the Keystone project %s whose '
                            'samples (Gnocchi\'s own activity) are not sent '
                            'to Gnocchi: %s', name, err)
                return ids
        self._filter_ids = ids
        return ids

    def _is_gnocchi_activity(self, sample: Any,
                             definition: resources.ResourceDefinition,
                             ids: set[str]) -> bool:
        if sample.project_id in ids:
            return True
        return (definition.resource_type == 'swift_account'
                and sample.resource_id in ids)

    # ------------------------------------------------------------ samples
    def _batch(self, samples: Iterable[Any]) -> _Batch:
        ids = self._filtered_project_ids()
        measures: Measures = {}
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        seen_metadata: dict[str, Any] = {}
        for sample in samples:
            match = self.definitions.lookup(sample.name)
            if match is None:
                self.counters['unmapped'] += 1
                if sample.name not in self._unmapped_logged:
                    self._unmapped_logged.add(sample.name)
                    LOG.warning('Meter %s has no resource type in %s: its '
                                'samples are not sent to Gnocchi',
                                sample.name, self.definitions.source)
                continue
            definition, policy = match
            if ids and self._is_gnocchi_activity(sample, definition, ids):
                self.counters['filtered'] += 1
                continue
            resource_id = calls.gnocchi_id(sample.resource_id or '')
            if not resource_id:
                self.counters['dropped'] += 1
                LOG.warning('Sample of %s without resource_id dropped',
                            sample.name)
                continue
            if resource_id not in found:
                found[resource_id] = (definition.resource_type,
                                      {'user_id': sample.user_id})
                seen_metadata[resource_id] = None
            attributes = found[resource_id][1]
            attributes['project_id'] = sample.project_id
            # Samples of one resource mostly carry the same metadata:
            # evaluate the attribute paths once per distinct metadata.
            if sample.resource_metadata != seen_metadata[resource_id]:
                seen_metadata[resource_id] = sample.resource_metadata
                attributes.update(
                    definition.sample_attributes(sample.as_dict()))
            value = _number(sample.volume)
            timestamp = calls.timestamp(sample.timestamp)
            if value is None or not timestamp:
                self.counters['dropped'] += 1
                LOG.error('Sample %s of %s on %s has no numeric volume or no '
                          'timestamp (%r at %r): dropped', sample.id,
                          sample.name, resource_id, sample.volume,
                          sample.timestamp)
                continue
            metric = measures.setdefault(resource_id, {}).setdefault(
                sample.name, {'archive_policy_name': policy,
                              'unit': sample.unit, 'measures': []})
            metric['measures'].append({'timestamp': timestamp,
                                       'value': value})
        return _Batch(measures, found)

    def write(self, samples: list[Any]) -> None:
        """Send ``samples`` (:class:`telemeter.sample.Sample`).

        Returns when Gnocchi stored them (or they wait in the backlog);
        raises :class:`GnocchiUnavailable` when they must be redelivered.
        """
        batch = self._batch(samples)
        if not batch.measures:
            return
        with self._lock:
            if self._backlog and not self._drain_backlog():
                self._keep_or_refuse(batch, 'Gnocchi is still unreachable')
                return
            try:
                self.calls.with_retries(lambda: self._send(batch),
                                   f'{batch.count()} measures')
            except Transient as err:
                self._keep_or_refuse(batch, str(err))

    def _drain_backlog(self) -> bool:
        """Send the backlog, oldest first, one try each; False if Gnocchi
        still fails."""
        while self._backlog:
            batch = self._backlog[0]
            try:
                self._send(batch)
            except Transient as err:
                LOG.debug('Backlog not sent yet: %s', err)
                return False
            self._backlog.popleft()
            self._backlog_count -= batch.count()
            LOG.info('Sent %d measures of the backlog to Gnocchi (%d left)',
                     batch.count(), self._backlog_count)
        return True

    def _keep_or_refuse(self, batch: _Batch, reason: str) -> None:
        count = batch.count()
        if self._backlog_count + count <= self.options.backlog_size:
            self._backlog.append(batch)
            self._backlog_count += count
            self.counters['backlogged'] += count
            LOG.warning('Gnocchi unavailable (%s): %d measures kept in the '
                        'backlog (%d of %d)', reason, count,
                        self._backlog_count, self.options.backlog_size)
            return
        self.counters['refused'] += count
        raise GnocchiUnavailable(
            f'Gnocchi did not take {count} measures ({reason}) and the '
            f'backlog holds {self._backlog_count} of '
            f'{self.options.backlog_size}: the data is handed back for '
            f'redelivery')

    def flush(self) -> bool:
        """Try once to send the backlog; True when it is empty."""
        with self._lock:
            return self._drain_backlog()

    def _send(self, batch: _Batch) -> None:
        """Post ``batch``; creates unknown resources, isolates refused
        measures, updates attributes. Raises :class:`Transient`."""
        from gnocchiclient import exceptions as gexc

        self._ensure_archive_policies()
        measures = batch.measures
        try:
            measures = self._post(measures, batch)
        except gexc.ClientException as err:
            if getattr(err, 'code', 0) in (401, 403):
                # Credentials or policy: no measure could be stored.
                raise Transient(f'Gnocchi refused the credentials: '
                                 f'{err}') from err
            self._isolate(measures, batch)
        else:
            self.counters['posted'] += sum(
                len(m['measures']) for ms in measures.values()
                for m in ms.values())
        self._update_attributes(batch, measures)

    def _post(self, measures: Measures, batch: _Batch) -> Measures:
        """One batch request; resources Gnocchi does not know are created
        and the request sent again. Returns the measures posted (without
        those of resources Gnocchi refused to create)."""
        from gnocchiclient import exceptions as gexc

        post = self.client.metric.batch_resources_metrics_measures
        for _ in range(3):
            if not measures:
                return measures
            try:
                self.calls.call(post, measures, create_metrics=True)
            except gexc.BadRequest as err:
                unknown = self._unknown_resources(err)
                if not unknown:
                    raise
                measures = self._create_resources(unknown, batch, measures)
                continue
            return measures
        raise Transient('resources still unknown to Gnocchi after being '
                         'created')

    @staticmethod
    def _unknown_resources(err: Any) -> list[str] | None:
        message = getattr(err, 'message', None)
        if not isinstance(message, dict) or \
                message.get('cause') != 'Unknown resources':
            return None
        return [detail.get('original_resource_id') or detail.get(
            'resource_id') for detail in message.get('detail') or []]

    def _create_resources(self, unknown: list[str], batch: _Batch,
                          measures: Measures) -> Measures:
        from gnocchiclient import exceptions as gexc

        measures = dict(measures)
        for resource_id in unknown:
            if resource_id not in batch.resources:
                continue
            resource_type, attributes = batch.resources[resource_id]
            body = {'id': resource_id, **attributes}
            try:
                self.calls.call(self.client.resource.create, resource_type,
                                body)
            except gexc.ResourceAlreadyExists:
                pass  # created meanwhile by another worker
            except gexc.ClientException as err:
                dropped = measures.pop(resource_id, {})
                count = sum(len(m['measures']) for m in dropped.values())
                self.counters['dropped'] += count
                LOG.error('Gnocchi refused to create the %s resource %s '
                          '(%s): %d measures dropped', resource_type,
                          resource_id, err, count)
                continue
            else:
                self.counters['resources_created'] += 1
                LOG.debug('Created %s resource %s', resource_type,
                          resource_id)
            self._remember(resource_id, attributes)
        return measures

    def _isolate(self, measures: Measures, batch: _Batch) -> None:
        """Send what Gnocchi takes of a batch it refused with a 4xx, one
        metric and then one measure at a time; drop only the refused ones.
        """
        from gnocchiclient import exceptions as gexc

        for resource_id, metrics in measures.items():
            for name, metric in metrics.items():
                pieces = [metric['measures']]
                while pieces:
                    piece = pieces.pop()
                    body = {resource_id: {name: {**metric,
                                                 'measures': piece}}}
                    try:
                        posted = self._post(body, batch)
                    except gexc.ClientException as err:
                        if len(piece) > 1:
                            half = len(piece) // 2
                            pieces.extend([piece[:half], piece[half:]])
                            continue
                        self.counters['dropped'] += 1
                        LOG.error('Gnocchi refused the measure %s of %s on '
                                  'resource %s, dropped: %s', piece[0], name,
                                  resource_id, err)
                    else:
                        if posted:
                            self.counters['posted'] += len(piece)

    def _remember(self, resource_id: str, attributes: dict[str, Any]) -> None:
        self._attributes[resource_id] = _hash(attributes)
        self._attributes.move_to_end(resource_id)
        while len(self._attributes) > self.ATTRIBUTE_CACHE_SIZE:
            self._attributes.popitem(last=False)

    def _update_attributes(self, batch: _Batch, measures: Measures) -> None:
        from gnocchiclient import exceptions as gexc

        for resource_id in measures:
            resource_type, attributes = batch.resources[resource_id]
            update = {k: v for k, v in attributes.items() if k != 'user_id'}
            digest = _hash(attributes)
            if self._attributes.get(resource_id) == digest:
                continue
            try:
                self.calls.call(self.client.resource.update, resource_type,
                           resource_id, update)
            except gexc.ResourceNotFound:
                continue
            except gexc.ClientException as err:
                LOG.error('Gnocchi refused the attributes %s of the %s '
                          'resource %s: %s', update, resource_type,
                          resource_id, err)
            except Transient as err:
                # The measures are stored; the update is tried again with
                # the next sample of the resource.
                LOG.warning('Attributes of %s not updated: %s', resource_id,
                            err)
                continue
            else:
                self.counters['resources_updated'] += 1
            self._remember(resource_id, attributes)

    def _ensure_archive_policies(self) -> None:
        if self._policies_ready:
            return
        resources.ensure_archive_policies(self.client, self.definitions,
                                          self.calls.call)
        self._policies_ready = True

    def close(self) -> None:
        """Try a last time to send the backlog; say what is lost if not."""
        if self._backlog_count and not self.flush():
            LOG.error('Closing with %d measures Gnocchi never took (backlog '
                      'not sent)', self._backlog_count)


