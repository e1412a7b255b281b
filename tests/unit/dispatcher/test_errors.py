"""Which dispatcher errors requeue a whole batch (next hop unreachable)."""

import pytest
import sqlalchemy.exc
from oslo_db import exception as db_exception
from pymongo import errors as mongo_errors

from telemeter.dispatcher import errors


def _wrapped(inner):
    try:
        try:
            raise inner
        except Exception as err:
            raise RuntimeError('while storing') from err
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize('error', [
    ConnectionRefusedError(111, 'refused'),
    TimeoutError('timed out'),
    sqlalchemy.exc.OperationalError('INSERT', {}, Exception('server gone')),
    sqlalchemy.exc.TimeoutError('QueuePool limit reached'),
    db_exception.DBConnectionError('no route'),
    mongo_errors.ServerSelectionTimeoutError('no servers'),
    mongo_errors.AutoReconnect('lost'),
    _wrapped(ConnectionResetError(104, 'reset')),
])
def test_unreachable(error):
    assert errors.unreachable(error)


@pytest.mark.parametrize('error', [
    ValueError('A string literal cannot contain NUL (0x00) characters.'),
    sqlalchemy.exc.DataError('INSERT', {}, Exception('value too long')),
    sqlalchemy.exc.IntegrityError('INSERT', {}, Exception('duplicate')),
    KeyError('counter_name'),
    _wrapped(TypeError('bad')),
])
def test_not_unreachable(error):
    assert not errors.unreachable(error)
