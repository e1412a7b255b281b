"""Fixtures of the scale-out suite on a 3-node RabbitMQ cluster (issue 15;
``tox -e cluster``, not part of ``pytest tests/functional``).

``rabbit_cluster`` is started once per session by ``tools/rabbitmq-cluster.sh``
on free ports (or is the running one that ``TELEMETER_TEST_RABBIT_CLUSTER_URL``
and ``TELEMETER_RABBIT_CLUSTER_PORT`` name) and stopped at the end. A
cluster that cannot be started fails the tests, never skips them.
"""

from __future__ import annotations

import uuid

import pytest

from tests.functional.faults.conftest import (  # noqa: F401 (fixtures)
    _daemons_run_this_tree,
    broker,
    pg_service,
)
from tests.functional.fixtures import cluster as cluster_fixture


def pytest_collection_modifyitems(config, items):
    for item in items:
        if 'tests/functional/cluster/' in str(item.path):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope='session')
def rabbit_cluster(request) -> cluster_fixture.RabbitCluster:
    session = cluster_fixture.SessionCluster()
    try:
        cluster = session.setup()
    except (cluster_fixture.ClusterError, OSError) as exc:
        message = (f'could not start the 3-node RabbitMQ cluster: {exc}\n'
                   f'It needs the Debian package rabbitmq-server '
                   f'(tools/install.sh); see tools/rabbitmq-cluster.sh.')
    else:
        request.addfinalizer(session.teardown)
        return cluster
    pytest.fail(message, pytrace=False)


@pytest.fixture
def cluster_vhost(rabbit_cluster):
    """A fresh virtual host on the cluster: (name, transport URL listing
    the three nodes). Afterwards every node runs again and the vhost is
    deleted."""
    vhost = f'scale-{uuid.uuid4().hex[:8]}'
    rabbit_cluster.rabbitmqctl('add_vhost', vhost)
    rabbit_cluster.rabbitmqctl('set_permissions', '-p', vhost, 'guest',
                               '.*', '.*', '.*')
    yield vhost, rabbit_cluster.url.rstrip('/') + '/' + vhost
    rabbit_cluster.start()
    rabbit_cluster.rabbitmqctl('delete_vhost', vhost)
