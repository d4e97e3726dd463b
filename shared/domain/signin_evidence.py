"""Evidence from the vendor's own sign-in log (DESIGN §3.3), for clients without consent.

Three failure codes matter:

* ``500212`` *NotAllowedByOutboundPolicyTenant* - the user's home (client) tenant's
  outbound policy blocks the vendor: the client drifted;
* ``500213`` *NotAllowedByInboundPolicyTenant* - the vendor's own inbound policy blocks the
  user: the vendor drifted;
* ``5000211`` - a tenant restrictions v2 policy, attached to the request by the device or
  network the user signed in from, does not allow the vendor tenant. TRv2 governs
  identities from *other* tenants on the policy owner's devices and networks, so for a
  client's own users it usually means they were on a third party's network or device; it
  is not evidence that the client's cross-tenant access settings changed.

Records come in two shapes, both understood here: Graph ``signIn`` (``homeTenantId``,
``resourceTenantId``, ``status.errorCode`` as a number, ``createdDateTime``) and Log
Analytics ``SigninLogs`` rows (``HomeTenantId``, ``ResourceTenantId``, ``ResultType`` as a
*string*, ``TimeGenerated``/``CreatedDateTime``). Failures are counted per home tenant over
a window; a threshold turns counts into :class:`SigninEvidence`. Evidence is shown beside
the policy verdict and never replaces it (:func:`combine`): public documentation does not
say plainly in which tenant's log a 500212 lands, so it is a signal, not a verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.finding_catalog import Finding, FindingCode, make_finding
from shared.domain.policy import is_guid
from shared.domain.posture import PostureResult, Verdict, with_findings

OUTBOUND_BLOCKED = 500212
INBOUND_BLOCKED = 500213
TENANT_RESTRICTIONS_BLOCKED = 5000211
WATCHED_CODES: tuple[int, ...] = (OUTBOUND_BLOCKED, INBOUND_BLOCKED, TENANT_RESTRICTIONS_BLOCKED)

_CODE_FINDING = {
    OUTBOUND_BLOCKED: FindingCode.SIGNIN_CLIENT_OUTBOUND_BLOCKED,
    INBOUND_BLOCKED: FindingCode.SIGNIN_VENDOR_INBOUND_BLOCKED,
    TENANT_RESTRICTIONS_BLOCKED: FindingCode.SIGNIN_TENANT_RESTRICTIONS_BLOCKED,
}


@dataclass(frozen=True, slots=True)
class SigninFailure:
    """One watched failure, reduced to what the counting needs."""

    home_tenant_id: str
    resource_tenant_id: str | None
    error_code: int
    created_at: datetime
    user_id: str | None = None
    app_id: str | None = None


class _Malformed(Exception):
    pass


def _field(record: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in record:
            return record[name]
    return None


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise _Malformed(f"bad timestamp {value!r}") from exc
    raise _Malformed("missing timestamp")


def _error_code(record: Mapping[str, Any]) -> int | None:
    status = record.get("status")
    if isinstance(status, Mapping):  # Graph signIn
        raw: Any = status.get("errorCode")
    else:  # Log Analytics SigninLogs: ResultType is a string ("0", "500212")
        raw = _field(record, "ResultType", "resultType")
    if raw is None:
        raise _Malformed("no error code")
    if isinstance(raw, bool):
        raise _Malformed("error code is a boolean")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.isdigit():
            return int(text)
        return None  # e.g. an empty ResultType or a textual status: not a watched code
    raise _Malformed(f"error code of type {type(raw).__name__}")


def _optional_text(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def parse_signin(record: Mapping[str, Any]) -> SigninFailure | None:
    """A watched failure from either record shape, or ``None`` for any other sign-in.

    Raises ``ValueError`` for a record that is not a sign-in at all (no error code, no
    timestamp on a watched failure): the counter reports those instead of guessing.
    """
    try:
        code = _error_code(record)
        if code not in WATCHED_CODES or code is None:
            return None
        home = _optional_text(_field(record, "homeTenantId", "HomeTenantId"))
        if home is None or not is_guid(home):
            raise _Malformed("watched failure without a home tenant ID")
        created = _timestamp(_field(record, "createdDateTime", "CreatedDateTime", "TimeGenerated"))
    except _Malformed as exc:
        raise ValueError(str(exc)) from exc
    return SigninFailure(
        home_tenant_id=home,
        resource_tenant_id=_optional_text(_field(record, "resourceTenantId", "ResourceTenantId")),
        error_code=code,
        created_at=created,
        user_id=_optional_text(_field(record, "userId", "UserId")),
        app_id=_optional_text(_field(record, "appId", "AppId")),
    )


@dataclass(frozen=True, slots=True)
class TenantFailureCounts:
    home_tenant_id: str
    counts: Mapping[int, int]  # watched code -> failures
    distinct_users: Mapping[int, int]  # watched code -> distinct user IDs seen
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class SigninCounts:
    window_start: datetime
    window_end: datetime
    by_tenant: Mapping[str, TenantFailureCounts]
    skipped: int = 0  # records that could not be read (reported, never silently dropped)


@dataclass
class _Tally:
    counts: dict[int, int] = field(default_factory=dict)
    users: dict[int, set[str]] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None


def count_failures(
    records: Iterable[Mapping[str, Any]],
    *,
    window_start: datetime,
    window_end: datetime,
    vendor_tenant_id: str | None = None,
) -> SigninCounts:
    """Count 500212 / 500213 / 5000211 per home tenant in ``[window_start, window_end)``.

    With ``vendor_tenant_id``, only sign-ins *into* the vendor tenant by users from *other*
    tenants count (the vendor's own staff signing in elsewhere are not client evidence).
    """
    vendor = vendor_tenant_id.strip().lower() if vendor_tenant_id else None
    tallies: dict[str, _Tally] = {}
    skipped = 0
    for record in records:
        if not isinstance(record, Mapping):
            skipped += 1
            continue
        try:
            failure = parse_signin(record)
        except ValueError:
            skipped += 1
            continue
        if failure is None:
            continue
        try:
            in_window = window_start <= failure.created_at < window_end
        except TypeError:  # naive timestamp against an aware window
            skipped += 1
            continue
        if not in_window:
            continue
        if vendor is not None:
            if failure.home_tenant_id == vendor:
                continue
            if failure.resource_tenant_id is not None and failure.resource_tenant_id != vendor:
                continue
        tally = tallies.setdefault(failure.home_tenant_id, _Tally())
        tally.counts[failure.error_code] = tally.counts.get(failure.error_code, 0) + 1
        if failure.user_id:
            tally.users.setdefault(failure.error_code, set()).add(failure.user_id)
        if tally.first is None or failure.created_at < tally.first:
            tally.first = failure.created_at
        if tally.last is None or failure.created_at > tally.last:
            tally.last = failure.created_at
    by_tenant = {
        tenant: TenantFailureCounts(
            home_tenant_id=tenant,
            counts=dict(t.counts),
            distinct_users={code: len(users) for code, users in t.users.items()},
            first_seen=t.first if t.first is not None else window_start,
            last_seen=t.last if t.last is not None else window_start,
        )
        for tenant, t in tallies.items()
    }
    return SigninCounts(window_start, window_end, by_tenant, skipped)


def counts_from_summary(
    summary: Mapping[str, Mapping[str | int, int]],
    *,
    window_start: datetime,
    window_end: datetime,
    distinct_users: Mapping[str, Mapping[str | int, int]] | None = None,
) -> SigninCounts:
    """Counts already aggregated at the source (a KQL ``summarize ... by HomeTenantId,
    ResultType``): ``{home tenant: {code: failures}}``, codes as text or numbers.

    Unwatched codes and non-numeric codes are ignored; the first/last-seen times are not
    known for aggregates and are set to the window bounds.
    """
    by_tenant: dict[str, TenantFailureCounts] = {}
    for raw_tenant, per_code in summary.items():
        tenant = raw_tenant.strip().lower()
        if not is_guid(tenant):
            continue
        counts: dict[int, int] = {}
        for raw_code, failures in per_code.items():
            text = str(raw_code).strip()
            if text.isdigit() and int(text) in WATCHED_CODES and failures > 0:
                counts[int(text)] = counts.get(int(text), 0) + int(failures)
        users: dict[int, int] = {}
        for raw_code, n in ((distinct_users or {}).get(raw_tenant) or {}).items():
            text = str(raw_code).strip()
            if text.isdigit() and int(text) in counts:
                users[int(text)] = int(n)
        if counts:
            by_tenant[tenant] = TenantFailureCounts(
                tenant, counts, users, first_seen=window_start, last_seen=window_end
            )
    return SigninCounts(window_start, window_end, by_tenant)


@dataclass(frozen=True, slots=True)
class EvidenceThreshold:
    """How many failures in the window make evidence (per code)."""

    min_failures: int = 3
    min_distinct_users: int = 1

    def met(self, failures: int, users: int | None) -> bool:
        """``users=None``: the source did not say who failed; only the count is judged."""
        if failures < self.min_failures:
            return False
        return users is None or users >= self.min_distinct_users


@dataclass(frozen=True, slots=True)
class SigninEvidence:
    home_tenant_id: str
    window_start: datetime
    window_end: datetime
    counts: Mapping[int, int]
    distinct_users: Mapping[int, int]
    significant: frozenset[int]  # codes whose counts met the threshold
    findings: tuple[Finding, ...]
    unavailable: str | None = None  # the source failed this time: why (no counts at all)

    @property
    def suggests_client_drift(self) -> bool:
        return OUTBOUND_BLOCKED in self.significant

    def alert_evidence(self) -> dict[str, int]:
        """The ``AlertRecord.evidence`` form: ``{"AADSTS500212": n, ...}``."""
        return {f"AADSTS{code}": n for code, n in sorted(self.counts.items()) if n}

    def to_dict(self) -> dict[str, Any]:
        return {
            "homeTenantId": self.home_tenant_id,
            "windowStart": self.window_start.isoformat(),
            "windowEnd": self.window_end.isoformat(),
            "counts": self.alert_evidence(),
            "distinctUsers": {f"AADSTS{c}": n for c, n in sorted(self.distinct_users.items())},
            "significant": [f"AADSTS{c}" for c in sorted(self.significant)],
            "findings": [f.to_dict() for f in self.findings],
        } | ({"unavailable": self.unavailable} if self.unavailable else {})


def _window_text(start: datetime, end: datetime) -> str:
    return f"between {start.isoformat()} and {end.isoformat()}"


def _evidence_finding(code: int, failures: int, users: int, tenant: str, window: str) -> Finding:
    who = f"{failures} sign-ins by {users} users" if users else f"{failures} sign-ins"
    facts = {"homeTenantId": tenant, "failures": str(failures), "distinctUsers": str(users)}
    if code == OUTBOUND_BLOCKED:
        return make_finding(
            FindingCode.SIGNIN_CLIENT_OUTBOUND_BLOCKED,
            f"{who} from tenant {tenant} failed with AADSTS500212 {window}: suspected block "
            "by the client's outbound cross-tenant access policy (AADSTS500212 names the "
            "user's home tenant's outbound policy; read the client's policy to confirm).",
            "Ask the client's admin to follow the vendor's onboarding guide: in the Entra admin "
            "center > External Identities > Cross-tenant access settings > Organizational "
            "settings, add the vendor and allow outbound B2B collaboration for users and "
            "external applications (see the CLIENT_DEFAULT_OUTBOUND_BLOCKED page).",
            facts=facts,
        )
    if code == INBOUND_BLOCKED:
        return make_finding(
            FindingCode.SIGNIN_VENDOR_INBOUND_BLOCKED,
            f"{who} from tenant {tenant} failed with AADSTS500213 {window}: the vendor's own "
            "inbound cross-tenant access policy blocks these users.",
            "Vendor admin: run the vendor-side checks for this client and open Cross-tenant "
            "access settings > Organizational settings > the client > Inbound access; allow "
            "B2B collaboration for the client's users to the vendor's apps.",
            facts=facts,
        )
    return make_finding(
        FindingCode.SIGNIN_TENANT_RESTRICTIONS_BLOCKED,
        f"{who} from tenant {tenant} failed with AADSTS5000211 {window}: a tenant "
        "restrictions v2 policy, added to the request by the device or network the users "
        "signed in from, does not allow the vendor tenant. TRv2 governs identities from "
        "other tenants on its owner's devices and networks, so these users were most likely "
        "on a third party's network or managed device (a contractor or outsourcer); this is "
        "not evidence that the client's cross-tenant access settings changed.",
        "Find where the users signed in from (the failed sign-ins' location and device "
        "details) and ask that network's or device's owner to allow the vendor tenant in "
        "its tenant restrictions: Cross-tenant access settings > Organizational settings > "
        "the vendor > Tenant restrictions (or the default's). Nothing changes in the "
        "client's outbound or the vendor's inbound settings.",
        facts=facts,
    )


def build_evidence(
    counts: SigninCounts, home_tenant_id: str, threshold: EvidenceThreshold | None = None
) -> SigninEvidence:
    """Evidence for one client tenant; no failures means empty evidence, not an error."""
    limit = threshold or EvidenceThreshold()
    tenant = home_tenant_id.strip().lower()
    tally = counts.by_tenant.get(tenant)
    per_code = dict(tally.counts) if tally else {}
    users = dict(tally.distinct_users) if tally else {}
    window = _window_text(counts.window_start, counts.window_end)
    significant: set[int] = set()
    findings: list[Finding] = []
    for code in WATCHED_CODES:
        failures = per_code.get(code, 0)
        distinct = users.get(code)
        if failures and limit.met(failures, distinct):
            significant.add(code)
            findings.append(_evidence_finding(code, failures, distinct or 0, tenant, window))
    return SigninEvidence(
        home_tenant_id=tenant,
        window_start=counts.window_start,
        window_end=counts.window_end,
        counts={code: per_code.get(code, 0) for code in WATCHED_CODES},
        distinct_users={code: users.get(code, 0) for code in WATCHED_CODES},
        significant=frozenset(significant),
        findings=tuple(findings),
    )


def significant_evidence(
    counts: SigninCounts, threshold: EvidenceThreshold | None = None
) -> dict[str, SigninEvidence]:
    """Evidence for every home tenant whose failures met the threshold."""
    result = {}
    for tenant in counts.by_tenant:
        evidence = build_evidence(counts, tenant, threshold)
        if evidence.significant:
            result[tenant] = evidence
    return result


def combine(
    result: PostureResult, evidence: SigninEvidence | None, *, unavailable: str | None = None
) -> PostureResult:
    """Put sign-in evidence beside the policy verdict; the verdict itself never changes.

    When the verdict is UNKNOWN (typically: no consent) a burst of 500212 adds the
    CLIENT_SUSPECTED_DRIFT finding, which the alert state machine treats as drift.
    ``unavailable``: the evidence source failed this sweep (why); the record says so
    instead of pretending there were no failures.
    """
    if unavailable:
        window_start = evidence.window_start if evidence else None
        window_end = evidence.window_end if evidence else None
        empty = SigninEvidence(
            home_tenant_id=evidence.home_tenant_id if evidence else "",
            window_start=window_start or datetime.min,
            window_end=window_end or datetime.min,
            counts={},
            distinct_users={},
            significant=frozenset(),
            findings=(),
            unavailable=unavailable,
        )
        return with_findings(
            result,
            (),
            evidence=empty,
            explanation=(*result.explanation, f"Sign-in evidence unavailable: {unavailable}"),
        )
    if evidence is None:
        return result
    extra: list[Finding] = list(evidence.findings)
    notes: list[str] = []
    window = _window_text(evidence.window_start, evidence.window_end)
    n = evidence.counts.get(OUTBOUND_BLOCKED, 0)
    if evidence.suggests_client_drift:
        if result.verdict is Verdict.UNKNOWN:
            extra.append(
                make_finding(
                    FindingCode.CLIENT_SUSPECTED_DRIFT,
                    f"The client's policy could not be read, and {n} sign-ins from tenant "
                    f"{evidence.home_tenant_id} failed with AADSTS500212 {window}: suspected "
                    "block of the vendor in the client's outbound settings.",
                    "Contact the client's admin with the vendor's onboarding guide (allow "
                    "outbound B2B collaboration to the vendor for users and external "
                    "applications) and ask for admin consent to the read-only app so the "
                    "policy can be checked directly.",
                    facts={"homeTenantId": evidence.home_tenant_id, "failures": str(n)},
                )
            )
            notes.append("Sign-in evidence: AADSTS500212 burst while the policy is unreadable.")
        elif result.verdict is Verdict.ALLOWED:
            notes.append(
                "Sign-in evidence contradicts the policy read (ALLOWED): the policy may have "
                "changed since, or the failing users/apps differ from those checked."
            )
        else:
            notes.append(f"Sign-in evidence (AADSTS500212 x{n}) is consistent with the verdict.")
    return with_findings(
        result, extra, evidence=evidence, explanation=result.explanation + tuple(notes)
    )
