"""Alembic scripts, loaded by path by Alembic; a package so that setuptools
ships them."""
