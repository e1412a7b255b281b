"""Public names of the transformer contract (interfaces.md §4).

The implementations live in :mod:`telemeter.pipeline.transformers`; this
module keeps the documented import paths working, e.g.
``telemeter.transformer.Namespace`` and
``telemeter.transformer.conversions.RateOfChangeTransformer``.
"""

import sys

from telemeter.pipeline.transformers import (
    Namespace,
    TransformerBase,
    accumulator,
    arithmetic,
    conversions,
)

__all__ = ['Namespace', 'TransformerBase', 'accumulator', 'arithmetic',
           'conversions']

for _module in (accumulator, arithmetic, conversions):
    sys.modules[f'{__name__}.{_module.__name__.rsplit(".", 1)[1]}'] = _module
