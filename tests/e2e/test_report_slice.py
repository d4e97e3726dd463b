"""Portfolio report and what-if end to end, on the demo stack.

Real Azurite, the Graph simulator over HTTPS, ``function_app.py``'s HTTP triggers through
the local runner (the App Service principal header injected as Easy Auth would), and the
``xtap-watch`` CLI against the same storage and simulator.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from devtools.local_env import (
    BLOCK_OUTBOUND,
    VENDOR_TENANT_ID,
    load_demo_scenario,
    scenario_clients,
)
from shared.cli import main as cli
from shared.domain.principal import encode_client_principal
from sim.scenarios import b2b_everyone
from tests.e2e.test_reinvite_slice import SUPPORT, Harness

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
READER = encode_client_principal(
    name="account.manager@osttra.com",
    object_id="5b8c2e1d-4f3a-4b6c-9d8e-7f1a2b3c4d5e",
    roles=("Report.Read",),
    tenant_id=VENDOR_TENANT_ID,
)
NO_ROLE = encode_client_principal(
    name="intern@osttra.com",
    object_id="0c9b8a7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d",
    roles=("Something.Else",),
    tenant_id=VENDOR_TENANT_ID,
)
DEMO_CLIENTS = {c.tenant_id: c.name for c in scenario_clients(load_demo_scenario())}
BLOCK_INBOUND = {"b2bCollaborationInbound": b2b_everyone("blocked")}


async def sweep(h: Harness) -> None:
    await h.runner.fire_timer("sweep_timer")
    await h.runner.drain(["check_client"])


async def get(h: Harness, path: str, principal: str | None, **headers: str) -> Any:
    all_headers = dict(headers)
    if principal is not None:
        all_headers["X-MS-CLIENT-PRINCIPAL"] = principal
    return await h.runner.handle_http("GET", path, headers=all_headers)


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_report_lists_every_client_over_http_and_from_the_cli(
    app_env, demo_sim, tmp_path, capsys
):
    async def scenario() -> dict[str, Any]:
        async with Harness() as h:
            await sweep(h)
            demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
            await sweep(h)
            out: dict[str, Any] = {}
            out["html"] = await get(h, "/api/v1/report", READER, Accept="text/html")
            out["json"] = await get(h, "/api/v1/report", SUPPORT, Accept="application/json")
            out["anonymous"] = await get(h, "/api/v1/report", None)
            out["no_role"] = await get(h, "/api/v1/report", NO_ROLE)
            return out

    got = asyncio.run(scenario())
    status, headers, body = got["html"]
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "script-src 'sha256-" in headers["Content-Security-Policy"]
    html = body.decode()
    for name in DEMO_CLIENTS.values():
        assert name in html
    status, headers, body = got["json"]
    report = json.loads(body)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    rows = {r["tenantId"]: r for r in report["rows"]}
    assert set(rows) == set(DEMO_CLIENTS)
    assert rows[CONTOSO]["verdict"] == "BLOCKED" and rows[CONTOSO]["state"] == "drifted"
    assert rows[CONTOSO]["since"] is not None and rows[CONTOSO]["checkedAt"] is not None
    assert any(f["code"] == "CLIENT_OUTBOUND_BLOCKED" for f in rows[CONTOSO]["findings"])
    assert report["totals"]["BLOCKED"] >= 1
    assert sum(report["totals"].values()) == len(DEMO_CLIENTS)
    assert got["anonymous"][0] == 401 and got["no_role"][0] == 403

    out_file = tmp_path / "out.html"
    code, out, err = run_cli(capsys, "report", "--html", str(out_file))
    assert code == 0, err
    assert f"({len(DEMO_CLIENTS)} clients)" in out
    saved = out_file.read_text()
    assert all(name in saved for name in DEMO_CLIENTS.values())
    assert not (tmp_path / "out.html.partial").exists()
    code, out, err = run_cli(capsys, "report", "--json")
    assert code == 0 and json.loads(out)["totals"] == report["totals"]
    code, out, _ = run_cli(capsys, "report")
    assert code == 0 and "Contoso Markets" in out and "BLOCKED" in out


def _write(path: Path, body: Any) -> str:
    path.write_text(json.dumps(body))
    return str(path)


def _broken(out: str) -> set[str]:
    return {o["tenantId"] for o in json.loads(out)["newlyBroken"]}


def test_whatif_on_the_demo_stack_from_the_cli_and_the_api(app_env, demo_sim, tmp_path, capsys):
    async def seed_and_read_default() -> dict[str, Any]:
        from shared.services.whatif import current_vendor_policies

        async with Harness() as h:
            return dict((await current_vendor_policies(h.app.graph.vendor())).default_raw)

    exported = asyncio.run(seed_and_read_default())  # the default as Graph exports it
    current = _write(tmp_path / "current.json", exported)
    blocking = _write(tmp_path / "block.json", {**exported, **BLOCK_INBOUND})

    code, out, err = run_cli(capsys, "whatif", "--default", current, "--json")
    assert code == 0, err
    assert json.loads(out)["newlyBroken"] == [] and json.loads(out)["newlyRecovered"] == []

    # Contoso and Fabrikam have inbound settings of their own on the vendor's entries:
    # a blocking default does not reach them. Everyone else inherits it.
    code, out, err = run_cli(capsys, "whatif", "--default", blocking, "--json")
    assert code == 0, err
    assert _broken(out) == set(DEMO_CLIENTS) - {CONTOSO, FABRIKAM}

    # A partner proposal: Fabrikam's entry admitting the MFA-registration apps, as Contoso's
    # does, recovers Fabrikam and touches nobody else.
    contoso_inbound = next(
        p["b2bCollaborationInbound"]
        for t in load_demo_scenario()["tenants"] if t["id"] == VENDOR_TENANT_ID
        for p in t["crossTenantAccessPolicy"]["partners"] if p["tenantId"] == CONTOSO
    )
    fixed = _write(tmp_path / "fabrikam.json", {"b2bCollaborationInbound": contoso_inbound})
    code, out, err = run_cli(capsys, "whatif", "--partner", FABRIKAM, fixed, "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert [o["tenantId"] for o in answer["newlyRecovered"]] == [FABRIKAM]
    assert answer["newlyBroken"] == [] and answer["unchanged"] == 4
    assert "VENDOR_INBOUND_APPS_MISSING_MFA_APPS" in json.dumps(answer["newlyRecovered"])

    # Once every entry inherits inbound B2B collaboration, every registered client breaks.
    for tenant in (CONTOSO, FABRIKAM):
        demo_sim.control.set_partner_policy(
            VENDOR_TENANT_ID, tenant, {"b2bCollaborationInbound": None}
        )
    code, out, err = run_cli(capsys, "whatif", "--default", blocking, "--fail-on-break")
    assert code == 1, err
    assert "Newly broken: 5" in out and "VENDOR_INBOUND_BLOCKS_CLIENT" in out
    code, out, _ = run_cli(capsys, "whatif", "--default", blocking, "--json")
    assert _broken(out) == set(DEMO_CLIENTS)
    code, out, _ = run_cli(capsys, "whatif", "--default", current, "--json")
    assert json.loads(out)["newlyBroken"] == [] and json.loads(out)["unchanged"] == 5

    bad = _write(tmp_path / "bad.json", {"b2bCollaborationInbound": {"usersAndGroups": []}})
    code, out, err = run_cli(capsys, "whatif", "--default", bad)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "b2bCollaborationInbound.usersAndGroups" in err
    code, _, err = run_cli(
        capsys, "whatif", "--partner", "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "none"
    )
    assert code == 2 and "not a registered client" in err

    async def over_http() -> dict[str, Any]:
        async with Harness() as h:
            body = {"default": BLOCK_INBOUND}
            return {
                "support": await h.call("POST", "/api/v1/whatif", body),
                "reader": await h.call("POST", "/api/v1/whatif", body, principal=READER),
                "anonymous": await h.call("POST", "/api/v1/whatif", body, principal=None),
                "bad": await h.call(
                    "POST",
                    "/api/v1/whatif",
                    {"partners": [{"tenantId": CONTOSO, "policy": {"inboundTrust": 7}}]},
                ),
            }

    got = asyncio.run(over_http())
    status, _, answer = got["support"]
    assert status == 200, answer
    assert {o["tenantId"] for o in answer["newlyBroken"]} == set(DEMO_CLIENTS)
    assert got["reader"][0] == 403 and got["anonymous"][0] == 401
    status, _, answer = got["bad"]
    assert status == 400 and answer["error"]["field"] == "partners[0].policy.inboundTrust"
