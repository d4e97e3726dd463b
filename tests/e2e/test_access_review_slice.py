"""Access reviews end to end: timer / on-demand → access-review queue → Graph definitions."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID, load_demo_scenario, seed_registry

pytestmark = pytest.mark.e2e

REVIEWERS = "6f2a9c1e-3b5d-4e7f-8a9b-0c1d2e3f4a5b,7a3b0d2f-4c6e-4f8a-9b0c-1d2e3f4a5b6c"
CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
LITWARE = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
TAILSPIN = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80"


@pytest.fixture
def review_env(app_env, monkeypatch):
    monkeypatch.setenv("XTAP_ACCESS_REVIEW_REVIEWERS", REVIEWERS)
    return app_env


def _named(definitions: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in definitions if d.get("displayName") == name]


async def _with_app(use: Any) -> Any:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    await seed_registry(app, load_demo_scenario())
    runner = LocalRunner()
    try:
        return await use(app, runner)
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def test_review_is_created_once_per_client_and_found_again(review_env, demo_sim):
    async def use(app: Any, runner: Any) -> dict[str, Any]:
        from shared.adapters.job_ledger import JobLedger
        from shared.services.access_reviews import request_access_review

        await runner.fire_timer("access_review_timer")
        first = (await runner.drain(["access_review_job"]))["access_review_job"].processed
        # Ensured twice more on demand (API/CLI path) and by a second timer run.
        again = await request_access_review(app, FABRIKAM, "ops@osttra.com", datetime.now(UTC))
        await runner.fire_timer("access_review_timer")
        await runner.drain(["access_review_job"])
        job = await JobLedger(app.tables).get_access_review(again.job_id)
        alerts = [json.loads(m) for m in await app.queues.peek_all("xtap-alerts")]
        return {"processed": first, "job": job, "alerts": alerts}

    out = asyncio.run(_with_app(use))
    assert out["processed"] == 5  # one job per registered client
    definitions = demo_sim.control.access_review_definitions(VENDOR_TENANT_ID)
    for name in ("Contoso Markets", "Fabrikam Clearing", "Northwind Securities"):
        assert len(_named(definitions, f"xtap-watch guest review: {name}")) == 1, name

    job = out["job"]
    assert job.state == "done" and job.created is False  # found, not duplicated
    fabrikam = _named(definitions, "xtap-watch guest review: Fabrikam Clearing")[0]
    assert job.definition_id == fabrikam["id"]
    # Issue 11.3: the documented scope "guests of a group", on the client's guests group.
    directory = demo_sim.control.directory(VENDOR_TENANT_ID)
    groups = {g["mailNickname"]: g for g in directory["groups"]}
    group = groups[f"xtap-guests-{FABRIKAM}"]
    assert job.group_id == group["id"]
    assert group["displayName"] == "xtap-watch guests: Fabrikam Clearing"
    assert group["securityEnabled"] is True and group["groupTypes"] == []
    assert fabrikam["scope"] == {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": f"/groups/{group['id']}/transitiveMembers/microsoft.graph.user/"
        "?$filter=(userType eq 'Guest')",
        "queryType": "MicrosoftGraph",
    }
    members = {demo_sim.control.user(VENDOR_TENANT_ID, m)["mail"] for m in group["members"]}
    assert members == {
        "carol.risk@fabrikam-clearing.com",
        "dan.admin@fabrikam-clearing.com",
        "erin.back@fabrikam-clearing.com",
    }
    # The scenario's Contoso group was found and completed, not duplicated.
    contoso_groups = [g for g in directory["groups"] if g["mailNickname"].endswith(CONTOSO)]
    assert len(contoso_groups) == 1
    assert {
        demo_sim.control.user(VENDOR_TENANT_ID, m)["mail"] for m in contoso_groups[0]["members"]
    } == {"alice.trader@contoso-markets.com", "bob.ops@contoso-markets.com"}
    assert len(directory["groups"]) == 5  # one per registered client
    assert [r["query"] for r in fabrikam["reviewers"]] == [
        f"/users/{rid}" for rid in REVIEWERS.split(",")
    ]
    settings = fabrikam["settings"]
    assert settings["autoApplyDecisionsEnabled"] is True
    assert settings["defaultDecisionEnabled"] is False
    assert settings["applyActions"] == [
        {"@odata.type": "#microsoft.graph.disableAndDeleteUserApplyAction"}
    ]
    assert settings["recurrence"]["range"]["type"] == "noEnd"
    # The scenario's existing Contoso review was kept, not replaced.
    contoso = _named(definitions, "xtap-watch guest review: Contoso Markets")[0]
    assert contoso["descriptionForAdmins"] == "Quarterly review of Contoso Markets guests"
    created = {a["client"]["name"] for a in out["alerts"] if a["kind"] == "access_review_created"}
    assert "Contoso Markets" not in created and "Fabrikam Clearing" in created


def test_licence_error_fails_the_job_with_one_alert_and_no_retry(review_env, demo_sim):
    demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, accessReviewsLicensed=False)

    async def use(app: Any, runner: Any) -> dict[str, Any]:
        from shared.adapters.job_ledger import JobLedger
        from shared.adapters.repositories import ClientRegistry
        from shared.domain.clients import ClientRecord
        from shared.services.access_reviews import request_access_review

        await ClientRegistry(app.tables).upsert(
            ClientRecord(tenant_id=LITWARE, name="Litware FX", domains=("litware-fx.com",))
        )
        posts_before = len(
            [
                r
                for r in demo_sim.control.requests("accessReviews/definitions")
                if r.get("method") == "POST"
            ]
        )
        job = await request_access_review(app, LITWARE, "ops@osttra.com", datetime.now(UTC))
        stats = await runner.drain(["access_review_job"])
        return {
            "job": await JobLedger(app.tables).get_access_review(job.job_id),
            "stats": stats["access_review_job"],
            "alerts": [json.loads(m) for m in await app.queues.peek_all("xtap-alerts")],
            "posts": len(
                [
                    r
                    for r in demo_sim.control.requests("accessReviews/definitions")
                    if r.get("method") == "POST"
                ]
            )
            - posts_before,
            "poison": await app.queues.approximate_count("xtap-access-reviews-poison"),
        }

    try:
        out = asyncio.run(_with_app(use))
    finally:
        demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, accessReviewsLicensed=True)
    job = out["job"]
    assert job.state == "failed"
    assert job.error.status == 403
    assert "licence" in job.error.explanation and "P2" in job.error.explanation
    assert out["posts"] == 1, "a licence error is not retried"
    assert out["stats"].failed_attempts == 0 and out["poison"] == 0
    failed = [a for a in out["alerts"] if a["kind"] == "access_review_failed"]
    assert len(failed) == 1 and failed[0]["facts"]["First client affected"] == "Litware FX"
    assert not _named(
        demo_sim.control.access_review_definitions(VENDOR_TENANT_ID),
        "xtap-watch guest review: Litware FX",
    )


def test_without_reviewers_nothing_is_scheduled(app_env, demo_sim):
    async def use(app: Any, runner: Any) -> int:
        await runner.fire_timer("access_review_timer")
        return await app.queues.approximate_count("xtap-access-reviews")

    assert asyncio.run(_with_app(use)) == 0


def test_the_simulator_refuses_a_review_of_a_bare_users_query(review_env, demo_sim):
    """Graph "Configure the scope of your access review": a review reviews access to a
    resource; the old /users?$filter=...endswith(mail,...) scope is refused with a 400."""

    async def use(app: Any, runner: Any) -> Any:
        from shared.adapters.graph import GraphError

        body = {
            "displayName": "undocumented scope",
            "scope": {
                "@odata.type": "#microsoft.graph.accessReviewQueryScope",
                "query": "/users?$filter=(userType eq 'Guest') and "
                "endswith(mail,'@contoso-markets.com')",
                "queryType": "MicrosoftGraph",
            },
            "reviewers": [
                {"query": f"/users/{REVIEWERS.split(',')[0]}", "queryType": "MicrosoftGraph"}
            ],
            "settings": {
                "recurrence": {
                    "pattern": {"type": "weekly", "interval": 1},
                    "range": {"type": "noEnd", "startDate": "2026-12-01"},
                }
            },
        }
        try:
            await app.graph.vendor().post_json(
                "/identityGovernance/accessReviews/definitions", body
            )
        except GraphError as exc:
            return exc
        return None

    exc = asyncio.run(_with_app(use))
    assert exc is not None and exc.status == 400 and exc.code == "BadRequest"
    assert "not a supported access review scope" in exc.message


def test_thirty_parallel_ensures_for_one_client_coalesce_into_one_job(review_env, demo_sim):
    """Issue 13.22: 30 parallel on-demand ensures are one job (one atomic claim per
    client), finished in one drain — not one per minute."""

    async def use(app: Any, runner: Any) -> dict[str, Any]:
        from shared.adapters.job_ledger import JobLedger
        from shared.services.access_reviews import request_access_review

        now = datetime.now(UTC)
        jobs = await asyncio.gather(
            *(request_access_review(app, NORTHWIND, f"ops{n}@osttra.com", now) for n in range(30))
        )
        ids = {job.job_id for job in jobs}
        queued = await app.queues.approximate_count("xtap-access-reviews")
        stats = (await runner.drain(["access_review_job"]))["access_review_job"]
        final = [await JobLedger(app.tables).get_access_review(i) for i in ids]
        return {"ids": ids, "queued": queued, "processed": stats.processed, "final": final}

    out = asyncio.run(_with_app(use))
    assert len(out["ids"]) == 1 and out["queued"] == 1
    assert out["processed"] == 1
    assert [j.state for j in out["final"]] == ["done"]
    definitions = demo_sim.control.access_review_definitions(VENDOR_TENANT_ID)
    assert len(_named(definitions, "xtap-watch guest review: Northwind Securities")) == 1


NEW_CLIENTS = [
    ("0a1b2c3d-4e5f-4061-8a7b-8c9d0e1f2a31", "Adventure Works", "adventure-works.example"),
    ("0a1b2c3d-4e5f-4061-8a7b-8c9d0e1f2a32", "Alpine Ski House", "alpineskihouse.example"),
    ("0a1b2c3d-4e5f-4061-8a7b-8c9d0e1f2a33", "Coho Winery", "cohowinery.example"),
]


async def _register_new_clients(app: Any) -> list[Any]:
    from shared.adapters.repositories import ClientRegistry
    from shared.domain.clients import ClientRecord

    records = []
    for tenant_id, name, domain in NEW_CLIENTS:
        record = ClientRecord(tenant_id=tenant_id, name=name, domains=(domain,))
        await ClientRegistry(app.tables).upsert(record)
        records.append(record)
    return records


def test_ensures_queued_behind_a_running_one_finish_from_its_result(review_env, demo_sim):
    """Jobs already on the queue for one client (timer and on-demand): one calls Graph, the
    others finish from its recorded result after a short wait."""

    async def use(app: Any, runner: Any) -> dict[str, Any]:
        from shared.adapters.job_ledger import JobLedger
        from shared.services.access_reviews import _enqueue, _queued_job

        client = (await _register_new_clients(app))[0]
        now = datetime.now(UTC)
        jobs = [
            _queued_job(client, f"2026120{n}-{client.tenant_id}", "timer", now)
            for n in range(1, 6)
        ]
        for job in jobs:
            await _enqueue(app, job)
        posts_before = _posts(demo_sim)
        await runner.drain(["access_review_job"])
        ledger = JobLedger(app.tables)
        final = [await ledger.get_access_review(j.job_id) for j in jobs]
        return {"final": final, "posts": _posts(demo_sim) - posts_before}

    out = asyncio.run(_with_app(use))
    assert {j.state for j in out["final"]} == {"done"}
    assert out["posts"] == 1  # one definition created, the other four joined it
    assert len({j.definition_id for j in out["final"]}) == 1
    coalesced = [j for j in out["final"] if any("finished together" in s.detail for s in j.steps)]
    assert len(coalesced) >= 1


def test_one_missing_licence_is_one_alert_for_every_client(review_env, demo_sim):
    """Issue 14.2: the weekly fan-out failing for one cause gives one card, not one per
    client."""
    demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, accessReviewsLicensed=False)

    async def use(app: Any, runner: Any) -> list[dict[str, Any]]:
        await _register_new_clients(app)  # at least two of them have no review yet
        await runner.fire_timer("access_review_timer")
        await runner.drain(["access_review_job"])
        return [json.loads(m) for m in await app.queues.peek_all("xtap-alerts")]

    try:
        alerts = asyncio.run(_with_app(use))
    finally:
        demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, accessReviewsLicensed=True)
    failed = [a for a in alerts if a["kind"] == "access_review_failed"]
    assert len(failed) >= 2  # one outbox record per failed job ...
    assert len({a["dedup_key"] for a in failed}) == 1  # ... but one alert (the key)
    assert failed[0]["client"] is None and "every client" in failed[0]["summary"]
    assert failed[0]["facts"]["Cause"] == "licence"


def _posts(sim: Any) -> int:
    return len(
        [r for r in sim.control.requests("accessReviews/definitions") if r.get("method") == "POST"]
    )
