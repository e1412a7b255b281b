"""The endpoints of Ceilometer's v2 API, one module per resource.

Each module's ``ROUTES`` lists ``(path, method, handler)``; a handler
takes the :class:`~telemeter.api.context.Context` and the path variables
and returns what is sent as JSON (or a ``webob.Response``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telemeter import storage
from telemeter.api import context, query, rbac


def scoped_kwargs(ctx: context.Context, queries: Sequence[query.Query],
                  valid_keys: Sequence[str],
                  allow_timestamps: bool = True) -> dict[str, Any]:
    """Storage arguments for ``queries``, limited to the caller's project
    when it is not an admin (401 if it asks for another project)."""
    limited = ctx.limited_project
    rbac.check_projects(query.project_constraint(queries), limited)
    kwargs = query.to_kwargs(queries, valid_keys, allow_timestamps)
    if limited is not None:
        kwargs['project'] = limited
    return kwargs


def sample_filter(ctx: context.Context, queries: Sequence[query.Query],
                  **extra: Any) -> storage.SampleFilter:
    """A SampleFilter from ``queries`` (scoped) and ``extra`` fields."""
    kwargs = scoped_kwargs(ctx, queries, query.SAMPLE_KEYS)
    kwargs.update(extra)
    return storage.SampleFilter(**kwargs)
