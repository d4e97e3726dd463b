"""The vendor's own policies for the sweep: read once, kept current, alerted once per cause.

* **Read once per sweep** (issue 16.2): the scheduler reads the vendor's default policy, its
  authorization policy and its whole partner list (paged), and each ``CheckClient`` carries
  what its client needs (:class:`~shared.domain.messages.VendorSnapshot`). Checks run in
  other invocations and on other instances, so the snapshot travels *in the message*
  instead of living in a process cache; the per-client vendor-side checks stay as they were,
  only their inputs arrive differently.
* **Current** (issue 14.3): a *generation* counter in the cursors table is bumped by the
  audit watcher whenever it sees a change to the vendor's own cross-tenant settings
  (:func:`note_vendor_policy_change`, called from the audit scan). A check whose snapshot is
  of an older generation re-reads the vendor side from Graph — on whatever instance it runs.
* **One alert per cause** (issues 12.2, 13.7, 14.2): :func:`send_once` enqueues an alert at
  most once per de-duplication key across processes (an in-process memo, then a claim row).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.adapters.graph import GraphError
from shared.adapters.policy_reader import (
    partner_pages,
    read_authorization_policy,
    read_default,
    read_partner,
)
from shared.adapters.repositories import cursor_store
from shared.adapters.storage import EntityConflict
from shared.config import QUEUE_ALERTS, TABLE_CURSORS
from shared.domain.clients import ClientRecord
from shared.domain.messages import AlertRecord, VendorSnapshot
from shared.domain.policy import (
    DefaultPolicy,
    PartnerPolicy,
    PolicyParseError,
    parse_default_policy,
    parse_partner_policy,
)
from shared.domain.posture_alerts import AlertContext
from shared.domain.vendor_alerts import (
    is_vendor_wide,
    period_key,
    vendor_policy_unreadable_alert,
    vendor_wide_alert,
    vendor_wide_causes,
    vendor_wide_signature,
)
from shared.domain.vendor_checks import (
    AuthorizationPolicy,
    evaluate_vendor_side,
    parse_authorization_policy,
)

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.domain.finding_catalog import Finding

log = logging.getLogger(__name__)

GENERATION_KEY = "vendor-policy"
VENDOR_WIDE_KEY = "vendor-wide"
ONCE_PARTITION = "once"
FALLBACK_TTL_SECONDS = 300.0  # checks without a snapshot share one read per process
_MEMO_LIMIT = 1024


def alert_context(app: App) -> AlertContext:
    s = app.settings
    return AlertContext(s.vendor_name, s.entra_portal_url, s.docs_base_url)


# ----------------------------------------------------------------- one alert per cause


async def send_once(app: App, alert: AlertRecord) -> bool:
    """Enqueue ``alert`` unless one with its key was already sent (any process).

    Order: the alert is enqueued before the claim row is written, so a crash in between
    repeats it (the outbox de-duplicates by key) instead of losing it.
    """
    memo: set[str] = app.extras.setdefault("sent_once", set())
    key = alert.dedup_key
    if key in memo:
        return False
    row = key.replace("/", "_")[:512]
    if await app.tables.get(TABLE_CURSORS, ONCE_PARTITION, row) is None:
        await app.queues.send(QUEUE_ALERTS, alert)
        await app.tables.insert(
            TABLE_CURSORS, {"PartitionKey": ONCE_PARTITION, "RowKey": row, "Kind": alert.kind}
        )
        sent = True
    else:
        sent = False
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo.add(key)
    return sent


async def alert_unreadable(app: App, where: str, problem: str, now: datetime) -> None:
    """The vendor's policy did not parse: one alert per cause and period (issue 13.7)."""
    period = period_key(now, app.settings.reminder_hours)
    alert = vendor_policy_unreadable_alert(where, problem, period, now, alert_context(app))
    if await send_once(app, alert):
        log.error("vendor policy unreadable (%s): %s", where, problem)


# ----------------------------------------------------------------------- generation


async def current_generation(app: App) -> int:
    state, _ = await cursor_store(app.tables).get(GENERATION_KEY)
    return int((state or {}).get("generation", 0))


async def note_vendor_policy_change(
    app: App, records: list[dict[str, Any]], now: datetime
) -> int | None:
    """Audit-scan hook: the vendor changed its own cross-tenant settings (issue 14.3).

    Every record of the vendor's audit log is a change *in the vendor's tenant*, so any new
    one bumps the generation; checks of snapshots taken before re-read the vendor side.
    Repeating it (a scan re-run after a crash) costs only a re-read.
    """
    if not records:
        return None
    store = cursor_store(app.tables)
    for _ in range(8):
        state, etag = await store.get(GENERATION_KEY)
        generation = int((state or {}).get("generation", 0)) + 1
        ids = [str(r.get("id") or r.get("Id") or "") for r in records][:20]
        try:
            await store.put(
                GENERATION_KEY,
                {"generation": generation, "changed_at": now.isoformat(), "events": ids},
                etag,
            )
        except EntityConflict:
            continue
        log.info("vendor policy generation %d (%d audit events)", generation, len(records))
        return generation
    raise EntityConflict("vendor policy generation: too many concurrent updates")


# ------------------------------------------------------------- the sweep's snapshot


@dataclass
class VendorRead:
    """What the scheduler read of the vendor's own policies (``default`` None: unreadable)."""

    generation: int
    read_at: datetime
    default: dict[str, Any] | None
    authorization: dict[str, Any] | None
    problem: str | None = None

    def snapshot(self, partner: dict[str, Any] | None, known: bool) -> VendorSnapshot | None:
        if self.default is None:
            return None
        return VendorSnapshot(
            generation=self.generation,
            read_at=self.read_at,
            default=self.default,
            authorization=self.authorization,
            partner=partner,
            partner_known=known,
        )


async def read_vendor_policies(app: App, now: datetime) -> VendorRead:
    """The generation first, then Graph: a change noted in between only causes a re-read."""
    generation = await current_generation(app)
    graph = app.graph.vendor()
    try:
        default, authorization = await asyncio.gather(
            read_default(graph), read_authorization_policy(graph)
        )
    except GraphError as exc:
        log.warning("vendor policies not read for the sweep (checks read them): %s", exc)
        return VendorRead(generation, now, None, None, problem=str(exc))
    return VendorRead(generation, now, default, authorization)


def partner_tenant(entry: dict[str, Any]) -> str:
    return str(entry.get("tenantId") or "").strip().lower()


class SweptClient(NamedTuple):
    """What the fan-out keeps of a registered client while it pages the partner list: its
    key and what the vendor-wide tally names it by (a few strings, not the whole record,
    since the checks already run beside the paging)."""

    tenant_id: str
    name: str
    domains: tuple[str, ...]

    @classmethod
    def of(cls, record: ClientRecord) -> SweptClient:
        return cls(record.tenant_id, record.name, tuple(record.domains))


class VendorWideTally:
    """Collects the vendor-side findings of every client while the sweep is scheduled."""

    def __init__(
        self, app: App, vendor: VendorRead, inviter_roles: frozenset[str] | None = None
    ) -> None:
        self._app = app
        self._inviter_roles = inviter_roles  # xtap-watch's own directory roles (None: unknown)
        self._default: DefaultPolicy | None = None
        self._authorization: AuthorizationPolicy | None = None
        self.findings: dict[str, list[Finding]] = {}
        self.complete = vendor.default is not None
        self.problem: tuple[str, str] | None = None
        if vendor.default is None:
            return
        try:
            self._default = parse_default_policy(vendor.default)
            if vendor.authorization:
                self._authorization = parse_authorization_policy(vendor.authorization)
        except PolicyParseError as exc:
            self.complete = False
            self.problem = ("default cross-tenant access policy or authorization policy", str(exc))

    def add(self, client: SweptClient, partner: dict[str, Any] | None, known: bool) -> None:
        if self._default is None or not self.complete:
            return
        if not known:
            self.complete = False
            return
        try:
            entry = parse_partner_policy(partner) if partner is not None else None
        except PolicyParseError:
            return  # that client's check reports it
        findings = evaluate_vendor_side(
            self._default,
            entry,
            client.tenant_id,
            self._app.settings.vendor_app_ids,
            self._authorization,
            client.domains,
            client_name=client.name,
            inviter_role_ids=self._inviter_roles,
        )
        # Only what the vendor-wide alert needs: memory stays a name per affected client.
        wide = [f for f in findings if is_vendor_wide(f)]
        if wide:
            self.findings[client.name] = wide

    async def alert(self, now: datetime) -> str | None:
        """One alert when the set of vendor-wide causes changes (issue 14.2)."""
        if self.problem is not None:
            await alert_unreadable(self._app, *self.problem, now)
            return None
        if not self.complete:
            return None  # a partial view must not clear or raise the vendor-wide state
        causes = vendor_wide_causes(self.findings)
        signature = vendor_wide_signature(causes)
        store = cursor_store(self._app.tables)
        state, etag = await store.get(VENDOR_WIDE_KEY)
        state = state or {}
        if signature == state.get("signature", ""):
            return None
        episode = int(state.get("episode", 0)) + (1 if signature else 0)
        dedup = None
        if signature:
            record = vendor_wide_alert(causes, signature, episode, now, alert_context(self._app))
            await self._app.queues.send(QUEUE_ALERTS, record)
            dedup = record.dedup_key
        try:
            await store.put(VENDOR_WIDE_KEY, {"signature": signature, "episode": episode}, etag)
        except EntityConflict:
            log.info("vendor-wide state moved concurrently; the next sweep settles it")
        return dedup


async def stream_snapshots(
    app: App,
    vendor: VendorRead,
    clients: Sequence[SweptClient],
    send: Callable[[list[tuple[SweptClient, VendorSnapshot | None]]], Awaitable[None]],
    tally: VendorWideTally,
) -> bool:
    """Page through the vendor's partner list, handing each page's clients to ``send``.

    Memory stays one page deep. Clients without an entry are sent after the last page (only
    a list read to its end proves "no entry"); if paging fails, their snapshot says the
    entry is unknown and the check reads it itself. Returns whether the list was complete.
    """
    by_tenant = {c.tenant_id: c for c in clients}
    sent: set[str] = set()
    complete = vendor.default is not None
    if complete:
        try:
            async for page in partner_pages(app.graph.vendor()):
                batch = []
                for entry in page:
                    tenant = partner_tenant(entry)
                    client = by_tenant.get(tenant)
                    if client is None or tenant in sent:
                        continue
                    sent.add(tenant)
                    tally.add(client, entry, True)
                    batch.append((client, vendor.snapshot(entry, True)))
                if batch:
                    await send(batch)
        except GraphError as exc:
            complete = False
            log.warning("vendor partner list incomplete; checks read their entry: %s", exc)
    rest = []
    for client in clients:
        if client.tenant_id not in sent:
            tally.add(client, None, complete)
            rest.append((client, vendor.snapshot(None, complete)))
    await send(rest)
    return complete


# ------------------------------------------------------------------ the check's view


class VendorPolicyUnreadable(PolicyParseError):
    """Part of the vendor's own policy did not parse; ``where`` names it for the alert."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def _parse(where: str, parse: Callable[[Any], Any], raw: Any) -> Any:
    try:
        return parse(raw)
    except PolicyParseError as exc:
        raise VendorPolicyUnreadable(where, str(exc)) from exc


@dataclass(frozen=True)
class VendorInputs:
    """What the per-client vendor-side checks evaluate (unchanged from before)."""

    default: DefaultPolicy
    partner: PartnerPolicy | None
    authorization: AuthorizationPolicy | None
    source: str  # "snapshot" | "graph": where the inputs came from


async def _fresh_vendor_policies(app: App, generation: int) -> tuple[dict[str, Any], Any]:
    """Default + authorization policy from Graph, shared by the checks of one process."""
    cached = app.extras.get("vendor_policies")
    if cached and cached[0] == generation and time.monotonic() - cached[1] < FALLBACK_TTL_SECONDS:
        return cached[2], cached[3]
    graph = app.graph.vendor()
    default = await read_default(graph)
    authorization = await read_authorization_policy(graph)
    app.extras["vendor_policies"] = (generation, time.monotonic(), default, authorization)
    return default, authorization


async def vendor_inputs(
    app: App, client: ClientRecord, snapshot: VendorSnapshot | None, generation: int
) -> VendorInputs:
    """The vendor side for one client: the sweep's snapshot if still current, else Graph.

    ``generation`` is the current vendor-policy generation (read by the caller with its
    other reads). Raises ``GraphError`` (the caller retries transient ones) and
    ``VendorPolicyUnreadable``.
    """
    source = "snapshot"
    if snapshot is not None and snapshot.generation == generation:
        default_raw, auth_raw = snapshot.default, snapshot.authorization
        if snapshot.partner_known:
            partner_raw = snapshot.partner
        else:
            partner_raw = await read_partner(app.graph.vendor(), client.tenant_id)
            source = "graph"
    else:
        default_raw, auth_raw = await _fresh_vendor_policies(app, generation)
        partner_raw = await read_partner(app.graph.vendor(), client.tenant_id)
        source = "graph"
    default, authorization = _parsed_vendor_policies(app, default_raw, auth_raw)
    return VendorInputs(
        default=default,
        partner=(
            _parse(f"partner entry for {client.name}", parse_partner_policy, partner_raw)
            if partner_raw is not None
            else None
        ),
        authorization=authorization,
        source=source,
    )


def _parsed_vendor_policies(
    app: App, default_raw: dict[str, Any], auth_raw: dict[str, Any] | None
) -> tuple[DefaultPolicy, AuthorizationPolicy | None]:
    """The vendor's default and authorization policy, parsed once while they stay the same.

    Every check of a sweep carries the same two (each message holds the snapshot), so
    parsing them per check parsed one policy 5,000 times a sweep. One entry, compared by
    value: a newer snapshot or a policy re-read from Graph replaces it; a policy that does
    not parse is not kept (each check reports it).
    """
    cached = app.extras.get("vendor_policies_parsed")
    if cached is not None and cached[0] == default_raw and cached[1] == auth_raw:
        return cached[2], cached[3]
    default = _parse("default cross-tenant access policy", parse_default_policy, default_raw)
    authorization = (
        _parse("authorization policy", parse_authorization_policy, auth_raw) if auth_raw else None
    )
    app.extras["vendor_policies_parsed"] = (default_raw, auth_raw, default, authorization)
    return default, authorization
