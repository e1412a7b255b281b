"""``telemeter-validate``: check a configuration without starting anything.
"""

from __future__ import annotations

import sys

from oslo_config import cfg

from telemeter import preflight, service

DESCRIPTION = ('Checks what the daemons would load (telemeter.conf, the '
               'pipeline files, polling.yaml, the meter and event '
               'definitions, publisher, dispatcher and storage URLs) and '
               'prints every problem, without starting anything or '
               'connecting to anything. Exit status: 0 valid, 1 problems '
               'found, 2 unusable command line or config file.')

CLI_OPTS = [
    cfg.MultiStrOpt('daemon',
                    positional=True, required=False,
                    default=list(preflight.DAEMONS),
                    help='The daemons whose configuration to check '
                         f'({", ".join(preflight.DAEMONS)}; default: all).'),
]


def main(argv: list[str] | None = None) -> int:
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(CLI_OPTS)
    service.prepare_service(argv if argv is not None else sys.argv,
                            conf=conf, description=DESCRIPTION)
    daemons = tuple(dict.fromkeys(conf.daemon))
    unknown = [d for d in daemons if d not in preflight.DAEMONS]
    if unknown:
        print(f'telemeter-validate: unknown daemon(s) {", ".join(unknown)}; '
              f'choose from {", ".join(preflight.DAEMONS)}', file=sys.stderr)
        return 2
    problems = preflight.check(conf, daemons)
    for problem in problems:
        print(problem)
    if problems:
        print(f'{len(problems)} problem(s) found', file=sys.stderr)
        return 1
    print(f'Configuration valid for {", ".join(daemons)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
