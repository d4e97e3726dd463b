"""Teams messages: one Adaptive Card 1.4 per alert, posted to a Workflows webhook.

``render_teams_message(alert, settings)`` returns the webhook body
``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <card>}]}``.

The card is built for an admin at 3 a.m. (see :mod:`shared.rendering.content`): a coloured
header with the kind, severity, title and a one- or two-sentence summary; the client, its
contact and when; what changed (before → after); evidence; what to do, each fix once, with
the command that sends the client their instructions; and a "Show details" button
(``Action.ToggleVisibility``, Adaptive Cards 1.2+) that opens everything else — internal
identifiers, the full policy explanation, Graph requests and every runbook link.

Size: Workflows refuses messages over ~28 KB, and it does so inside the flow run, after
the webhook has answered 202 — nobody would see the error. The card is therefore kept
under :data:`TEAMS_MESSAGE_BUDGET_BYTES` (24 KiB, headroom for what the flow adds): a
larger body raises :class:`MessageTooLarge` here; delivery then falls back to
:func:`render_teams_message_compact`, which drops the details and trims lists until it
fits and says what it left out (the e-mail always carries everything). Send the bytes from
:func:`encode_teams_message` — the same serialisation the budget was measured on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.domain.messages import AlertKind, AlertRecord, Severity
from shared.rendering import adaptive as ac
from shared.rendering.content import (
    DIGEST_VISIBLE_MEMBERS,
    AlertContent,
    FindingLine,
    StepLine,
    alert_content,
    fact_label,
    looks_like_json,
)
from shared.rendering.presentation import RenderSettings, shorten

__all__ = [
    "ADAPTIVE_CARD_CONTENT_TYPE",
    "DETAILS_ID",
    "TEAMS_MAX_ACTIONS",
    "TEAMS_MESSAGE_BUDGET_BYTES",
    "TEAMS_MESSAGE_LIMIT_BYTES",
    "MessageTooLarge",
    "encode_teams_message",
    "fact_label",
    "looks_like_json",
    "render_teams_message",
    "render_teams_message_compact",
]

TEAMS_MESSAGE_LIMIT_BYTES = 28 * 1024  # Workflows / Teams connector: "about 28 KB"
TEAMS_MESSAGE_BUDGET_BYTES = 24 * 1024  # what we allow ourselves: headroom below ~28 KB
TEAMS_MAX_ACTIONS = 6  # Teams' host config shows at most 6 card actions
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
DETAILS_ID = "details"
CARD_MEMBER_REFS = 60  # a digest's unlisted members named on the card; the e-mail has all
SHOW_DETAILS = "Show details"

TeamsMessage = dict[str, Any]
_T = TypeVar("_T")


class MessageTooLarge(ValueError):
    """The serialised webhook body is over our budget; Workflows could fail the post."""

    def __init__(self, dedup_key: str, kind: AlertKind, size_bytes: int, limit_bytes: int):
        super().__init__(
            f"Teams message for alert {dedup_key!r} ({kind.value}) is {size_bytes:,} bytes; "
            f"the budget below the Workflows limit (~28 KB) is {limit_bytes:,} bytes"
        )
        self.dedup_key = dedup_key
        self.kind = kind
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes


def encode_teams_message(message: TeamsMessage) -> bytes:
    """The exact bytes to POST (compact UTF-8 JSON); the size budget is checked on these."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render_teams_message(alert: AlertRecord, settings: RenderSettings) -> TeamsMessage:
    """The full card for ``alert``; raises :class:`MessageTooLarge` over the budget."""
    message = _message(_card(alert_content(alert, settings), _FULL))
    size = len(encode_teams_message(message))
    if size > TEAMS_MESSAGE_BUDGET_BYTES:
        raise MessageTooLarge(alert.dedup_key, alert.kind, size, TEAMS_MESSAGE_BUDGET_BYTES)
    return message


def render_teams_message_compact(alert: AlertRecord, settings: RenderSettings) -> TeamsMessage:
    """The same card without details and with lists and long values trimmed to fit.

    Trimmed parts are counted on the card ("… 37 more not shown") so the reader knows
    to open the e-mail, which always carries everything.
    """
    content = alert_content(alert, settings)
    size = 0
    for limits in _COMPACT_LEVELS:
        message = _message(_card(content, limits))
        size = len(encode_teams_message(message))
        if size <= TEAMS_MESSAGE_BUDGET_BYTES:
            return message
    raise MessageTooLarge(alert.dedup_key, alert.kind, size, TEAMS_MESSAGE_BUDGET_BYTES)


def _message(card: ac.Element) -> TeamsMessage:
    return {
        "type": "message",
        "attachments": [
            {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": card}
        ],
    }


@dataclass(frozen=True)
class _Limits:
    items: int | None  # most entries shown from each list (None: all)
    text: int | None  # longest free-text value in characters (None: whole)
    details: bool = True


_FULL = _Limits(None, None)
_COMPACT_LEVELS = (
    _FULL,
    _Limits(None, None, details=False),
    _Limits(25, 1000, details=False),
    _Limits(10, 400, details=False),
    _Limits(5, 200, details=False),
    _Limits(3, 120, details=False),
    _Limits(1, 80, details=False),
    _Limits(0, 60, details=False),
)


class _Builder:
    """Builds one card, counting what the limits left out."""

    def __init__(self, content: AlertContent, limits: _Limits):
        self.c = content
        self.limits = limits
        self.hidden = 0

    def text(self, value: str) -> str:
        if self.limits.text is None:
            return value
        return shorten(value, self.limits.text)

    def take(self, entries: Sequence[_T]) -> Sequence[_T]:
        if self.limits.items is None or len(entries) <= self.limits.items:
            return entries
        self.hidden += len(entries) - self.limits.items
        return entries[: self.limits.items]


_SEVERITY_TEXT_COLOR: dict[Severity, ac.Color] = {
    Severity.HIGH: "attention",
    Severity.MEDIUM: "warning",
    Severity.REVIEW: "warning",
    Severity.LOW: "accent",
    Severity.INFO: "default",
}


def _card(content: AlertContent, limits: _Limits) -> ac.Element:
    b = _Builder(content, limits)
    body: list[ac.Element] = [_header(b)]
    body += _facts(b)
    body += _changes(b)
    body += _evidence(b)
    body += _digest(b)
    body += _findings(b)
    body += _todo(b)
    if b.hidden or (content.has_details and not limits.details):
        body.append(ac.text_block(
            (f"{b.hidden} more entries and the details" if b.hidden else "The details")
            + " are not shown here (Teams message size); the e-mail for this alert has "
            "all of them.",
            size="small", color="warning", separator=True))
    actions = [ac.open_url(button.title, button.url) for button in content.buttons]
    if limits.details and content.has_details:
        body.append(_details(b))
        actions.append(ac.toggle_visibility(SHOW_DETAILS, DETAILS_ID))
    return ac.adaptive_card(body, actions[:TEAMS_MAX_ACTIONS], _fallback_text(content))


def _header(b: _Builder) -> ac.Element:
    c = b.c
    # Text inside the coloured header stays default-coloured: Teams' warning foreground
    # (yellow) is unreadable on its warning background. The container carries the colour.
    items: list[ac.Element] = [
        ac.column_set([
            ac.column([ac.text_block(c.kind_label.upper(), size="small", weight="bolder")]),
            ac.column([ac.text_block(c.severity_label, size="small", weight="bolder")],
                      "auto"),
        ]),
        ac.rich_text(ac.text_run(b.text(c.title), size="large", weight="bolder"),
                     spacing="small"),
    ]
    if c.summary:
        items.append(ac.rich_text(b.text(c.summary), spacing="small"))
    return ac.container(items, style=c.tone, bleed=True)


def _heading(text: str) -> ac.Element:
    return ac.text_block(text, weight="bolder", spacing="medium", separator=True)


def _facts(b: _Builder) -> list[ac.Element]:
    if not b.c.facts:
        return []
    return [ac.container(
        [ac.fact_row(f.label, b.text(f.value), monospace=f.mono) for f in b.take(b.c.facts)],
        spacing="medium",
    )]


def _changes(b: _Builder) -> list[ac.Element]:
    if not b.c.changes:
        return []
    out = [_heading("What changed")]
    for change in b.take(b.c.changes):
        out.append(ac.container([
            ac.rich_text(ac.text_run(change.setting, weight="bolder")),
            ac.rich_text(
                ac.text_run(b.text(change.before), subtle=True, monospace=change.mono),
                ac.text_run("  →  ", weight="bolder"),
                ac.text_run(b.text(change.after), weight="bolder", monospace=change.mono),
                spacing="none",
            ),
        ], spacing="small"))
    return out


def _evidence(b: _Builder) -> list[ac.Element]:
    if not b.c.evidence:
        return []
    return [_heading("Evidence")] + [
        ac.fact_row(f"{count:,}", b.text(label)) for label, count in b.take(b.c.evidence)
    ]


def _digest(b: _Builder) -> list[ac.Element]:
    c = b.c
    if not c.members and not c.more_members:
        return []
    total = len(c.members) + c.more_members
    out = [_heading(f"{total} alerts, most severe first")]
    shown = c.members[:DIGEST_VISIBLE_MEMBERS]
    if b.limits.items is not None:
        shown = shown[: b.limits.items]
    for member in shown:
        out.append(ac.rich_text(
            ac.text_run(member.severity_label, weight="bolder",
                        color=_SEVERITY_TEXT_COLOR[member.severity]),
            ac.text_run("  "),
            ac.text_run(b.text(member.title)),
            ac.text_run(f"  ({member.where})", size="small", subtle=True),
            spacing="small",
        ))
    not_listed = total - len(shown)
    if not_listed > 0:
        where = ("their event IDs are under Show details and in the e-mail"
                 if c.member_refs or c.detail_lines else "the e-mail lists them")
        out.append(ac.text_block(f"… and {not_listed} more ({where}).", size="small",
                                 subtle=True, spacing="small"))
    return out


def _finding_run(finding: FindingLine, b: _Builder) -> ac.Element:
    return ac.rich_text(
        ac.text_run(finding.severity_label.upper(), weight="bolder",
                    color=_SEVERITY_TEXT_COLOR[finding.severity]),
        ac.text_run("  "),
        ac.text_run(b.text(finding.message)),
        ac.text_run("  "),
        ac.text_run("Runbook", color="accent", url=finding.runbook),
        spacing="small",
    )


def _findings(b: _Builder) -> list[ac.Element]:
    if not b.c.findings:
        return []
    return [_heading("Findings")] + [_finding_run(f, b) for f in b.take(b.c.findings)]


def _step(number: int, step: StepLine, b: _Builder) -> ac.Element:
    items: list[ac.Element] = [ac.rich_text(b.text(step.text))]
    if step.command:
        items.append(ac.container(
            [ac.rich_text(ac.text_run(step.command, monospace=True))],
            style="emphasis", spacing="small",
        ))
    return ac.column_set([
        ac.column([ac.text_block(f"{number}.", weight="bolder")], "auto"),
        ac.column(items),
    ], spacing="small")


def _todo(b: _Builder) -> list[ac.Element]:
    if not b.c.steps:
        return [_heading("What to do"), ac.text_block(b.c.advice)]
    return [_heading("What to do")] + [
        _step(n, step, b) for n, step in enumerate(b.take(b.c.steps), start=1)
    ]


def _details(b: _Builder) -> ac.Element:
    c = b.c
    items: list[ac.Element] = [ac.text_block("Details", weight="bolder")]
    for line in c.detail_lines:
        items.append(ac.rich_text(ac.text_run(line, size="small",
                                              monospace=looks_like_json(line)),
                                  spacing="small"))
    for finding in c.detail_findings:
        items.append(ac.rich_text(
            ac.text_run(finding.severity_label.upper(), size="small", weight="bolder"),
            ac.text_run("  "),
            ac.text_run(finding.code, size="small", monospace=True),
            ac.text_run("  "),
            ac.text_run("runbook", size="small", color="accent", url=finding.runbook),
            spacing="small",
        ))
    for fact in c.detail_facts:
        items.append(ac.fact_row(fact.label, fact.value, monospace=fact.mono))
    if c.member_refs:
        refs = c.member_refs[:CARD_MEMBER_REFS]
        rest = len(c.member_refs) - len(refs)
        items.append(ac.rich_text(
            ac.text_run("Not listed: ", size="small", weight="bolder"),
            ac.text_run(", ".join(refs), size="small", monospace=True),
            ac.text_run(f" and {rest} more in the e-mail" if rest else "", size="small"),
            spacing="small",
        ))
    for link in c.links:
        items.append(ac.rich_text(ac.text_run(link.title, size="small", color="accent",
                                              url=link.url), spacing="small"))
    items.append(ac.rich_text(ac.text_run(c.footer, size="small", subtle=True),
                              spacing="small"))
    return ac.container(items, element_id=DETAILS_ID, visible=False, separator=True,
                        spacing="medium")


def _fallback_text(content: AlertContent) -> str:
    """What a client that cannot show the card displays (and notifications preview)."""
    text = f"[{content.severity_label}] {content.title}"
    if content.summary:
        text += f" — {content.summary}"
    return shorten(text, 500)
