"""Alembic environment of the metering schema.

See :func:`telemeter.storage.sqlalchemy.migration.run_env`.
"""

from telemeter.storage.sqlalchemy import migration

migration.run_env('metering')
