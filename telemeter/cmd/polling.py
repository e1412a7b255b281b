"""``telemeter-polling``: the polling agent daemon."""

from __future__ import annotations

import multiprocessing
from typing import Any

import cotyledon
from cotyledon import oslo_config_glue
from oslo_config import cfg
from oslo_log import log

from telemeter import preflight, service, systemd
from telemeter.health import server as health_server
from telemeter.polling import heartbeat, manager

LOG = log.getLogger(__name__)

NAMESPACE_CHOICES = ['compute', 'central', 'ipmi']


class DeduplicatedCfgList(cfg.types.List):
    """A list type that drops duplicates (with a warning) and checks choices.
    """

    def __init__(self, choices: list[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = choices or []

    def __call__(self, *args: Any, **kwargs: Any) -> list[str]:
        result = super().__call__(*args, **kwargs)
        unique = list(dict.fromkeys(result))
        if len(unique) != len(result):
            LOG.warning('Duplicated values: %s found in CLI options, auto '
                        'de-duplicated', result)
            result = unique
        if self.choices and not set(result) <= set(self.choices):
            raise Exception(  # message fixed by polling.md §1
                f'Valid values are {self.choices}, but found {result}')
        return result


class MultiChoicesOpt(cfg.Opt):
    """A CLI option taking one or more values (``nargs='+'``).

    Values outside ``choices`` are reported when the option is read, with
    the error of polling.md §1, rather than by argparse.
    """

    def __init__(self, name: str, choices: list[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name, type=DeduplicatedCfgList(choices), **kwargs)
        self.choices = choices

    def _get_argparse_kwargs(self, group: Any, **kwargs: Any) -> dict:
        kwargs = super()._get_argparse_kwargs(group, **kwargs)
        kwargs['nargs'] = '+'
        return kwargs


CLI_OPTS = [
    MultiChoicesOpt('polling-namespaces',
                    default=['compute', 'central'],
                    dest='polling_namespaces',
                    choices=NAMESPACE_CHOICES,
                    metavar='NS',
                    help='Polling namespace(s) to be used while resource '
                         'polling (compute, central, ipmi).'),
    MultiChoicesOpt('pollster-list',
                    default=[],
                    dest='pollster_list',
                    metavar='PATTERN',
                    deprecated_for_removal=True,
                    help='List of pollsters (or wildcard templates) to be '
                         'used while polling.'),
]


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the polling agent under cotyledon."""
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(CLI_OPTS)
    service.prepare_service(argv=argv, conf=conf,
                            description='The polling agent: polls the '
                            'pollsters of polling.yaml (local node, '
                            'libvirt, SNMP, OpenStack APIs) and sends their '
                            'samples to the notification agent.')

    namespaces = conf.polling_namespaces
    pollster_list = conf.pollster_list
    # Fail here, in the master process, rather than in a respawning worker.
    manager.check_pollster_list(conf, pollster_list)
    preflight.require(conf, 'polling', 'telemeter-polling')

    # One polling worker.
    health_server.bind_or_exit(conf, 'polling', 1)
    sm = cotyledon.ServiceManager()
    systemd.attach(sm)
    oslo_config_glue.setup(sm, conf)
    queue = None
    if conf.polling.heartbeat_socket_dir:
        queue = multiprocessing.Queue()
        sm.add(heartbeat.HeartBeatService,
               args=(conf, queue, namespaces))
    sm.add(manager.AgentManager,
           args=(conf, namespaces, pollster_list, queue))
    sm.run()
