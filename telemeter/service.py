"""Start-up shared by every telemeter command."""

from __future__ import annotations

import faulthandler
import os
import re
import signal
import sys

from oslo_config import cfg
from oslo_log import log

from telemeter import keystone_client, messaging, opts, sample

LOG = log.getLogger(__name__)

_QUIET_LIBRARIES = ['amqp=WARN', 'amqplib=WARN', 'kombu=WARN',
                    'stevedore=WARN', 'oslo_messaging=INFO',
                    'oslo.messaging=INFO', 'urllib3=WARN',
                    'alembic=WARN', 'tooz=INFO']


def prepare_service(argv: list[str] | None = None,
                    config_files: list[str] | None = None,
                    conf: cfg.ConfigOpts | None = None,
                    description: str | None = None) -> cfg.ConfigOpts:
    """Register every option, parse the command line and set up logging.

    Returns the ConfigOpts object every daemon passes around.
    ``description`` is what ``--help`` says the command does. A config
    file that is missing or cannot be parsed, or an option value of the
    wrong type, ends the command with one line naming it and exit status
    2 (the command line's usage errors have that status too).
    """
    if argv is None:
        argv = sys.argv
    if conf is None:
        conf = cfg.ConfigOpts()

    for group, options in opts.list_opts():
        conf.register_opts(list(options),
                           group=None if group == 'DEFAULT' else group)
    keystone_client.register_opts(conf)
    log.register_options(conf)
    log.set_defaults(default_log_levels=(
        log.get_default_log_levels() + _QUIET_LIBRARIES))
    messaging.setup()
    _register_messaging_defaults(conf)

    prog = os.path.basename(argv[0]) if argv else 'telemeter'
    try:
        conf(argv[1:], project='telemeter', prog=prog,
             validate_default_values=True,
             default_config_files=config_files, description=description)
        bad = option_problems(conf)
    except cfg.Error as err:
        bad = [str(err)]
    if bad:
        for problem in bad:
            print(f'{prog}: {problem}', file=sys.stderr)
        sys.exit(2)
    log.setup(conf, 'telemeter')
    sample.setup(conf)
    enable_stack_dumps()
    return conf


def enable_stack_dumps() -> None:
    """``kill -USR2 <pid>`` writes the stack of every thread of the
    process to its standard error (the journal under systemd), without
    stopping it: what a daemon that stopped making progress is doing.

    Forked workers inherit it; signal the process group to see them all.
    Ceilometer answers SIGUSR2 with oslo.reports' report, which includes
    the same stacks.
    """
    stream = sys.__stderr__  # the process's own, not a replacement
    if stream is None:
        LOG.debug('No stack dumps on SIGUSR2: no standard error')
        return
    try:
        faulthandler.register(signal.SIGUSR2, file=stream, all_threads=True,
                              chain=False)
    except (ValueError, OSError) as err:  # closed, or not a file
        LOG.debug('No stack dumps on SIGUSR2: %s', err)


def _register_messaging_defaults(conf: cfg.ConfigOpts) -> None:
    """Register oslo.messaging's options early (their telemeter defaults
    are set by :func:`telemeter.messaging.setup`).

    The library's own option objects are registered (registering the same
    object twice is harmless), so transports later find them in place and
    ``transport_url`` and the notification topics can be read at once.
    """
    from oslo_messaging import transport
    from oslo_messaging._drivers import amqp, impl_rabbit
    from oslo_messaging.notify import notifier

    conf.register_opts(transport._transport_opts)
    conf.register_opts(notifier._notifier_opts,
                       group='oslo_messaging_notifications')
    conf.register_opts(impl_rabbit.rabbit_opts,
                       group='oslo_messaging_rabbit')
    conf.register_opts(amqp.amqp_opts, group='oslo_messaging_rabbit')


def option_problems(conf: cfg.ConfigOpts) -> list[str]:
    """Read every registered option once, so that a value of the wrong
    type in a config file is reported at start (oslo.config converts
    values when they are first read) as ``[section] option: reason``."""
    problems = []
    for group_name, options in opts.list_opts():
        group = conf if group_name == 'DEFAULT' else conf[group_name]
        for opt in options:
            try:
                getattr(group, opt.dest)
            except (cfg.ConfigFileValueError, ValueError) as err:
                text = str(err)
                found = re.search(r"detail='([^']*)'", text)
                source = f' (in {found.group(1)})' if found else ''
                reason = text.rpartition(' is not valid: ')[2]
                problems.append(f'[{group_name}] {opt.dest}: invalid value: '
                                f'{reason}{source}')
    return problems
