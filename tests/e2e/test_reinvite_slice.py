"""Re-invites end to end: HTTP trigger → ledger + reset queue → POST /invitations → status.

Everything runs through the local runner (function_app.py's triggers), real Azurite and
the Graph simulator over HTTPS; the App Service principal header is injected as Easy
Auth would send it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID, load_demo_scenario, seed_registry
from shared.domain.principal import encode_client_principal

pytestmark = pytest.mark.e2e

SUPPORT_OID = "7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93"
SUPPORT = encode_client_principal(
    name="support.lead@osttra.com",
    object_id=SUPPORT_OID,
    roles=("Reinvite.Request",),
    tenant_id=VENDOR_TENANT_ID,
)
NO_ROLE = encode_client_principal(
    name="intern@osttra.com",
    object_id="0c9b8a7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d",
    roles=("Something.Else",),
    tenant_id=VENDOR_TENANT_ID,
)
JSON = {"Content-Type": "application/json"}


def guest_upn(mail: str) -> str:
    return mail.replace("@", "_") + "#EXT#@osttra.com"


def vendor_user(sim: Any, upn: str) -> dict[str, Any]:
    return sim.control.user(VENDOR_TENANT_ID, upn)


class Harness:
    """One event loop's worth of app + runner, with small helpers for the API."""

    def __init__(self) -> None:
        from devtools.runner import LocalRunner

        self.runner = LocalRunner()
        self.app: Any = None

    async def __aenter__(self) -> Harness:
        from shared.bootstrap import get_app, set_app

        set_app(None)
        self.app = await get_app()
        await seed_registry(self.app, load_demo_scenario())
        return self

    async def __aexit__(self, *exc: object) -> None:
        from shared.bootstrap import set_app

        await self.runner.close()
        await self.app.close()
        set_app(None)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        principal: str | None = SUPPORT,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        all_headers = dict(JSON if body is not None else {})
        if principal is not None:
            all_headers["X-MS-CLIENT-PRINCIPAL"] = principal
        all_headers.update(headers or {})
        raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body else b""
        status, out_headers, payload = await self.runner.handle_http(
            method, path, headers=all_headers, body=raw
        )
        return status, out_headers, json.loads(payload) if payload else None

    async def alerts(self) -> list[dict[str, Any]]:
        from shared.config import QUEUE_ALERTS

        return [json.loads(m) for m in await self.app.queues.peek_all(QUEUE_ALERTS)]


def test_reinvite_over_http_resets_once_and_reports_done(app_env, demo_sim):
    bob = vendor_user(demo_sim, guest_upn("bob.ops@contoso-markets.com"))

    async def scenario() -> dict[str, Any]:
        from shared.config import QUEUE_REINVITES
        from shared.domain.messages import ReinviteJobMessage

        async with Harness() as h:
            status, headers, accepted = await h.call(
                "POST",
                "/api/v1/reinvites",
                {
                    "email": "bob.ops@contoso-markets.com",
                    "reason": "Bob moved to a new laptop and lost his session",
                    "sendInvitationMessage": True,
                },
            )
            assert status == 202, accepted
            job_id = accepted["jobId"]
            assert headers["Location"] == f"/api/v1/reinvites/{job_id}"
            assert accepted["statusUrl"] == headers["Location"]
            queued = (await h.call("GET", accepted["statusUrl"]))[2]

            stats = await h.runner.drain(["reinvite_job"])
            done = (await h.call("GET", accepted["statusUrl"]))[2]

            # A duplicate request within the window answers with the same job.
            dup_status, _, dup = await h.call(
                "POST", "/api/v1/reinvites", {"userId": bob["id"], "reason": "again"}
            )

            # The host redelivers the same message (e.g. visibility timeout): no 2nd reset.
            await h.app.queues.send(
                QUEUE_REINVITES,
                ReinviteJobMessage(
                    job_id=job_id,
                    user_id=bob["id"],
                    reason="Bob moved to a new laptop and lost his session",
                    requested_by="support.lead@osttra.com",
                    send_invitation_message=True,
                ),
            )
            await h.runner.drain(["reinvite_job"])
            after_redelivery = (await h.call("GET", accepted["statusUrl"]))[2]
            alerts = await h.alerts()
            return {
                "queued": queued,
                "done": done,
                "dup": (dup_status, dup),
                "after": after_redelivery,
                "alerts": alerts,
                "processed": stats["reinvite_job"].processed,
            }

    result = asyncio.run(scenario())
    assert result["queued"]["state"] == "queued"
    done = result["done"]
    assert done["state"] == "done"
    assert [s["state"] for s in done["steps"]] == ["queued", "running", "done"]
    assert done["requestedBy"] == f"support.lead@osttra.com ({SUPPORT_OID})"
    assert done["client"] == {
        "tenantId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "name": "Contoso Markets",
    }
    assert done["invitationId"]

    resets = [
        i
        for i in demo_sim.control.invitations(VENDOR_TENANT_ID)
        if i.get("invitedUserId") == bob["id"]
    ]
    assert len(resets) == 1, "redelivery must not reset twice"
    sent = resets[0]["request"]
    assert sent == {
        "invitedUserEmailAddress": "bob.ops@contoso-markets.com",
        "inviteRedirectUrl": "https://myapps.microsoft.com",
        "sendInvitationMessage": True,
        "resetRedemption": True,
        "invitedUser": {"id": bob["id"]},
    }
    assert resets[0]["status"] == 201

    dup_status, dup = result["dup"]
    assert dup_status == 202 and dup["existing"] is True and dup["jobId"] == done["jobId"]
    assert result["after"]["steps"] == done["steps"]

    reinvite_alerts = [a for a in result["alerts"] if a["kind"] == "reinvite_done"]
    assert {a["dedup_key"] for a in reinvite_alerts} == {f"reinvite:{done['jobId']}:done"}
    assert reinvite_alerts[0]["who"] == done["requestedBy"]
    # The guest is pending again: the reset really happened in the directory.
    assert (
        vendor_user(demo_sim, guest_upn("bob.ops@contoso-markets.com"))["externalUserState"]
        == "PendingAcceptance"
    )


def test_members_unknown_users_and_non_client_guests_are_refused(app_env, demo_sim):
    demo_sim.control.add_users(
        VENDOR_TENANT_ID,
        [
            {
                "mail": "eve.partner@litware-consulting.example",
                "userType": "Guest",
                "externalUserState": "Accepted",
                "displayName": "Eve (guest of an unregistered company)",
            }
        ],
    )
    member = vendor_user(demo_sim, "j.doe.contractor@osttra.com")

    async def scenario() -> dict[str, Any]:
        async with Harness() as h:
            before = len(demo_sim.control.invitations(VENDOR_TENANT_ID))
            out = {
                "member_by_mail": await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    {"email": "j.doe@contoso-markets.com", "reason": "x"},
                ),
                "member_by_id": await h.call(
                    "POST", "/api/v1/reinvites", {"userId": member["id"], "reason": "x"}
                ),
                "non_client": await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    {"email": "eve.partner@litware-consulting.example", "reason": "x"},
                ),
                "unknown": await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    {"email": "nobody@contoso-markets.com", "reason": "x"},
                ),
                "no_role": await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    {"email": "bob.ops@contoso-markets.com", "reason": "x"},
                    principal=NO_ROLE,
                ),
                "anonymous": await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    {"email": "bob.ops@contoso-markets.com", "reason": "x"},
                    principal=None,
                ),
            }
            out["queue"] = await h.app.queues.approximate_count("xtap-reinvites")
            out["invitations_added"] = len(demo_sim.control.invitations(VENDOR_TENANT_ID)) - before
            return out

    out = asyncio.run(scenario())
    assert out["member_by_mail"][0] == 403
    assert "member" in out["member_by_mail"][2]["error"]["message"]
    assert out["member_by_id"][0] == 403
    assert out["non_client"][0] == 403
    assert "litware-consulting.example" in out["non_client"][2]["error"]["message"]
    assert out["unknown"][0] == 404
    assert out["no_role"][0] == 403
    assert out["no_role"][2]["error"]["code"] == "forbidden"
    assert out["anonymous"][0] == 401
    assert out["queue"] == 0
    assert out["invitations_added"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"email": "x' or userType eq 'Member", "reason": "injection"},
        {"email": "x@contoso-markets.com' or '1' eq '1", "reason": "injection"},
        {"userId": "00000000-0000-0000-0000-000000000000' or userType eq 'Member", "reason": "i"},
        {"userId": "../users?$filter=userType eq 'Member'", "reason": "injection"},
    ],
)
def test_odata_injection_is_refused_before_any_graph_call(app_env, demo_sim, body):
    async def scenario() -> tuple[int, Any, int, int]:
        async with Harness() as h:
            before = len(demo_sim.control.requests())
            status, _, payload = await h.call("POST", "/api/v1/reinvites", body)
            after = len(demo_sim.control.requests())
            return status, payload, before, after

    status, payload, before, after = asyncio.run(scenario())
    assert status == 400
    assert payload["error"]["field"] == ("email" if "email" in body else "userId")
    assert after == before, "nothing may reach Graph"


def test_guest_holding_a_directory_role_fails_with_the_reason_and_no_retry_loop(app_env, demo_sim):
    dan = vendor_user(demo_sim, guest_upn("dan.admin@fabrikam-clearing.com"))

    async def scenario() -> dict[str, Any]:
        async with Harness() as h:
            status, _, accepted = await h.call(
                "POST", "/api/v1/reinvites", {"userId": dan["id"], "reason": "MFA reset"}
            )
            assert status == 202, accepted
            stats = await h.runner.drain(["reinvite_job"])
            job = (await h.call("GET", accepted["statusUrl"]))[2]
            return {
                "job": job,
                "stats": stats["reinvite_job"],
                "alerts": await h.alerts(),
                "poison": await h.app.queues.approximate_count("xtap-reinvites-poison"),
            }

    out = asyncio.run(scenario())
    job = out["job"]
    assert job["state"] == "failed"
    assert job["error"]["status"] == 403
    assert job["error"]["code"] == "Authorization_RequestDenied"
    assert "directory role" in job["error"]["explanation"]
    assert "Reset redemption status" in job["error"]["remediation"]
    assert out["stats"].failed_attempts == 0 and out["stats"].poisoned == 0
    assert out["poison"] == 0
    failed = [a for a in out["alerts"] if a["kind"] == "reinvite_failed"]
    assert len(failed) == 1 and failed[0]["facts"]["Graph answer"].startswith("403")


def test_invitations_switched_off_is_explained(app_env, demo_sim):
    erin = vendor_user(demo_sim, guest_upn("erin.back@fabrikam-clearing.com"))
    demo_sim.control.set_authorization_policy(VENDOR_TENANT_ID, allowInvitesFrom="none")
    try:

        async def scenario() -> dict[str, Any]:
            async with Harness() as h:
                _, _, accepted = await h.call(
                    "POST", "/api/v1/reinvites", {"userId": erin["id"], "reason": "stuck"}
                )
                await h.runner.drain(["reinvite_job"])
                return (await h.call("GET", accepted["statusUrl"]))[2]

        job = asyncio.run(scenario())
    finally:
        demo_sim.control.set_authorization_policy(
            VENDOR_TENANT_ID, allowInvitesFrom="adminsAndGuestInviters"
        )
    assert job["state"] == "failed"
    assert "switched off" in job["error"]["explanation"]
    assert "allowInvitesFrom" in job["error"]["remediation"]


def test_throttled_reset_is_retried_by_the_queue_and_done_once(app_env, demo_sim):
    grace = vendor_user(demo_sim, guest_upn("grace.ops@northwind-securities.com"))
    # More 429s than the SDK's own three retries: the first invocation gives up, the host
    # retries the message, the second succeeds.
    demo_sim.control.add_fault(r"/invitations", status=429, retry_after=1, count=4, method="POST")
    try:

        async def scenario() -> dict[str, Any]:
            async with Harness() as h:
                _, _, accepted = await h.call(
                    "POST", "/api/v1/reinvites", {"userId": grace["id"], "reason": "throttled"}
                )
                stats = await h.runner.drain(["reinvite_job"])
                job = (await h.call("GET", accepted["statusUrl"]))[2]
                return {"job": job, "stats": stats["reinvite_job"]}

        out = asyncio.run(scenario())
    finally:
        demo_sim.control.clear_faults()
    job = out["job"]
    assert job["state"] == "done"
    assert job["attempts"] == 2
    assert [s["state"] for s in job["steps"]] == ["queued", "running", "queued", "running", "done"]
    assert out["stats"].failed_attempts == 1
    resets = [
        i
        for i in demo_sim.control.invitations(VENDOR_TENANT_ID)
        if i.get("invitedUserId") == grace["id"]
    ]
    assert len(resets) == 1


def test_bad_requests_are_4xx_naming_the_field(app_env, demo_sim):
    async def scenario() -> dict[str, Any]:
        async with Harness() as h:
            return {
                "both": await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    {
                        "email": "a@contoso-markets.com",
                        "userId": "264e6d50-eaec-461e-b187-873b1bcf855f",
                        "reason": "x",
                    },
                ),
                "no_reason": await h.call(
                    "POST", "/api/v1/reinvites", {"email": "a@contoso-markets.com"}
                ),
                "http_redirect": await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    {
                        "email": "a@contoso-markets.com",
                        "reason": "x",
                        "redirectUrl": "http://x.example",
                    },
                ),
                "not_json": await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    b"{not json",
                    headers={"Content-Type": "application/json"},
                ),
                "text": await h.call(
                    "POST", "/api/v1/reinvites", b"email=a", headers={"Content-Type": "text/plain"}
                ),
                "huge": await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    {"email": "a@contoso-markets.com", "reason": "x" * 20_000},
                ),
                "bad_job": await h.call("GET", "/api/v1/reinvites/not-a-guid"),
                "no_job": await h.call(
                    "GET", "/api/v1/reinvites/264e6d50-eaec-461e-b187-873b1bcf855f"
                ),
            }

    out = asyncio.run(scenario())
    assert out["both"][0] == 400 and out["both"][2]["error"]["field"] == "userId"
    assert out["no_reason"][0] == 400 and out["no_reason"][2]["error"]["field"] == "reason"
    assert out["http_redirect"][0] == 400
    assert out["http_redirect"][2]["error"]["field"] == "redirectUrl"
    assert out["not_json"][0] == 400 and out["not_json"][2]["error"]["field"] == "body"
    assert out["text"][0] == 415
    assert out["huge"][0] == 413
    assert out["bad_job"][0] == 400 and out["bad_job"][2]["error"]["field"] == "jobId"
    assert out["no_job"][0] == 404


def test_posture_and_health_routes(app_env, demo_sim):
    contoso = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"

    async def scenario() -> dict[str, Any]:
        async with Harness() as h:
            before = await h.call("GET", f"/api/v1/clients/{contoso}/posture")
            await h.runner.fire_timer("sweep_timer")
            await h.runner.drain(["check_client"])
            return {
                "before": before,
                "after": await h.call("GET", f"/api/v1/clients/{contoso}/posture"),
                "health": await h.call("GET", "/api/v1/health", principal=None),
                "openapi_anonymous": await h.call("GET", "/api/v1/openapi.json", principal=None),
                "openapi": await h.call("GET", "/api/v1/openapi.json"),
            }

    out = asyncio.run(scenario())
    assert out["before"][0] == 404
    status, _, posture = out["after"]
    assert status == 200
    assert posture["tenantId"] == contoso and posture["verdict"] == "ALLOWED"
    assert out["health"][0] == 200 and out["health"][2] == {"status": "ok"}
    assert out["openapi_anonymous"][0] == 401
    assert out["openapi"][0] == 200 and out["openapi"][2]["openapi"].startswith("3.")
