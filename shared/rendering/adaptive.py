"""Small typed builders for the Adaptive Card elements xtap-watch uses.

Cards are built as plain dicts (the JSON Teams receives) through these functions rather
than from JSON templates: a builder cannot produce a missing comma or an unescaped quote,
and the schema test in ``tests/unit/test_cards.py`` checks every card we build.

Text safety: Teams renders a subset of Markdown in ``TextBlock`` and ``FactSet`` values, and
escaping is inconsistent across Teams clients (a backslash shows on some). So text that
comes from outside our code (display names, UPNs, setting values, audit-log strings) is
only ever placed in ``RichTextBlock``/``TextRun``, which the schema defines as "Markdown is
not supported": a guest named ``[Fix it](https://evil.example)`` stays literal text.
``TextBlock`` is used for our own fixed wording only.
"""

from __future__ import annotations

from typing import Any, Literal

# The Workflows action "Post card in a chat or channel" renders Adaptive Cards only up to
# 1.4: a 1.5 card shows "We're sorry, this card couldn't be displayed" (microsoft/
# AdaptiveCards #8965 and #7676, MicrosoftDocs/msteams-docs #9801). So every card declares
# 1.4 and uses nothing newer (no Table, no ``heading`` style); tests validate each card
# against the official 1.4 schema (``shared/schemas/adaptive-card-1.4.json``).
CARD_SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"

Element = dict[str, Any]
Color = Literal["default", "dark", "light", "accent", "good", "warning", "attention"]
ContainerStyle = Literal["default", "emphasis", "good", "attention", "warning", "accent"]
Spacing = Literal["default", "none", "small", "medium", "large", "extraLarge", "padding"]
Size = Literal["default", "small", "medium", "large", "extraLarge"]


def text_block(
    text: str,
    *,
    size: Size | None = None,
    weight: Literal["default", "lighter", "bolder"] | None = None,
    color: Color | None = None,
    subtle: bool = False,
    spacing: Spacing | None = None,
    separator: bool = False,
) -> Element:
    """Our own wording (may use Markdown). Never pass outside data here."""
    element: Element = {"type": "TextBlock", "text": text, "wrap": True}
    if size:
        element["size"] = size
    if weight:
        element["weight"] = weight
    if color:
        element["color"] = color
    if subtle:
        element["isSubtle"] = True
    return _spaced(element, spacing, separator)


def text_run(
    text: str,
    *,
    weight: Literal["default", "lighter", "bolder"] | None = None,
    color: Color | None = None,
    subtle: bool = False,
    monospace: bool = False,
    size: Size | None = None,
    url: str | None = None,
) -> Element:
    """Literal text (no Markdown). ``url`` turns the run into a link."""
    run: Element = {"type": "TextRun", "text": text}
    if weight:
        run["weight"] = weight
    if color:
        run["color"] = color
    if subtle:
        run["isSubtle"] = True
    if monospace:
        run["fontType"] = "monospace"
    if size:
        run["size"] = size
    if url:
        run["selectAction"] = {"type": "Action.OpenUrl", "url": url}
    return run


def rich_text(
    *runs: Element | str, spacing: Spacing | None = None, separator: bool = False
) -> Element:
    """A paragraph of literal runs; plain strings become unstyled runs."""
    inlines = [text_run(r) if isinstance(r, str) else r for r in runs]
    return _spaced({"type": "RichTextBlock", "inlines": inlines}, spacing, separator)


def container(
    items: list[Element],
    *,
    style: ContainerStyle | None = None,
    bleed: bool = False,
    spacing: Spacing | None = None,
    separator: bool = False,
    element_id: str | None = None,
    visible: bool = True,
) -> Element:
    element: Element = {"type": "Container", "items": items}
    if element_id:
        element["id"] = element_id
    if not visible:
        element["isVisible"] = False
    if style:
        element["style"] = style
    if bleed:
        element["bleed"] = True
    return _spaced(element, spacing, separator)


def column(
    items: list[Element],
    width: str = "stretch",
    *,
    vertical: Literal["top", "center", "bottom"] | None = None,
) -> Element:
    element: Element = {"type": "Column", "width": width, "items": items}
    if vertical:
        element["verticalContentAlignment"] = vertical
    return element


def column_set(
    columns: list[Element], *, spacing: Spacing | None = None, separator: bool = False
) -> Element:
    return _spaced({"type": "ColumnSet", "columns": columns}, spacing, separator)


def fact_row(title: str, value: str, *, monospace: bool = False) -> Element:
    """One label/value line. A FactSet would render Markdown in the value (see module
    docstring), so this is a two-column row whose value is a literal RichTextBlock."""
    return column_set(
        [
            column([text_block(title, weight="bolder")], "130px"),
            column([rich_text(text_run(value, monospace=monospace))]),
        ],
        spacing="small",
    )


def open_url(title: str, url: str) -> Element:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def toggle_visibility(title: str, *element_ids: str) -> Element:
    """A button that shows/hides the elements with these ids (Adaptive Cards 1.2+)."""
    return {"type": "Action.ToggleVisibility", "title": title,
            "targetElements": list(element_ids)}


def adaptive_card(body: list[Element], actions: list[Element], fallback_text: str) -> Element:
    card: Element = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA_URL,
        "version": CARD_VERSION,
        "fallbackText": fallback_text,
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def _spaced(element: Element, spacing: Spacing | None, separator: bool) -> Element:
    if spacing:
        element["spacing"] = spacing
    if separator:
        element["separator"] = True
    return element
