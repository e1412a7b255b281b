"""The ``file://`` publisher: one line per sample or event in a log file.

``file:///var/log/telemeter/samples.log?max_bytes=10485760&backup_count=5``
rotates the file (both parameters are needed for rotation); ``json`` (any
value, even blank) writes JSON lines instead of Python dict reprs.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import urllib.parse
from typing import Any

from oslo_config import cfg
from oslo_log import log

from telemeter import publisher

LOG = log.getLogger(__name__)


def rotating_logger(name: str, path: str, max_bytes: int,
                    backup_count: int) -> logging.Logger:
    """A private INFO logger writing bare messages to a rotating file.

    The logger is not registered with :mod:`logging`, so two instances
    writing to different files never share handlers and nothing reaches
    the daemon's own log.
    """
    handler = logging.handlers.RotatingFileHandler(
        path, encoding='utf8', maxBytes=max_bytes, backupCount=backup_count)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter('%(message)s'))
    logger = logging.Logger(name, logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    return logger


class FilePublisher(publisher.ConfigPublisherBase):
    """Writes ``str(item.as_dict())`` (or JSON) lines; a bad URL logs an
    error and leaves the publisher doing nothing."""

    def __init__(self, conf: cfg.ConfigOpts, parsed_url: Any) -> None:
        super().__init__(conf, parsed_url)
        self.publisher_logger: logging.Logger | None = None
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
            self.publisher_logger = rotating_logger(
                'publisher.file', path, max_bytes, backup_count)
        except OSError as err:
            LOG.error('The file publisher cannot open %(path)s: %(err)s; '
                      'fix the path or its permissions',
                      {'path': path, 'err': err})

    def close(self) -> None:
        if self.publisher_logger is not None:
            for handler in list(self.publisher_logger.handlers):
                handler.close()
                self.publisher_logger.removeHandler(handler)
            self.publisher_logger = None

    def publish_samples(self, samples: list[Any]) -> None:
        if self.publisher_logger is None:
            return
        for s in samples:
            line = (json.dumps(s.as_dict(), default=str) if self.json
                    else str(s.as_dict()))
            self.publisher_logger.info(line)

    def publish_events(self, events: list[Any]) -> None:
        if self.publisher_logger is None:
            return
        for event in events:
            line = (json.dumps(event.as_dict(), default=str) if self.json
                    else str(event.as_dict()))
            self.publisher_logger.info(line)
