"""Alembic environment of the event schema.

See :func:`telemeter.storage.sqlalchemy.migration.run_env`.
"""

from telemeter.storage.sqlalchemy import migration

migration.run_env('event')
