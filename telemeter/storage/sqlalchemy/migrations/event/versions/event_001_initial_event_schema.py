"""Initial event schema.

Revision ID: event_001
Revises:
Create Date: 2026-11-21

Tables event_type, event and the four typed trait tables of storage.md §5.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from telemeter.storage.sqlalchemy.types import PreciseTimestamp

revision = 'event_001'
down_revision = None
branch_labels = None
depends_on = None

_TABLE_ARGS: dict[str, Any] = {'mysql_engine': 'InnoDB',
                               'mysql_charset': 'utf8mb4'}
_TRAIT_TABLES = (
    ('trait_text', sa.String(255)),
    ('trait_int', sa.BigInteger()),
    ('trait_float', sa.Float(precision=53)),
    ('trait_datetime', PreciseTimestamp()),
)


def upgrade() -> None:
    """Create every event table and index."""
    op.create_table(
        'event_type',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('desc', sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('desc', name='uq_event_type_desc'),
        **_TABLE_ARGS,
    )
    op.create_table(
        'event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(50), nullable=True),
        sa.Column('generated', PreciseTimestamp(), nullable=True),
        sa.Column('raw', sa.Text(), nullable=True),
        sa.Column('event_type_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['event_type_id'], ['event_type.id'],
                                name='fk_event_type_id'),
        sa.PrimaryKeyConstraint('id'),
        **_TABLE_ARGS,
    )
    op.create_index('ix_event_message_id', 'event', ['message_id'],
                    unique=True)
    op.create_index('ix_event_type_id', 'event', ['event_type_id'])
    op.create_index('ix_event_generated', 'event', ['generated'])

    for name, value_type in _TRAIT_TABLES:
        op.create_table(
            name,
            sa.Column('event_id', sa.Integer(), autoincrement=False,
                      nullable=False),
            sa.Column('key', sa.String(255), nullable=False),
            sa.Column('value', value_type, nullable=True),
            sa.ForeignKeyConstraint(['event_id'], ['event.id'],
                                    name=f'fk_{name}_event_id'),
            sa.PrimaryKeyConstraint('event_id', 'key'),
            **_TABLE_ARGS,
        )
        op.create_index(f'ix_{name}_event_id_key', name, ['event_id', 'key'])


def downgrade() -> None:
    """Drop every event table."""
    for name, _type in _TRAIT_TABLES:
        op.drop_table(name)
    op.drop_table('event')
    op.drop_table('event_type')
