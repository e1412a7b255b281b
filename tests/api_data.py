"""Known data for the API tests (unit and functional), written through
telemeter.storage; the statistics the tests expect are worked out by
hand in the tests from the values here."""

from __future__ import annotations

import datetime
from typing import Any

from telemeter import sample as sample_mod
from telemeter.publisher import utils as publisher_utils
from telemeter.storage import models

BASE = datetime.datetime(2024, 3, 1)
SECRET = 'api-test-secret'
META_A = {'flavor': {'name': 'm1.small'}, 'instance_type': 'm1.small'}
META_B = {'instance_type': 'm1.large'}
# (meter, type, unit, resource, project, user, minutes after BASE, volume)
SAMPLES = [
    ('cpu_util', 'gauge', '%', 'r-a', 'pa', 'ua', 0, 10.0),
    ('cpu_util', 'gauge', '%', 'r-a', 'pa', 'ua', 30, 20.0),
    ('cpu_util', 'gauge', '%', 'r-a', 'pa', 'ua', 60, 30.0),
    ('cpu_util', 'gauge', '%', 'r-a', 'pa', 'ua', 90, 40.0),
    ('cpu_util', 'gauge', '%', 'r-b', 'pb', 'ub', 15, 5.0),
    ('cpu_util', 'gauge', '%', 'r-b', 'pb', 'ub', 75, 15.0),
    ('disk.usage', 'gauge', 'B', 'r-a', 'pa', 'ua', 0, 100.0),
]
EVENTS = [
    ('ev-a', 'compute.instance.create.end', 0, 'pa', 2),
    ('ev-b', 'compute.instance.create.end', 10, 'pb', 4),
    ('ev-c', 'image.upload', 20, 'pa', 1),
]


def metering_dicts(projects: dict[str, str] | None = None
                   ) -> list[dict[str, Any]]:
    """The signed metering dicts of :data:`SAMPLES`, ids fixed;
    ``projects`` renames project ids (a real Keystone makes its own)."""
    projects = projects or {}
    messages = []
    for index, (name, kind, unit, resource, project, user, minutes,
                volume) in enumerate(SAMPLES):
        moment = BASE + datetime.timedelta(minutes=minutes)
        built = sample_mod.Sample(
            name=name, type=kind, unit=unit, volume=volume, user_id=user,
            project_id=projects.get(project, project), resource_id=resource,
            timestamp=moment.isoformat(),
            resource_metadata=META_A if resource == 'r-a' else META_B,
            source='openstack', id=f'sample-{index}')
        message = publisher_utils.meter_message_from_counter(built, SECRET)
        message['timestamp'] = moment
        messages.append(message)
    return messages


def events(projects: dict[str, str] | None = None) -> list[models.Event]:
    """The Event models of :data:`EVENTS`."""
    projects = projects or {}
    found = []
    for message_id, event_type, minutes, project, number in EVENTS:
        traits = [models.Trait('project_id', models.Trait.TEXT_TYPE,
                               projects.get(project, project)),
                  models.Trait('vcpus', models.Trait.INT_TYPE, number)]
        found.append(models.Event(
            message_id, event_type,
            BASE + datetime.timedelta(minutes=minutes), traits,
            {'event_type': event_type}))
    return found


def write(metering: Any, event_conn: Any,
          projects: dict[str, str] | None = None) -> None:
    """Store every sample and event."""
    metering.upgrade()
    event_conn.upgrade()
    for message in metering_dicts(projects):
        metering.record_metering_data(message)
    event_conn.record_events(events(projects))
