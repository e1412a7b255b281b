"""``telemeter-notification-dryrun FILE...``: what the notification agent
would make of some notifications, without any message bus.

Each FILE holds one notification (a JSON object), a JSON list of them, or
one JSON object per line; ``-`` reads standard input. A notification may be
written in any of three forms:

- as it travels on the bus: ``{"oslo.version": "2.0", "oslo.message":
  "<JSON text>"}``, the inner message in the next form;
- as oslo.messaging sends it: ``event_type``, ``payload``,
  ``publisher_id``, ``priority``, ``message_id`` and ``timestamp`` at the
  top level, the request context as ``_context_<key>`` keys;
- as an endpoint receives it: ``event_type``, ``payload``,
  ``publisher_id``, ``priority``, optionally ``ctxt`` and ``metadata``
  (``message_id``, ``timestamp``).

``message_id`` and ``timestamp`` are generated when missing. A notification
that cannot be used is reported with its file, its position and the field
at fault, and left out.

Every notification handler of ``telemeter.notification`` runs with the
configured meter definitions, and the events endpoint with the configured
event definitions, honouring priorities as the agent does. One JSON object
is printed per line: each sample (``Sample.as_dict()`` plus ``"kind":
"sample"``) and each event (``Event.serialize()`` plus ``"kind":
"event"``), in input order, a notification's samples before its events.
Samples the pipeline would drop for their volume are not printed;
transformers and publishers do not run. Logs go to standard error.

Exit status: 0 if all went well; otherwise the sum of 1 (an input file or
a notification could not be used), 2 (a meter or event definition has errors
and was skipped, as the agent would skip it) and 4 (a handler failed on a
notification).
"""

from __future__ import annotations

import datetime
import json
import sys
import uuid
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg
from oslo_log import log
from stevedore import extension

from telemeter import service, utils
from telemeter.messaging import envelope
from telemeter.notification import event_converter

LOG = log.getLogger(__name__)

CLI_OPTS = [
    cfg.MultiStrOpt('notification_files', positional=True, required=True,
                    metavar='FILE',
                    help='Files of notifications (JSON object, JSON list '
                         'or JSON lines); - for standard input.'),
]

SAMPLE_PRIORITIES = ('info', 'sample')
EVENT_PRIORITIES = ('info', 'error')
TRAIT_PLUGIN_NAMESPACE = 'telemeter.event.trait_plugin'

EXIT_INPUT = 1
EXIT_DEFINITIONS = 2
EXIT_HANDLER = 4

#: Keys of the envelope a notification travels in on the bus.
ENVELOPE_KEYS = ('oslo.version', 'oslo.message')
#: Prefix of the request context keys of an oslo.messaging message.
CONTEXT_PREFIX = '_context_'
REQUIRED = ('event_type', 'payload', 'publisher_id', 'priority')
#: Envelope facts, in ``metadata`` or at the top level.
METADATA_KEYS = ('message_id', 'timestamp')


class InputError(Exception):
    """A file or one of its notifications cannot be used."""


class _Collector:
    """Stands in for the pipeline manager: collects what is published."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self.published: list[Any] = []

    def publisher(self) -> _Collector:
        return self

    def __enter__(self) -> Any:
        return self._publish

    def __exit__(self, *exc_info: Any) -> None:
        """Nothing to flush: transformers do not run in a dry run."""

    def _publish(self, data: Any) -> None:
        self.published.extend(data if isinstance(data, list) else [data])

    def take(self) -> list[Any]:
        taken, self.published = self.published, []
        return taken


def _documents(text: str, name: str) -> list[Any]:
    stripped = text.strip()
    if not stripped:
        return []
    try:
        document = json.loads(stripped)
    except json.JSONDecodeError:
        document = None
        documents = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                documents.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(
                    f'{name}:{number}: not JSON ({err.msg} at column '
                    f'{err.colno}); expected a JSON object, a JSON list or '
                    f'one JSON object per line') from err
        return documents
    return document if isinstance(document, list) else [document]


def read_notifications(path: str, errors: list[str] | None = None
                       ) -> list[dict]:
    """The notifications of one file (``-``: standard input), each checked
    and completed (``ctxt``, ``metadata``) as the agent would get it.

    A file that cannot be read raises :class:`InputError`. A notification
    that cannot be used is left out: its error is appended to ``errors``
    (raised when ``errors`` is None)."""
    name = '<stdin>' if path == '-' else path
    try:
        if path == '-':
            text = sys.stdin.read()
        else:
            with open(path, encoding='utf-8') as stream:
                text = stream.read()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f'{name}: cannot read: {err}') from err
    notifications = []
    for number, document in enumerate(_documents(text, name), 1):
        try:
            notifications.append(_complete(
                document, f'{name}: notification {number}'))
        except InputError as err:
            if errors is None:
                raise
            errors.append(str(err))
    return notifications


def _complete(document: Any, where: str) -> dict:
    """The notification dict an endpoint would get from ``document`` (any
    of the three forms), plus its ``priority`` in lower case."""
    if not isinstance(document, dict):
        raise InputError(f'{where}: not a JSON object')
    if any(key in document for key in ENVELOPE_KEYS):
        document = _unwrap(document, where)
        where = f'{where}: oslo.message'
    missing = [k for k in REQUIRED if k not in document]
    if missing:
        raise InputError(f'{where}: missing {", ".join(missing)}')
    if not isinstance(document['priority'], str):
        raise InputError(f'{where}: priority must be a string')
    return {'ctxt': _context(document, where),
            'publisher_id': document['publisher_id'],
            'event_type': document['event_type'],
            'payload': document['payload'],
            'metadata': _metadata(document, where),
            'priority': document['priority'].lower()}


def _unwrap(document: dict, where: str) -> dict:
    """The inner message of a bus envelope (``oslo.message`` may also be
    the decoded object)."""
    absent = [key for key in ENVELOPE_KEYS if key not in document]
    if absent:
        raise InputError(f'{where}: {absent[0]} missing: an oslo.messaging '
                         f'envelope has both {" and ".join(ENVELOPE_KEYS)}')
    if isinstance(document['oslo.message'], dict):
        document = dict(document, **{
            'oslo.message': envelope.dumps(document['oslo.message'])})
    try:
        return envelope.unwrap(document)
    except envelope.MalformedMessage as err:
        raise InputError(f'{where}: {err}') from err


def _context(document: dict, where: str) -> dict:
    """``ctxt``, or the ``_context_<key>`` keys read as oslo.messaging's
    dispatcher reads them (with its ``client_timeout``)."""
    flattened = {key[len(CONTEXT_PREFIX):]: value
                 for key, value in document.items()
                 if key.startswith(CONTEXT_PREFIX)}
    if 'ctxt' in document:
        if flattened:
            raise InputError(f'{where}: ctxt and {CONTEXT_PREFIX}'
                             f'{next(iter(flattened))} both given: write '
                             f'the context one way')
        ctxt = document['ctxt']
        if ctxt is not None and not isinstance(ctxt, dict):
            raise InputError(f'{where}: ctxt must be a JSON object')
        return ctxt or {}
    if flattened or '_timeout' in document:
        flattened['client_timeout'] = document.get('_timeout')
    return flattened


def _metadata(document: dict, where: str) -> dict:
    """``message_id`` and ``timestamp`` from ``metadata`` or the top level
    (the same value if both), generated when missing."""
    given = document.get('metadata')
    if given is not None and not isinstance(given, dict):
        raise InputError(f'{where}: metadata must be a JSON object')
    metadata = dict(given or {})
    for key in METADATA_KEYS:
        top = document.get(key)
        if top is None:
            continue
        if metadata.get(key) not in (None, top):
            raise InputError(f'{where}: {key} {top!r} differs from '
                             f'metadata.{key} {metadata[key]!r}')
        metadata[key] = top
    message_id = metadata.get('message_id')
    if message_id is None:
        metadata['message_id'] = str(uuid.uuid4())
    elif not isinstance(message_id, str):
        raise InputError(f'{where}: message_id must be a string')
    timestamp = metadata.get('timestamp')
    if timestamp is None:
        metadata['timestamp'] = datetime.datetime.now(
            datetime.UTC).replace(tzinfo=None).isoformat()
    elif not _is_isotime(timestamp):
        raise InputError(f'{where}: timestamp {timestamp!r} is not an ISO '
                         f'8601 date and time')
    return metadata


def _is_isotime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        utils.parse_isotime(value)
    except ValueError:
        return False
    return True


def _valid_volume(volume: Any) -> bool:
    """Whether the sample pipeline would keep a sample of this volume
    (pipeline.md section 5: not None, and a number or convertible to
    one)."""
    if volume is None:
        return False
    if isinstance(volume, (int, float)) and not isinstance(volume, bool):
        return True
    try:
        float(volume)
    except (TypeError, ValueError):
        return False
    return True


class DryRun:
    """The agent's handlers and events endpoint over a collector."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self.samples = _Collector(conf)
        self.load_failures = 0
        self.handlers = [ext.obj for ext in extension.ExtensionManager(
            'telemeter.notification', invoke_on_load=True,
            invoke_args=(self.samples,), propagate_map_exceptions=True,
            on_load_failure_callback=self._load_failure)]
        self.converter = event_converter.setup_events(
            conf, extension.ExtensionManager(TRAIT_PLUGIN_NAMESPACE))
        self.definition_errors = (
            self.load_failures + len(self.converter.definition_errors)
            + sum(len(getattr(h, 'definition_errors', ()))
                  for h in self.handlers))
        self.handler_failures = 0

    def _load_failure(self, manager: Any, entrypoint: Any,
                      err: Exception) -> None:
        # The agent would run without this handler: say so, go on.
        self.load_failures += 1
        LOG.error('Could not load notification handler %s: %s',
                  entrypoint.name, err)

    def run(self, notification: dict) -> Iterator[dict]:
        """Output records of one notification: samples, then events."""
        priority = notification['priority']
        message = {k: v for k, v in notification.items() if k != 'priority'}
        if priority in SAMPLE_PRIORITIES:
            for handler in self.handlers:
                rule = getattr(handler, 'filter_rule', None)
                if rule is not None and not rule.match(
                        message['ctxt'], message['publisher_id'],
                        message['event_type'], message['metadata'],
                        message['payload']):
                    continue
                before = handler.failures
                getattr(handler, priority)([message])
                self.handler_failures += handler.failures - before
            for built in self.samples.take():
                if _valid_volume(built.volume):
                    yield dict(built.as_dict(), kind='sample')
        if priority in EVENT_PRIORITIES:
            try:
                event = self.converter.to_event(priority, message)
            except Exception:
                self.handler_failures += 1
                LOG.error('Fail to process a notification', exc_info=True)
                event = None
            if event is not None:
                yield dict(event.serialize(), kind='event')


def main(argv: list[str] | None = None) -> int:
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(CLI_OPTS)
    log.register_options(conf)
    # Standard output is for the JSON records only.
    conf.set_default('use_stderr', True)
    service.prepare_service(
        argv if argv is not None else sys.argv, conf=conf,
        description='Prints, one JSON line each, the samples and events the '
                    'notification agent would make of the notifications in '
                    'FILE(s), with the configured meter and event '
                    'definitions, without a message bus.')
    status = 0
    notifications: list[dict] = []
    for path in conf.notification_files:
        errors: list[str] = []
        try:
            notifications.extend(read_notifications(path, errors))
        except InputError as err:
            errors.append(str(err))
        for error in errors:
            print(f'telemeter-notification-dryrun: {error}', file=sys.stderr)
            status |= EXIT_INPUT
    dry_run = DryRun(conf)
    if dry_run.definition_errors:
        print(f'telemeter-notification-dryrun: {dry_run.definition_errors} '
              f'definition(s) have errors and were skipped (see the log '
              f'above)', file=sys.stderr)
        status |= EXIT_DEFINITIONS
    for notification in notifications:
        for record in dry_run.run(notification):
            print(json.dumps(record, default=str, sort_keys=True))
    if dry_run.handler_failures:
        status |= EXIT_HANDLER
    sys.stdout.flush()
    return status


if __name__ == '__main__':
    sys.exit(main())
