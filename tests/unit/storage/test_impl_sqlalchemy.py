"""The storage driver suite against SQLite files."""

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


class SQLiteURL:
    """Each test gets its own SQLite file."""

    @pytest.fixture
    def db_url(self, tmp_path):
        return f'sqlite:///{tmp_path / "telemeter.db"}'


class TestSQLiteMetering(SQLiteURL, driver_suite.MeteringDriverTests):
    """Metering semantics on SQLite."""


class TestSQLiteEvents(SQLiteURL, driver_suite.EventDriverTests):
    """Event semantics on SQLite."""


class TestSQLiteSQL(SQLiteURL, driver_suite.SQLDriverTests):
    """Schema, expiry and concurrency on SQLite."""


class TestSQLiteStatistics(SQLiteURL, statistics_suite.StatisticsTests):
    """Statistics on SQLite (stddev computed in Python)."""


class TestSQLiteComplexQuery(SQLiteURL, query_suite.ComplexQueryTests):
    """query_samples on SQLite."""


class TestSQLiteInvalidSamples(SQLiteURL, driver_suite.InvalidSampleTests):
    """Invalid samples dropped on SQLite."""


class TestSQLiteEventBatches(SQLiteURL, event_suite.EventBatchTests):
    """Batched event writes on SQLite."""


class TestSQLiteSQLEventBatches(SQLiteURL, sql_event_suite.SQLEventBatchTests):
    """Event write transactions, fallback and concurrency on SQLite."""


class TestSQLiteEventConcurrency(SQLiteURL,
                                 sql_event_concurrency.SQLEventConcurrencyTests):
    """Event writers next to other writers and the expirer on SQLite."""
