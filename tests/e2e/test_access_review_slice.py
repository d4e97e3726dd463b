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
    assert fabrikam["scope"] == {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": "/users?$filter=(userType eq 'Guest') and (endswith(mail,'@fabrikam-clearing.com')"
        " or endswith(mail,'@fabrikamclearing.onmicrosoft.com'))",
        "queryType": "MicrosoftGraph",
    }
    assert [r["query"] for r in fabrikam["reviewers"]] == [
        f"/users/{rid}" for rid in REVIEWERS.split(",")
    ]
    settings = fabrikam["settings"]
    assert settings["autoApplyDecisionsEnabled"] is True
    assert settings["defaultDecisionEnabled"] is True
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
    assert len(failed) == 1 and failed[0]["client"]["tenant_id"] == LITWARE
    assert not _named(
        demo_sim.control.access_review_definitions(VENDOR_TENANT_ID),
        "xtap-watch guest review: Litware FX",
    )


def test_without_reviewers_nothing_is_scheduled(app_env, demo_sim):
    async def use(app: Any, runner: Any) -> int:
        await runner.fire_timer("access_review_timer")
        return await app.queues.approximate_count("xtap-access-reviews")

    assert asyncio.run(_with_app(use)) == 0
