"""Building blocks of the MongoDB storage driver (pymongo).

``connection`` (client, version check, indexes and TTL), ``keys``
(metadata key escaping), ``queries`` (filters and the complex query
language), ``metering`` (sample writes, samples/resources/meters),
``statistics`` and ``events``; the entry-point classes are in
:mod:`telemeter.storage.impl_mongodb`.
"""
