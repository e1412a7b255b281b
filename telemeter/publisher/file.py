"""The ``file://`` publisher: one line per sample or event in a log file.

``file:///var/log/telemeter/samples.log?max_bytes=10485760&backup_count=5``
rotates the file (both parameters are needed for rotation); ``json`` (any
value, even blank) writes compact JSON lines instead of Python dict reprs.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import urllib.parse
from typing import TYPE_CHECKING, Any

import orjson
from oslo_config import cfg
from oslo_log import log

from telemeter import publisher

if TYPE_CHECKING:
    from telemeter.sample import Sample
    from telemeter.storage.models import Event

LOG = log.getLogger(__name__)


class LineFile:
    """Appends lines to a file, rotating it as
    :class:`logging.handlers.RotatingFileHandler` does (before a line that
    would take it to ``max_bytes``, keeping ``backup_count`` old files).

    One call writes a batch and flushes it to the operating system, so a
    batch is in the file when the call returns; several threads may write.
    """

    def __init__(self, path: str, max_bytes: int, backup_count: int
                 ) -> None:
        self.handler = logging.handlers.RotatingFileHandler(
            path, encoding='utf8', maxBytes=max_bytes,
            backupCount=backup_count)
        self.max_bytes = max_bytes

    def write_lines(self, lines: list[str]) -> None:
        handler = self.handler
        with handler.lock:  # type: ignore[union-attr]
            if handler.stream is None:
                handler.stream = handler._open()
            if self.max_bytes <= 0:
                handler.stream.write('\n'.join(lines) + '\n')
            else:
                for line in lines:
                    if (handler.stream.tell() + len(line) + 1
                            >= self.max_bytes):
                        handler.doRollover()
                    handler.stream.write(line + '\n')
            handler.stream.flush()

    def close(self) -> None:
        self.handler.close()


_JSON_FALLBACK = json.JSONEncoder(default=str).encode
_ORJSON_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME
                   | orjson.OPT_PASSTHROUGH_DATACLASS)


def json_line(data: dict) -> str:
    """``data`` as one compact JSON line, ``str()`` for what JSON lacks
    (datetimes), as ``json.dumps(data, default=str)`` gives but six times
    faster; what orjson refuses (integers beyond 64 bits, keys that are not
    strings) goes to json."""
    try:
        return orjson.dumps(data, default=str,
                            option=_ORJSON_OPTIONS).decode('utf-8')
    except TypeError:
        return _JSON_FALLBACK(data)


class FilePublisher(publisher.ConfigPublisherBase):
    """Writes ``str(item.as_dict())`` (or JSON) lines; a bad URL logs an
    error and leaves the publisher doing nothing."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url)
        self.publisher_logger: LineFile | None = None
        path = parsed_url.path
        if not path:
            LOG.error('The path for the file publisher is required')
            return
        params = urllib.parse.parse_qs(parsed_url.query,
                                       keep_blank_values=True)
        self.json = 'json' in params
        max_bytes = backup_count = 0
        if 'max_bytes' in params and 'backup_count' in params:
            try:
                max_bytes = int(params['max_bytes'][-1])
                backup_count = int(params['backup_count'][-1])
            except ValueError:
                LOG.error('max_bytes and backup_count should be numbers.')
                return
        try:
            self.publisher_logger = LineFile(path, max_bytes, backup_count)
        except OSError as err:
            LOG.error('The file publisher cannot open %(path)s: %(err)s; '
                      'fix the path or its permissions',
                      {'path': path, 'err': err})

    def close(self) -> None:
        if self.publisher_logger is not None:
            self.publisher_logger.close()
            self.publisher_logger = None

    def _write(self, items: list[Any]) -> None:
        if self.publisher_logger is None or not items:
            return
        render = json_line if self.json else str
        self.publisher_logger.write_lines(
            [render(item.as_dict()) for item in items])

    def publish_samples(self, samples: list[Sample]) -> None:
        self._write(samples)

    def publish_events(self, events: list[Event]) -> None:
        self._write(events)
