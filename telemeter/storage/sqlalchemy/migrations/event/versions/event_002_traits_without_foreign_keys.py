"""Trait tables without foreign keys or duplicate indexes.

Revision ID: event_002
Revises: event_001
Create Date: 2026-12-02

PostgreSQL checks each foreign key with a trigger query per inserted row:
with about 18 trait rows an event, the trait foreign keys took two thirds
of a batch's trait write time. Trait rows are only written together with
their (new) event, in the same transaction, and the expirer deletes them
before their event, so none can point at a missing event (see
``tables``). The ``ix_trait_*_event_id_key`` indexes repeated the primary
keys ``(event_id, key)``. ``event.event_type_id`` keeps its foreign key
(one check an event).

SQLite cannot drop a constraint in place: the trait tables are rebuilt
(their rows are copied), which takes a while on a large database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'event_002'
down_revision = 'event_001'
branch_labels = None
depends_on = None

_TRAIT_TABLES = ('trait_text', 'trait_int', 'trait_float', 'trait_datetime')


def upgrade() -> None:
    """Drop the trait foreign keys and the indexes repeating the primary
    keys; only what is present (tables adopted from outside Alembic are
    stamped at ``event_001``)."""
    for table in _TRAIT_TABLES:
        inspector = sa.inspect(op.get_bind())
        foreign_key = f'fk_{table}_event_id'
        if foreign_key in {fk['name']
                           for fk in inspector.get_foreign_keys(table)}:
            with op.batch_alter_table(table) as batch:
                batch.drop_constraint(foreign_key, type_='foreignkey')
            # SQLite rebuilt the table: read its indexes again.
            inspector = sa.inspect(op.get_bind())
        index = f'ix_{table}_event_id_key'
        if index in {ix['name'] for ix in inspector.get_indexes(table)}:
            op.drop_index(index, table_name=table)


def downgrade() -> None:
    """Restore the event_001 indexes and foreign keys."""
    for table in _TRAIT_TABLES:
        op.create_index(f'ix_{table}_event_id_key', table,
                        ['event_id', 'key'])
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(f'fk_{table}_event_id', 'event',
                                     ['event_id'], ['id'])
