"""The storage driver suite against a real PostgreSQL server.

The backend is only a parameter: the test classes come from
``tests/unit/storage/driver_suite.py``; this module provides the URL.
"""

from __future__ import annotations

import os

import pytest

from tests.unit.storage import driver_suite


@pytest.fixture
def postgresql_url():
    """TEMPORARY stand-in for the shared ``postgresql_url`` fixture.

    Reads ``TELEMETER_TEST_POSTGRESQL_URL`` (an empty throwaway database).
    Delete this fixture once ``tests/functional/conftest.py`` provides it.
    """
    url = os.environ.get('TELEMETER_TEST_POSTGRESQL_URL')
    if not url:
        pytest.fail('TELEMETER_TEST_POSTGRESQL_URL is not set')
    return url


class PostgreSQLURL:
    """Every test uses the PostgreSQL database (the suite clears it)."""

    @pytest.fixture
    def db_url(self, postgresql_url):
        return postgresql_url


class TestPostgreSQLMetering(PostgreSQLURL,
                             driver_suite.MeteringDriverTests):
    """Metering semantics on PostgreSQL."""


class TestPostgreSQLEvents(PostgreSQLURL, driver_suite.EventDriverTests):
    """Event semantics on PostgreSQL."""


class TestPostgreSQLSQL(PostgreSQLURL, driver_suite.SQLDriverTests):
    """Schema, expiry and concurrency on PostgreSQL."""
