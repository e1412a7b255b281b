"""Initial metering schema.

Revision ID: metering_001
Revises:
Create Date: 2026-11-21

Tables meter, resource, sample and the four typed resource-metadata tables
of storage.md §5, plus the unique ``sample.message_id`` and
``resource.identity_hash`` used for idempotent concurrent writes.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from telemeter.storage.sqlalchemy.types import PreciseTimestamp

revision = 'metering_001'
down_revision = None
branch_labels = None
depends_on = None

_TABLE_ARGS: dict[str, Any] = {'mysql_engine': 'InnoDB',
                               'mysql_charset': 'utf8mb4'}
_METADATA_TABLES = (
    ('metadata_text', sa.Text(), 'ix_meta_text_key'),
    ('metadata_bool', sa.Boolean(), 'ix_meta_bool_key'),
    ('metadata_int', sa.BigInteger(), 'ix_meta_int_key'),
    ('metadata_float', sa.Float(precision=53), 'ix_meta_float_key'),
)


def upgrade() -> None:
    """Create every metering table and index."""
    op.create_table(
        'meter',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('type', sa.String(255), nullable=True),
        sa.Column('unit', sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', 'type', 'unit', name='def_unique'),
        **_TABLE_ARGS,
    )
    op.create_index('ix_meter_name', 'meter', ['name'])

    op.create_table(
        'resource',
        sa.Column('internal_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('source_id', sa.String(255), nullable=True),
        sa.Column('resource_id', sa.String(255), nullable=False),
        sa.Column('resource_metadata', sa.Text(), nullable=True),
        sa.Column('metadata_hash', sa.String(32), nullable=True),
        sa.Column('identity_hash', sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint('internal_id'),
        sa.UniqueConstraint('identity_hash',
                            name='uq_resource_identity_hash'),
        **_TABLE_ARGS,
    )
    op.create_index('ix_resource_resource_id', 'resource', ['resource_id'])
    op.create_index('ix_resource_metadata_hash', 'resource',
                    ['metadata_hash'])

    for name, value_type, index in _METADATA_TABLES:
        op.create_table(
            name,
            sa.Column('id', sa.Integer(), autoincrement=False,
                      nullable=False),
            sa.Column('meta_key', sa.String(255), nullable=False),
            sa.Column('value', value_type, nullable=True),
            sa.ForeignKeyConstraint(['id'], ['resource.internal_id'],
                                    name=f'fk_{name}_id'),
            sa.PrimaryKeyConstraint('id', 'meta_key'),
            **_TABLE_ARGS,
        )
        op.create_index(index, name, ['meta_key'])

    op.create_table(
        'sample',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('meter_id', sa.Integer(), nullable=True),
        sa.Column('resource_id', sa.Integer(), nullable=True),
        sa.Column('volume', sa.Float(precision=53), nullable=True),
        sa.Column('timestamp', PreciseTimestamp(), nullable=True),
        sa.Column('recorded_at', PreciseTimestamp(), nullable=True),
        sa.Column('message_signature', sa.String(64), nullable=True),
        sa.Column('message_id', sa.String(128), nullable=True),
        sa.ForeignKeyConstraint(['meter_id'], ['meter.id'],
                                name='fk_sample_meter_id'),
        sa.ForeignKeyConstraint(['resource_id'], ['resource.internal_id'],
                                name='fk_sample_resource_id'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('message_id', name='uq_sample_message_id'),
        **_TABLE_ARGS,
    )
    op.create_index('ix_sample_timestamp', 'sample', ['timestamp'])
    op.create_index('ix_sample_resource_id', 'sample', ['resource_id'])
    op.create_index('ix_sample_meter_id', 'sample', ['meter_id'])
    op.create_index('ix_sample_meter_id_resource_id', 'sample',
                    ['meter_id', 'resource_id'])


def downgrade() -> None:
    """Drop every metering table."""
    op.drop_table('sample')
    for name, _type, _index in _METADATA_TABLES:
        op.drop_table(name)
    op.drop_table('resource')
    op.drop_table('meter')
