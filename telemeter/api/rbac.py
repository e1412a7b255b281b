"""Authorization: oslo.policy rules and the project scoping of v2.

The credentials are those keystonemiddleware's ``auth_token`` put in the
request headers (``X-Roles``, ``X-Project-Id``, ``X-User-Id``). A request
for which the ``segregation`` rule holds (by default: the admin role) sees
every project; any other one is limited to the project of its token,
whatever its query says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from oslo_config import cfg
from oslo_policy import policy

from telemeter.api import errors

ADMIN = 'role:admin'
RULES = [
    policy.RuleDefault('context_is_admin', ADMIN,
                       description='Who is an administrator.'),
    policy.RuleDefault('segregation', 'rule:context_is_admin',
                       description='Who sees the data of every project '
                                   '(the others see only their own).'),
]
#: Operations any token may do (on its own project).
OPEN_OPERATIONS = {
    'get_meters': 'List meters.',
    'get_samples': 'List samples.',
    'get_sample': 'Show one sample.',
    'query_sample': 'Complex query of samples.',
    'compute_statistics': 'Statistics of a meter.',
    'get_resources': 'List resources.',
    'get_resource': 'Show one resource.',
    'create_samples': 'Post samples through the pipeline.',
    'events:index': 'List events.',
    'events:show': 'Show one event.',
    'event_types:index': 'List event types and their traits.',
    'capabilities': 'Show the capabilities.',
}
RULES += [policy.RuleDefault(f'telemetry:{name}', '', description=text)
          for name, text in OPEN_OPERATIONS.items()]
RULES.append(policy.RuleDefault(
    'telemetry:create_samples_direct', 'rule:context_is_admin',
    description='Post samples straight to storage (direct=True).'))


def list_rules() -> list[policy.RuleDefault]:
    """The default rules (entry point ``oslo.policy.policies``)."""
    return list(RULES)


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Who sends the request."""

    roles: tuple[str, ...]
    project_id: str | None
    user_id: str | None

    def as_policy(self) -> dict:
        """The credentials dict oslo.policy checks."""
        return {'roles': list(self.roles), 'project_id': self.project_id,
                'user_id': self.user_id, 'project': self.project_id,
                'user': self.user_id}


def credentials(headers: dict, noauth: bool) -> Credentials:
    """The request's credentials; in noauth mode a request without
    ``X-Roles`` is an admin."""
    roles_text = headers.get('X-Roles')
    if roles_text is None and noauth:
        roles_text = 'admin'
    roles = tuple(role.strip() for role in (roles_text or '').split(',')
                  if role.strip())
    return Credentials(roles, headers.get('X-Project-Id') or None,
                       headers.get('X-User-Id') or None)


class Authorizer:
    """oslo.policy enforcement plus the project scoping."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.enforcer = policy.Enforcer(conf)
        self.enforcer.register_defaults(RULES)

    def enforce(self, operation: str, creds: Credentials) -> None:
        """403 unless the policy allows ``telemetry:<operation>``."""
        if not self.enforcer.enforce(f'telemetry:{operation}', {},
                                     creds.as_policy()):
            raise errors.Forbidden(
                f'Policy does not allow telemetry:{operation} to be '
                'performed.')

    def limited_project(self, creds: Credentials) -> str | None:
        """None for a request that sees every project, else its
        project (403 for a non-admin token without a project)."""
        if self.enforcer.enforce('segregation', {}, creds.as_policy()):
            return None
        if not creds.project_id:
            raise errors.Forbidden('a token scoped to a project is needed')
        return creds.project_id


def check_projects(wanted: Iterable[str], limited: str | None) -> None:
    """401 (as Ceilometer) if a limited request asks for another
    project."""
    if limited is None:
        return
    for project in wanted:
        if project != limited:
            raise errors.NotAuthorized(
                f'Not Authorized to access project {project}')
