"""Which dispatcher errors mean "the next hop is unreachable".

The collector requeues the whole batch for those (the database or the
endpoint will be back; nothing in the batch is wrong) and isolates the
failing samples for any other error (:mod:`telemeter.messaging.dispatch`).
Classes are recognised by name along the exception's MRO and chain, so
no database or HTTP library is imported to ask.
"""

from __future__ import annotations

#: Errors of a connection, a pool or a server that is going away.
UNREACHABLE = frozenset({
    'builtins.ConnectionError',
    'builtins.TimeoutError',
    'builtins.OSError',
    'sqlalchemy.exc.OperationalError',
    'sqlalchemy.exc.InterfaceError',
    'sqlalchemy.exc.DisconnectionError',
    'sqlalchemy.exc.TimeoutError',
    'oslo_db.exception.DBConnectionError',
    'pymongo.errors.ConnectionFailure',
    'pymongo.errors.ServerSelectionTimeoutError',
    'pymongo.errors.NetworkTimeout',
})


def _names(error: BaseException) -> set[str]:
    return {f'{cls.__module__}.{cls.__qualname__}'
            for cls in type(error).__mro__}


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) says the next
    hop cannot be reached right now."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _names(current) & UNREACHABLE:
            return True
        current = current.__cause__ or current.__context__
    return False
