"""Guest hygiene end to end: the hygiene timer's alerts, and resets after a client recovers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID, load_demo_scenario, seed_registry

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"


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


def test_hygiene_timer_reports_stuck_guests_once_per_client_per_day(app_env, demo_sim):
    async def use(app: Any, runner: Any) -> list[dict[str, Any]]:
        await runner.fire_timer("guest_hygiene_timer")
        await runner.fire_timer("guest_hygiene_timer")  # same day: same keys
        return [json.loads(m) for m in await app.queues.peek_all("xtap-alerts")]

    alerts = [a for a in asyncio.run(_with_app(use)) if a["kind"] == "pending_guests"]
    by_client = {a["client"]["tenant_id"]: a for a in alerts}
    # Scenario: Bob (Contoso, 21 days) and Erin (Fabrikam, 45 days) are past the 14-day
    # default; Grace (Northwind, 3 days) and Jack (Tailspin, 10 days) are not yet.
    assert set(by_client) == {CONTOSO, FABRIKAM}
    assert len({a["dedup_key"] for a in alerts}) == 2  # the repeat run de-duplicates
    assert "Bob Ops <bob.ops@contoso-markets.com>" in by_client[CONTOSO]["summary"]
    assert by_client[FABRIKAM]["facts"]["Guests stuck"] == "1"


def test_client_recovery_resets_only_guests_stranded_by_the_drift(app_env, demo_sim):
    added = demo_sim.control.add_users(
        VENDOR_TENANT_ID,
        [
            {
                "mail": "nina.invited@contoso-markets.com",
                "userType": "Guest",
                "externalUserState": "PendingAcceptance",
                "displayName": "Nina (invited during the drift)",
                "externalUserStateChangeDateTime": "now-2d",
            },
            {
                "mail": "omar.old@contoso-markets.com",
                "userType": "Guest",
                "externalUserState": "PendingAcceptance",
                "displayName": "Omar (pending since before the drift)",
                "externalUserStateChangeDateTime": "now-40d",
            },
            {
                "mail": "paul.ok@contoso-markets.com",
                "userType": "Guest",
                "externalUserState": "Accepted",
                "displayName": "Paul (redeemed)",
                "externalUserStateChangeDateTime": "now-2d",
            },
        ],
    )
    nina, omar, paul = (u["id"] for u in added)
    now = datetime.now(UTC)

    async def use(app: Any, runner: Any) -> dict[str, Any]:
        from shared.services.guest_hygiene import resets_after_recovery
        from shared.services.reinvites import get_job

        first = await resets_after_recovery(
            app, CONTOSO, drift_started_at=now - timedelta(days=3), recovered_at=now, now=now
        )
        again = await resets_after_recovery(
            app, CONTOSO, drift_started_at=now - timedelta(days=3), recovered_at=now, now=now
        )
        await runner.drain(["reinvite_job"])
        jobs = [await get_job(app, j) for j in first.job_ids]
        return {"first": first, "again": again, "jobs": jobs}

    out = asyncio.run(_with_app(use))
    jobs = out["jobs"]
    assert [j.user_id for j in jobs] == [nina]
    assert jobs[0].state == "done" and jobs[0].origin == "recovery"
    assert jobs[0].send_invitation_message is True
    assert out["again"].job_ids == out["first"].job_ids
    assert out["again"].skipped == "already queued for this drift episode"
    reset_ids = {i.get("invitedUserId") for i in demo_sim.control.invitations(VENDOR_TENANT_ID)}
    assert nina in reset_ids and omar not in reset_ids and paul not in reset_ids
