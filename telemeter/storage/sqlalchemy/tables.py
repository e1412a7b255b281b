"""The SQL schema of metering and event storage (storage.md §5).

Metering and event tables live in separate ``MetaData`` objects with their
own Alembic histories, so the two may share a database or use two.

Additions to the documented schema (all for idempotent, concurrent writes):

* ``sample.message_id`` is unique (``uq_sample_message_id``), so a
  redelivered sample is never stored twice;
* ``resource.identity_hash`` (MD5 of resource_id, user_id, project_id,
  source and metadata_hash, NULL-safe) is unique
  (``uq_resource_identity_hash``), so concurrent writers cannot create two
  rows for the same resource state;
* foreign keys carry explicit names.

Changes for speed (migration ``metering_002``):

* ``sample`` has no foreign keys: PostgreSQL checks them with one trigger
  query per row, which halved the batch write rate. Instead every sample
  batch holds the residual-data lock shared and the expirer holds it
  exclusively while it deletes meters and resources without samples (a
  PostgreSQL advisory lock; on MySQL the ``storage_lock`` row, locked
  ``LOCK IN SHARE MODE`` / ``FOR UPDATE``; SQLite serialises writers), so
  no sample can point at a deleted row;
* the sample indexes serve the queries: ``(meter_id, timestamp)`` for
  statistics and per-meter samples, ``(resource_id, timestamp)`` for
  per-resource samples and resources, ``timestamp`` for time ranges and
  the expirer, and the unique ``message_id``;
* on PostgreSQL ``sample.message_id`` and ``resource.identity_hash``
  compare bytes (``COLLATE "C"``), which makes their unique indexes
  cheaper to maintain.

Changes for speed (migration ``event_002``):

* the trait tables have no foreign key to ``event`` (one trigger query
  per trait row on PostgreSQL, two thirds of a batch's trait write time):
  trait rows are only written in the transaction that inserts their
  event, and the expirer deletes them before their event, so none can
  point at a missing event; ``event.event_type_id`` keeps its foreign key,
  on which the expirer's deletion of unused event types relies;
* their ``ix_trait_*_event_id_key`` indexes, which repeated the primary
  keys, are gone.
"""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from telemeter.storage.sqlalchemy.types import PreciseTimestamp

MYSQL_TABLE_ARGS: dict[str, Any] = {'mysql_engine': 'InnoDB',
                                   'mysql_charset': 'utf8mb4'}

METERING_VERSION_TABLE = 'alembic_version_metering'
EVENT_VERSION_TABLE = 'alembic_version_event'


def utcnow() -> datetime.datetime:
    """Naive UTC now, the default of timestamp columns."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigIntId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def byte_string(length: int) -> sa.types.TypeEngine:
    """VARCHAR compared byte-wise on PostgreSQL (``COLLATE "C"``).

    For keys only ever tested for equality (message ids, hashes): their
    unique indexes are much cheaper to maintain without locale-aware
    comparisons.
    """
    return sa.String(length).with_variant(
        postgresql.VARCHAR(length, collation='C'), 'postgresql')

metering_metadata = sa.MetaData()
event_metadata = sa.MetaData()

meter = sa.Table(
    'meter', metering_metadata,
    sa.Column('id', sa.Integer, primary_key=True),
    sa.Column('name', sa.String(255), nullable=False),
    sa.Column('type', sa.String(255)),
    sa.Column('unit', sa.String(255)),
    sa.UniqueConstraint('name', 'type', 'unit', name='def_unique'),
    sa.Index('ix_meter_name', 'name'),
    **MYSQL_TABLE_ARGS,
)

resource = sa.Table(
    'resource', metering_metadata,
    sa.Column('internal_id', sa.Integer, primary_key=True),
    sa.Column('user_id', sa.String(255)),
    sa.Column('project_id', sa.String(255)),
    sa.Column('source_id', sa.String(255)),
    sa.Column('resource_id', sa.String(255), nullable=False),
    sa.Column('resource_metadata', sa.Text),
    sa.Column('metadata_hash', sa.String(32)),
    sa.Column('identity_hash', byte_string(32), nullable=False),
    sa.UniqueConstraint('identity_hash', name='uq_resource_identity_hash'),
    sa.Index('ix_resource_resource_id', 'resource_id'),
    sa.Index('ix_resource_metadata_hash', 'metadata_hash'),
    **MYSQL_TABLE_ARGS,
)

sample = sa.Table(
    'sample', metering_metadata,
    sa.Column('id', BigIntId, primary_key=True),
    sa.Column('meter_id', sa.Integer),
    sa.Column('resource_id', sa.Integer),
    sa.Column('volume', sa.Float(precision=53)),
    sa.Column('timestamp', PreciseTimestamp(), default=utcnow),
    sa.Column('recorded_at', PreciseTimestamp(), default=utcnow),
    sa.Column('message_signature', sa.String(64)),
    sa.Column('message_id', byte_string(128)),
    sa.UniqueConstraint('message_id', name='uq_sample_message_id'),
    sa.Index('ix_sample_timestamp', 'timestamp'),
    sa.Index('ix_sample_meter_id_timestamp', 'meter_id', 'timestamp'),
    sa.Index('ix_sample_resource_id_timestamp', 'resource_id', 'timestamp'),
    **MYSQL_TABLE_ARGS,
)


# One row per named lock (MySQL has no shared advisory locks): the
# residual-data lock of the writer and the expirer.
RESIDUAL_LOCK = 'residual'
storage_lock = sa.Table(
    'storage_lock', metering_metadata,
    sa.Column('name', sa.String(32), primary_key=True),
    **MYSQL_TABLE_ARGS,
)
sa.event.listen(storage_lock, 'after_create', sa.DDL(
    "INSERT INTO storage_lock (name) VALUES ('residual')"))


def _metadata_table(name: str, value_type: sa.types.TypeEngine,
                    index: str) -> sa.Table:
    return sa.Table(
        name, metering_metadata,
        sa.Column('id', sa.Integer,
                  sa.ForeignKey('resource.internal_id',
                                name=f'fk_{name}_id'),
                  primary_key=True, autoincrement=False),
        sa.Column('meta_key', sa.String(255), primary_key=True),
        sa.Column('value', value_type),
        sa.Index(index, 'meta_key'),
        **MYSQL_TABLE_ARGS,
    )


metadata_text = _metadata_table('metadata_text', sa.Text(),
                                'ix_meta_text_key')
metadata_bool = _metadata_table('metadata_bool', sa.Boolean(),
                                'ix_meta_bool_key')
metadata_int = _metadata_table('metadata_int', sa.BigInteger(),
                               'ix_meta_int_key')
metadata_float = _metadata_table('metadata_float', sa.Float(precision=53),
                                 'ix_meta_float_key')

event_type = sa.Table(
    'event_type', event_metadata,
    sa.Column('id', sa.Integer, primary_key=True),
    sa.Column('desc', sa.String(255)),
    sa.UniqueConstraint('desc', name='uq_event_type_desc'),
    **MYSQL_TABLE_ARGS,
)

event = sa.Table(
    'event', event_metadata,
    sa.Column('id', sa.Integer, primary_key=True),
    sa.Column('message_id', sa.String(50)),
    sa.Column('generated', PreciseTimestamp()),
    sa.Column('raw', sa.Text),
    sa.Column('event_type_id', sa.Integer,
              sa.ForeignKey('event_type.id', name='fk_event_type_id')),
    sa.Index('ix_event_message_id', 'message_id', unique=True),
    sa.Index('ix_event_type_id', 'event_type_id'),
    sa.Index('ix_event_generated', 'generated'),
    **MYSQL_TABLE_ARGS,
)


def _trait_table(name: str, value_type: sa.types.TypeEngine) -> sa.Table:
    # No foreign key to ``event`` (migration event_002): see the module
    # docstring. The primary key is the (event_id, key) index.
    return sa.Table(
        name, event_metadata,
        sa.Column('event_id', sa.Integer, primary_key=True,
                  autoincrement=False),
        sa.Column('key', sa.String(255), primary_key=True),
        sa.Column('value', value_type),
        **MYSQL_TABLE_ARGS,
    )


trait_text = _trait_table('trait_text', sa.String(255))
trait_int = _trait_table('trait_int', sa.BigInteger())
trait_float = _trait_table('trait_float', sa.Float(precision=53))
trait_datetime = _trait_table('trait_datetime', PreciseTimestamp())
