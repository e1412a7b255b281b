"""Resources ended in Gnocchi by the delete events that name them.

``gnocchi_resources.yaml`` gives each resource type its delete events
(``event_delete``), the trait holding the resource id
(``event_attributes: {id: ...}``) and the resources of other types that
end with it (``event_associated_resources``). :class:`ResourceEnds` sets
their ``ended_at`` to the event's time plus :data:`END_MARGIN`, never
earlier than an end already there. Events are never kept back: when
Gnocchi cannot be reached after the retries,
:class:`~telemeter.gnocchi.calls.GnocchiUnavailable` is raised so that the
event is redelivered.
"""

from __future__ import annotations

import collections
import datetime
import threading
from typing import Any

from oslo_log import log

from telemeter import utils
from telemeter.gnocchi import calls, resources

LOG = log.getLogger(__name__)

#: ``ended_at`` is the delete event's time plus this margin. Gnocchi (4.7)
#: revives an ended resource when one of its metrics gets a measure at or
#: after ``ended_at``, and the samples of the deleting notifications
#: themselves (memory, vcpus, volume.size, ...) carry the event's time.
END_MARGIN = datetime.timedelta(milliseconds=1)


class ResourceEnds:
    """Ends resources for one store (its calls, definitions, lock and
    counters: ``resources_ended``, ``refused``)."""

    def __init__(self, gnocchi: calls.GnocchiCalls,
                 definitions: resources.Definitions, lock: threading.RLock,
                 counters: collections.Counter[str]) -> None:
        self.gnocchi = gnocchi
        self.definitions = definitions
        self.lock = lock
        self.counters = counters

    def end_resources(self, events: list[Any]) -> None:
        """Set ``ended_at`` of the resources that delete events name."""
        for event in events:
            for definition in self.definitions.for_delete_event(
                    event.event_type):
                self._end(definition, event)

    def _end(self, definition: resources.ResourceDefinition,
             event: Any) -> None:
        traits = {trait.name: trait.value for trait in event.traits}
        resource_id = traits.get(definition.event_id_trait or '')
        if not resource_id:
            LOG.warning('%s event %s has no %s trait: no resource ended',
                        event.event_type, event.message_id,
                        definition.event_id_trait)
            return
        ended_at = end_time(event.generated)
        targets = [(definition.resource_type,
                    calls.gnocchi_id(str(resource_id)))]
        retried = self.gnocchi.with_retries
        try:
            with self.lock:
                targets += retried(
                    lambda: self._associated(definition, str(resource_id)),
                    f'the resources of {resource_id}')
                for resource_type, target in targets:
                    retried(
                        lambda rt=resource_type, t=target: self._set_ended(
                            rt, t, ended_at),
                        f'the end of {target}')
        except calls.Transient as err:
            self.counters['refused'] += 1
            raise calls.GnocchiUnavailable(
                f'Gnocchi unavailable, {event.event_type} event '
                f'{event.message_id} handed back for redelivery: {err}'
            ) from err

    def _associated(self, definition: resources.ResourceDefinition,
                    resource_id: str) -> list[tuple[str, str]]:
        from gnocchiclient import exceptions as gexc

        found = []
        for resource_type, attribute in definition.associated.items():
            try:
                matches = self.gnocchi.call(
                    self.gnocchi.client.resource.search, resource_type,
                    {'=': {attribute: resource_id}})
            except gexc.ClientException as err:
                LOG.warning('Cannot search %s resources of %s: %s',
                            resource_type, resource_id, err)
                continue
            found += [(resource_type, r['id']) for r in matches
                      if not r.get('ended_at')]
        return found

    def _set_ended(self, resource_type: str, resource_id: str,
                   ended_at: str) -> None:
        from gnocchiclient import exceptions as gexc

        client = self.gnocchi.client
        try:
            current = self.gnocchi.call(client.resource.get, resource_type,
                                        resource_id)
            if _later_or_same(current.get('ended_at'), ended_at):
                # A later delete event of the same resource came first
                # (delete.end before delete.start): the end stays there.
                LOG.debug('Resource %s already ended at %s', resource_id,
                          current['ended_at'])
                return
            self.gnocchi.call(client.resource.update, resource_type,
                              resource_id, {'ended_at': ended_at})
        except gexc.ResourceNotFound:
            LOG.debug('Delete event of unknown resource %s ignored',
                      resource_id)
            return
        except gexc.ClientException as err:
            now = _isoformat(None)
            if getattr(err, 'code', 0) == 400 and ended_at < now:
                # e.g. the event predates the resource's started_at
                LOG.warning('Gnocchi refused ended_at=%s for %s (%s): '
                            'ending it now', ended_at, resource_id, err)
                self._set_ended(resource_type, resource_id, now)
                return
            LOG.error('Gnocchi refused ended_at=%s for the %s resource %s: '
                      '%s', ended_at, resource_type, resource_id, err)
            return
        self.counters['resources_ended'] += 1
        LOG.debug('Resource %s ended at %s', resource_id, ended_at)


def end_time(generated: Any) -> str:
    """``ended_at`` for a delete event generated at ``generated``."""
    moment = _parse(_isoformat(generated))
    return (moment + END_MARGIN).isoformat() if moment else \
        _isoformat(generated)


def _parse(value: Any) -> datetime.datetime | None:
    """An aware datetime of ISO 8601 ``value``, or None."""
    try:
        return utils.parse_isotime(str(value))
    except ValueError:
        return None


def _later_or_same(current: Any, wanted: str) -> bool:
    """Whether a resource ended at ``current`` ends no earlier than
    ``wanted``."""
    if not current:
        return False
    current_at, wanted_at = _parse(current), _parse(wanted)
    return bool(current_at and wanted_at and current_at >= wanted_at)


def _isoformat(value: Any) -> str:
    """:func:`calls.timestamp`, or now when ``value`` is empty."""
    return calls.timestamp(value) or \
        datetime.datetime.now(datetime.UTC).isoformat()
