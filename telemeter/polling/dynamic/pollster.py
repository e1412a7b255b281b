"""The dynamic pollster: one definition, its requests and its samples.

Resources are endpoint URLs (default discovery ``endpoint:<endpoint_type>``)
for OpenStack APIs, base URLs or ``local_host`` for non-OpenStack APIs
(``module`` + ``authentication_object``), and ``local_host`` for
``host_command`` pollsters (default discovery ``local_node``).

For each resource the pollster reads every page (``next_sample_url_attribute``)
of ``url_path``, takes the list of entries (``response_entries_key``, or the
response itself; a single mapping is one entry) and makes one Sample per
entry (or per element of the ``[list]`` of a multi-metric pollster).
"""

from __future__ import annotations

import importlib
import shlex
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import requests
from oslo_log import log
from oslo_utils import timeutils

from telemeter import expression
from telemeter import sample as sample_mod
from telemeter.polling import plugin_base
from telemeter.polling.dynamic import definitions, responses

LOG = log.getLogger(__name__)

MAX_PAGES = 1000
#: What an extra metadata's ``url_path`` may use when it is an expression
#: (text that is not one is formatted with the sample's fields instead).
URL_PATHS = expression.Policy(
    'dynamic pollster url_path',
    names=frozenset({'sample', 'extra_metadata_captured'}))


class DynamicPollster(plugin_base.PollsterBase):
    """A pollster built from a validated definition (see :mod:`.definitions`).
    """

    def __init__(self, conf: Any, definition: dict) -> None:
        super().__init__(conf)
        self.definition = definition
        self.name: str = definition['name']
        self._extra_cache: dict[str, tuple[float, Any]] = {}

    # -- plugin contract ------------------------------------------------

    @property
    def default_discovery(self) -> str | None:
        if self.definition['host_command']:
            return 'local_node'
        if self.definition['endpoint_type']:
            return f'endpoint:{self.definition["endpoint_type"]}'
        return 'local_node'

    def get_samples(self, manager: plugin_base.PollingContext, cache: dict,
                    resources: list[Any]) -> Iterator[sample_mod.Sample]:
        for resource in resources:
            try:
                entries = self._entries(manager, str(resource))
            except Exception as err:
                LOG.error('Dynamic pollster %(name)s cannot read %(res)s: '
                          '%(err)s', {'name': self.name, 'res': resource,
                                      'err': err})
                continue
            for entry in entries:
                try:
                    yield from self._samples(manager, entry)
                except Exception as err:
                    LOG.error('Dynamic pollster %(name)s skips an entry of '
                              '%(res)s: %(err)s',
                              {'name': self.name, 'res': resource,
                               'err': err})

    # -- requests -------------------------------------------------------

    def _url(self, resource: str, url_path: str) -> str:
        if url_path.startswith(('http://', 'https://')):
            return url_path
        return resource.rstrip('/') + '/' + url_path.lstrip('/')

    def _http_get(self, manager: plugin_base.PollingContext, url: str,
                  headers: dict | None = None,
                  timeout: float | None = None) -> str:
        headers = headers if headers is not None else \
            self.definition['headers']
        timeout = timeout or self.definition['timeout']
        if self.definition['module']:
            response = requests.get(url, headers=headers, timeout=timeout,
                                    auth=self._authentication())
            response.raise_for_status()
            return response.text
        session = manager.keystone.session
        response = session.get(url, headers=headers, timeout=timeout,
                               authenticated=True)
        return response.text

    def _authentication(self) -> Any:
        module = importlib.import_module(self.definition['module'])
        auth_class = getattr(module, self.definition['authentication_object'])
        params = self.definition['authentication_parameters']
        if params is None:
            return auth_class()
        if isinstance(params, str):
            params = [p.strip() for p in params.split(',')]
        if isinstance(params, dict):
            return auth_class(**params)
        return auth_class(*params)

    def _run_command(self) -> str:
        result = subprocess.run(
            shlex.split(self.definition['host_command']),
            capture_output=True, text=True, check=False,
            timeout=self.definition['timeout'])
        if result.returncode != 0:
            raise RuntimeError(
                f'host_command exited {result.returncode}: '
                f'{result.stderr.strip()[:500]}')
        return result.stdout

    def _entries(self, manager: plugin_base.PollingContext,
                 resource: str) -> list[Any]:
        handlers = self.definition['response_handlers']
        if self.definition['host_command']:
            return self._entries_of(
                responses.decode(self._run_command(), handlers))
        entries: list[Any] = []
        url: str | None = self._url(resource, self.definition['url_path'])
        seen: set[str] = set()
        while url and url not in seen and len(seen) < MAX_PAGES:
            seen.add(url)
            data = responses.decode(self._http_get(manager, url), handlers)
            entries.extend(self._entries_of(data))
            next_attr = self.definition['next_sample_url_attribute']
            url = (responses.resolve(data, next_attr)
                   if next_attr and isinstance(data, dict) else None)
            if url:
                url = self._url(resource, str(url))
        return entries

    def _entries_of(self, data: Any) -> list[Any]:
        key = self.definition['response_entries_key']
        if key:
            data = responses.resolve(data, key)
        if data is None:
            return []
        return data if isinstance(data, list) else [data]

    # -- samples --------------------------------------------------------

    def _value(self, value: Any) -> Any:
        mapping = self.definition['value_mapping']
        if mapping:
            if value in mapping:
                return mapping[value]
            if str(value) in mapping:
                return mapping[str(value)]
            return self.definition['default_value']
        return value

    def _skipped(self, value: Any) -> bool:
        skip = self.definition['skip_sample_values']
        return value in skip or str(value) in [str(s) for s in skip]

    def _metadata(self, entry: Any) -> dict:
        metadata: dict[str, Any] = dict(self.definition['base_metadata'])
        for field in self.definition['metadata_fields'] or []:
            key = responses.split_operations(field)[0]
            metadata[key] = responses.resolve(entry, field, entry=entry)
        mapping = self.definition['metadata_mapping']
        for old, new in mapping.items():
            if old in metadata:
                metadata[new] = metadata[old]
                if not self.definition['preserve_mapped_metadata']:
                    del metadata[old]
        return metadata

    def _ids(self, entry: Any) -> dict[str, Any]:
        ids = {}
        for key in ('user_id', 'project_id', 'resource_id'):
            attribute = self.definition[f'{key}_attribute']
            value = responses.resolve(entry, attribute, entry=entry)
            ids[key] = None if value is None else str(value)
        return ids

    def _values(self, entry: Any) -> list[tuple[str, Any]]:
        """``[(sample name, raw value)]`` of one entry."""
        attribute = self.definition['value_attribute']
        multi = self.definition['multi_metric_attribute']
        if not multi:
            return [(self.name, responses.resolve(entry, attribute,
                                                  entry=entry))]
        match = definitions.MULTI_VALUE_RE.match(attribute)
        assert match is not None  # checked by definitions.validate
        list_path, rest = match.group(1), match.group(2) or '.'
        result = []
        for element in responses.walk(entry, list_path) or []:
            suffix = responses.walk(element, multi)
            name = definitions.MULTI_METRIC_RE.sub(f'.{suffix}', self.name)
            result.append((name, responses.resolve(element, rest,
                                                   entry=entry)))
        return result

    def _samples(self, manager: plugin_base.PollingContext, entry: Any
                 ) -> Iterator[sample_mod.Sample]:
        ids = self._ids(entry)
        metadata = self._metadata(entry)
        for name, raw in self._values(entry):
            if self._skipped(raw):
                LOG.debug('Dynamic pollster %s skips value %r', name, raw)
                continue
            volume = self._value(raw)
            sample_metadata = dict(metadata)
            self._add_extra_metadata(manager, sample_metadata, ids, volume)
            yield sample_mod.Sample(
                name=name, type=self.definition['sample_type'],
                unit=self.definition['unit'], volume=volume,
                user_id=ids['user_id'], project_id=ids['project_id'],
                resource_id=ids['resource_id'],
                timestamp=timeutils.utcnow().isoformat(),
                resource_metadata=sample_metadata)

    # -- extra metadata -------------------------------------------------

    def _skip_extra(self, fields: dict) -> bool:
        for rule in self.definition['extra_metadata_fields_skip'] or []:
            if rule and all(fields.get(k) == v for k, v in rule.items()):
                return True
        return False

    def _add_extra_metadata(self, manager: plugin_base.PollingContext,
                            metadata: dict,
                            ids: dict, volume: Any) -> None:
        extras = self.definition['extra_metadata_fields']
        if not extras:
            return
        fields = {**metadata, **ids, 'value': volume}
        if self._skip_extra(fields):
            return
        captured: dict[str, Any] = {}
        for extra in extras:
            try:
                captured[extra['name']] = self._extra_value(
                    manager, extra, fields, captured)
            except Exception as err:
                LOG.warning('Dynamic pollster %(name)s: extra metadata '
                            '%(field)s failed: %(err)s',
                            {'name': self.name, 'field': extra['name'],
                             'err': err})
        metadata.update(captured)

    def _extra_value(self, manager: plugin_base.PollingContext, extra: dict,
                     fields: dict,
                     captured: dict) -> Any:
        try:
            url_path = str(URL_PATHS.evaluate(
                extra['url_path'], sample=fields,
                extra_metadata_captured=captured))
        except expression.ExpressionError:
            url_path = str(extra['url_path']).format(**fields)
        if not url_path.startswith(('http://', 'https://')):
            endpoint_type = extra.get('endpoint_type',
                                      self.definition['endpoint_type'])
            endpoints = manager.keystone.get_endpoints(endpoint_type)
            if not endpoints:
                raise RuntimeError(f'no {endpoint_type} endpoint')
            url_path = self._url(endpoints[0], url_path)
        ttl = extra.get('extra_metadata_fields_cache_seconds',
                        self.definition['extra_metadata_fields_cache_seconds'])
        now = time.monotonic()
        cached = self._extra_cache.get(url_path)
        if cached is not None and now - cached[0] < ttl:
            data = cached[1]
        else:
            data = responses.decode(
                self._http_get(manager, url_path, extra.get('headers'),
                               extra.get('timeout')),
                extra.get('response_handlers',
                          self.definition['response_handlers']))
            self._extra_cache[url_path] = (now, data)
        key = extra.get('response_entries_key')
        if key:
            data = responses.resolve(data, key)
        return responses.resolve(data, extra['value'], entry=data)
