"""The arithmetic of tools/capacity.py, case by case."""

from __future__ import annotations

import contextlib
import io

import pytest

from tools import capacity


def test_sample_rates_and_queues():
    region = capacity.Region(100, instances_per_node=30,
                             meters_per_instance=15, polling_interval=300,
                             notifications_per_second=20,
                             samples_per_notification=2)
    p = capacity.plan(region)
    # 100 * 30 * 15 / 300 = 150 polled; 20 * 2 = 40 from notifications
    assert (p.polled_samples_per_s, p.notification_samples_per_s,
            p.samples_per_s) == (150, 40, 190)
    assert p.queues == {
        'notifications.sample (polling agents -> agents)': 3.0,  # 150 / 50
        'notifications.info (services -> agents)': 20,
        'metering.sample (agents -> collectors)': 1.9,  # 190 / 100
        'telemeter-pipe-* (agents -> agents), all together': 1.9}
    assert p.broker_messages_per_s == pytest.approx(26.8)
    assert p.polling_agents == 100
    # never fewer than 2 of each (one may die)
    assert (p.notification_agents, p.collectors) == (2, 2)


def test_default_notifications_are_a_tenth_per_node():
    assert capacity.Region(1000).notifications == 100
    assert capacity.Region(1000, notifications_per_second=7
                           ).notifications == 7


def test_agents_collectors_database_and_storage():
    rates = {'agent_polled_samples_per_s': 1000,
             'agent_notifications_per_s': 500,
             'collector_samples_per_s': 2000,
             'postgresql_samples_per_s': 4000,
             'postgresql_bytes_per_sample': 500,
             'bytes_per_sample_on_the_bus': 1000}
    region = capacity.Region(1000, instances_per_node=10,
                             meters_per_instance=30, polling_interval=100,
                             notifications_per_second=1000,
                             samples_per_notification=1, retention_days=10,
                             utilisation=0.5)
    p = capacity.plan(region, rates)
    # polled 1000*10*30/100 = 3000; + 1000 = 4000 samples/s
    assert p.samples_per_s == 4000
    # agents: 3000/1000 + 1000/500 + 4000/1000 (pipe hop) = 9 -> / 0.5
    assert p.notification_agents == 18
    # collectors: 4000 / (2000 * 0.5) = 4
    assert p.collectors == 4
    # database: 4000 / 4000 = 100 % of one server -> 2 at 50 %
    assert (p.database_load, p.database_servers) == (1.0, 2)
    # 4000 * 86400 = 345.6e6 samples/day * 500 B = 172.8 GB, 10 days
    assert p.samples_per_day == 345_600_000
    assert p.storage_gb_per_day == pytest.approx(172.8)
    assert p.storage_gb_retained == pytest.approx(1728)
    # bodies: 2 hops * 4000 * 1000 B * 1.5 (pipe hop) = 12 MB/s
    assert p.broker_mb_per_s == pytest.approx(12)


def test_without_partitioning_there_is_no_pipe_hop():
    rates = {'agent_polled_samples_per_s': 1000}
    region = capacity.Region(1000, instances_per_node=10,
                             meters_per_instance=30, polling_interval=100,
                             notifications_per_second=0, partitioning=False)
    p = capacity.plan(region, rates)
    assert not [q for q in p.queues if q.startswith('telemeter-pipe')]
    assert p.notification_agents == 6  # 3000 / 1000 / 0.5


def test_cli_prints_the_three_examples():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert capacity.main(['--examples']) == 0
    text = out.getvalue()
    for nodes in ('100 compute nodes', '1,000 compute nodes',
                  '10,000 compute nodes'):
        assert nodes in text
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(
            SystemExit):
        capacity.main([])
