"""Teams messages: one Adaptive Card per alert, posted to a Workflows webhook.

``render_teams_message(alert, settings)`` returns the webhook body
``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <card>}]}``.
A Workflows message is limited to 28 KB: a body over the limit raises
:class:`MessageTooLarge` here, with the size, instead of being refused by Teams; the
delivery code logs it and falls back to ``render_teams_message_compact``, which trims long
lists and long values until the body fits. Send the bytes from
:func:`encode_teams_message` — the same serialisation the limit was measured on.

Every kind of alert has its own card: the header colour, label and advice come from
``presentation.KIND_PRESENTATION`` and the order of the sections from
``SECTION_ORDER`` below (a vendor setting change leads with what changed, a drifted
client with its findings, sign-in evidence with the counts, a digest with its list).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.domain.messages import AlertKind, AlertRecord, FindingRef, Severity
from shared.rendering import adaptive as ac
from shared.rendering.presentation import (
    SEVERITY_LABEL,
    SEVERITY_RANK,
    RenderSettings,
    alert_buttons,
    alert_tone,
    format_when,
    kind_label,
    shorten,
    what_to_do,
)

TEAMS_MESSAGE_LIMIT_BYTES = 28 * 1024  # Workflows webhook: "28 KB per message"
TEAMS_MAX_ACTIONS = 6  # Teams' host config shows at most 6 card actions
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"

TeamsMessage = dict[str, Any]
_T = TypeVar("_T")


class MessageTooLarge(ValueError):
    """The serialised webhook body is over the Workflows limit; Teams would refuse it."""

    def __init__(self, dedup_key: str, kind: AlertKind, size_bytes: int, limit_bytes: int):
        super().__init__(
            f"Teams message for alert {dedup_key!r} ({kind.value}) is {size_bytes:,} bytes; "
            f"the Workflows webhook limit is {limit_bytes:,} bytes"
        )
        self.dedup_key = dedup_key
        self.kind = kind
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes


def encode_teams_message(message: TeamsMessage) -> bytes:
    """The exact bytes to POST (compact UTF-8 JSON); the size limit is checked on these."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render_teams_message(alert: AlertRecord, settings: RenderSettings) -> TeamsMessage:
    """The full card for ``alert``; raises :class:`MessageTooLarge` over 28 KB."""
    message = _message(_card(alert, settings, _FULL))
    size = len(encode_teams_message(message))
    if size > TEAMS_MESSAGE_LIMIT_BYTES:
        raise MessageTooLarge(alert.dedup_key, alert.kind, size, TEAMS_MESSAGE_LIMIT_BYTES)
    return message


def render_teams_message_compact(alert: AlertRecord, settings: RenderSettings) -> TeamsMessage:
    """The same card with lists and long values trimmed until it fits the limit.

    Trimmed parts are counted on the card ("… 37 more not shown") so the reader knows
    to open the e-mail, which always carries everything.
    """
    size = 0
    for limits in _COMPACT_LEVELS:
        message = _message(_card(alert, settings, limits))
        size = len(encode_teams_message(message))
        if size <= TEAMS_MESSAGE_LIMIT_BYTES:
            return message
    raise MessageTooLarge(alert.dedup_key, alert.kind, size, TEAMS_MESSAGE_LIMIT_BYTES)


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


_FULL = _Limits(None, None)
_COMPACT_LEVELS = (
    _Limits(25, 1000),
    _Limits(10, 400),
    _Limits(5, 200),
    _Limits(3, 120),
    _Limits(1, 80),
    _Limits(0, 60),
)


class _CardBuilder:
    """Builds one card, counting what the limits left out."""

    def __init__(self, alert: AlertRecord, settings: RenderSettings, limits: _Limits):
        self.alert = alert
        self.settings = settings
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


def _card(alert: AlertRecord, settings: RenderSettings, limits: _Limits) -> ac.Element:
    b = _CardBuilder(alert, settings, limits)
    body: list[ac.Element] = [_header(b)]
    for section in _sections_for(alert.kind):
        body.extend(section(b))
    # The coloured header already divides; a rule right under it would double the line.
    body[1:2] = [{k: v for k, v in e.items() if k != "separator"} for e in body[1:2]]
    if b.hidden:
        body.append(
            ac.text_block(
                f"{b.hidden} more entries are not shown here (Teams message size limit); "
                "the e-mail for this alert has all of them.",
                size="small",
                color="warning",
                separator=True,
            )
        )
    body.append(_footer(b))
    actions = [
        ac.open_url(button.title, button.url)
        for button in alert_buttons(alert, settings, TEAMS_MAX_ACTIONS)
    ]
    return ac.adaptive_card(body, actions, _fallback_text(alert))


_SEVERITY_TEXT_COLOR: dict[Severity, ac.Color] = {
    Severity.HIGH: "attention",
    Severity.MEDIUM: "warning",
    Severity.REVIEW: "warning",
    Severity.LOW: "accent",
    Severity.INFO: "default",
}


def _severity_color(severity: Severity) -> ac.Color:
    return _SEVERITY_TEXT_COLOR[severity]


def _header(b: _CardBuilder) -> ac.Element:
    alert = b.alert
    # Text inside the coloured header stays default-coloured: Teams' warning foreground
    # (yellow) is unreadable on its warning background. The container carries the colour.
    items: list[ac.Element] = [
        ac.column_set(
            [
                ac.column(
                    [ac.text_block(kind_label(alert.kind, b.settings).upper(), size="small",
                                   weight="bolder")]
                ),
                ac.column(
                    [ac.text_block(SEVERITY_LABEL[alert.severity], size="small",
                                   weight="bolder")],
                    "auto",
                ),
            ]
        ),
        ac.rich_text(ac.text_run(b.text(alert.title), size="large", weight="bolder"),
                     spacing="small"),
    ]
    if alert.summary:
        items.append(ac.rich_text(b.text(alert.summary), spacing="small"))
    return ac.container(items, style=alert_tone(alert), bleed=True)


def _heading(text: str) -> ac.Element:
    return ac.text_block(text, weight="bolder", size="medium", spacing="medium",
                         separator=True, heading=True)


_WHO_LABEL = {
    AlertKind.VENDOR_SETTING_CHANGED: "Changed by",
    AlertKind.REINVITE_DONE: "Requested by",
    AlertKind.REINVITE_FAILED: "Requested by",
    AlertKind.ACCESS_REVIEW_CREATED: "Requested by",
    AlertKind.ACCESS_REVIEW_FAILED: "Requested by",
}


def fact_label(key: str) -> str:
    """``job_id`` → ``Job ID``: producers key ``facts`` in snake_case."""
    words = key.replace("_", " ").replace("-", " ").split()
    acronyms = {"id": "ID", "upn": "UPN", "url": "URL", "mfa": "MFA", "b2b": "B2B",
                "api": "API", "http": "HTTP"}
    shown = [acronyms.get(w.lower(), w) for w in words]
    if shown and shown[0] == words[0]:
        shown[0] = shown[0][:1].upper() + shown[0][1:]
    return " ".join(shown) or key


def alert_facts(alert: AlertRecord) -> list[tuple[str, str, bool]]:
    """(label, value, monospace) for the card's and the e-mail's fact table."""
    rows: list[tuple[str, str, bool]] = []
    if alert.client:
        rows.append(("Client", alert.client.name, False))
        rows.append(("Tenant ID", alert.client.tenant_id, True))
        if alert.client.domains:
            rows.append(("Domains", ", ".join(alert.client.domains), False))
    if alert.who:
        rows.append((_WHO_LABEL.get(alert.kind, "Who"), alert.who, False))
    if alert.when:
        rows.append(("When", format_when(alert.when), False))
    for key, value in alert.facts.items():
        rows.append((fact_label(key), value, _looks_like_identifier(key, value)))
    return rows


def _looks_like_identifier(key: str, value: str) -> bool:
    """IDs, queue names and raw JSON read better in a fixed-width font."""
    return (
        key.endswith(("id", "_id", "key", "queue"))
        or (len(value) == 36 and value.count("-") == 4)
        or looks_like_json(value)
    )


def looks_like_json(value: str) -> bool:
    return value.lstrip()[:1] in ("{", "[")


def _facts_section(b: _CardBuilder) -> list[ac.Element]:
    rows = alert_facts(b.alert)
    if not rows:
        return []
    return [
        ac.container(
            [ac.fact_row(label, b.text(value), monospace=mono)
             for label, value, mono in b.take(rows)],
            spacing="medium",
        )
    ]


def _changes_section(b: _CardBuilder) -> list[ac.Element]:
    if not b.alert.changes:
        return []
    out = [_heading("What changed")]
    for change in b.take(b.alert.changes):
        before = change.before if change.before is not None else "(not set)"
        after = change.after if change.after is not None else "(not set)"
        out.append(
            ac.container(
                [
                    ac.rich_text(ac.text_run(change.setting, weight="bolder", monospace=True)),
                    ac.column_set(
                        [
                            ac.column([ac.text_block("Before", size="small", subtle=True),
                                       ac.rich_text(ac.text_run(
                                           b.text(before), monospace=looks_like_json(before)),
                                           spacing="none")]),
                            ac.column([ac.text_block("→", size="large")], "auto",
                                      vertical="center"),
                            ac.column([ac.text_block("After", size="small", subtle=True),
                                       ac.rich_text(ac.text_run(
                                           b.text(after), weight="bolder",
                                           monospace=looks_like_json(after)),
                                           spacing="none")]),
                        ],
                        spacing="small",
                    ),
                ],
                spacing="small",
            )
        )
    return out


def _evidence_section(b: _CardBuilder) -> list[ac.Element]:
    if not b.alert.evidence:
        return []
    rows = sorted(b.alert.evidence.items(), key=lambda kv: (-kv[1], kv[0]))
    return [_heading("Evidence")] + [
        ac.fact_row(f"{count:,}", b.text(label)) for label, count in b.take(rows)
    ]


def _finding_block(b: _CardBuilder, finding: FindingRef) -> ac.Element:
    items: list[ac.Element] = [
        ac.rich_text(
            ac.text_run(SEVERITY_LABEL[finding.severity].upper(),
                        color=_severity_color(finding.severity), weight="bolder"),
            ac.text_run("  "),
            ac.text_run(finding.code, monospace=True, subtle=True),
        ),
        ac.rich_text(b.text(finding.message), spacing="none"),
    ]
    if finding.remediation:
        items.append(ac.rich_text(ac.text_run("Fix: ", weight="bolder"),
                                  b.text(finding.remediation), spacing="small"))
    items.append(
        ac.rich_text(ac.text_run(f"Runbook: {finding.code}", color="accent",
                                 url=b.settings.runbook_url(finding.code)),
                     spacing="small")
    )
    return ac.container(items, spacing="medium")


def _findings_section(b: _CardBuilder) -> list[ac.Element]:
    if not b.alert.findings:
        return []
    findings = sorted(b.alert.findings, key=lambda f: -SEVERITY_RANK[f.severity])
    return [_heading("Findings")] + [_finding_block(b, f) for f in b.take(findings)]


def _todo_section(b: _CardBuilder) -> list[ac.Element]:
    out = [_heading("What to do"), ac.text_block(what_to_do(b.alert.kind, b.settings))]
    for number, step in enumerate(b.take(b.alert.remediation_steps), start=1):
        out.append(
            ac.column_set(
                [
                    ac.column([ac.text_block(f"{number}.", weight="bolder")], "auto"),
                    ac.column([ac.rich_text(b.text(step))]),
                ],
                spacing="small",
            )
        )
    return out


def _digest_section(b: _CardBuilder) -> list[ac.Element]:
    items = sorted(b.alert.items, key=lambda a: (-SEVERITY_RANK[a.severity], a.created_at))
    if not items:
        return []
    out = [_heading(f"{len(items)} alerts")]
    for item in b.take(items):
        where = f" · {item.client.name}" if item.client else ""
        out.append(
            ac.column_set(
                [
                    ac.column([ac.rich_text(ac.text_run(
                        SEVERITY_LABEL[item.severity], weight="bolder",
                        color=_severity_color(item.severity)))], "90px"),
                    ac.column([
                        ac.rich_text(b.text(item.title)),
                        ac.rich_text(ac.text_run(
                            kind_label(item.kind, b.settings) + where, size="small",
                            subtle=True), spacing="none"),
                    ]),
                ],
                spacing="small",
            )
        )
    return out


def _footer(b: _CardBuilder) -> ac.Element:
    alert = b.alert
    return ac.rich_text(
        ac.text_run(
            f"xtap-watch · {alert.source} · {format_when(alert.created_at)} · "
            f"key {shorten(alert.dedup_key, 80)}",
            size="small",
            subtle=True,
        ),
        spacing="medium",
        separator=True,
    )


def _fallback_text(alert: AlertRecord) -> str:
    """What a client that cannot show the card displays (and notifications preview)."""
    text = f"[{SEVERITY_LABEL[alert.severity]}] {alert.title}"
    if alert.summary:
        text += f" — {alert.summary}"
    return shorten(text, 500)


Section = Callable[[_CardBuilder], list[ac.Element]]
_ALL_SECTIONS: tuple[Section, ...] = (
    _facts_section, _findings_section, _changes_section, _evidence_section,
    _digest_section, _todo_section,
)
_DEFAULT_ORDER: tuple[Section, ...] = (
    _facts_section, _findings_section, _changes_section, _evidence_section, _todo_section,
)
SECTION_ORDER: dict[AlertKind, tuple[Section, ...]] = {
    AlertKind.CLIENT_DRIFTED: _DEFAULT_ORDER,
    AlertKind.CLIENT_REMINDER: _DEFAULT_ORDER,
    AlertKind.VENDOR_POSTURE: _DEFAULT_ORDER,
    AlertKind.CLIENT_RECOVERED: (
        _facts_section, _changes_section, _evidence_section, _findings_section, _todo_section,
    ),
    AlertKind.CLIENT_CONSENT_MISSING: (_facts_section, _evidence_section, _todo_section),
    AlertKind.CLIENT_CONSENT_RESTORED: (_facts_section, _todo_section),
    AlertKind.SIGNIN_EVIDENCE: (
        _facts_section, _evidence_section, _findings_section, _todo_section,
    ),
    AlertKind.VENDOR_SETTING_CHANGED: (
        _changes_section, _facts_section, _findings_section, _todo_section,
    ),
    AlertKind.REINVITE_DONE: (_facts_section, _todo_section),
    AlertKind.REINVITE_FAILED: (_facts_section, _findings_section, _todo_section),
    AlertKind.ACCESS_REVIEW_CREATED: (_facts_section, _todo_section),
    AlertKind.ACCESS_REVIEW_FAILED: (_facts_section, _findings_section, _todo_section),
    AlertKind.PENDING_GUESTS: (_facts_section, _evidence_section, _todo_section),
    AlertKind.DELIVERY_FAILING: (_facts_section, _todo_section),
    AlertKind.POISON_MESSAGE: (_facts_section, _todo_section),
    AlertKind.DIGEST: (_facts_section, _digest_section, _todo_section),
    AlertKind.WATCHDOG: (_facts_section, _todo_section),
    AlertKind.HEARTBEAT: (_facts_section, _todo_section),
}


def _sections_for(kind: AlertKind) -> list[Section]:
    """The kind's preferred order, then any other section that has data: nothing a
    producer put on the record is dropped because its kind did not expect it."""
    preferred = list(SECTION_ORDER.get(kind, _DEFAULT_ORDER))
    rest = [s for s in _ALL_SECTIONS if s not in preferred]
    todo_at = preferred.index(_todo_section) if _todo_section in preferred else len(preferred)
    return preferred[:todo_at] + rest + preferred[todo_at:]
