"""The storage driver suite against real PostgreSQL and MariaDB servers.

The backend is only a parameter: the test classes come from
``tests/unit/storage/driver_suite.py``; this module provides the URLs via
the shared ``postgresql_url`` / ``mysql_url`` fixtures (a fresh empty
database per module; the suite clears its tables around every test).
"""

from __future__ import annotations

import pytest

from tests.unit.storage import (
    driver_suite,
    event_suite,
    query_suite,
    sql_event_concurrency,
    sql_event_suite,
    statistics_suite,
)


class PostgreSQLURL:
    """Tests run against the module's PostgreSQL database."""

    @pytest.fixture
    def db_url(self, postgresql_url):
        return postgresql_url


class MariaDBURL:
    """Tests run against the module's MariaDB database."""

    @pytest.fixture
    def db_url(self, mysql_url):
        return mysql_url


class TestPostgreSQLMetering(PostgreSQLURL,
                             driver_suite.MeteringDriverTests):
    """Metering semantics on PostgreSQL."""


class TestPostgreSQLEvents(PostgreSQLURL, driver_suite.EventDriverTests):
    """Event semantics on PostgreSQL."""


class TestPostgreSQLSQL(PostgreSQLURL, driver_suite.SQLDriverTests):
    """Schema, expiry and concurrency on PostgreSQL."""


class TestMariaDBMetering(MariaDBURL, driver_suite.MeteringDriverTests):
    """Metering semantics on MariaDB."""


class TestMariaDBEvents(MariaDBURL, driver_suite.EventDriverTests):
    """Event semantics on MariaDB."""


class TestMariaDBSQL(MariaDBURL, driver_suite.SQLDriverTests):
    """Schema, expiry and concurrency on MariaDB."""


class TestPostgreSQLStatistics(PostgreSQLURL,
                               statistics_suite.StatisticsTests):
    """Statistics on PostgreSQL."""


class TestPostgreSQLComplexQuery(PostgreSQLURL,
                                 query_suite.ComplexQueryTests):
    """query_samples on PostgreSQL."""


class TestMariaDBStatistics(MariaDBURL, statistics_suite.StatisticsTests):
    """Statistics on MariaDB."""


class TestMariaDBComplexQuery(MariaDBURL, query_suite.ComplexQueryTests):
    """query_samples on MariaDB."""


class TestPostgreSQLInvalidSamples(PostgreSQLURL,
                                   driver_suite.InvalidSampleTests):
    """Invalid samples dropped on PostgreSQL (COPY path)."""


class TestMariaDBInvalidSamples(MariaDBURL, driver_suite.InvalidSampleTests):
    """Invalid samples dropped on MariaDB."""


class TestPostgreSQLEventBatches(PostgreSQLURL, event_suite.EventBatchTests):
    """Batched event writes on PostgreSQL."""


class TestMariaDBEventBatches(MariaDBURL, event_suite.EventBatchTests):
    """Batched event writes on MariaDB."""


class TestPostgreSQLSQLEventBatches(PostgreSQLURL,
                                    sql_event_suite.SQLEventBatchTests,
                                    sql_event_suite.ServerEventTests):
    """Event write transactions, fallback and concurrency on PostgreSQL."""


class TestMariaDBSQLEventBatches(MariaDBURL,
                                 sql_event_suite.SQLEventBatchTests,
                                 sql_event_suite.ServerEventTests):
    """Event write transactions, fallback and concurrency on MariaDB."""


class TestPostgreSQLEventConcurrency(
        PostgreSQLURL, sql_event_concurrency.SQLEventConcurrencyTests):
    """Event writers next to other writers and the expirer on PostgreSQL."""


class TestMariaDBEventConcurrency(
        MariaDBURL, sql_event_concurrency.SQLEventConcurrencyTests):
    """Event writers next to other writers and the expirer on MariaDB."""
