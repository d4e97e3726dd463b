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


# ------------------------------------------------------------- issues 11 and 13
XTAP_APP_ID = "3b8f2d6a-7c41-4e95-a0d2-8f1b6c3e9a74"  # the demo's vendor app (client secret)


def _resets_of(sim: Any, user_id: str) -> list[dict[str, Any]]:
    return [
        i for i in sim.control.invitations(VENDOR_TENANT_ID) if i.get("invitedUserId") == user_id
    ]


def test_fifty_parallel_identical_requests_make_one_job_and_one_reset(
    app_env, demo_sim, monkeypatch
):
    """Issue 13.1: one atomic claim per user — any concurrency, exactly one job, one POST.

    The winner of the index is held between its two writes (index row, then job row), so
    every other request meets the index pointing at a job row that is not written yet: the
    window in which the losers used to create jobs of their own."""
    from shared.adapters.job_ledger import JobLedger
    from shared.entrypoints import http_api

    frank = vendor_user(demo_sim, guest_upn("frank.settle@northwind-securities.com"))
    http_api.set_rate_limit(10_000, 60.0)
    create_reinvite = JobLedger.create_reinvite

    async def slow_create(self: Any, job: Any) -> bool:
        await asyncio.sleep(0.5)
        return await create_reinvite(self, job)

    monkeypatch.setattr(JobLedger, "create_reinvite", slow_create)

    async def scenario() -> dict[str, Any]:
        from shared.adapters.job_ledger import JobLedger

        async with Harness() as h:
            answers = await asyncio.gather(
                *(
                    h.call(
                        "POST",
                        "/api/v1/reinvites",
                        {"userId": frank["id"], "reason": "locked out after a laptop swap"},
                    )
                    for _ in range(50)
                )
            )
            await h.runner.drain(["reinvite_job"])
            counts = await JobLedger(h.app.tables).count_by_state()
            alerts = [a for a in await h.alerts() if a["kind"] == "reinvite_done"]
            return {"answers": answers, "counts": counts, "alerts": alerts}

    try:
        out = asyncio.run(scenario())
    finally:
        http_api.set_rate_limit(*http_api.DEFAULT_RATE_LIMIT)
    statuses = {status for status, _, _ in out["answers"]}
    assert statuses == {202}
    job_ids = {body["jobId"] for _, _, body in out["answers"]}
    assert len(job_ids) == 1
    assert sum(not body["existing"] for _, _, body in out["answers"]) == 1
    assert out["counts"] == {"done": 1}
    assert len(_resets_of(demo_sim, frank["id"])) == 1
    assert len({a["dedup_key"] for a in out["alerts"]}) == 1


def test_an_internal_account_typed_guest_is_refused_and_never_converted(app_env, demo_sim):
    """Issue 11.5: userType Guest on an internal account (no #EXT#, no external identity)
    is not a B2B guest. The simulator converts such an account on POST /invitations, as
    Entra does, so only a refusal before Graph keeps it intact."""
    [legacy] = demo_sim.control.add_users(
        VENDOR_TENANT_ID,
        [
            {
                "userPrincipalName": "legacy.trader@osttra.com",
                "mail": "legacy.trader@contoso-markets.com",
                "userType": "Guest",
                "externalUserState": None,
                "displayName": "Legacy trader (internal account typed Guest)",
            }
        ],
    )

    async def scenario() -> Any:
        async with Harness() as h:
            return await h.call(
                "POST", "/api/v1/reinvites", {"userId": legacy["id"], "reason": "cannot sign in"}
            ) + (await h.app.queues.approximate_count("xtap-reinvites"),)

    status, _, body, queued = asyncio.run(scenario())
    assert status == 403 and body["error"]["code"] == "not_eligible"
    assert "internal account" in body["error"]["message"]
    assert queued == 0
    after = vendor_user(demo_sim, "legacy.trader@osttra.com")
    assert after["externalUserState"] is None  # not converted to B2B
    assert _resets_of(demo_sim, legacy["id"]) == []


def test_restricted_invitations_refusal_is_explained_as_the_apps_missing_role(app_env, demo_sim):
    """Issue 11.4: under allowInvitesFrom = adminsAndGuestInviters the simulator refuses
    app-only invitations unless the app's service principal holds an inviting role; the
    failure names that cause (not "the guest holds a directory role")."""
    irene = vendor_user(demo_sim, guest_upn("irene.desk@tailspin-capital.com"))
    demo_sim.control.set_directory(
        VENDOR_TENANT_ID, servicePrincipalDirectoryRoles={XTAP_APP_ID: []}
    )
    try:

        async def scenario() -> dict[str, Any]:
            async with Harness() as h:
                _, _, accepted = await h.call(
                    "POST", "/api/v1/reinvites", {"userId": irene["id"], "reason": "stuck"}
                )
                await h.runner.drain(["reinvite_job"])
                job = (await h.call("GET", accepted["statusUrl"]))[2]
                await h.runner.fire_timer("sweep_timer")
                await h.runner.drain(["check_client"])
                posture = (
                    await h.call(
                        "GET", "/api/v1/clients/4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80/posture"
                    )
                )[2]
                return {"job": job, "posture": posture}

        out = asyncio.run(scenario())
    finally:
        demo_sim.control.set_directory(
            VENDOR_TENANT_ID, servicePrincipalDirectoryRoles={XTAP_APP_ID: ["Guest Inviter"]}
        )
    job = out["job"]
    assert job["state"] == "failed" and job["error"]["status"] == 403
    assert "restricted to admins and Guest Inviters" in job["error"]["explanation"]
    assert "directory role" not in job["error"]["explanation"]
    assert "Guest Inviter" in job["error"]["remediation"]
    codes = {f["code"] for f in out["posture"]["vendorFindings"]}
    assert "VENDOR_APP_CANNOT_INVITE" in codes


def test_a_503_after_graph_acted_sends_no_second_invitation(app_env, demo_sim):
    """Issue 11.6: Graph resets the redemption (and mails the guest), then the answer is a
    503. Neither the SDK's retry handler nor the host's retry may POST again: the retry
    finds the reset in the directory and finishes the job."""
    henry = vendor_user(demo_sim, guest_upn("henry.trade@tailspin-capital.com"))
    demo_sim.control.add_fault(r"/invitations", status=503, count=1, method="POST", after=True)
    try:

        async def scenario() -> dict[str, Any]:
            async with Harness() as h:
                _, _, accepted = await h.call(
                    "POST",
                    "/api/v1/reinvites",
                    {"userId": henry["id"], "reason": "new phone", "sendInvitationMessage": True},
                )
                stats = await h.runner.drain(["reinvite_job"])
                job = (await h.call("GET", accepted["statusUrl"]))[2]
                return {"job": job, "stats": stats["reinvite_job"]}

        out = asyncio.run(scenario())
    finally:
        demo_sim.control.clear_faults()
    posts = _resets_of(demo_sim, henry["id"])
    assert len(posts) == 1, "one invitation e-mail, not two"
    job = out["job"]
    assert job["state"] == "done"
    assert "confirmed in the directory" in job["steps"][-1]["detail"]
    assert out["stats"].failed_attempts == 1 and out["stats"].poisoned == 0


def test_redirect_urls_are_the_vendors_and_a_conflicting_repeat_gets_409(app_env, demo_sim):
    """Issue 13.10: redirectUrl only to the vendor's hosts; a repeat of the pending job
    with other parameters is a 409, the same parameters answer with the pending job."""
    kate = vendor_user(demo_sim, guest_upn("kate.ops@woodgrove-bank.com"))

    async def scenario() -> dict[str, Any]:
        async with Harness() as h:

            def post(**extra: Any) -> Any:
                return h.call(
                    "POST", "/api/v1/reinvites", {"userId": kate["id"], "reason": "x", **extra}
                )

            return {
                "elsewhere": await post(redirectUrl="https://phish.example/login"),
                "lookalike": await post(redirectUrl="https://sso.osttra.com.phish.example/"),
                "vendor": await post(redirectUrl="https://sso.osttra.com/welcome"),
                "other_message": await post(
                    redirectUrl="https://sso.osttra.com/welcome", sendInvitationMessage=True
                ),
                "other_url": await post(redirectUrl="https://myapps.microsoft.com"),
                "same": await post(redirectUrl="https://sso.osttra.com/welcome"),
            }

    out = asyncio.run(scenario())
    for key in ("elsewhere", "lookalike"):
        status, _, body = out[key]
        assert status == 400 and body["error"]["field"] == "redirectUrl", key
        assert "sso.osttra.com" in body["error"]["message"]
    assert out["vendor"][0] == 202 and out["vendor"][2]["existing"] is False
    for key in ("other_message", "other_url"):
        status, _, body = out[key]
        assert status == 409 and body["error"]["code"] == "conflicting_request", key
    assert out["same"][0] == 202 and out["same"][2]["jobId"] == out["vendor"][2]["jobId"]


def test_the_requester_is_told_the_result_at_their_address(app_env, demo_sim):
    """Issue 13.8: the requester is stored as "name (oid)" for the record and by address
    for the result mail."""
    carol = vendor_user(demo_sim, guest_upn("carol.risk@fabrikam-clearing.com"))

    async def scenario() -> dict[str, Any]:
        async with Harness() as h:
            _, _, accepted = await h.call(
                "POST", "/api/v1/reinvites", {"userId": carol["id"], "reason": "reset please"}
            )
            await h.runner.drain(["reinvite_job"])
            job = (await h.call("GET", accepted["statusUrl"]))[2]
            alerts = [a for a in await h.alerts() if a["kind"] == "reinvite_done"]
            demo_sim.control.clear_mailbox()
            await h.runner.drain(["deliver_alert"])
            return {"job": job, "alerts": alerts, "mail": demo_sim.control.mailbox()}

    out = asyncio.run(scenario())
    assert out["job"]["requestedBy"] == f"support.lead@osttra.com ({SUPPORT_OID})"
    assert out["job"]["requesterEmail"] == "support.lead@osttra.com"
    [alert] = out["alerts"]
    assert alert["notify"] == ["support.lead@osttra.com"]
    # Delivered: the result mail really reaches the requester's mailbox address.
    recipients = {
        r["emailAddress"]["address"]
        for m in out["mail"]
        for r in m["message"].get("toRecipients") or []
    } | {
        r["emailAddress"]["address"]
        for m in out["mail"]
        for r in m["message"].get("bccRecipients") or []
    }
    assert "support.lead@osttra.com" in recipients


def test_a_failed_directory_check_keeps_the_reset_unconfirmed_not_forgotten(app_env, demo_sim):
    """After an unanswered POST, the check before re-posting can itself fail (Graph busy):
    the next attempt must check again, never post blindly."""
    jack = vendor_user(demo_sim, guest_upn("jack.new@tailspin-capital.com"))

    async def scenario() -> dict[str, Any]:
        async with Harness() as h:
            _, _, accepted = await h.call(
                "POST", "/api/v1/reinvites", {"userId": jack["id"], "reason": "stuck"}
            )
            demo_sim.control.add_fault(
                r"/invitations", status=503, count=1, method="POST", after=True
            )
            # More 503s than the SDK's three retries of a GET: the first check fails.
            demo_sim.control.add_fault(rf"/users/{jack['id']}", status=503, count=4, method="GET")
            try:
                stats = await h.runner.drain(["reinvite_job"])
            finally:
                demo_sim.control.clear_faults()
            job = (await h.call("GET", accepted["statusUrl"]))[2]
            return {"job": job, "stats": stats["reinvite_job"]}

    out = asyncio.run(scenario())
    assert len(_resets_of(demo_sim, jack["id"])) == 1
    assert out["job"]["state"] == "done"
    assert "confirmed in the directory" in out["job"]["steps"][-1]["detail"]
    assert out["stats"].failed_attempts == 2
