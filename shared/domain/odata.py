"""OData literal quoting: the only way a value enters a Graph ``$filter``."""

from __future__ import annotations


def quote(value: str) -> str:
    """Return ``value`` as an OData string literal: single quotes doubled, wrapped in quotes.

    Control characters are refused outright: no legitimate e-mail address, UPN or object
    ID carries one, and they are a common way to smuggle filter syntax past naive checks.
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("OData literal contains a control character")
    return "'" + value.replace("'", "''") + "'"
