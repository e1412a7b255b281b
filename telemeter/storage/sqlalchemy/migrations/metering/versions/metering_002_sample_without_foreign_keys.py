"""Sample table without foreign keys; indexes that serve the queries.

Revision ID: metering_002
Revises: metering_001
Create Date: 2026-11-21

PostgreSQL checks each foreign key with a trigger query per inserted row,
which halved the batch write rate; the writer and the expirer now keep
sample references valid with row locks (see ``tables``). The single-column
``meter_id`` / ``resource_id`` indexes and ``(meter_id, resource_id)`` give
way to ``(meter_id, timestamp)`` and ``(resource_id, timestamp)``, which
serve statistics, per-meter and per-resource samples in time order.
Table ``storage_lock`` holds the row MySQL writers and the expirer lock
(shared / exclusive) instead. On
PostgreSQL ``sample.message_id`` and ``resource.identity_hash`` are
compared byte-wise (``COLLATE "C"``): cheaper unique indexes.

SQLite cannot drop a constraint in place: the table is rebuilt (its rows
are copied), which takes a while on a large database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'metering_002'
down_revision = 'metering_001'
branch_labels = None
depends_on = None

_OLD_INDEXES = (
    ('ix_sample_resource_id', ['resource_id']),
    ('ix_sample_meter_id', ['meter_id']),
    ('ix_sample_meter_id_resource_id', ['meter_id', 'resource_id']),
)
_NEW_INDEXES = (
    ('ix_sample_meter_id_timestamp', ['meter_id', 'timestamp']),
    ('ix_sample_resource_id_timestamp', ['resource_id', 'timestamp']),
)
# PostgreSQL: compared byte-wise (COLLATE "C"), cheaper unique indexes.
_BYTE_COLUMNS = (
    ('sample', 'message_id', 128),
    ('resource', 'identity_hash', 32),
)
_FOREIGN_KEYS = (
    ('fk_sample_meter_id', 'meter', ['meter_id'], ['id']),
    ('fk_sample_resource_id', 'resource', ['resource_id'], ['internal_id']),
)


def upgrade() -> None:
    """Drop the sample foreign keys and swap the sample indexes.

    Only what is present is dropped and only what is missing created, so
    tables adopted from outside Alembic (stamped at ``metering_001``) are
    brought to the same state.
    """
    inspector = sa.inspect(op.get_bind())
    foreign_keys = {fk['name'] for fk in inspector.get_foreign_keys('sample')}
    indexes = {index['name'] for index in inspector.get_indexes('sample')}
    drop = [name for name, *_rest in _FOREIGN_KEYS if name in foreign_keys]
    if drop:
        with op.batch_alter_table('sample') as batch:
            for name in drop:
                batch.drop_constraint(name, type_='foreignkey')
        # SQLite rebuilt the table: read its indexes again.
        indexes = {index['name']
                   for index in sa.inspect(op.get_bind()).get_indexes(
                       'sample')}
    # Create the new indexes first: on MySQL an index backing a foreign
    # key could otherwise not be dropped (harmless once the keys are gone).
    for name, columns in _NEW_INDEXES:
        if name not in indexes:
            op.create_index(name, 'sample', columns)
    for name, _columns in _OLD_INDEXES:
        if name in indexes:
            op.drop_index(name, table_name='sample')
    if op.get_bind().dialect.name == 'postgresql':
        for table, column, length in _BYTE_COLUMNS:
            op.alter_column(table, column,
                            type_=postgresql.VARCHAR(length, collation='C'),
                            existing_type=sa.String(length))
    if 'storage_lock' not in inspector.get_table_names():
        lock = op.create_table(
            'storage_lock',
            sa.Column('name', sa.String(32), nullable=False),
            sa.PrimaryKeyConstraint('name'),
            mysql_engine='InnoDB', mysql_charset='utf8mb4',
        )
        op.bulk_insert(lock, [{'name': 'residual'}])


def downgrade() -> None:
    """Restore the metering_001 indexes and foreign keys."""
    op.drop_table('storage_lock')
    if op.get_bind().dialect.name == 'postgresql':
        for table, column, length in _BYTE_COLUMNS:
            op.alter_column(table, column, type_=sa.String(length),
                            existing_type=sa.String(length))
    for name, columns in _OLD_INDEXES:
        op.create_index(name, 'sample', columns)
    for name, _columns in _NEW_INDEXES:
        op.drop_index(name, table_name='sample')
    with op.batch_alter_table('sample') as batch:
        for name, referent, local, remote in _FOREIGN_KEYS:
            batch.create_foreign_key(name, referent, local, remote)
