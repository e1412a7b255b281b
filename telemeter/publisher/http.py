"""The ``http://`` and ``https://`` publishers: JSON POSTs to an endpoint.

URL parameters (``timeout``, ``max_retries``, ``batch``, ``verify_ssl``,
``clientcert``, ``clientkey``, ``raw_only``) configure the publisher and are
removed from the target; any other query parameter stays in it. Credentials
in the URL become HTTP basic auth (publishers.md §5).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

import requests
from oslo_config import cfg
from oslo_log import log
from oslo_utils import strutils
from requests import adapters

from telemeter import publisher

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

LOG = log.getLogger(__name__)


def last_values(query: str) -> dict[str, str]:
    """``parse_qs`` of ``query`` (blank values kept), last value wins."""
    return {key: values[-1] for key, values in
            urllib.parse.parse_qs(query, keep_blank_values=True).items()}


def int_param(params: dict[str, str], name: str, default: int) -> int:
    """An integer URL parameter; an unparseable one falls back."""
    if name not in params:
        return default
    try:
        return int(params[name])
    except ValueError:
        LOG.warning('Value %(value)r of URL parameter %(name)s is not an '
                    'integer, using the default %(default)s',
                    {'value': params[name], 'name': name,
                     'default': default})
        return default


def bool_param(params: dict[str, str], name: str, default: bool) -> bool:
    """A boolean URL parameter (1/0, true/false, yes/no, on/off)."""
    if name not in params:
        return default
    return strutils.bool_from_string(params[name], default=default)


def verify_param(value: str | None) -> bool | str:
    """``verify`` for requests: a strict boolean, else a CA bundle path."""
    if value is None:
        return True
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError:
        return value


class HttpPublisher(publisher.ConfigPublisherBase):
    """POSTs samples (``as_dict()``) and events (``serialize()``) as JSON.

    With ``batch`` (the default) one request carries the whole list,
    otherwise one request per item. A non-2xx answer is logged, a
    connection error propagates to the pipeline sink.
    """

    OWN_PARAMS: tuple[str, ...] = (
        'timeout', 'max_retries', 'batch', 'verify_ssl', 'clientcert',
        'clientkey', 'raw_only')
    HEADERS = {'Content-type': 'application/json'}

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url)
        if not parsed_url.hostname:
            raise ValueError('The hostname of an endpoint for HttpPublisher '
                             'is required')
        # Reading the port validates it: a non-numeric one raises
        # ValueError here rather than at the first publish.
        parsed_url.port  # noqa: B018
        params = last_values(parsed_url.query)
        self.timeout = int_param(params, 'timeout', 5)
        self.max_retries = int_param(params, 'max_retries', 2)
        self.poster_batch = bool_param(params, 'batch', True)
        self.raw_only = bool_param(params, 'raw_only', False)
        self.verify_ssl = verify_param(params.get('verify_ssl'))
        clientcert = params.get('clientcert')
        clientkey = params.get('clientkey')
        self.client_cert: str | tuple[str, str] | None = None
        if clientcert and clientkey:
            self.client_cert = (clientcert, clientkey)
        elif clientcert:
            self.client_cert = clientcert
        self.auth: tuple[str, str] | None = None
        if parsed_url.username is not None:
            self.auth = (urllib.parse.unquote(parsed_url.username),
                         urllib.parse.unquote(parsed_url.password or ''))
        self.target = self._target(parsed_url, self.request_scheme(
            parsed_url, params))
        self.session = requests.Session()
        adapter = adapters.HTTPAdapter(
            max_retries=self.max_retries,
            pool_connections=conf.max_parallel_requests,
            pool_maxsize=conf.max_parallel_requests)
        self.session.mount('http://', adapter)
        self.session.mount('https://', adapter)
        LOG.debug('HttpPublisher for endpoint %s is initialized', self.target)

    def request_scheme(self, parsed_url: Any, params: dict[str, str]) -> str:
        """The scheme of the real requests (the URL's own here)."""
        return parsed_url.scheme

    def _target(self, parsed_url: Any, scheme: str) -> str:
        netloc = parsed_url.netloc.rpartition('@')[2]
        remaining = [(key, value) for key, values in urllib.parse.parse_qs(
            parsed_url.query, keep_blank_values=True).items()
            if key not in self.OWN_PARAMS for value in values]
        return urllib.parse.urlunsplit(
            (scheme, netloc, parsed_url.path,
             urllib.parse.urlencode(remaining), parsed_url.fragment))

    def _do_post(self, data: Any, target: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        """POST ``data`` (a JSON-able object or a str body)."""
        if not data:
            LOG.debug('Data set is empty!')
            return
        body = data if isinstance(data, str) else json.dumps(data,
                                                             default=str)
        target = target or self.target
        LOG.debug('Message posting to %s: %s', target, body)
        response = self.session.post(
            target, data=body, headers=headers or self.HEADERS,
            timeout=self.timeout, auth=self.auth, cert=self.client_cert,
            verify=self.verify_ssl)
        if response.status_code >= 500:
            # The endpoint is failing, not the data: raised, so that the
            # notifications behind the data are requeued, not lost.
            response.raise_for_status()
        if not response.ok:
            LOG.error('Status Code: %(code)s. Failed to dispatch message: '
                      '%(data)s', {'code': response.status_code,
                                   'data': body})
        else:
            LOG.debug('Message posting to %s succeeded: %s', target,
                      response.status_code)

    def close(self) -> None:
        self.session.close()

    def _post(self, items: list[Any]) -> None:
        if self.poster_batch:
            self._do_post(items)
        else:
            for item in items:
                self._do_post(item)

    def publish_samples(self, samples: list[Sample]) -> None:
        self._post([s.as_dict() for s in samples])

    def publish_events(self, events: list[Event]) -> None:
        if self.raw_only:
            items = [raw['payload'] for raw in (e.raw for e in events)
                     if raw and raw.get('payload')]
        else:
            items = [event.serialize() for event in events]
        self._post(items)
