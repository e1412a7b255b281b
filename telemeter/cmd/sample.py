"""``telemeter-send-sample``: push one sample through pipeline.yaml."""

from __future__ import annotations

import ast
import logging
import sys

from oslo_config import cfg
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
    cfg.IntOpt('sample-volume', short='l', default=1,
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


def send_sample(argv: list[str] | None = None) -> None:
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(CLI_OPTS)
    service.prepare_service(argv if argv is not None else sys.argv,
                            conf=conf)

    # Show the pipeline's progress on stderr.
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('%(message)s'))
    root.addHandler(handler)

    manager = pipeline.setup_pipeline(conf)
    with manager.publisher() as publish:
        publish([sample.Sample(
            name=conf.sample_name,
            type=conf.sample_type,
            unit=conf.sample_unit,
            volume=conf.sample_volume,
            user_id=conf.sample_user,
            project_id=conf.sample_project,
            resource_id=conf.sample_resource,
            timestamp=conf.sample_timestamp,
            resource_metadata=_parse_metadata(conf.sample_metadata))])
