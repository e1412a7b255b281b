"""The ``file`` dispatcher: one log record per received batch."""

from __future__ import annotations

import logging
import logging.handlers

from oslo_config import cfg

from telemeter import dispatcher

OPTS = [
    cfg.StrOpt('file_path',
               help='Name and the location of the file to record '
                    'meters.'),
    cfg.IntOpt('max_bytes',
               default=0,
               help='The max size of the file.'),
    cfg.IntOpt('backup_count',
               default=0,
               help='The max number of the files to keep.'),
]


class FileDispatcher(dispatcher.MeterDispatcherBase,
                     dispatcher.EventDispatcherBase):
    """Writes ``str(data)`` of every call to a rotating file.

    Without ``[dispatcher_file] file_path`` it does nothing.
    """

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self.log: logging.Logger | None = None
        options = conf.dispatcher_file
        if not options.file_path:
            return
        handler = logging.handlers.RotatingFileHandler(
            options.file_path, maxBytes=options.max_bytes,
            backupCount=options.backup_count, encoding='utf8')
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter('%(message)s'))
        self.log = logging.getLogger('dispatcher.file')
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        if not any(getattr(h, 'baseFilename', None) == handler.baseFilename
                   for h in self.log.handlers):
            self.log.addHandler(handler)
        else:
            handler.close()

    def record_metering_data(self, data: list[dict] | dict) -> None:
        if self.log:
            self.log.info(str(data))

    def record_events(self, events: list[dict] | dict) -> None:
        if self.log:
            self.log.info(str(events))

    def __repr__(self) -> str:
        return f'<FileDispatcher {self.conf.dispatcher_file.file_path}>'
