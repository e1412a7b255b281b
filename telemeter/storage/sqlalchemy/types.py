"""Column types shared by the metering and event tables."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import sqlalchemy as sa
from oslo_utils import timeutils
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

from telemeter import utils


class PreciseTimestamp(sa.types.TypeDecorator):
    """A naive UTC datetime with microsecond precision.

    Stored as ``DECIMAL(20,6)`` epoch seconds on MySQL (whose DATETIME
    historically dropped microseconds) and as ``DateTime`` elsewhere. Aware
    datetimes are normalised to naive UTC before they are bound.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """DECIMAL(20,6) on MySQL, DateTime otherwise."""
        if dialect.name == 'mysql':
            return dialect.type_descriptor(
                mysql.DECIMAL(precision=20, scale=6, asdecimal=True))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Datetime (or ISO string) → the stored form."""
        if value is None:
            return None
        if not isinstance(value, datetime.datetime):
            value = utils.sanitize_timestamp(value)
        elif value.tzinfo is not None:
            value = timeutils.normalize_time(value)
        if dialect.name == 'mysql':
            return utils.dt_to_decimal(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Stored form → naive UTC datetime."""
        if value is None:
            return None
        if dialect.name == 'mysql' or isinstance(value, decimal.Decimal):
            return utils.decimal_to_dt(decimal.Decimal(value))
        return value
