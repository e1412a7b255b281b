"""The meter and resource ids of a batch of prepared samples.

Meter ids come from an in-process cache, checked against the rows they
name under the residual-data lock; unknown (name, type, unit) triples are
looked up, the still-missing ones inserted (duplicates from concurrent
writers ignored) and read back. Resource rows are keyed by
``identity_hash`` (MD5 of resource_id, user_id, project_id, source and
metadata_hash): the batch's keys are looked up, the missing rows inserted
with duplicates ignored and read back, and typed metadata rows written for
those rows only (also duplicate-safe).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import lookup, tables
from telemeter.storage.sqlalchemy.preparation import (
    MeterKey,
    PreparedSample,
    ResourceState,
    metadata_rows,
)

_METADATA_TABLES = (tables.metadata_text, tables.metadata_bool,
                    tables.metadata_int, tables.metadata_float)


def _meter_sort_key(key: MeterKey) -> tuple:
    return tuple('' if part is None else part for part in key)


class IdResolver:
    """Finds or creates the rows of a batch's meters and resources; holds
    the meter-id cache (``meter_ids``: only ids of committed rows)."""

    def __init__(self, dialect: str, reads: lookup.BatchLookup) -> None:
        self.meter_ids: dict[MeterKey, int] = {}
        self._reads = reads
        self._insert_meter = db_engine.insert_ignore(tables.meter, dialect)
        self._insert_resource = db_engine.insert_ignore(tables.resource,
                                                        dialect)
        self._insert_metadata = {
            table: db_engine.insert_ignore(table, dialect)
            for table in _METADATA_TABLES}

    def resolve(self, conn: Connection, prepared: list[PreparedSample]
                ) -> tuple[dict[MeterKey, int], dict[str, int]]:
        """Take the residual-data lock (shared) and return ``{meter key:
        id}`` and ``{identity_hash: internal_id}`` of ``prepared``."""
        states = {state.identity: state for _meter, state, _values
                  in prepared}
        meter_keys = {meter for meter, _state, _values in prepared}
        cached = {key: self.meter_ids[key] for key in meter_keys
                  if key in self.meter_ids}
        # Under the residual-data lock: a cached meter the expirer deleted
        # meanwhile is missing (or another meter's) now, and cannot go
        # later.
        found, resources = self._reads.open_batch(
            conn, sorted(set(cached.values())), sorted(states))
        meters = {key: meter_id for key, meter_id in cached.items()
                  if found.get(meter_id) == key}
        for key in cached.keys() - meters.keys():
            self.meter_ids.pop(key, None)
        if len(meters) < len(meter_keys):
            meters.update(self._create_meters(
                conn, meter_keys - meters.keys()))
        if len(resources) < len(states):
            resources.update(self._create_resources(
                conn, states, states.keys() - resources.keys()))
        return meters, resources

    def _create_meters(self, conn: Connection,
                       missing: set[MeterKey]) -> dict[MeterKey, int]:
        """Ids of meters not in the cache, rows inserted if need be."""
        found = self._read_meters(conn, missing)
        missing = missing - found.keys()
        if missing:
            conn.execute(self._insert_meter, [
                {'name': name, 'type': type_, 'unit': unit}
                for name, type_, unit in sorted(missing,
                                                key=_meter_sort_key)])
            found.update(self._read_meters(conn, missing))
            missing -= found.keys()
        if missing:
            raise RuntimeError(f'Meters {sorted(missing)} could not be '
                               f'created')
        return found

    @staticmethod
    def _read_meters(conn: Connection,
                     keys: set[MeterKey]) -> dict[MeterKey, int]:
        meter = tables.meter
        names = sorted({key[0] for key in keys})
        found: dict[MeterKey, int] = {}
        for chunk in lookup.chunks(names):
            query = (sa.select(meter.c.id, meter.c.name, meter.c.type,
                               meter.c.unit)
                     .where(meter.c.name.in_(chunk))
                     .order_by(meter.c.id))
            for row in conn.execute(query):
                key = (row.name, row.type, row.unit)
                if key in keys:
                    found.setdefault(key, row.id)
        return found

    def _create_resources(self, conn: Connection,
                          states: dict[str, ResourceState],
                          missing: set[str]) -> dict[str, int]:
        """Insert the rows (and typed metadata rows) of resource states
        without one; return their ids."""
        ordered = sorted(missing)
        conn.execute(self._insert_resource,
                     [states[identity].insert_row() for identity in ordered])
        created = self._reads.resource_ids(conn, ordered)
        lost = missing - created.keys()
        if lost:
            raise RuntimeError(f'{len(lost)} resource rows could not be '
                               f'created')
        rows: dict[sa.Table, list[dict]] = {}
        for identity in ordered:
            for table, row in metadata_rows(created[identity],
                                            states[identity].metadata):
                rows.setdefault(table, []).append(row)
        for table, table_rows in rows.items():
            conn.execute(self._insert_metadata[table], table_rows)
        return created
