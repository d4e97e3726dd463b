"""Use cases: schedule a posture sweep (fan-out) and check one client (one queue message).

A check reads as its steps: read the client's policy → evaluate it → add the sign-in
evidence → fold it into the client's alert state (transition) → the vendor-side checks →
store. Order of effects in ``_store`` is what makes it crash-safe: alerts are enqueued
*before* the client's alert state moves, so a crash can repeat an alert (the outbox
de-duplicates by key) but never lose one.

Heavy SDKs are imported lazily at the trigger edge (``shared/entrypoints/triggers.py``
imports this module when a trigger first fires); here imports are ordinary.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.graph import GraphError
from shared.adapters.policy_reader import (
    DEFAULT_PATH,
    partner_path,
    read_authorization_policy,
    read_policy_pair,
)
from shared.adapters.repositories import (
    ClientRegistry,
    JsonStateStore,
    PostureStore,
    alert_state_store,
)
from shared.config import QUEUE_ALERTS, QUEUE_CHECK_CLIENT
from shared.domain.client_state import (
    ClientAlertState,
    Transition,
    TransitionKind,
    next_state,
    observe,
)
from shared.domain.clients import ClientRecord, ConsentStatus
from shared.domain.finding_catalog import Finding, FindingCode
from shared.domain.messages import AlertRecord, CheckClient
from shared.domain.policy import (
    DefaultPolicy,
    PolicyParseError,
    parse_default_policy,
    parse_partner_policy,
)
from shared.domain.posture import PostureResult, evaluate_outbound_posture, unknown_posture
from shared.domain.posture_alerts import (
    AlertContext,
    alert_for_transition,
    vendor_side_alert,
    vendor_side_signature,
)
from shared.domain.signin_evidence import (
    EvidenceThreshold,
    build_evidence,
    combine,
    counts_from_summary,
)
from shared.domain.vendor_checks import evaluate_vendor_side, parse_authorization_policy
from shared.services.guest_hygiene import resets_after_recovery

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger(__name__)

VENDOR_DEFAULT_TTL_SECONDS = 300.0  # the vendor's default policy, shared by every check


@dataclass(frozen=True)
class SweepScheduled:
    sweep_id: str
    clients: int
    evidence_tenants: int


@dataclass
class CheckOutcome:
    tenant_id: str
    verdict: str
    alerts: list[str] = field(default_factory=list)  # dedup keys enqueued
    skipped: str | None = None


async def schedule_sweep(app: App, now: datetime) -> SweepScheduled:
    """Enqueue one ``CheckClient`` per registered client, with its sign-in evidence."""
    settings = app.settings
    clients = await ClientRegistry(app.tables).list()
    counts = await app.signin_source().failure_counts(now, settings.signin_window_hours)
    sweep_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    limiter = asyncio.Semaphore(32)

    async def enqueue(client: ClientRecord) -> None:
        message = CheckClient(
            tenant_id=client.tenant_id,
            sweep_id=sweep_id,
            requested_at=now,
            signin_counts=counts.get(client.tenant_id, {}),
            signin_window_hours=settings.signin_window_hours,
        )
        async with limiter:
            await app.queues.send(QUEUE_CHECK_CLIENT, message)

    await asyncio.gather(*(enqueue(c) for c in clients))
    log.info("sweep %s scheduled %d clients", sweep_id, len(clients))
    return SweepScheduled(sweep_id, len(clients), len(counts))


# ------------------------------------------------------------------------ one client


@dataclass
class ClientRead:
    """What reading and evaluating the client's own policy gave."""

    result: PostureResult
    consent: ConsentStatus
    raw_policy: dict[str, Any] | None = None  # kept when the policy could not be interpreted


@dataclass
class StateStep:
    """The client's alert state folded with this observation, and what to alert."""

    state: ClientAlertState
    etag: str | None
    transitions: list[Transition]
    alerts: list[AlertRecord]
    vendor_signature: str  # the signature last alerted for vendor-side findings


@dataclass
class VendorSide:
    findings: list[Finding]
    signature: str
    alerts: list[AlertRecord]


async def check_client(
    app: App, message: CheckClient, now: datetime, *, final_attempt: bool = False
) -> CheckOutcome:
    """Evaluate one client, store the result, and enqueue alerts at state transitions.

    Transient Graph failures propagate (the host retries the message); on the final
    attempt they become an UNKNOWN "tenant unreachable" result instead of a poison message.
    """
    registry = ClientRegistry(app.tables)
    client = await registry.get(message.tenant_id)
    if client is None:
        return CheckOutcome(message.tenant_id, "", skipped="client no longer registered")

    read = await _read_and_evaluate(app, client, final_attempt=final_attempt)
    result = _with_signin_evidence(app, client, message, read.result)
    step = await _transition(app, client, message, result, now)
    vendor = await _vendor_side(app, client, message, now, step, final_attempt=final_attempt)
    await _store(app, registry, client, message, now, read, result, step, vendor)
    alerts = [*step.alerts, *vendor.alerts]
    return CheckOutcome(client.tenant_id, result.verdict.value, [a.dedup_key for a in alerts])


async def _read_and_evaluate(app: App, client: ClientRecord, *, final_attempt: bool) -> ClientRead:
    """Read the client's default + vendor partner entry and evaluate the outbound posture."""
    settings = app.settings
    try:
        pair = await read_policy_pair(
            app.graph.client_tenant(client.tenant_id), settings.vendor_tenant_id
        )
    except GraphError as exc:
        if exc.consent_missing:
            return ClientRead(
                unknown_posture(
                    FindingCode.CLIENT_CONSENT_MISSING,
                    f"Graph answered {exc.status} {exc.code} when reading the client's policy",
                    vendor_tenant_id=settings.vendor_tenant_id,
                ),
                ConsentStatus.MISSING,
            )
        if exc.transient and not final_attempt:
            raise
        return ClientRead(
            unknown_posture(
                FindingCode.CLIENT_TENANT_UNREACHABLE,
                f"Graph answered {exc.status} {exc.code}: {exc.message}",
                vendor_tenant_id=settings.vendor_tenant_id,
            ),
            client.consent,
        )
    try:
        result = evaluate_outbound_posture(
            parse_default_policy(pair.default),
            parse_partner_policy(pair.partner) if pair.partner is not None else None,
            settings.vendor_tenant_id,
            settings.vendor_app_ids,
            vendor_name=settings.vendor_name,
            vendor_domain=settings.vendor_domain,
        )
    except PolicyParseError as exc:
        # A shape we do not understand is reported with the raw JSON, never guessed at.
        return ClientRead(
            unknown_posture(
                FindingCode.POLICY_INCOMPLETE,
                f"The client's policy could not be interpreted: {exc}",
                vendor_tenant_id=settings.vendor_tenant_id,
            ),
            ConsentStatus.GRANTED,
            raw_policy={"default": pair.default, "partner": pair.partner},
        )
    return ClientRead(result, ConsentStatus.GRANTED)


def _with_signin_evidence(
    app: App, client: ClientRecord, message: CheckClient, result: PostureResult
) -> PostureResult:
    """Combine the posture with the sign-in failures the scheduler counted for this client."""
    window_end = message.requested_at
    window_start = window_end - timedelta(hours=message.signin_window_hours)
    by_code: dict[str | int, int] = {k: v for k, v in message.signin_counts.items()}
    counts = counts_from_summary(
        {client.tenant_id: by_code},
        window_start=window_start,
        window_end=window_end,
    )
    evidence = build_evidence(
        counts, client.tenant_id, EvidenceThreshold(min_failures=app.settings.signin_threshold)
    )
    return combine(result, evidence)


def _alert_context(app: App) -> AlertContext:
    s = app.settings
    return AlertContext(s.vendor_name, s.entra_portal_url, s.docs_base_url)


async def _transition(
    app: App,
    client: ClientRecord,
    message: CheckClient,
    result: PostureResult,
    now: datetime,
) -> StateStep:
    """Fold the observation into the client's alert state; build the alerts it calls for."""
    store = alert_state_store(app.tables)
    raw_state, etag = await store.get(client.tenant_id)
    previous = ClientAlertState.from_dict(raw_state["client"]) if raw_state else None
    observation = observe(result, client.tenant_id, client.expected_scope.user_groups)
    state, transitions = next_state(
        previous, observation, now, timedelta(hours=app.settings.reminder_hours)
    )
    previous_verdict = None
    if transitions:
        previous_posture = await PostureStore(app.tables).get(client.tenant_id)
        previous_verdict = (previous_posture or {}).get("verdict")
    ctx = _alert_context(app)
    alerts = [
        alert_for_transition(t, client, result, ctx, previous_verdict).model_copy(
            update={"batch_id": message.sweep_id}
        )
        for t in transitions
    ]
    return StateStep(
        state, etag, transitions, alerts, str((raw_state or {}).get("vendor_signature", ""))
    )


async def _vendor_default(app: App) -> DefaultPolicy:
    cached = app.extras.get("vendor_default")
    if cached and time.monotonic() - cached[0] < VENDOR_DEFAULT_TTL_SECONDS:
        return cached[1]  # type: ignore[no-any-return]
    policy = parse_default_policy(await app.graph.vendor().get_json(DEFAULT_PATH))
    app.extras["vendor_default"] = (time.monotonic(), policy)
    return policy


async def _vendor_side_findings(app: App, client: ClientRecord) -> list[Finding]:
    graph = app.graph.vendor()
    default = await _vendor_default(app)
    path = partner_path(client.tenant_id)
    try:
        partner = parse_partner_policy(await graph.get_json(path))
    except GraphError as exc:
        if exc.status != 404:
            raise
        partner = None
    auth_cached = app.extras.get("vendor_authorization_policy")
    if not auth_cached or time.monotonic() - auth_cached[0] > VENDOR_DEFAULT_TTL_SECONDS:
        raw = await read_authorization_policy(graph)
        auth_cached = (time.monotonic(), parse_authorization_policy(raw) if raw else None)
        app.extras["vendor_authorization_policy"] = auth_cached
    return evaluate_vendor_side(
        default,
        partner,
        client.tenant_id,
        app.settings.vendor_app_ids,
        auth_cached[1],
        client.domains,
        client_name=client.name,
    )


async def _vendor_side(
    app: App,
    client: ClientRecord,
    message: CheckClient,
    now: datetime,
    step: StateStep,
    *,
    final_attempt: bool,
) -> VendorSide:
    """What the vendor's own settings do to this client's guests; alert when that changes."""
    try:
        findings = await _vendor_side_findings(app, client)
    except GraphError as exc:
        if exc.transient and not final_attempt:
            raise
        log.warning("vendor-side checks for %s skipped: %s", client.tenant_id, exc)
        return VendorSide([], step.vendor_signature, [])
    except PolicyParseError as exc:
        log.error("vendor-side policy not understood for %s: %s", client.tenant_id, exc)
        return VendorSide([], step.vendor_signature, [])
    signature = vendor_side_signature(findings)
    alerts = []
    if signature and signature != step.vendor_signature:
        alerts.append(
            vendor_side_alert(findings, client, signature, now, _alert_context(app)).model_copy(
                update={"batch_id": message.sweep_id}
            )
        )
    return VendorSide(findings, signature, alerts)


async def _store(
    app: App,
    registry: ClientRegistry,
    client: ClientRecord,
    message: CheckClient,
    now: datetime,
    read: ClientRead,
    result: PostureResult,
    step: StateStep,
    vendor: VendorSide,
) -> None:
    """Alerts first, then recovery work, then the posture row and the alert state."""
    for alert in [*step.alerts, *vendor.alerts]:
        await app.queues.send(QUEUE_ALERTS, alert)
    await _reset_stranded_guests(app, client, step.transitions, now)
    record: dict[str, Any] = result.to_dict() | {
        "clientName": client.name,
        "clientTenantId": client.tenant_id,
        "vendorFindings": [f.to_dict() for f in vendor.findings],
        "state": step.state.status.value,
        "sweepId": message.sweep_id,
    }
    if read.raw_policy is not None:
        record["rawPolicy"] = read.raw_policy
    await PostureStore(app.tables).save(client.tenant_id, now, record)
    store: JsonStateStore = alert_state_store(app.tables)
    await store.put(
        client.tenant_id,
        {"client": step.state.to_dict(), "vendor_signature": vendor.signature},
        step.etag,
    )
    if read.consent is not client.consent:
        await registry.upsert(client.model_copy(update={"consent": read.consent}))


async def _reset_stranded_guests(
    app: App, client: ClientRecord, transitions: list[Transition], now: datetime
) -> None:
    for t in transitions:
        if t.kind is TransitionKind.RECOVERED:
            # Guests invited while the client was blocked never got to redeem: reset them
            # now that they can (idempotent per episode, so a retried check is harmless).
            resets = await resets_after_recovery(
                app,
                client.tenant_id,
                drift_started_at=t.episode_started_at,
                recovered_at=t.at,
                now=now,
            )
            log.info("client %s recovered; stranded guest resets: %s", client.tenant_id, resets)
