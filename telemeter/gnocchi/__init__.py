"""Gnocchi as a storage target.

:mod:`.client` builds the gnocchiclient (Keystone or basic auth),
:mod:`.resources` loads ``gnocchi_resources.yaml``, :mod:`.store` writes
samples and resource ends with retries and a bounded backlog, and
:mod:`.upgrade` creates the resource types. The ``gnocchi://`` publisher
(:mod:`telemeter.publisher.gnocchi`) and the ``gnocchi`` dispatcher
(:mod:`telemeter.dispatcher.gnocchi`) are thin front ends of the store.
"""
