"""The ``http`` dispatcher: the collector forwards what it received as JSON.

``[dispatcher_http] target`` receives metering dicts, ``event_target``
(default: ``target``) events; ``batch_mode`` sends one POST per batch
instead of one per dict. A non-2xx answer is logged; a connection error
propagates, so a bus batch is requeued and tried again.
"""

from __future__ import annotations

import json

from oslo_config import cfg
from oslo_log import log
from oslo_utils import strutils

from telemeter import dispatcher

LOG = log.getLogger(__name__)

OPTS = [
    cfg.StrOpt('target',
               default='',
               help='The target where the http request will be sent. If '
                    'this is not set, no data will be posted. For '
                    'example: target = http://hostname:1234/path'),
    cfg.StrOpt('event_target',
               help='The target for event data where the http request '
                    'will be sent to. If this is not set, it will default '
                    'to same as Sample target.'),
    cfg.IntOpt('timeout',
               default=5,
               help='The max time in seconds to wait for a request to '
                    'timeout.'),
    cfg.StrOpt('verify_ssl',
               help='The path to a server certificate or directory if the '
                    'system CAs are not used or if a self-signed '
                    'certificate is used. Set to False to ignore SSL cert '
                    'verification.'),
    cfg.BoolOpt('batch_mode',
                default=False,
                help='Indicates whether samples are published in a batch.'),
]


def verify_option(value: str | None) -> bool | str:
    """``[dispatcher_http] verify_ssl`` as requests' ``verify``: unset is
    True, a strict boolean string is a bool, anything else a CA path."""
    if value is None:
        return True
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        return value


class HttpDispatcher(dispatcher.MeterDispatcherBase,
                     dispatcher.EventDispatcherBase):
    """POSTs metering dicts to ``target`` and events to ``event_target``."""

    HEADERS = {'Content-type': 'application/json'}

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        options = conf.dispatcher_http
        self.target = options.target
        self.event_target = options.event_target or self.target
        self.timeout = options.timeout
        self.verify_ssl = verify_option(options.verify_ssl)
        self.batch_mode = options.batch_mode
        # Imported here: a collector without this dispatcher never loads
        # requests (about 5 MB per process).
        import requests

        self.session = requests.Session()

    def _post(self, target: str, items: list[dict], kind: str) -> None:
        bodies = ([json.dumps(items, default=str)] if self.batch_mode
                  else [json.dumps(item, default=str) for item in items])
        for body in bodies:
            LOG.debug('Posting %s data to %s: %s', kind, target, body)
            response = self.session.post(target, data=body,
                                         headers=self.HEADERS,
                                         timeout=self.timeout,
                                         verify=self.verify_ssl)
            if response.status_code >= 500:
                # The endpoint fails, not the data: the batch is requeued
                # (requests' HTTPError is an OSError, i.e. unreachable).
                response.raise_for_status()
            if not response.ok:
                LOG.error('Status Code: %(code)s. Failed to dispatch '
                          '%(kind)s: %(data)s',
                          {'code': response.status_code, 'kind': kind,
                           'data': body})

    def record_metering_data(self, data: list[dict] | dict) -> None:
        if not self.target:
            LOG.error('Dispatcher target was not set, no meter will be '
                      'posted. Set the target in the telemeter.conf file.')
            return
        if isinstance(data, dict):
            data = [data]
        if data:
            self._post(self.target, data, 'meter')

    def record_events(self, events: list[dict] | dict) -> None:
        if not self.event_target:
            LOG.error('Dispatcher event target was not set, no event will '
                      'be posted. Set event_target in the telemeter.conf '
                      'file.')
            return
        if isinstance(events, dict):
            events = [events]
        if events:
            self._post(self.event_target, events, 'event')
