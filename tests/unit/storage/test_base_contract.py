"""The storage drivers' contract (telemeter/storage/base.py)."""

import inspect

import pytest
from oslo_config import cfg
from stevedore import extension

import telemeter
from telemeter import storage
from telemeter.storage import base

NAMESPACES = ('telemeter.metering.storage', 'telemeter.event.storage')


@pytest.mark.parametrize('namespace', NAMESPACES)
def test_every_packaged_driver_keeps_the_whole_contract(namespace):
    manager = extension.ExtensionManager(namespace)
    assert {'log', 'mongodb', 'mysql', 'postgresql', 'sqlite'} <= set(
        manager.names())
    for ext in manager:
        assert not inspect.isabstract(ext.plugin), (
            ext.name, ext.plugin.__abstractmethods__)
        expected = (base.Connection if namespace.startswith('telemeter.me')
                    else base.EventConnection)
        assert issubclass(ext.plugin, expected), ext.name


def test_a_driver_that_cannot_write_is_refused_when_built():
    class ReadOnly(base.Connection):
        def clear_expired_metering_data(self, ttl):
            pass

    with pytest.raises(TypeError, match='record_metering_data'):
        ReadOnly(cfg.ConfigOpts(), 'readonly://')


def test_a_driver_without_queries_raises_telemeter_not_implemented():
    class WriteOnly(base.EventConnection):
        def record_events(self, events):
            pass

        def clear_expired_event_data(self, ttl):
            pass

    driver = WriteOnly(cfg.ConfigOpts(), 'writeonly://')
    with pytest.raises(telemeter.NotImplementedError):
        driver.get_event_types()
    with pytest.raises(NotImplementedError):
        driver.get_traits('compute.instance.create.end')


def test_keyword_queries_reach_the_driver_as_one_filter():
    seen = []

    class Recorder(base.Connection):
        def record_metering_data(self, data):
            pass

        def clear_expired_metering_data(self, ttl):
            pass

        def find_resources(self, resource_filter):
            seen.append(resource_filter)
            return []

        def find_meters(self, meter_filter):
            seen.append(meter_filter)
            return []

    driver = Recorder(cfg.ConfigOpts(), 'recorder://')
    driver.get_resources(user='u', end_timestamp_op='le', limit=3)
    driver.get_meters(project='p', metaquery={'metadata.a': 1}, unique=True)
    assert seen == [
        storage.ResourceFilter(user='u', end_timestamp_op='le', limit=3),
        storage.MeterFilter(project='p', metaquery={'metadata.a': 1},
                            unique=True)]
    with pytest.raises(telemeter.NotImplementedError):
        base.Connection.find_resources(driver, storage.ResourceFilter())
