"""SQLAlchemy building blocks of the SQL storage driver.

``types`` (precise timestamps), ``tables`` (schema), ``engine`` (engine
creation, transactions, locks), ``migration`` (Alembic upgrade), the write
path ``preparation`` → ``writer`` → ``loading``, the read path ``filters``,
``complex_query``, ``metering`` and ``statistics``, plus ``events`` and
``expiry``; :mod:`telemeter.storage.impl_sqlalchemy` holds the entry-point
classes.
"""
