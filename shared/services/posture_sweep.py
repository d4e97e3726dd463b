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
import json
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.credentials import TokenRequestError
from shared.adapters.graph import GraphError
from shared.adapters.policy_reader import PolicyPair, read_policy_pair
from shared.adapters.repositories import (
    ClientRegistry,
    JsonStateStore,
    PostureStore,
    alert_state_store,
)
from shared.adapters.storage import EntityConflict
from shared.config import QUEUE_ALERTS, QUEUE_CHECK_CLIENT
from shared.domain.client_state import (
    ClientAlertState,
    Transition,
    TransitionKind,
    next_state,
    observe,
    state_document_changed,
)
from shared.domain.clients import ClientRecord, ConsentStatus
from shared.domain.finding_catalog import Finding, FindingCode, make_finding
from shared.domain.messages import AlertRecord, CheckClient, CheckClientBatch, VendorSnapshot
from shared.domain.policy import PolicyParseError, parse_default_policy, parse_partner_policy
from shared.domain.posture import (
    PostureResult,
    Verdict,
    evaluate_outbound_posture,
    unknown_posture,
)
from shared.domain.posture_alerts import (
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
from shared.domain.sweep_batches import MessageGroups, pack_checks
from shared.domain.tenant_cloud import CLOUD_KEY, KnownCloud, newest
from shared.domain.token_errors import TokenFailureKind
from shared.domain.vendor_alerts import per_client, period_key, vendor_identity_alert
from shared.domain.vendor_checks import evaluate_vendor_side
from shared.services.acknowledgements import (
    AppliedAck,
    annotate,
    apply_acknowledgement,
    expiry_alert,
    new_finding_alert,
    record_ack_activity,
)
from shared.services.activity import record_transitions
from shared.services.detection import observe as observe_latency
from shared.services.detection import posture_latency
from shared.services.guest_hygiene import resets_after_recovery
from shared.services.source_health import read_signin_evidence
from shared.services.vendor_inputs import client_cloud, inviter_role_ids, vendor_side_inputs
from shared.services.vendor_policy import (
    SweptClient,
    VendorPolicyUnreadable,
    VendorWideTally,
    alert_context,
    alert_unreadable,
    current_generation,
    read_vendor_policies,
    send_once,
    stream_snapshots,
    vendor_inputs,
)

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger(__name__)

ENQUEUE_CONCURRENCY = 32

# A client's share of the vendor side until its message goes out: tenant ID, its partner
# entry as JSON text (small in memory), whether the entry is known, whether the vendor's
# policies were read at all.
Share = tuple[str, str | None, bool, bool]
STATE_RACE_RETRIES = 2


@dataclass(frozen=True)
class SweepScheduled:
    sweep_id: str
    clients: int
    evidence_tenants: int


@dataclass(frozen=True)
class Prefetched:
    """A client's registry record and alert state, read with the rest of its sweep
    message's clients (two range reads per message instead of two reads per client)."""

    record: ClientRecord | None  # None: no longer registered
    prior: tuple[Any, str | None]  # the alert-state document and its ETag; (None, None)


@dataclass
class CheckOutcome:
    tenant_id: str
    verdict: str
    alerts: list[str] = field(default_factory=list)  # dedup keys enqueued
    skipped: str | None = None


async def schedule_sweep(app: App, now: datetime) -> SweepScheduled:
    """Enqueue every registered client's check (``CheckClient``, a few to a message),
    with its sign-in evidence.

    The vendor's own policies are read here once (default, authorization policy, the paged
    partner list) and each message carries its client's share (``VendorSnapshot``); the
    vendor-wide findings are collected on the way and alerted once (issue 14.2).
    """
    settings = app.settings
    # Independent reads, at once: no check starts before these and the partner list's
    # first page below are in, so every round trip in front of them delays the sweep.
    records, evidence, vendor, inviter_roles = await asyncio.gather(
        ClientRegistry(app.tables).list(),
        read_signin_evidence(app, now),  # never raises: evidence is a signal
        read_vendor_policies(app, now),
        inviter_role_ids(app),
    )
    # Checks run beside the paging below: the fan-out keeps a few strings per client, not
    # the records (their memory would add to the checks' at the sweep's peak).
    clients = [SweptClient.of(record) for record in records]
    del records
    counts = evidence.counts
    sweep_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    limiter = asyncio.Semaphore(ENQUEUE_CONCURRENCY)

    def check_of(tenant_id: str, vendor: VendorSnapshot | None) -> CheckClient:
        return CheckClient(
            tenant_id=tenant_id,
            sweep_id=sweep_id,
            requested_at=now,
            signin_counts=counts.get(tenant_id, {}),
            signin_window_hours=settings.signin_window_hours,
            signin_unavailable=evidence.unavailable,
            vendor=vendor,
        )

    # Every client's share of the vendor side, kept small (its partner entry as JSON text)
    # until its message goes out: a message is a run of consecutive tenant IDs (one key
    # range of the registry and of the alert states, which its check reads in one go) and
    # goes out as soon as each of its clients' share is known, while the partner list is
    # still being paged, instead of after its last page.
    groups: MessageGroups[Share] = MessageGroups(
        [c.tenant_id for c in clients], settings.checks_per_message
    )
    sending: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    async def enqueue(texts: list[str]) -> None:
        async with limiter:
            for text in texts:
                await app.queues.send(QUEUE_CHECK_CLIENT, text)

    def sent(task: asyncio.Task[None]) -> None:
        sending.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            failures.append(error)

    async def ship(shares: list[Share]) -> None:
        if failures:
            raise failures[0]
        while len(sending) >= 2 * ENQUEUE_CONCURRENCY:  # bounded: messages in memory
            await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
        texts = pack_checks([check_for(share) for share in shares], settings.checks_per_message)
        task = asyncio.create_task(enqueue(texts))
        sending.add(task)
        task.add_done_callback(sent)

    async def send(batch: list[tuple[SweptClient, VendorSnapshot | None]]) -> None:
        for client, snapshot in batch:
            if snapshot is None:
                share: Share = (client.tenant_id, None, False, False)
            else:
                partner = None if snapshot.partner is None else json.dumps(snapshot.partner)
                share = (client.tenant_id, partner, snapshot.partner_known, True)
            ready = groups.decide(client.tenant_id, share)
            if ready is not None:
                await ship(ready)

    def check_for(share: Share) -> CheckClient:
        tenant_id, partner, known, has_vendor = share
        snapshot = (
            vendor.snapshot(None if partner is None else json.loads(partner), known)
            if has_vendor
            else None
        )
        return check_of(tenant_id, snapshot)

    tally = VendorWideTally(app, vendor, inviter_roles)
    registered = len(clients)
    try:
        complete = await stream_snapshots(app, vendor, clients, send, tally)
    finally:
        if sending:
            await asyncio.wait(list(sending))
    if failures:
        raise failures[0]
    if groups.undecided:  # stream_snapshots decides every client: a bug, never a silent gap
        raise RuntimeError(f"{groups.undecided} clients of sweep {sweep_id} were not sent")
    await tally.alert(now)
    log.info(
        "sweep %s scheduled %d clients (vendor snapshot: %s)",
        sweep_id,
        registered,
        "complete" if complete else vendor.problem or "partner list incomplete",
    )
    return SweepScheduled(sweep_id, registered, len(counts))


# ------------------------------------------------------------------------ one client


@dataclass
class ClientRead:
    """What reading and evaluating the client's own policy gave."""

    result: PostureResult
    consent: ConsentStatus
    raw_policy: dict[str, Any] | None = None  # kept when the policy could not be interpreted
    # Alerts about a cause shared by many clients (the vendor's own identity): sent once.
    once_alerts: list[AlertRecord] = field(default_factory=list)


@dataclass
class StateStep:
    """The client's alert state folded with this observation, and what to alert."""

    state: ClientAlertState
    etag: str | None
    transitions: list[Transition]
    alerts: list[AlertRecord]
    vendor_signature: str  # the signature last alerted for vendor-side findings
    acked: AppliedAck  # the client's acknowledgement folded into this check (issue 18.1)
    stored: dict[str, Any] | None = None  # the alert-state document as it was read


@dataclass
class MessageWrites:
    """The posture rows, alert states and registry records a sweep message's checks write,
    written together once they are done.

    Each of the three tables keeps every client in one partition, so a message's writes
    are one entity group transaction per table instead of a round trip per client: every
    sweep writes each client's posture row, the first after registering thousands of
    clients also its first alert state and the consent it found. A write that fails there
    is made again alone
    (``write_together``): a client whose alert state moved meanwhile is checked again, one
    whose write fails otherwise is retried in a message of its own.
    """

    postures: dict[str, dict[str, Any]] = field(default_factory=dict)  # the entities
    states: dict[str, tuple[dict[str, Any], str | None]] = field(default_factory=dict)
    records: dict[str, ClientRecord] = field(default_factory=dict)

    async def flush(self, app: App) -> dict[str, Exception]:
        """The tenants whose write failed, with the error."""
        postures, states, records = await asyncio.gather(
            PostureStore(app.tables).save_many(self.postures),
            alert_state_store(app.tables).put_many(self.states),
            ClientRegistry(app.tables).upsert_many(list(self.records.values())),
        )
        return {**postures, **records, **states}  # an alert state's conflict decides


@dataclass
class VendorSide:
    findings: list[Finding]
    signature: str
    alerts: list[AlertRecord]
    skipped: str | None = None  # why the vendor-side checks did not run


async def check_client(
    app: App,
    message: CheckClient,
    now: datetime,
    *,
    final_attempt: bool = False,
    generation: int | None = None,
    prefetched: Prefetched | None = None,
    deferred: MessageWrites | None = None,
) -> CheckOutcome:
    """Evaluate one client, store the result, and enqueue alerts at state transitions.

    Transient Graph failures propagate (the host retries the message); on the final
    attempt they become an UNKNOWN "tenant unreachable" result instead of a poison message.
    Two checks of one client at once (a repeated message beside the next sweep's) race on
    the alert state's ETag: the loser checks again here instead of spending one of the
    message's attempts (its alerts carry the same keys, so nothing is sent twice).
    ``generation`` is the vendor-policy generation when the caller already read it (once
    for a sweep message's clients), ``prefetched`` the client's record and alert state;
    otherwise the check reads them. A check again after a race reads them afresh.
    ``deferred`` collects the posture, alert state and registry writes of a sweep
    message's checks (``MessageWrites``), which its caller then writes together.
    """
    for attempt in range(STATE_RACE_RETRIES + 1):
        try:
            return await _check_once(
                app,
                message,
                now,
                final_attempt=final_attempt,
                generation=generation,
                prefetched=prefetched if attempt == 0 else None,
                deferred=deferred,
            )
        except EntityConflict:
            if attempt == STATE_RACE_RETRIES:
                raise
            log.info("client %s: alert state moved concurrently; checking again", message.tenant_id)
    raise AssertionError("unreachable")


async def _check_once(
    app: App,
    message: CheckClient,
    now: datetime,
    *,
    final_attempt: bool,
    generation: int | None,
    prefetched: Prefetched | None,
    deferred: MessageWrites | None,
) -> CheckOutcome:
    registry = ClientRegistry(app.tables)
    # The reads do not depend on each other: one round trip of latency instead of four.
    (client, prior, cloud), policy, generation = await asyncio.gather(
        _client_state_and_cloud(app, registry, message.tenant_id, prefetched, now),
        _read_client_policy(app, message.tenant_id),
        _generation(app, generation),
    )
    if client is None:
        return CheckOutcome(message.tenant_id, "", skipped="client no longer registered")

    read = _evaluate(app, client, policy, now, final_attempt=final_attempt)
    result = _with_signin_evidence(app, client, message, read.result)
    step = await _transition(app, client, message, result, now, prior)
    vendor = await _vendor_side(
        app, client, message, now, step, generation, cloud, final_attempt=final_attempt
    )
    await _store(
        app, registry, client, message, now, read, result, step, vendor, cloud, deferred
    )
    alerts = [*step.alerts, *vendor.alerts]
    return CheckOutcome(client.tenant_id, result.verdict.value, [a.dedup_key for a in alerts])


async def _generation(app: App, known: int | None) -> int:
    return known if known is not None else await current_generation(app)


async def _client_and_state(
    app: App, registry: ClientRegistry, tenant_id: str, prefetched: Prefetched | None
) -> tuple[ClientRecord | None, tuple[Any, str | None]]:
    if prefetched is not None:
        return prefetched.record, prefetched.prior
    record, prior = await asyncio.gather(
        registry.get(tenant_id), alert_state_store(app.tables).get(tenant_id)
    )
    return record, prior


async def _client_state_and_cloud(
    app: App,
    registry: ClientRegistry,
    tenant_id: str,
    prefetched: Prefetched | None,
    now: datetime,
) -> tuple[ClientRecord | None, tuple[Any, str | None], KnownCloud | None]:
    """The record and alert state, then (while the policy is read) the client's cloud: the
    newer of the one its alert state remembers and the one looked up at registration while
    that is fresh, otherwise looked up now."""
    record, prior = await _client_and_state(app, registry, tenant_id, prefetched)
    if record is None:
        return record, prior, None
    stored = newest(
        KnownCloud.from_document(prior[0] if isinstance(prior[0], dict) else None),
        record.cloud.known() if record.cloud is not None else None,
    )
    return record, prior, await client_cloud(app, tenant_id, stored, now)


async def _prefetch(app: App, batch: CheckClientBatch) -> dict[str, Prefetched]:
    """The records and alert states of a sweep message's clients, two range reads.

    The scheduler packs clients in tenant-ID order, so a message's clients are one key
    range of each table. A client the reads cannot vouch for (a range cut short by the
    service, a record this version cannot read) is left out: its check reads it alone.
    """
    registry_keys = sorted(m.tenant_id.lower() for m in batch.checks)
    state_keys = sorted(m.tenant_id for m in batch.checks)
    limit = 2 * len(batch.checks)  # rows added since the fan-out fall in the range too
    (records, all_records), (states, all_states) = await asyncio.gather(
        ClientRegistry(app.tables).between(registry_keys[0], registry_keys[-1], limit),
        alert_state_store(app.tables).between(state_keys[0], state_keys[-1], limit),
    )
    out: dict[str, Prefetched] = {}
    for message in batch.checks:
        key = message.tenant_id.lower()
        record_known = key in records or all_records
        state_known = message.tenant_id in states or all_states
        if record_known and state_known and not (key in records and records[key] is None):
            out[message.tenant_id] = Prefetched(
                records.get(key), states.get(message.tenant_id, (None, None))
            )
    return out


def _check_gate(app: App) -> asyncio.Semaphore:
    """Checks one process runs at once (XTAP_CHECK_CONCURRENCY), whatever the messages."""
    gate: asyncio.Semaphore | None = app.extras.get("check_gate")
    if gate is None:
        gate = app.extras["check_gate"] = asyncio.Semaphore(app.settings.check_concurrency)
    return gate


async def check_queued(
    app: App, message: CheckClient | CheckClientBatch, now: datetime, *, final_attempt: bool
) -> list[CheckOutcome]:
    """One message of the check-client queue: one client, or a sweep's batch of them."""
    if isinstance(message, CheckClient):
        async with _check_gate(app):
            return [await check_client(app, message, now, final_attempt=final_attempt)]
    return await check_batch(app, message, now)


async def check_batch(app: App, batch: CheckClientBatch, now: datetime) -> list[CheckOutcome]:
    """Every client of a sweep message; one whose check fails is re-enqueued on its own
    (``_check_or_retry_alone``). Only when that send fails does the batch message fail
    (the host retries it; checks that had finished repeat harmlessly: same alert keys,
    ETag-guarded state). The checks' postures, alert states and consents are written
    together at the end (``MessageWrites``)."""
    gate = _check_gate(app)
    # One read of the generation, one of the records and one of the alert states for all
    # of the message's clients; their postures, alert states and consents are written
    # together.
    generation, prefetched = await asyncio.gather(
        current_generation(app), _prefetch(app, batch)
    )
    writes = MessageWrites()

    async def one(message: CheckClient) -> CheckOutcome:
        return await _check_or_retry_alone(
            app,
            gate,
            message,
            now,
            generation=generation,
            prefetched=prefetched.get(message.tenant_id),
            deferred=writes,
        )

    results = await asyncio.gather(*(one(m) for m in batch.checks), return_exceptions=True)
    failed = await writes.flush(app)  # also when a check failed: what the others did stays
    for result in results:
        if isinstance(result, BaseException):
            raise result
    outcomes = [r for r in results if isinstance(r, CheckOutcome)]
    retried = {o.tenant_id for o in outcomes if o.skipped}  # re-enqueued already
    failed = {t: e for t, e in failed.items() if t not in retried}
    if not failed:
        return outcomes
    by_tenant = {m.tenant_id: m for m in batch.checks}

    async def again(tenant_id: str, error: Exception) -> CheckOutcome:
        message = by_tenant[tenant_id]
        if isinstance(error, EntityConflict):
            log.info("client %s: alert state moved concurrently; checking again", tenant_id)
            return await _check_or_retry_alone(app, gate, message, now, generation=generation)
        log.warning(
            "client %s: its check's writes failed (%s: %s); retried alone",
            tenant_id,
            type(error).__name__,
            error,
        )
        await app.queues.send(QUEUE_CHECK_CLIENT, message)
        return CheckOutcome(tenant_id, "", skipped="failed; re-enqueued on its own")

    redone = dict(
        zip(failed, await asyncio.gather(*(again(t, e) for t, e in failed.items())), strict=True)
    )
    return [redone.get(o.tenant_id, o) for o in outcomes]


async def _check_or_retry_alone(
    app: App,
    gate: asyncio.Semaphore,
    message: CheckClient,
    now: datetime,
    **check: Any,
) -> CheckOutcome:
    """A check of a sweep message's client; one that fails is re-enqueued on its own.

    The re-enqueued ``CheckClient`` then has the host's retries and poison handling like
    any message, so one failing client neither holds back nor repeats the others.
    """
    async with gate:
        try:
            return await check_client(app, message, now, **check)
        except Exception as exc:  # every failure is retried alone, whatever it is
            log.warning(
                "client %s: check failed inside a sweep message (%s: %s); retried alone",
                message.tenant_id,
                type(exc).__name__,
                exc,
            )
    await app.queues.send(QUEUE_CHECK_CLIENT, message)
    return CheckOutcome(message.tenant_id, "", skipped="failed; re-enqueued on its own")


async def _read_client_policy(app: App, tenant_id: str) -> PolicyPair | GraphError:
    """The client's default + its partner entry for the vendor (a Graph failure as a value)."""
    try:
        return await read_policy_pair(
            app.graph.client_tenant(tenant_id), app.settings.vendor_tenant_id
        )
    except GraphError as exc:
        return exc


def _evaluate(
    app: App,
    client: ClientRecord,
    policy: PolicyPair | GraphError,
    now: datetime,
    *,
    final_attempt: bool,
) -> ClientRead:
    """Evaluate the outbound posture from the policy read (or from why it failed)."""
    settings = app.settings
    if isinstance(policy, TokenRequestError):
        return _token_refused(app, client, policy, now, final_attempt=final_attempt)
    if isinstance(policy, GraphError):
        exc = policy
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
            raise exc
        return ClientRead(
            unknown_posture(
                FindingCode.CLIENT_TENANT_UNREACHABLE,
                f"Graph answered {exc.status} {exc.code}: {exc.message}",
                vendor_tenant_id=settings.vendor_tenant_id,
            ),
            client.consent,
        )
    pair = policy
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


def _unknown(app: App, code: FindingCode, message: str, remediation: str) -> PostureResult:
    base = unknown_posture(code, message, vendor_tenant_id=app.settings.vendor_tenant_id)
    finding = make_finding(code, message, remediation, facts={"reason": code.value})
    return replace(base, findings=(finding,))


def _token_refused(
    app: App, client: ClientRecord, exc: TokenRequestError, now: datetime, *, final_attempt: bool
) -> ClientRead:
    """Only "not consented" is "not consented" (issue 12.2): read the AADSTS code."""
    failure = exc.failure
    if failure.kind is TokenFailureKind.CONSENT_MISSING:
        return ClientRead(
            unknown_posture(
                FindingCode.CLIENT_CONSENT_MISSING,
                f"Entra refused the read-only app's token for the client tenant "
                f"({failure.code_text}): {failure.description}",
                vendor_tenant_id=app.settings.vendor_tenant_id,
            ),
            ConsentStatus.MISSING,
        )
    if failure.retry and not final_attempt:
        raise exc
    if failure.kind is TokenFailureKind.TENANT_NOT_FOUND:
        return ClientRead(
            _unknown(
                app,
                FindingCode.CLIENT_TENANT_NOT_FOUND,
                f"Entra does not know the client's tenant {client.tenant_id} "
                f"({failure.code_text}): it was deleted, or the registry holds a wrong ID.",
                "Check the tenant ID (Graph findTenantInformationByTenantId, or the client's "
                "domain with findTenantInformationByDomainName); correct or remove the client "
                "in the registry (xtap-watch clients).",
            ),
            client.consent,
        )
    if failure.kind is TokenFailureKind.VENDOR_CONFIGURATION:
        alert = vendor_identity_alert(
            failure,
            client.tenant_id,
            client.name,
            period_key(now, app.settings.reminder_hours),
            now,
            alert_context(app),
        )
        return ClientRead(
            _unknown(
                app,
                FindingCode.CLIENT_TENANT_UNREACHABLE,
                f"xtap-watch's own identity could not sign in to the client tenant "
                f"({failure.code_text}): {alert.title.split(': ', 1)[-1]}. Nothing is wrong "
                "on the client's side; the vendor's admins are alerted.",
                "Nothing for the client to do: the vendor fixes its own configuration "
                "(docs/findings/VENDOR_IDENTITY_MISCONFIGURED.md).",
            ),
            client.consent,
            once_alerts=[alert],
        )
    return ClientRead(
        unknown_posture(
            FindingCode.CLIENT_TENANT_UNREACHABLE,
            f"Entra refused the token for the client tenant ({failure.code_text}): "
            f"{failure.description}",
            vendor_tenant_id=app.settings.vendor_tenant_id,
        ),
        client.consent,
    )


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
    return combine(result, evidence, unavailable=message.signin_unavailable)


async def _transition(
    app: App,
    client: ClientRecord,
    message: CheckClient,
    result: PostureResult,
    now: datetime,
    prior: tuple[Any, str | None],
) -> StateStep:
    """Fold the observation into the client's alert state; build the alerts it calls for."""
    raw_state, etag = prior
    previous = ClientAlertState.from_dict(raw_state["client"]) if raw_state else None
    observation = observe(result, client.tenant_id, client.expected_scope.user_groups)
    state, transitions = next_state(
        previous,
        observation,
        now,
        timedelta(hours=app.settings.reminder_hours),
        unknown_alert_after=timedelta(hours=app.settings.unknown_alert_hours),
    )
    # An acknowledged drift: reminders pause, its expiry reminds once, a new finding is
    # told once (issue 18.1).
    codes = None if result.verdict is Verdict.UNKNOWN else sorted(c.value for c in result.codes)
    acked = apply_acknowledgement(raw_state, state, transitions, now, codes)
    state, transitions = acked.state, acked.transitions
    previous_posture: dict[str, Any] | None = None
    if transitions:
        previous_posture = await PostureStore(app.tables).get(client.tenant_id)
    previous_verdict = (previous_posture or {}).get("verdict")
    previous_effective = (previous_posture or {}).get("effective")
    ctx = alert_context(app)
    alerts = [
        alert_for_transition(
            t, client, result, ctx, previous_verdict, previous_effective
        ).model_copy(
            update={"batch_id": message.sweep_id, **posture_latency(t, previous_posture, now)}
        )
        for t in transitions
    ]
    if acked.fold.expired is not None or acked.fold.new_findings:
        reminder = Transition(
            TransitionKind.REMINDER,
            client.tenant_id,
            state.episode,
            0,
            now,
            observation,
            state.episode_started_at,
        )
        base = alert_for_transition(reminder, client, result, ctx, previous_verdict)
        if acked.fold.expired is not None:
            expired = expiry_alert(base, acked, client.name, now)
            alerts.append(expired.model_copy(update={"batch_id": message.sweep_id}))
        if acked.fold.new_findings:
            told = new_finding_alert(base, acked, client.name)
            alerts.append(told.model_copy(update={"batch_id": message.sweep_id}))
    alerts = [annotate(a, acked, now, app.settings.docs_base_url) for a in alerts]
    return StateStep(
        state,
        etag,
        transitions,
        alerts,
        str((raw_state or {}).get("vendor_signature", "")),
        acked,
        raw_state if isinstance(raw_state, dict) else None,
    )


async def _vendor_side(
    app: App,
    client: ClientRecord,
    message: CheckClient,
    now: datetime,
    step: StateStep,
    generation: int,
    cloud: KnownCloud | None,
    *,
    final_attempt: bool,
) -> VendorSide:
    """What the vendor's own settings do to this client's guests; alert when that changes.

    The inputs come from the sweep's snapshot in the message, or from Graph when the
    snapshot is missing or older than the vendor's last noted change. Vendor-wide findings
    stay in the posture record but are alerted once for all clients by the scheduler.
    """
    try:
        inputs = await vendor_inputs(app, client, message.vendor, generation)
    except GraphError as exc:
        if exc.transient and not final_attempt:
            raise
        log.warning("vendor-side checks for %s skipped: %s", client.tenant_id, exc)
        return VendorSide(
            [], step.vendor_signature, [], skipped=f"the vendor's policy was not read: {exc}"
        )
    except VendorPolicyUnreadable as exc:
        await alert_unreadable(app, exc.where, exc.problem, now)
        return VendorSide(
            [], step.vendor_signature, [], skipped=f"the vendor's {exc.where} did not parse"
        )
    findings = evaluate_vendor_side(
        inputs.default,
        inputs.partner,
        client.tenant_id,
        app.settings.vendor_app_ids,
        inputs.authorization,
        client.domains,
        client_name=client.name,
        **await vendor_side_inputs(app, cloud),
    )
    alerting = per_client(findings)
    signature = vendor_side_signature(alerting)
    alerts = []
    if signature and signature != step.vendor_signature:
        alerts.append(
            vendor_side_alert(alerting, client, signature, now, alert_context(app)).model_copy(
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
    cloud: KnownCloud | None,
    deferred: MessageWrites | None,
) -> None:
    """Alerts first, then recovery work, then the posture row, the alert state and the
    consent found (left to ``deferred`` when given)."""
    for once in read.once_alerts:
        await send_once(app, once)
    await asyncio.gather(
        *(app.queues.send(QUEUE_ALERTS, a) for a in [*step.alerts, *vendor.alerts])
    )
    observe_latency(step.alerts)
    await record_transitions(app, client, step.transitions)
    await record_ack_activity(app, client.tenant_id, client.name, step.acked, now)
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
    if vendor.skipped:
        record["vendorSideSkipped"] = vendor.skipped
    # Both after the alerts; neither depends on the other (a crash between them repeats
    # the check, whose alerts carry the same keys). A steady client's alert state is not
    # rewritten: only its last-observed time would change.
    store: JsonStateStore = alert_state_store(app.tables)
    # The client's cloud goes with it, so a restarted process need not look it up again
    # (a failed lookup keeps the entry it had: it is looked up again at the next check).
    cloud = cloud or KnownCloud.from_document(step.stored)
    document = {
        "client": step.state.to_dict(),
        "vendor_signature": vendor.signature,
        **step.acked.document(),
        **({CLOUD_KEY: cloud.to_dict()} if cloud is not None else {}),
    }
    writes = []
    state_due = step.etag is None or state_document_changed(step.stored, document)
    consented = (
        client.model_copy(update={"consent": read.consent})
        if read.consent is not client.consent
        else None
    )
    if deferred is not None:
        # As its entity (the result as JSON text): what a message holds until it is done.
        deferred.postures[client.tenant_id] = PostureStore.entity(client.tenant_id, now, record)
        if state_due:
            deferred.states[client.tenant_id] = (document, step.etag)
        if consented is not None:
            deferred.records[client.tenant_id] = consented
    else:
        writes.append(PostureStore(app.tables).save(client.tenant_id, now, record))
        if state_due:
            writes.append(store.put(client.tenant_id, document, step.etag))
        if consented is not None:
            writes.append(registry.upsert(consented))
    await asyncio.gather(*writes)


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
