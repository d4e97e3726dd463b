"""JSON that means one thing only: for policy files, audit exports and client lists.

``json.loads`` quietly keeps the *last* of two duplicate keys, accepts ``NaN`` and
``Infinity`` (not JSON, RFC 8259 §6), and fails on hostile input with ``RecursionError`` or
a ``ValueError`` about integer digits instead of a clear message. :func:`loads_strict`
refuses all of these with a :class:`StrictJsonError` that says what and where, so a caller
can report one line and stop instead of guessing which of two values was meant.
"""

from __future__ import annotations

import json
from typing import Any

# Deeper than any Graph payload or audit record (they nest about ten levels); deep enough
# never to matter, shallow enough that nothing downstream recurses into trouble.
MAX_DEPTH = 64


class StrictJsonError(ValueError):
    """The text is not one unambiguous JSON document."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJsonError(f"duplicate key {key!r} in one object")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise StrictJsonError(f"{name} is not a JSON value")


def _depth(value: Any) -> int:
    """Nesting depth, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads_strict(text: str | bytes) -> Any:
    """Parse one JSON document or raise :class:`StrictJsonError` (a ``ValueError``)."""
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except StrictJsonError:
        raise
    except RecursionError:
        raise StrictJsonError(f"nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise StrictJsonError(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        # Python refuses integers of more than 4,300 digits (CVE-2020-10735 limit).
        raise StrictJsonError(str(exc).split(";")[0]) from None
    if _depth(value) > MAX_DEPTH:
        raise StrictJsonError(f"nested more than {MAX_DEPTH} levels deep")
    return value
