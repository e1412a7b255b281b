"""SQLAlchemy building blocks of the SQL storage driver.

``types`` (precise timestamps), ``tables`` (schema), ``engine`` (engine
creation and transactions), ``migration`` (Alembic upgrade) and the
metering / event data access modules used by
:mod:`telemeter.storage.impl_sqlalchemy`.
"""
