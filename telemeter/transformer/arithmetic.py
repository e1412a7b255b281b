"""``arithmetic``: a new meter computed from several meters of a resource.

``expr`` refers to meters as ``$(name)`` (their volume) or
``$(name).resource_metadata.key`` (any field); e.g.
``100 * $(memory.usage) / $(memory)``.
"""

from __future__ import annotations

import keyword
import math
import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from oslo_log import log

from telemeter import sample as sample_mod
from telemeter import transformer

if TYPE_CHECKING:
    from telemeter.sample import Sample

LOG = log.getLogger(__name__)

METER_REFERENCE = re.compile(r'\$\(([\w\.\-]+)\)')


def escape(name: str) -> str:
    """A meter name as an expression identifier (``a.b`` → ``_a_b_ESC``)."""
    has_dot = '.' in name
    if has_dot:
        name = name.replace('.', '_')
    if has_dot or name.endswith('ESC') or keyword.iskeyword(name):
        name = f'_{name}_ESC'
    return name


class ArithmeticTransformer(transformer.TransformerBase):
    """Caches the referenced meters per resource and, on flush, emits one
    sample per resource that has all of them.

    Every sample entering the transformer is consumed.
    """

    def __init__(self, target: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = dict(target or {})
        self.expr = str(self.target.get('expr') or '')
        self.required_meters: list[str] = []
        self.reference_meter: str | None = None
        self.misconfigured = False
        self.cache: dict[str, dict[str, Any]] = defaultdict(dict)
        self.latest_timestamp: str | None = None
        escaped = self._parse_expression()
        self._expression = (None if self.misconfigured
                            else transformer.EXPRESSIONS.expression(escaped))

    def _parse_expression(self) -> str:
        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name not in self.required_meters:
                self.required_meters.append(name)
            follows = self.expr[match.end():match.end() + 1]
            return escape(name) + ('' if follows == '.' else '.volume')

        escaped = METER_REFERENCE.sub(substitute, self.expr)
        if not self.required_meters:
            LOG.warning('Arithmetic transformer must use at least one meter '
                        "in expression '%s'", self.expr)
            self.misconfigured = True
        else:
            self.reference_meter = self.required_meters[0]
        return escaped

    def handle_sample(self, s: Sample) -> None:
        if s.name in self.required_meters:
            self.cache[s.resource_id][escape(s.name)] = s
        self.latest_timestamp = s.timestamp
        return None

    def _calculate(self, resource_id: str, cached: dict[str, Any]
                   ) -> sample_mod.Sample | None:
        if self._expression is None or self.reference_meter is None:
            return None  # misconfigured: nothing is cached either
        namespace = transformer.Namespace(
            {name: s.as_dict() for name, s in cached.items()})
        try:
            value = self._expression.evaluate(namespace)
            if isinstance(value, float) and math.isnan(value):
                raise ArithmeticError('expression returned NaN')
            volume = float(value)
        except Exception as err:
            LOG.warning('Unable to evaluate expression %s: %s', self.expr,
                        err)
            return None
        reference = cached[escape(self.reference_meter)]
        return sample_mod.Sample(
            name=self.target.get('name', reference.name),
            unit=self.target.get('unit', reference.unit),
            type=self.target.get('type', reference.type),
            volume=volume,
            user_id=reference.user_id,
            project_id=reference.project_id,
            resource_id=reference.resource_id,
            timestamp=self.latest_timestamp,
            resource_metadata=reference.resource_metadata)

    def flush(self) -> list[Sample]:
        if self.misconfigured:
            return []
        needed = {escape(name) for name in self.required_meters}
        released = []
        for resource_id in list(self.cache):
            cached = self.cache[resource_id]
            if not needed.issubset(cached):
                continue
            new = self._calculate(resource_id, cached)
            if new is not None:
                released.append(new)
            del self.cache[resource_id]
        return released
