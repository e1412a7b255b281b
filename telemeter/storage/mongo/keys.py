"""Resource metadata keys as MongoDB can store them.

MongoDB field names may not contain ``.`` (a path separator) nor start with
``$``: a dotted key becomes nested documents (``{'a.b': 1}`` → ``{'a':
{'b': 1}}``, so ``resource_metadata.a.b`` queries it) and a leading ``$``
is written ``%24`` (turned back on read).
"""

from __future__ import annotations

from typing import Any


def _escape(key: str) -> str:
    return '%24' + key[1:] if key.startswith('$') else key


def _unescape(key: str) -> str:
    return '$' + key[3:] if key.startswith('%24') else key


def improve_keys(value: Any) -> Any:
    """Metadata → storable document (recursively)."""
    if isinstance(value, list):
        return [improve_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for key, item in value.items():
        item = improve_keys(item)
        parts = [_escape(part) for part in str(key).split('.')]
        target = result
        for part in parts[:-1]:
            nested = target.get(part)
            if not isinstance(nested, dict):
                nested = target[part] = {}
            target = nested
        last = parts[-1]
        if isinstance(item, dict) and isinstance(target.get(last), dict):
            target[last].update(item)
        else:
            target[last] = item
    return result


def unquote_keys(value: Any) -> Any:
    """Stored document → metadata (``%24`` back to ``$``)."""
    if isinstance(value, list):
        return [unquote_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {_unescape(key): unquote_keys(item) for key, item in value.items()}
