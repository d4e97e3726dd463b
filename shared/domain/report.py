"""The portfolio report: one row per registered client, totals per verdict (issue 17.1).

Pure: the service reads the client registry, the latest posture record and the alert
state of every client (page by page) and hands each triple to :func:`report_row`, which
keeps only what the report shows. Rows are small on purpose: the stored posture record
carries the effective policy, the explanation and the reach table, none of which the
report needs, and 10,000 of them must fit comfortably in one Functions worker.

What a row says, and where it comes from:

* verdict — the latest posture record (``NOT_CHECKED`` when the client was never swept);
* state and *since when* — the alert state machine (``shared/domain/client_state.py``):
  a drift or missing-consent episode started at ``episode_started_at``; an OK client has
  been OK since its last recovery alert (``last_alert_at``) or, if it never drifted, since
  it was first observed;
* findings (client side, sign-in evidence included) and vendor-side findings, each with
  its runbook page ``docs/findings/<CODE>.md``;
* consent status from the registry, last checked from the posture record;
* the acknowledgement (issue 18) when the stored state carries one — read leniently, so
  the report neither breaks nor invents one before that issue lands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.domain.clients import ClientRecord

NOT_CHECKED = "NOT_CHECKED"
VERDICTS: tuple[str, ...] = ("BLOCKED", "LIMITED", "UNKNOWN", "ALLOWED", NOT_CHECKED)
STATES: tuple[str, ...] = ("drifted", "consent_missing", "new", "not_checked", "ok")
STATE_LABELS: Mapping[str, str] = {
    "drifted": "Drifted",
    "consent_missing": "Consent missing",
    "new": "New",
    "ok": "OK",
    "not_checked": "Not checked",
}
_VERDICT_RANK = {v: i for i, v in enumerate(VERDICTS)}
_STATE_RANK = {s: i for i, s in enumerate(STATES)}
_SEVERITY_RANK = {"high": 0, "medium": 1, "review": 2, "low": 3, "info": 4}


@dataclass(frozen=True, slots=True)
class ReportFinding:
    code: str
    severity: str
    title: str
    message: str

    def to_json(self, runbook: str) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "message": self.message,
            "runbook": runbook,
        }


@dataclass(frozen=True, slots=True)
class SigninSummary:
    """Sign-in failures from the client's tenant in the sweep's window (AADSTS code → n)."""

    counts: tuple[tuple[str, int], ...]
    distinct_users: tuple[tuple[str, int], ...]
    significant: tuple[str, ...]
    window_start: str | None
    window_end: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "distinctUsers": dict(self.distinct_users),
            "significant": list(self.significant),
            "windowStart": self.window_start,
            "windowEnd": self.window_end,
        }


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    by: str | None
    reason: str | None
    until: datetime | None
    at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.until is None or self.until > now

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "by": self.by,
            "reason": self.reason,
            "until": _iso(self.until),
            "at": _iso(self.at),
            "active": self.active(now),
        }


@dataclass(frozen=True, slots=True)
class ReportRow:
    tenant_id: str
    name: str
    consent: str
    verdict: str
    state: str
    since: datetime | None
    checked_at: datetime | None
    reason: str | None  # why UNKNOWN, when it is
    findings: tuple[ReportFinding, ...]
    vendor_findings: tuple[ReportFinding, ...]
    signins: SigninSummary | None
    acknowledgement: Acknowledgement | None

    @property
    def all_codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.code for f in (*self.findings, *self.vendor_findings)))

    @property
    def sort_key(self) -> tuple[int, int, str, str]:
        """Worst first: drifted, consent missing, new, never checked, then OK."""
        return (
            _STATE_RANK.get(self.state, len(STATES)),
            _VERDICT_RANK.get(self.verdict, len(VERDICTS)),
            self.name.lower(),
            self.tenant_id,
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _timestamp(value: Any) -> datetime | None:
    """Stored timestamps are ISO strings (alert state) or datetimes (table columns)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _findings(raw: Any) -> tuple[ReportFinding, ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if not isinstance(item, Mapping) or not _text(item.get("code")):
            continue
        out.append(
            ReportFinding(
                code=str(item["code"]).strip(),
                severity=_text(item.get("severity")) or "info",
                title=_text(item.get("title")) or str(item["code"]),
                message=_text(item.get("message")) or "",
            )
        )
    out.sort(key=lambda f: (_SEVERITY_RANK.get(f.severity, 5), f.code))
    return tuple(out)


def _counts(raw: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(raw, Mapping):
        return ()
    return tuple(sorted((str(k), int(v)) for k, v in raw.items() if isinstance(v, int) and v > 0))


def _signins(raw: Any) -> SigninSummary | None:
    if not isinstance(raw, Mapping):
        return None
    counts = _counts(raw.get("counts"))
    if not counts:
        return None
    significant = raw.get("significant")
    return SigninSummary(
        counts=counts,
        distinct_users=_counts(raw.get("distinctUsers")),
        significant=tuple(str(s) for s in significant) if isinstance(significant, list) else (),
        window_start=_text(raw.get("windowStart")),
        window_end=_text(raw.get("windowEnd")),
    )


def _pick(raw: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if raw.get(name) not in (None, ""):
            return raw[name]
    return None


def parse_acknowledgement(state: Mapping[str, Any] | None) -> Acknowledgement | None:
    """The acknowledgement stored with a client's alert state, if there is one.

    Issue 18 stores who acknowledged a drift, why and until when with the state; the
    exact spelling is its own, so both snake_case and camelCase keys are read, at the top
    of the stored document or inside its ``client`` part. Anything else: no
    acknowledgement (the report omits it rather than guess).
    """
    if not isinstance(state, Mapping):
        return None
    candidates = [state.get("acknowledgement"), state.get("ack")]
    client = state.get("client")
    if isinstance(client, Mapping):
        candidates += [client.get("acknowledgement"), client.get("ack")]
    for raw in candidates:
        if not isinstance(raw, Mapping):
            continue
        by = _text(_pick(raw, "by", "acknowledged_by", "acknowledgedBy", "requested_by"))
        reason = _text(raw.get("reason"))
        until = _timestamp(_pick(raw, "until", "expires_at", "expiresAt"))
        at = _timestamp(_pick(raw, "at", "acknowledged_at", "acknowledgedAt"))
        if reason or until or by:
            return Acknowledgement(by=by, reason=reason, until=until, at=at)
    return None


def state_since(client_state: Mapping[str, Any] | None) -> datetime | None:
    """Since when the client has been in its current alert state."""
    if not isinstance(client_state, Mapping):
        return None
    status = client_state.get("status")
    first = _timestamp(client_state.get("first_observed_at"))
    if status in ("drifted", "consent_missing"):
        return _timestamp(client_state.get("episode_started_at")) or first
    if status == "ok" and int(client_state.get("episode") or 0) > 0:
        # The last alert of an OK client is the recovery (or consent restored) that ended
        # its last episode: OK never alerts otherwise.
        return _timestamp(client_state.get("last_alert_at")) or first
    return first


def report_row(
    client: ClientRecord,
    posture: Mapping[str, Any] | None,
    alert_state: Mapping[str, Any] | None,
    *,
    checked_at: datetime | None = None,
) -> ReportRow:
    """One client's row from its registry record, posture record and stored alert state.

    ``alert_state`` is the stored document (``{"client": {...}, "vendor_signature": ...}``);
    ``checked_at`` is the posture row's ``CheckedAt`` column when the caller has it.
    """
    posture = posture if isinstance(posture, Mapping) else None
    client_state = alert_state.get("client") if isinstance(alert_state, Mapping) else None
    if not isinstance(client_state, Mapping):
        client_state = None
    if posture is None:
        verdict, state = NOT_CHECKED, "not_checked"
    else:
        verdict = str(posture.get("verdict") or "UNKNOWN").upper()
        if verdict not in _VERDICT_RANK:
            verdict = "UNKNOWN"
        state = str((client_state or {}).get("status") or posture.get("state") or "new")
        if state not in _STATE_RANK:
            state = "new"
    evidence = posture.get("evidence") if posture else None
    return ReportRow(
        tenant_id=client.tenant_id,
        name=client.name,
        consent=client.consent.value,
        verdict=verdict,
        state=state,
        since=state_since(client_state) if posture is not None else None,
        checked_at=checked_at or (_timestamp(posture.get("checkedAt")) if posture else None),
        reason=_text(posture.get("reason")) if posture else None,
        findings=_findings(posture.get("findings")) if posture else (),
        vendor_findings=_findings(posture.get("vendorFindings")) if posture else (),
        signins=_signins(evidence),
        acknowledgement=parse_acknowledgement(alert_state),
    )


@dataclass(frozen=True)
class PortfolioReport:
    generated_at: datetime
    vendor_name: str
    rows: tuple[ReportRow, ...]

    @property
    def totals(self) -> dict[str, int]:
        """Clients per verdict, every verdict listed (zeros included), worst first."""
        counted = Counter(r.verdict for r in self.rows)
        return {v: counted.get(v, 0) for v in VERDICTS}

    @property
    def state_totals(self) -> dict[str, int]:
        counted = Counter(r.state for r in self.rows)
        return {s: counted.get(s, 0) for s in STATES}

    @property
    def finding_totals(self) -> dict[str, int]:
        """Clients per finding code (client and vendor side), most frequent first."""
        counted = Counter(code for r in self.rows for code in r.all_codes)
        return dict(sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def has_acknowledgements(self) -> bool:
        return any(r.acknowledgement is not None for r in self.rows)

    def row_json(self, row: ReportRow, runbook: Callable[[str], str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "tenantId": row.tenant_id,
            "name": row.name,
            "verdict": row.verdict,
            "state": row.state,
            "since": _iso(row.since),
            "consent": row.consent,
            "checkedAt": _iso(row.checked_at),
            "reason": row.reason,
            "findings": [f.to_json(runbook(f.code)) for f in row.findings],
            "vendorFindings": [f.to_json(runbook(f.code)) for f in row.vendor_findings],
            "signins": None if row.signins is None else row.signins.to_json(),
        }
        if row.acknowledgement is not None:
            body["acknowledgement"] = row.acknowledgement.to_json(self.generated_at)
        return body

    def to_json(self, runbook: Callable[[str], str]) -> dict[str, Any]:
        """The JSON form; ``runbook(code)`` gives a finding's page URL."""
        return {
            "generatedAt": self.generated_at.isoformat(),
            "vendor": self.vendor_name,
            "clients": len(self.rows),
            "totals": self.totals,
            "states": self.state_totals,
            "findings": self.finding_totals,
            "rows": [self.row_json(r, runbook) for r in self.rows],
        }


def build_report(
    rows: Iterable[ReportRow], generated_at: datetime, vendor_name: str
) -> PortfolioReport:
    if generated_at.tzinfo is None:
        raise ValueError("generated_at must be timezone-aware")
    ordered: Sequence[ReportRow] = sorted(rows, key=lambda r: r.sort_key)
    return PortfolioReport(generated_at, vendor_name, tuple(ordered))
