"""What an alert says, decided once for the Teams card and the e-mail.

An admin woken at 3 a.m. reads the top of a card: what happened (title and one or two
sentences), to whom (the client and its contact), what changed (the effective setting
before → after), and what to do (each fix once, the command to send the client their
instructions). Everything else — internal identifiers (tenant, episode, event and
correlation IDs, de-duplication keys), the full policy explanation, Graph requests, every
runbook link — sits behind "Show details" on the card and at the bottom of the e-mail.

:func:`alert_content` builds that view from any :class:`AlertRecord`, so producers that put
long texts or identifiers on a record still get a short card: long summaries move to the
details (the most severe finding's message stands in), identifier-like facts are hidden,
and the "Graph:" half of a fix goes to the details.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.domain.messages import AlertKind, AlertRecord, FindingRef, Severity
from shared.rendering.presentation import (
    SEVERITY_LABEL,
    SEVERITY_RANK,
    Button,
    RenderSettings,
    Tone,
    alert_buttons,
    alert_tone,
    format_when,
    is_web_url,
    kind_label,
    shorten,
    what_to_do,
)

SUMMARY_MAX_CHARS = 320
VISIBLE_VALUE_MAX_CHARS = 200
VISIBLE_PRODUCER_FACTS = 4
DIGEST_VISIBLE_MEMBERS = 8

_GUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
_GUID_RE = re.compile(rf"^{_GUID}$")
_PAREN_GUIDS = re.compile(rf"\s*\((?:{_GUID})(?:,\s*{_GUID})*\)")
_ISO_TIME = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]00:?00)?(?!\d)"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
# "… Save. Graph: PATCH /policies/…": the portal steps and the Graph request of one fix.
_GRAPH_TAIL = re.compile(r"(?:(?<=^)|(?<=[.;]\s))Graph:\s")

# Kinds about a client's own settings: the vendor's admin acts by sending the client's
# administrator their instructions (``xtap-watch clients instructions``).
CLIENT_SIDE_KINDS = frozenset({
    AlertKind.CLIENT_DRIFTED,
    AlertKind.CLIENT_REMINDER,
    AlertKind.CLIENT_CONSENT_MISSING,
    AlertKind.SIGNIN_EVIDENCE,
})

_WHO_LABEL = {
    AlertKind.VENDOR_SETTING_CHANGED: "Changed by",
    AlertKind.REINVITE_DONE: "Requested by",
    AlertKind.REINVITE_FAILED: "Requested by",
    AlertKind.ACCESS_REVIEW_CREATED: "Requested by",
    AlertKind.ACCESS_REVIEW_FAILED: "Requested by",
}

# Producer fact keys that are bookkeeping, not something to act on.
_INTERNAL_KEYS = frozenset({
    "episode", "client tenant", "tenant", "tenant id", "client tenant id", "event id",
    "correlation id", "job", "job id", "batch", "batch id", "dedup key", "key", "request id",
    "result", "trimmed", "sweep id", "signature",
})


@dataclass(frozen=True)
class FactLine:
    label: str
    value: str
    mono: bool = False


@dataclass(frozen=True)
class ChangeLine:
    setting: str
    before: str
    after: str
    mono: bool = False


@dataclass(frozen=True)
class FindingLine:
    severity: Severity
    severity_label: str
    code: str
    message: str
    runbook: str


@dataclass(frozen=True)
class StepLine:
    text: str
    command: str | None = None  # shown in a monospace box, ready to paste


@dataclass(frozen=True)
class MemberLine:
    severity: Severity
    severity_label: str
    title: str
    where: str  # kind label · client name


@dataclass(frozen=True)
class AlertContent:
    kind: AlertKind
    kind_label: str
    severity: Severity
    severity_label: str
    tone: Tone
    title: str
    summary: str
    facts: tuple[FactLine, ...]
    changes: tuple[ChangeLine, ...]
    evidence: tuple[tuple[str, int], ...]
    findings: tuple[FindingLine, ...]  # shown (those not already said by the summary)
    advice: str  # the kind's fixed advice, shown when there is no step
    steps: tuple[StepLine, ...]
    members: tuple[MemberLine, ...]  # a digest's alerts, most severe first
    more_members: int  # a digest's alerts not listed (message size)
    member_refs: tuple[str, ...]  # event IDs / keys of those, as far as they were kept
    buttons: tuple[Button, ...]
    # Behind "Show details" (card) / at the bottom (e-mail):
    detail_lines: tuple[str, ...]
    detail_findings: tuple[FindingLine, ...]  # every finding, with code and runbook
    detail_facts: tuple[FactLine, ...]
    links: tuple[Button, ...]
    footer: str

    @property
    def has_details(self) -> bool:
        return bool(self.detail_lines or self.detail_findings or self.detail_facts
                    or self.links or self.member_refs)


def alert_content(alert: AlertRecord, settings: RenderSettings) -> AlertContent:
    summary, summary_details = _headline(alert)
    findings = sorted(alert.findings, key=lambda f: -SEVERITY_RANK[f.severity])
    finding_lines = tuple(_finding_line(alert, f, settings) for f in findings)
    facts, hidden_facts = _facts(alert)
    steps, graph_lines = _steps(alert, findings)
    steps = tuple(StepLine(_refer_to_details(readable(step.text, alert), hidden_facts),
                           step.command) for step in steps)
    changes, change_details = _changes(alert)
    buttons = tuple(
        b for b in alert_buttons(alert, settings, limit=3) if b.url and is_web_url(b.url)
    )
    button_urls = {b.url for b in buttons}
    links = tuple(
        Button(" ".join(link.title.split()), link.url)
        for link in alert.links
        if is_web_url(link.url) and link.url not in button_urls
    )
    members = tuple(
        MemberLine(
            severity=item.severity,
            severity_label=SEVERITY_LABEL[item.severity],
            title=item.title,
            where=kind_label(item.kind, settings)
            + (f" · {item.client.name}" if item.client else ""),
        )
        for item in sorted(alert.items, key=lambda a: (-SEVERITY_RANK[a.severity],
                                                       a.created_at, a.dedup_key))
    )
    detail_lines = (*summary_details, *alert.details, *change_details, *graph_lines)
    return AlertContent(
        kind=alert.kind,
        kind_label=kind_label(alert.kind, settings),
        severity=alert.severity,
        severity_label=SEVERITY_LABEL[alert.severity],
        tone=alert_tone(alert),
        title=alert.title,
        summary=summary,
        facts=facts,
        changes=changes,
        evidence=tuple(sorted(alert.evidence.items(), key=lambda kv: (-kv[1], kv[0]))),
        findings=tuple(f for f in finding_lines if f.message != summary),
        advice=what_to_do(alert.kind, settings),
        steps=steps,
        members=members,
        more_members=alert.omitted,
        member_refs=alert.omitted_refs,
        buttons=buttons,
        detail_lines=tuple(dict.fromkeys(line for line in detail_lines if line)),
        detail_findings=finding_lines,
        detail_facts=hidden_facts,
        links=links,
        footer=(
            f"xtap-watch · {alert.source} · {format_when(alert.created_at)} · "
            f"key {alert.dedup_key}"
        ),
    )


# ------------------------------------------------------------------------ wording


def readable(text: str, alert: AlertRecord) -> str:
    """Text for the visible part: no parenthesised object IDs, the client's tenant by
    name, ISO timestamps as ``YYYY-MM-DD HH:MM UTC``. The details keep the raw text."""
    out = _PAREN_GUIDS.sub("", text)
    if alert.client:
        out = re.sub(
            rf"\btenant {re.escape(alert.client.tenant_id)}\b",
            f"{alert.client.name}'s tenant",
            out,
            flags=re.IGNORECASE,
        )
    out = _ISO_TIME.sub(lambda m: f"{m.group(1)} {m.group(2)} UTC", out)
    return " ".join(out.split())


def _refer_to_details(text: str, hidden: Sequence[FactLine]) -> str:
    """An identifier the details show (an audit event ID, a correlation ID) is named there,
    not spelled out in a step."""
    for fact in hidden:
        if fact.mono and len(fact.value) >= 16 and fact.value in text:
            text = text.replace(fact.value, f"(its {fact.label} is in the details)")
    return text


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]


def _headline(alert: AlertRecord) -> tuple[str, tuple[str, ...]]:
    """One or two sentences; a longer producer summary goes to the details."""
    text = " ".join(alert.summary.split())
    if not text:
        return "", ()
    shown = readable(text, alert)
    if len(sentences(shown)) <= 2 and len(shown) <= SUMMARY_MAX_CHARS:
        return shown, ((text,) if shown != text else ())
    if alert.findings:
        top = max(alert.findings, key=lambda f: SEVERITY_RANK[f.severity])
        candidate = " ".join(sentences(readable(top.message, alert))[:2])
        if candidate and len(candidate) <= SUMMARY_MAX_CHARS:
            return candidate, (text,)
    first_two = " ".join(sentences(shown)[:2])
    return shorten(first_two, SUMMARY_MAX_CHARS), (text,)


def _finding_line(alert: AlertRecord, finding: FindingRef,
                  settings: RenderSettings) -> FindingLine:
    return FindingLine(
        severity=finding.severity,
        severity_label=SEVERITY_LABEL[finding.severity],
        code=finding.code,
        message=" ".join(sentences(readable(finding.message, alert))[:2]),
        runbook=settings.runbook_url(finding.code),
    )


def split_fix(text: str) -> tuple[str, str | None]:
    """``"<portal steps>. Graph: <request>"`` → (portal steps, "Graph: <request>")."""
    text = " ".join(text.split())
    match = _GRAPH_TAIL.search(text)
    if match is None or match.start() == 0:
        return text, None
    return text[: match.start()].rstrip(), text[match.start():]


def _normal(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


def _steps(alert: AlertRecord,
           findings: Sequence[FindingRef]) -> tuple[tuple[StepLine, ...], tuple[str, ...]]:
    """Each fix once: the findings' fixes (most severe first), then the producer's other
    steps; a fix's Graph request goes to the details. Client-side alerts start with the
    command that sends the client's administrator their instructions."""
    steps: list[StepLine] = []
    graph: list[str] = []
    seen: set[str] = set()
    instructions = alert.kind in CLIENT_SIDE_KINDS and alert.client is not None
    if instructions:
        steps.append(_instructions_step(alert))
    fixes = [(f.remediation, f.code) for f in findings]
    fixes += [(step, "") for step in alert.remediation_steps]
    for text, code in fixes:
        if not text.strip():
            continue
        portal, graph_part = split_fix(text)
        key = _normal(portal)
        if key in seen:
            continue
        seen.add(key)
        if instructions and (_SENDS_INSTRUCTIONS.search(text) or code in _COVERED_BY_INSTRUCTIONS):
            # Said once, by the first step: the instructions are the vendor's onboarding
            # guide for the client's tenant, with the consent link when it is missing.
            graph.append(f"Covered by the client instructions: {' '.join(text.split())}")
            continue
        if instructions and alert.client and code.startswith("CLIENT_") \
                and code not in _VENDOR_ACTIONS:
            portal = f"What {possessive(alert.client.name)} administrator must change: {portal}"
        steps.append(StepLine(portal))
        if graph_part and graph_part not in graph:
            graph.append(graph_part)
    return tuple(steps), tuple(graph)


# Fixes that are the vendor's own actions although their codes are CLIENT_…; the other
# CLIENT_ fixes are what the client's administrator changes in their tenant.
_VENDOR_ACTIONS = frozenset({"CLIENT_CONSENT_MISSING", "CLIENT_SUSPECTED_DRIFT",
                             "CLIENT_TENANT_UNREACHABLE"})
_SENDS_INSTRUCTIONS = re.compile(r"client instructions", re.IGNORECASE)
# Fixes that *are* sending the client the onboarding guide or the consent link.
_COVERED_BY_INSTRUCTIONS = frozenset({"CLIENT_CONSENT_MISSING", "SIGNIN_CLIENT_OUTBOUND_BLOCKED",
                                      "CLIENT_SUSPECTED_DRIFT"})


def possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _instructions_step(alert: AlertRecord) -> StepLine:
    assert alert.client is not None
    client = alert.client
    contacts = [c for c in client.contacts if c]
    if contacts:
        who = ", ".join(contacts)
        return StepLine(
            f"Send {possessive(client.name)} administrator ({who}) their instructions "
            "(the exact steps for their tenant, and the consent link if it is missing):",
            f"xtap-watch clients instructions {client.tenant_id} "
            + " ".join(f"--send-to {c}" for c in contacts),
        )
    return StepLine(
        f"No contact is registered for {client.name}: find their administrator and send "
        "them their instructions (the exact steps for their tenant):",
        f"xtap-watch clients instructions {client.tenant_id} --send-to <admin address>",
    )


# -------------------------------------------------------------------------- facts


def fact_label(key: str) -> str:
    """``job_id`` → ``Job ID``: producers key ``facts`` in snake_case or words."""
    words = key.replace("_", " ").replace("-", " ").split()
    acronyms = {"id": "ID", "upn": "UPN", "url": "URL", "mfa": "MFA", "b2b": "B2B",
                "api": "API", "http": "HTTP"}
    shown = [acronyms.get(w.lower(), w) for w in words]
    if shown and shown[0] == words[0]:
        shown[0] = shown[0][:1].upper() + shown[0][1:]
    return " ".join(shown) or key


def looks_like_json(value: str) -> bool:
    return value.lstrip()[:1] in ("{", "[")


def _is_identifier(key: str, value: str) -> bool:
    norm = " ".join(key.replace("_", " ").replace("-", " ").lower().split())
    return (
        norm in _INTERNAL_KEYS
        or norm.endswith((" id", " key"))
        or bool(_GUID_RE.match(value.strip()))
        or looks_like_json(value)
    )


def _when(value: str) -> str:
    try:
        return format_when(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return value


def _facts(alert: AlertRecord) -> tuple[tuple[FactLine, ...], tuple[FactLine, ...]]:
    visible: list[FactLine] = []
    hidden: list[FactLine] = []
    client = alert.client
    if client:
        visible.append(FactLine("Client", client.name))
        if client.contacts:
            visible.append(FactLine("Client contact", ", ".join(client.contacts)))
        hidden.append(FactLine("Client tenant ID", client.tenant_id, True))
        if client.domains:
            hidden.append(FactLine("Client domains", ", ".join(client.domains)))
    if alert.who:
        visible.append(FactLine(_WHO_LABEL.get(alert.kind, "Who"), alert.who))
    if alert.when:
        visible.append(FactLine("When", format_when(alert.when)))
    facts = dict(alert.facts)
    previous = facts.pop("Previous verdict", None) or facts.pop("previous_verdict", None)
    seen_values = {f.value for f in visible} | ({client.tenant_id} if client else set())
    shown = 0
    for key, raw in facts.items():
        value = raw.strip()
        label = fact_label(key)
        if label.lower() == "verdict" and previous and previous != value:
            value = f"{value} (was {previous})"
        if label.lower().endswith(("since", "at")) and "T" in value:
            value = _when(value)
        if value in seen_values:
            continue
        seen_values.add(value)
        if (_is_identifier(key, value) or len(value) > VISIBLE_VALUE_MAX_CHARS
                or shown >= VISIBLE_PRODUCER_FACTS):
            hidden.append(FactLine(label, value, _is_identifier(key, value)))
            continue
        visible.append(FactLine(label, value))
        shown += 1
    if alert.batch_id:
        hidden.append(FactLine("Batch", alert.batch_id, True))
    return tuple(visible), tuple(hidden)


def _changes(alert: AlertRecord) -> tuple[tuple[ChangeLine, ...], tuple[str, ...]]:
    lines: list[ChangeLine] = []
    details: list[str] = []
    for change in alert.changes:
        before = "(not set)" if change.before is None else change.before
        after = "(not set)" if change.after is None else change.after
        mono = looks_like_json(before) or looks_like_json(after)
        shown_before = shorten(before, VISIBLE_VALUE_MAX_CHARS)
        shown_after = shorten(after, VISIBLE_VALUE_MAX_CHARS)
        if (shown_before, shown_after) != (before, after):
            details.append(f"{change.setting}: before {before}; after {after}")
        lines.append(ChangeLine(change.setting, shown_before, shown_after, mono))
    return tuple(lines), tuple(details)
