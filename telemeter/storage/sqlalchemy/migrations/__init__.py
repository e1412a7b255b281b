"""Alembic script directories of the metering and event schemas."""
