"""The read side against the simulator's real behaviours: partial Log Analytics answers,
duplicated sign-ins, one reports-API budget, and Graph answers of the wrong shape.

Everything goes through the real SDK clients (msgraph request adapter, azure-monitor-query)
over HTTP to the simulator; nothing in the SDK is patched.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID
from tests.integration.app_helpers import with_app

pytestmark = pytest.mark.integration

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
HTML_PAGE = "<html><body><h1>Service temporarily unavailable</h1></body></html>"



# ------------------------------------------------------------------ partial answers


def test_partial_log_analytics_answer_keeps_the_rows_and_reports_the_error(
    app_env, demo_sim, monkeypatch
):
    """LogsQueryPartialResult has ``partial_data`` and no ``.tables``: never a crash."""
    monkeypatch.setenv("XTAP_SIGNIN_SOURCE", "log_analytics")
    for _ in range(2):  # two more home tenants failing: the answer has more than one row
        demo_sim.control.add_signins(VENDOR_TENANT_ID, _duplicated_failures(str(uuid.uuid4())))
    demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, logAnalyticsRowLimit=1)

    async def use(app: Any) -> Any:
        source = app.signin_source()
        counts = await source.failure_counts(datetime.now(UTC), 24)
        return counts, await source.read(datetime.now(UTC), 24)

    try:
        counts, read = asyncio.run(with_app(use))
    finally:
        demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, logAnalyticsRowLimit=500_000)
    assert len(counts) == 1  # the one row the partial answer carried
    assert read.counts == counts
    assert read.problem is not None and read.problem.cause == "partial_answer"
    assert "E_QUERY_RESULT_SET_TOO_LARGE" in read.problem.detail


def test_partial_audit_answer_is_used_and_the_cursor_stops_at_what_was_read(
    app_env, demo_sim, monkeypatch
):
    from shared.adapters.audit_source import LogAnalyticsAuditSource

    now = datetime.now(UTC)
    for minutes in (30, 20, 10):
        demo_sim.control.set_partner_policy(
            VENDOR_TENANT_ID,
            CONTOSO,
            {"automaticUserConsentSettings": {"inboundAllowed": minutes != 20}},
            actor="admin@osttra.com",
        )
    demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, logAnalyticsRowLimit=2)

    async def use(app: Any) -> Any:
        source = LogAnalyticsAuditSource(
            app.logs_client(), app.settings.log_analytics_workspace_id or ""
        )
        return await source.read(now - timedelta(minutes=5), now + timedelta(minutes=1))

    try:
        read = asyncio.run(with_app(use))
    finally:
        demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, logAnalyticsRowLimit=500_000)
    assert len(read.records) == 2
    assert read.problem is not None and read.problem.cause == "partial_answer"
    assert read.complete_until is not None and read.complete_until < now + timedelta(minutes=1)


# ------------------------------------------------------------------ distinct sign-ins


def _duplicated_failures(tenant: str) -> list[dict[str, Any]]:
    """Two failures, each published twice with the same id (a retried publishing batch)."""
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    return [
        {"id": sid, "homeTenantId": tenant, "errorCode": 500212, "createdDateTime": "now-1h"}
        for sid in ids + ids
    ]


@pytest.mark.parametrize("source", ["graph", "log_analytics"])
def test_duplicated_sign_in_records_count_once(app_env, demo_sim, monkeypatch, source):
    monkeypatch.setenv("XTAP_SIGNIN_SOURCE", source)
    home = str(uuid.uuid4())
    demo_sim.control.add_signins(VENDOR_TENANT_ID, _duplicated_failures(home))

    async def use(app: Any) -> Any:
        return await app.signin_source().failure_counts(datetime.now(UTC), 24)

    counts = asyncio.run(with_app(use))
    assert counts[home] == {"500212": 2}


# ------------------------------------------------------------------ one reports budget


def test_audit_scan_and_sign_in_queries_share_one_reports_budget(app_env, demo_sim):
    """Graph allows 5 requests / 10 s per app per tenant across auditLogs; none is throttled."""
    from shared.adapters.audit_source import GraphAuditSource
    from shared.adapters.signins import GraphSignInSource

    now = datetime.now(UTC)
    home = str(uuid.uuid4())
    demo_sim.control.add_signins(
        VENDOR_TENANT_ID,
        [
            {"homeTenantId": home, "errorCode": 500212, "createdDateTime": f"now-{i + 1}m"}
            for i in range(8)
        ],
    )
    demo_sim.control.add_audit_events(
        VENDOR_TENANT_ID,
        [
            {
                "category": "CrossTenantAccessSettings",
                "activityDisplayName": "Update a partner cross-tenant access setting",
                "activityDateTime": (now - timedelta(minutes=i + 1)).isoformat(),
            }
            for i in range(8)
        ],
    )
    demo_sim.control.reset_counters()

    async def use(app: Any) -> Any:
        audit = GraphAuditSource(app.graph.vendor(), page_size=2)
        signins = GraphSignInSource(app.graph.vendor(), page_size=2)
        return await asyncio.gather(
            audit.fetch(now - timedelta(minutes=30), now),
            signins.failure_counts(now, 1),
        )

    records, counts = asyncio.run(with_app(use))
    assert len(records) >= 8
    assert counts[home] == {"500212": 8}
    log = demo_sim.control.requests(path_contains="/auditLogs/")
    assert len(log) > 5  # more than one window's worth of requests
    assert [r for r in log if r.get("status") == 429] == []


# ------------------------------------------------------------------ answer shapes


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(HTML_PAGE, "text/html"), ([1, 2, 3], None), ("just text", "text/plain")],
    ids=["html-200", "json-list", "text-200"],
)
def test_a_200_that_is_not_a_graph_object_is_a_transient_graph_error(
    app_env, demo_sim, body, content_type
):
    from shared.adapters.graph import GraphError
    from shared.adapters.policy_reader import DEFAULT_PATH

    demo_sim.control.add_fault(
        "/v1.0/policies/crossTenantAccessPolicy/default",
        status=200,
        body=body,
        content_type=content_type,
        count=1,
    )

    async def use(app: Any) -> Any:
        with pytest.raises(GraphError) as caught:
            await app.graph.vendor().get_json(DEFAULT_PATH)
        return caught.value

    try:
        error = asyncio.run(with_app(use))
    finally:
        demo_sim.control.clear_faults()
    assert error.transient
    assert error.code == "UnexpectedResponseShape"


# Two values for one property: which one Entra meant cannot be known, so a policy read
# never picks one (json.loads would keep the last, silently) - issue 13.5.
DUPLICATE_KEY_POLICY = (
    '{"id": "crossTenantAccessPolicyDefault", "isServiceDefault": false,'
    ' "b2bCollaborationOutbound": {"usersAndGroups": {"accessType": "blocked",'
    ' "targets": [{"target": "AllUsers", "targetType": "user"}]}},'
    ' "b2bCollaborationOutbound": {"usersAndGroups": {"accessType": "allowed",'
    ' "targets": [{"target": "AllUsers", "targetType": "user"}]}}}'
)


@pytest.mark.parametrize("batched", [False, True], ids=["get", "batch"])
def test_a_policy_answer_with_a_duplicate_key_is_refused_not_resolved(app_env, demo_sim, batched):
    from shared.adapters.graph import BatchItem, GraphError
    from shared.adapters.policy_reader import DEFAULT_PATH

    demo_sim.control.add_fault(
        "/policies/crossTenantAccessPolicy/default",
        status=200,
        body=DUPLICATE_KEY_POLICY,
        content_type="application/json",
        count=1,
    )

    async def use(app: Any) -> Any:
        graph = app.graph.vendor()
        if batched:
            # The whole $batch answer is one JSON document: ambiguous as a whole.
            with pytest.raises(GraphError) as caught:
                await graph.batch([BatchItem("1", "GET", DEFAULT_PATH)])
            return caught.value
        with pytest.raises(GraphError) as caught:
            await graph.get_json(DEFAULT_PATH)
        return caught.value

    try:
        error = asyncio.run(with_app(use))
    finally:
        demo_sim.control.clear_faults()
    assert error.transient and error.code == "UnexpectedResponseShape", error
    assert "duplicate key 'b2bCollaborationOutbound'" in str(error)


def test_a_user_without_id_is_a_graph_error_not_a_user(app_env, demo_sim):
    from shared.adapters.graph import GraphError

    user_id = str(uuid.uuid4())
    demo_sim.control.add_fault(
        f"/v1.0/users/{user_id}", status=200, body={"displayName": "No Id"}, count=1
    )
    demo_sim.control.add_fault(
        r"/v1.0/users\?", status=200, body={"value": [{"displayName": "No Id"}]}, count=1
    )

    async def use(app: Any) -> Any:
        graph = app.graph.vendor()
        errors = []
        for call in (
            graph.get_json(f"/users/{user_id}"),
            graph.get_json("/users", {"$filter": "mail eq 'a@b.com'"}),
        ):
            with pytest.raises(GraphError) as caught:
                await call
            errors.append(caught.value)
        return errors

    try:
        errors = asyncio.run(with_app(use))
    finally:
        demo_sim.control.clear_faults()
    assert all(e.transient and e.code == "UnexpectedResponseShape" for e in errors)


def test_client_answering_html_is_unknown_unreachable_on_the_last_attempt(app_env, demo_sim):
    from devtools.local_env import load_demo_scenario, seed_registry
    from shared.adapters.repositories import PostureStore
    from shared.domain.messages import CheckClient
    from shared.services.posture_sweep import check_client

    demo_sim.control.add_fault(
        "/v1.0/", status=200, body=HTML_PAGE, content_type="text/html", tenant_id=CONTOSO
    )

    async def use(app: Any) -> Any:
        await seed_registry(app, load_demo_scenario())
        now = datetime.now(UTC)
        message = CheckClient(tenant_id=CONTOSO, sweep_id="shape-test", requested_at=now)
        outcome = await check_client(app, message, now, final_attempt=True)
        return outcome, await PostureStore(app.tables).get(CONTOSO)

    try:
        outcome, posture = asyncio.run(with_app(use))
    finally:
        demo_sim.control.clear_faults()
    assert outcome.verdict == "UNKNOWN"
    assert posture["reason"] == "CLIENT_TENANT_UNREACHABLE"
