"""Chunked deletes of expired samples and events, and of meter / resource
rows left without samples.

Every chunk is its own short transaction with a progress line, so a large
purge neither holds locks for long nor needs a huge undo log.

Samples have no foreign keys (see ``tables``); residual meter and
resource rows are deleted under the exclusive residual-data lock, which
every sample batch holds shared: the delete waits for the batches in
flight, sees their samples, and holds new batches back until it commits.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

import sqlalchemy as sa
from oslo_log import log
from sqlalchemy.engine import Engine

from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import tables

LOG = log.getLogger(__name__)

DELETE_CHUNK_SIZE = 5000

_METADATA_TABLES = (tables.metadata_text, tables.metadata_bool,
                    tables.metadata_int, tables.metadata_float)


def cutoff(ttl: int) -> datetime.datetime:
    """Naive UTC ``now - ttl`` seconds."""
    return tables.utcnow() - datetime.timedelta(seconds=ttl)


def delete_in_chunks(engine: Engine, table: sa.Table,
                     id_column: sa.Column, condition: sa.ColumnElement,
                     children: Iterable[sa.Column] = (),
                     what: str = 'rows') -> int:
    """Delete matching rows (and child rows) chunk by chunk; log
    ``<n> expired <what> removed so far`` after each full chunk."""
    total = 0
    children = list(children)
    while True:
        with db_engine.write_transaction(engine) as conn:
            ids = conn.execute(sa.select(id_column).where(condition)
                               .limit(DELETE_CHUNK_SIZE)).scalars().all()
            if not ids:
                break
            for child in children:
                conn.execute(child.table.delete().where(child.in_(ids)))
            conn.execute(table.delete().where(id_column.in_(ids)))
        total += len(ids)
        if len(ids) < DELETE_CHUNK_SIZE:
            break
        LOG.info('%(count)d expired %(what)s removed so far',
                 {'count': total, 'what': what})
    return total


def _delete_residual(engine: Engine, table: sa.Table, id_column: sa.Column,
                     unused: sa.ColumnElement,
                     children: Iterable[sa.Table] = ()) -> int:
    children = list(children)
    total = 0
    while True:
        with db_engine.write_transaction(engine) as conn:
            db_engine.residual_data_lock(conn, exclusive=True)
            ids = list(conn.execute(sa.select(id_column).where(unused)
                                    .order_by(id_column)
                                    .limit(DELETE_CHUNK_SIZE)).scalars())
            if not ids:
                break
            for child in children:
                conn.execute(child.delete().where(child.c.id.in_(ids)))
            conn.execute(table.delete().where(id_column.in_(ids)))
        total += len(ids)
        if len(ids) < DELETE_CHUNK_SIZE:
            break
    return total


def delete_residual_metering(engine: Engine) -> tuple[int, int]:
    """Delete meters and resources (with their metadata) that no sample
    references; return how many of each."""
    sample, meter, resource = tables.sample, tables.meter, tables.resource
    meters = _delete_residual(
        engine, meter, meter.c.id,
        ~sa.exists().where(sample.c.meter_id == meter.c.id))
    resources = _delete_residual(
        engine, resource, resource.c.internal_id,
        ~sa.exists().where(sample.c.resource_id == resource.c.internal_id),
        children=_METADATA_TABLES)
    return meters, resources
