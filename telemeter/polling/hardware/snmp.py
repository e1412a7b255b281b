"""The SNMP hardware inspector (``telemeter.hardware.inspectors: snmp``).

Values are read with pysnmp by numeric OID: ``type_exact`` meters GET their
OID (and metadata OIDs), ``type_prefix`` meters walk their table with
GETBULK (max-repetitions 100) and yield one value per row. Every value read
from a host is kept in the polling cycle's cache, so meters sharing OIDs
(the memory meters, the interface table) cost one request per cycle. A host
that timed out is not asked again in the same cycle: the other meters fail
at once with the same error.

Authentication: SNMPv3 USM when the URL carries a password, ``auth_proto``,
``priv_proto`` or ``priv_password``; otherwise v2c with the URL's user name
as community (``public`` by default).
"""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from oslo_config import cfg
from oslo_log import log

from telemeter import expression, utils
from telemeter.polling.hardware import inspector

LOG = log.getLogger(__name__)

# pysnmp is loaded when first used: every daemon imports this module for
# its options, only the polling agent talks SNMP.
snmp = utils.LazyModule('pysnmp.hlapi.v3arch.asyncio')
rfc1902 = utils.LazyModule('pysnmp.proto.rfc1902')
rfc1905 = utils.LazyModule('pysnmp.proto.rfc1905')

OPTS = [
    cfg.FloatOpt('snmp_timeout', default=1.0, min=0.1,
                 help='Seconds to wait for one SNMP response.'),
    cfg.IntOpt('snmp_retries', default=2, min=0,
               help='SNMP request retries after a timeout.'),
]

DEFAULT_PORT = 161
MAX_REPETITIONS = 100
MEMORY_TOTAL_OID = '1.3.6.1.4.1.2021.4.5.0'
IP_INTERFACE_INDEX_OID = '1.3.6.1.2.1.4.20.1.2'

# URL names of the USM protocols -> pysnmp's constant names.
AUTH_PROTOCOLS = {'md5': 'USM_AUTH_HMAC96_MD5', 'sha': 'USM_AUTH_HMAC96_SHA'}
PRIV_PROTOCOLS = {'des': 'USM_PRIV_CBC56_DES',
                  'aes128': 'USM_PRIV_CFB128_AES',
                  '3des': 'USM_PRIV_CBC168_3DES',
                  'aes192': 'USM_PRIV_CFB192_AES',
                  'aes256': 'USM_PRIV_CFB256_AES'}


def _absent(value: Any) -> bool:
    """Whether ``value`` is one of SNMP's "no such ..." answers."""
    return isinstance(value, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance,
                              rfc1905.EndOfMibView))


class SNMPException(Exception):
    """An SNMP request failed (timeout, error status, bad response)."""


def native(value: Any) -> Any:
    """A pysnmp value as a plain Python value (None when absent)."""
    if value is None or _absent(value):
        return None
    if isinstance(value, rfc1902.OctetString):
        raw = value.asOctets()
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError:
            return value.prettyPrint()
        return text if text.isprintable() else value.prettyPrint()
    if isinstance(value, (rfc1902.IpAddress, rfc1902.ObjectIdentifier)):
        return value.prettyPrint()
    try:
        return int(value)
    except (TypeError, ValueError):
        return value.prettyPrint()


def _mac(value: Any) -> str:
    if isinstance(value, rfc1902.OctetString):
        return value.asOctets().hex()
    return str(value).replace('0x', '')


# Named conversions; anything else is an expression of ``x`` (the plain
# Python value), optionally written ``lambda x: ...``.
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    'int': lambda v: int(native(v)),
    'float': lambda v: float(str(native(v))),
    'str': lambda v: str(native(v)),
    'mac': _mac,
}


#: What a ``type: lambda x: ...`` of snmp.yaml may use: the value ``x``.
CONVERTER_EXPRESSIONS = expression.Policy('SNMP type',
                                          names=frozenset({'x'}))


def make_converter(spec: str) -> Callable[[Any], Any]:
    """The function a ``type`` field names (ValueError when invalid)."""
    spec = str(spec).strip()
    if spec in CONVERTERS:
        return CONVERTERS[spec]
    body = spec
    if body.startswith('lambda'):
        head, sep, body = body.partition(':')
        if not sep or head.split() != ['lambda', 'x']:
            raise ValueError(f'type {spec!r}: only "lambda x: ..." is '
                             f'understood')
    try:
        CONVERTER_EXPRESSIONS.check(body)
    except expression.ExpressionError as err:
        raise ValueError(f'type {spec!r}: {err}') from err

    def convert(value: Any) -> Any:
        return CONVERTER_EXPRESSIONS.evaluate(body, x=native(value))

    return convert


class _Session:
    """An event loop and SNMP engine owned by one polling thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = snmp.SnmpEngine()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)


class SNMPInspector(inspector.Inspector):
    """Reads hardware meters over SNMP (see the module docstring)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self._local = threading.local()

    # -- definitions ----------------------------------------------------

    @staticmethod
    def prepare_params(param: dict) -> dict:
        if not isinstance(param, dict):
            raise ValueError('snmp_inspector must be a mapping')
        matching = param.get('matching_type')
        if matching not in ('type_exact', 'type_prefix'):
            raise ValueError(f'snmp_inspector matching_type {matching!r} is '
                             f'not type_exact or type_prefix')
        if not param.get('oid'):
            raise ValueError('snmp_inspector needs an oid')
        prepared = {
            'matching_type': matching,
            'oid': str(param['oid']).strip('.'),
            'type': make_converter(param.get('type', 'int')),
            'metadata': {},
            'post_op': param.get('post_op'),
        }
        for key, meta in (param.get('metadata') or {}).items():
            if not isinstance(meta, dict) or not meta.get('oid'):
                raise ValueError(f'snmp_inspector metadata {key!r} needs an '
                                 f'oid')
            prepared['metadata'][key] = {
                'oid': str(meta['oid']).strip('.'),
                'type': make_converter(meta.get('type', 'str'))}
        post_op = prepared['post_op']
        if post_op and not callable(getattr(SNMPInspector, post_op, None)):
            raise ValueError(f'snmp_inspector post_op {post_op!r} is unknown')
        return prepared

    # -- transport ------------------------------------------------------

    def _session(self) -> _Session:
        session = getattr(self._local, 'session', None)
        if session is None:
            session = self._local.session = _Session()
        return session

    @staticmethod
    def _auth(host: inspector.HardwareResource) -> Any:
        parsed = host.parsed
        options = dict(urllib.parse.parse_qsl(parsed.query))
        user = urllib.parse.unquote(parsed.username or '') or None
        password = urllib.parse.unquote(parsed.password or '') or None
        if not (password or options.get('auth_proto')
                or options.get('priv_proto')
                or options.get('priv_password')):
            # v2c is what the operator's URL asks for (no v3 credentials).
            community = user or 'public'
            return snmp.CommunityData(community, mpModel=1)
        kwargs: dict[str, Any] = {}
        if password:
            kwargs['authKey'] = password
        if options.get('auth_proto'):
            try:
                kwargs['authProtocol'] = getattr(
                    snmp, AUTH_PROTOCOLS[options['auth_proto']])
            except KeyError:
                raise SNMPException(
                    f'auth_proto {options["auth_proto"]!r} is not one of '
                    f'{sorted(AUTH_PROTOCOLS)}') from None
        if options.get('priv_password'):
            kwargs['privKey'] = options['priv_password']
        if options.get('priv_proto'):
            try:
                kwargs['privProtocol'] = getattr(
                    snmp, PRIV_PROTOCOLS[options['priv_proto']])
            except KeyError:
                raise SNMPException(
                    f'priv_proto {options["priv_proto"]!r} is not one of '
                    f'{sorted(PRIV_PROTOCOLS)}') from None
        # The URL decides the security level (authNoPriv is allowed).
        return snmp.UsmUserData(user or '', **kwargs)

    async def _target(self, host: inspector.HardwareResource) -> Any:
        return await snmp.UdpTransportTarget.create(
            (host.hostname, host.parsed.port or DEFAULT_PORT),
            timeout=self.conf.hardware.snmp_timeout,
            retries=self.conf.hardware.snmp_retries)

    @staticmethod
    def _check(host: inspector.HardwareResource, result: tuple) -> list:
        error_indication, error_status, error_index, var_binds = result
        if error_indication:
            raise SNMPException(str(error_indication))
        if error_status:
            raise SNMPException(
                f'{error_status.prettyPrint()} at {error_index}')
        return list(var_binds)

    def _get(self, host: inspector.HardwareResource,
             oids: list[str]) -> dict[str, Any]:
        session = self._session()

        async def get() -> dict[str, Any]:
            result = await snmp.get_cmd(
                session.engine, self._auth(host), await self._target(host),
                snmp.ContextData(),
                *[snmp.ObjectType(snmp.ObjectIdentity(oid)) for oid in oids],
                lookupMib=False)
            return {str(oid): value for oid, value in self._check(host,
                                                                   result)}

        return session.run(get())

    def _walk(self, host: inspector.HardwareResource,
              prefix: str) -> dict[str, Any]:
        session = self._session()

        async def walk() -> dict[str, Any]:
            auth, target = self._auth(host), await self._target(host)
            rows: dict[str, Any] = {}
            start = prefix
            while True:
                result = await snmp.bulk_cmd(
                    session.engine, auth, target, snmp.ContextData(), 0,
                    MAX_REPETITIONS,
                    snmp.ObjectType(snmp.ObjectIdentity(start)),
                    lookupMib=False)
                var_binds = self._check(host, result)
                if not var_binds:
                    return rows
                for oid, value in var_binds:
                    oid = str(oid)
                    if (not oid.startswith(prefix + '.')
                            or isinstance(value, rfc1905.EndOfMibView)):
                        return rows
                    rows[oid] = value
                if oid == start:
                    return rows
                start = oid

        return session.run(walk())

    # -- cache ----------------------------------------------------------

    @staticmethod
    def _host_cache(cache: dict, host: inspector.HardwareResource) -> dict:
        return cache.setdefault('snmp', {}).setdefault(
            host.url, {'values': {}, 'walked': set(), 'error': None})

    def _fetch_exact(self, host: inspector.HardwareResource, cache: dict,
                     oids: list[str]) -> dict[str, Any]:
        entry = self._host_cache(cache, host)
        if entry['error'] is not None:
            raise entry['error']
        missing = [oid for oid in dict.fromkeys(oids)
                   if oid not in entry['values']]
        if missing:
            try:
                entry['values'].update(self._get(host, missing))
            except SNMPException as err:
                if 'timeout' in str(err).lower():
                    entry['error'] = err
                raise
        return entry['values']

    def _fetch_table(self, host: inspector.HardwareResource, cache: dict,
                     prefixes: list[str]) -> dict[str, Any]:
        entry = self._host_cache(cache, host)
        if entry['error'] is not None:
            raise entry['error']
        for prefix in dict.fromkeys(prefixes):
            if prefix in entry['walked']:
                continue
            try:
                entry['values'].update(self._walk(host, prefix))
            except SNMPException as err:
                if 'timeout' in str(err).lower():
                    entry['error'] = err
                raise
            entry['walked'].add(prefix)
        return entry['values']

    # -- inspection -----------------------------------------------------

    @staticmethod
    def _convert(converter: Callable[[Any], Any], value: Any) -> Any:
        if value is None or _absent(value):
            return None
        return converter(value)

    def inspect_generic(self, host: inspector.HardwareResource, cache: dict,
                        extra_metadata: dict, param: dict
                        ) -> Iterator[tuple[Any, dict, dict]]:
        meta_defs = param['metadata']
        if param['matching_type'] == 'type_exact':
            oids = [param['oid']] + [m['oid'] for m in meta_defs.values()]
            values = self._fetch_exact(host, cache, oids)
            rows = [('', values.get(param['oid']))]
        else:
            prefixes = [param['oid']] + [m['oid'] for m in meta_defs.values()]
            values = self._fetch_table(host, cache, prefixes)
            head = param['oid'] + '.'
            rows = [(oid[len(head):], value) for oid, value in values.items()
                    if oid.startswith(head)]
        for suffix, raw in rows:
            metadata = {}
            for key, meta in meta_defs.items():
                oid = meta['oid'] + ('.' + suffix if suffix else '')
                metadata[key] = self._convert(meta['type'], values.get(oid))
            value = self._convert(param['type'], raw)
            extra = dict(extra_metadata)
            extra.setdefault('resource_id', host.resource_id)
            if param['post_op']:
                value = getattr(self, param['post_op'])(
                    host, cache, param, value, metadata, extra, suffix)
            yield value, metadata, extra

    # -- post operations (named by snmp.yaml's post_op) -----------------

    def _post_op_memory_avail_to_used(self, host: inspector.HardwareResource,
                                      cache: dict, param: dict, value: Any,
                                      metadata: dict, extra: dict,
                                      suffix: str) -> Any:
        """memTotalReal - memAvailReal; None without the total."""
        total = native(self._fetch_exact(host, cache, [MEMORY_TOTAL_OID])
                       .get(MEMORY_TOTAL_OID))
        if total is None or value is None:
            return None
        return int(total) - value

    def _post_op_net(self, host: inspector.HardwareResource, cache: dict,
                     param: dict, value: Any, metadata: dict, extra: dict,
                     suffix: str) -> Any:
        """Add the interface's IPv4 address; resource id ``<id>.<name>``."""
        table = self._fetch_table(host, cache, [IP_INTERFACE_INDEX_OID])
        head = IP_INTERFACE_INDEX_OID + '.'
        metadata['ip'] = ''
        for oid, if_index in table.items():
            if oid.startswith(head) and str(native(if_index)) == suffix:
                metadata['ip'] = oid[len(head):]
                break
        if metadata.get('name'):
            extra['resource_id'] = f'{extra["resource_id"]}.{metadata["name"]}'
        return value

    def _post_op_disk(self, host: inspector.HardwareResource, cache: dict,
                      param: dict, value: Any, metadata: dict, extra: dict,
                      suffix: str) -> Any:
        """Resource id ``<id>.<device>`` for a named device."""
        if metadata.get('device'):
            extra['resource_id'] = (f'{extra["resource_id"]}.'
                                    f'{metadata["device"]}')
        return value
