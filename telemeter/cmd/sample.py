"""``telemeter-send-sample``: push one sample through pipeline.yaml."""

from __future__ import annotations

import ast
import os
import sys
import threading

from oslo_config import cfg
from oslo_log import log
from oslo_utils import timeutils

from telemeter import pipeline, sample, service

# Taken once, when the module is imported (as Ceilometer does).
_NOW = timeutils.utcnow().isoformat()

CLI_OPTS = [
    cfg.StrOpt('sample-name', short='n', required=True,
               help='Meter name.'),
    cfg.StrOpt('sample-type', short='y', default='gauge',
               help='Meter type (gauge, delta, cumulative).'),
    cfg.StrOpt('sample-unit', short='U',
               help='Meter unit.'),
    cfg.FloatOpt('sample-volume', short='l', default=1,
                 help='Meter volume value.'),
    cfg.StrOpt('sample-resource', short='r', required=True,
               help='Meter resource id.'),
    cfg.StrOpt('sample-user', short='u',
               help='Meter user id.'),
    cfg.StrOpt('sample-project', short='p',
               help='Meter project id.'),
    cfg.StrOpt('sample-timestamp', short='i', default=_NOW,
               help='Meter timestamp (ISO 8601).'),
    cfg.StrOpt('sample-metadata', short='m',
               help='Meter metadata, as a Python dict literal.'),
    cfg.FloatOpt('timeout', default=30.0, min=0.1,
                 help='Seconds to wait for the publishers to take the '
                      'sample before giving up with exit status 1.'),
]


def _parse_metadata(text: str | None) -> dict:
    if not text:
        return {}
    try:
        metadata = ast.literal_eval(text)
    except (ValueError, SyntaxError) as err:
        raise SystemExit(f'--sample-metadata is not a Python dict literal: '
                         f'{err}') from err
    if not isinstance(metadata, dict):
        raise SystemExit('--sample-metadata must be a dict literal, e.g. '
                         "\"{'key': 'value'}\"")
    return metadata


DESCRIPTION = ('Sends one sample through the pipelines of pipeline.yaml '
               '(its transformers and publishers), as a polling agent '
               'would. Exit status: 0 sent, 1 not sent (a publisher failed '
               'or did not finish within --timeout), 2 bad command line.')


def send_sample(argv: list[str] | None = None) -> None:
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(CLI_OPTS)
    log.register_options(conf)
    # The pipeline's progress goes to stderr, once.
    conf.set_default('use_stderr', True)
    service.prepare_service(argv if argv is not None else sys.argv,
                            conf=conf, description=DESCRIPTION)
    metadata = _parse_metadata(conf.sample_metadata)
    manager = pipeline.setup_pipeline(conf)
    built = sample.Sample(
        name=conf.sample_name,
        type=conf.sample_type,
        unit=conf.sample_unit,
        volume=conf.sample_volume,
        user_id=conf.sample_user,
        project_id=conf.sample_project,
        resource_id=conf.sample_resource,
        timestamp=conf.sample_timestamp,
        resource_metadata=metadata)
    failure: list[BaseException] = []

    def publish() -> None:
        try:
            with manager.publisher() as publish_samples:
                publish_samples([built])
        except Exception as err:
            failure.append(err)

    sender = threading.Thread(target=publish, name='send-sample',
                              daemon=True)
    sender.start()
    sender.join(conf.timeout)
    if sender.is_alive():
        print(f'telemeter-send-sample: the sample was not sent within '
              f'{conf.timeout:g} s: is the message bus of [DEFAULT] '
              f'transport_url reachable? (the log above says what was '
              f'tried)', file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)  # the publisher's thread would retry for ever
    if failure:
        sys.exit(f'telemeter-send-sample: the sample was not sent: '
                 f'{failure[0]}')
