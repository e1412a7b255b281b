"""Programmatic Alembic upgrades of the metering and event schemas.

Each schema has its own script directory (``migrations/metering``,
``migrations/event``) and version table, so metering and event data can
share a database or live apart. No ``alembic.ini`` is needed: the
configuration is built here and the open connection is handed to the
``env.py`` scripts through ``Config.attributes``.

``upgrade()`` is idempotent: on a database without the schema it creates
every table from the table definitions and stamps the head revision; on an
existing schema it applies pending migrations. Concurrent upgrades are
serialised with an advisory lock (PostgreSQL, MySQL) or the SQLite write
lock.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from oslo_log import log
from sqlalchemy.engine import Connection, Engine

from telemeter.storage.sqlalchemy import engine as db_engine
from telemeter.storage.sqlalchemy import tables

LOG = log.getLogger(__name__)

_MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), 'migrations')
_LOCK_ID = 0x7E1E3E7E  # PostgreSQL advisory lock key


@dataclasses.dataclass(frozen=True)
class Schema:
    """One independently versioned group of tables."""

    name: str
    metadata: sa.MetaData
    version_table: str

    @property
    def script_location(self) -> str:
        """Directory holding ``env.py`` and ``versions/``."""
        return os.path.join(_MIGRATIONS_DIR, self.name)


METERING = Schema('metering', tables.metering_metadata,
                  tables.METERING_VERSION_TABLE)
EVENT = Schema('event', tables.event_metadata, tables.EVENT_VERSION_TABLE)
SCHEMAS = {schema.name: schema for schema in (METERING, EVENT)}


def alembic_config(schema: Schema,
                   connection: Connection | None = None) -> Config:
    """An in-memory Alembic configuration for ``schema``."""
    config = Config()
    config.set_main_option('script_location', schema.script_location)
    config.attributes['schema'] = schema
    if connection is not None:
        config.attributes['connection'] = connection
    return config


def head_revision(schema: Schema) -> str | None:
    """The latest revision of ``schema``'s history."""
    script = ScriptDirectory.from_config(alembic_config(schema))
    return script.get_current_head()


def current_revision(engine: Engine, schema: Schema) -> str | None:
    """The revision stamped in the database, or None."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={'version_table': schema.version_table})
        return context.get_current_revision()


def upgrade(engine: Engine, schema: Schema, *,
            use_migrations: bool = False, revision: str = 'head') -> None:
    """Create or migrate ``schema`` to ``revision`` (default: the head).

    ``use_migrations`` builds a fresh database by replaying every migration
    instead of creating the tables directly (used by tests to check that
    both paths give the same schema, and to build an older schema).
    """
    with engine.connect() as conn:
        conn = db_engine.for_writing(conn)
        try:
            with conn.begin():
                _lock(conn)
                _upgrade(conn, schema, use_migrations, revision)
        finally:
            _unlock(conn)


def _upgrade(conn: Connection, schema: Schema, use_migrations: bool,
             revision: str = 'head') -> None:
    context = MigrationContext.configure(
        conn, opts={'version_table': schema.version_table})
    config = alembic_config(schema, conn)
    if not context.get_current_heads():
        existing = set(sa.inspect(conn).get_table_names())
        if not existing & set(schema.metadata.tables):
            if use_migrations or revision != 'head':
                LOG.info('Creating %s schema by migration', schema.name)
                command.upgrade(config, revision)
            else:
                LOG.info('Creating %s schema', schema.name)
                schema.metadata.create_all(conn)
                command.stamp(config, 'head')
            return
        # Tables created outside Alembic: adopt them at the base revision,
        # then migrate.
        LOG.info('Stamping existing %s schema', schema.name)
        command.stamp(config, _base_revision(config))
    current = context.get_current_revision()
    if current != revision and revision != 'head':
        LOG.info('Upgrading %s schema to %s', schema.name, revision)
    elif current != head_revision(schema):
        LOG.info('Upgrading %s schema from %s to the latest version',
                 schema.name, current)
    command.upgrade(config, revision)


def _base_revision(config: Config) -> str:
    return ScriptDirectory.from_config(config).get_bases()[0]


def _lock(conn: Connection) -> None:
    name = conn.dialect.name
    if name == 'postgresql':
        conn.execute(sa.text('SELECT pg_advisory_xact_lock(:key)'),
                     {'key': _LOCK_ID})
    elif name == 'mysql':
        conn.execute(sa.text("SELECT GET_LOCK('telemeter_upgrade', 600)"))


def _unlock(conn: Connection) -> None:
    # PostgreSQL's transaction lock ends with the transaction; MySQL's
    # named lock belongs to the session.
    if conn.dialect.name == 'mysql' and not conn.invalidated:
        conn.execute(sa.text("SELECT RELEASE_LOCK('telemeter_upgrade')"))
        conn.commit()


def drop(engine: Engine, schema: Schema) -> None:
    """Drop every table of ``schema`` and its version table."""
    with db_engine.write_transaction(engine) as conn:
        schema.metadata.drop_all(conn)
        conn.execute(sa.text(
            f'DROP TABLE IF EXISTS {schema.version_table}'))


def run_env(schema_name: str) -> None:
    """Body of the ``env.py`` scripts of both histories.

    Uses the connection handed over in ``config.attributes`` (the normal,
    programmatic path) or, for developers running the ``alembic`` command,
    ``sqlalchemy.url`` of the configuration.
    """
    from alembic import context

    config = context.config
    schema = config.attributes.get('schema') or SCHEMAS[schema_name]
    options: dict[str, Any] = {'target_metadata': schema.metadata,
               'version_table': schema.version_table,
               'compare_type': True}
    if context.is_offline_mode():
        context.configure(url=config.get_main_option('sqlalchemy.url'),
                          literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get('connection')
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option('sqlalchemy.url')
    if not url:
        raise RuntimeError('alembic: set sqlalchemy.url in the alembic '
                           'configuration (or run telemeter-dbsync)')
    engine = sa.create_engine(db_engine.normalise_url(url))
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
