"""A drift alert's runbook links open pages the app itself serves (issue #14.4).

Contoso blocks the vendor; the sweep and delivery run through the local runner; every
runbook link in the card the simulator's Teams webhook received and in the e-mail its
mailbox received is fetched from the runner's HTTP server without any credential.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from devtools.local_env import BLOCK_OUTBOUND, VENDOR_TENANT_ID, WEBHOOK_NAME, load_demo_scenario

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
RUNBOOK = re.compile(r"https?://[^\s\"'<>)]+/api/v1/runbooks/[A-Z0-9_]+")


async def _drift_and_fetch(demo_sim: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import aiohttp

    from devtools.local_env import seed_registry
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app

    runner = LocalRunner()
    site, port = await runner.serve_http()
    monkeypatch.setenv("XTAP_PUBLIC_API_URL", f"http://127.0.0.1:{port}")
    set_app(None)
    app = await get_app()
    try:
        await seed_registry(app, load_demo_scenario())
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
        demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
        await runner.fire_timer("sweep_timer")
        await runner.drain()
        card = [
            m["body"]
            for m in demo_sim.control.webhook_messages(WEBHOOK_NAME)
            if "Contoso" in json.dumps(m["body"])
        ]
        mail = [
            m["message"]
            for m in demo_sim.control.mailbox()
            if "Contoso" in m["message"]["subject"]
        ]
        links = sorted(set(RUNBOOK.findall(json.dumps(card)) + RUNBOOK.findall(json.dumps(mail))))
        pages = {}
        async with aiohttp.ClientSession() as http:
            for link in links:
                async with http.get(link) as response:
                    pages[link] = (response.status, response.content_type, await response.text())
        return {"port": port, "cards": card, "mail": mail, "links": links, "pages": pages}
    finally:
        await site.cleanup()
        await runner.close()
        await app.close()
        set_app(None)


def test_drift_alert_links_open_the_apps_own_runbook_pages(app_env, demo_sim, monkeypatch):
    out = asyncio.run(_drift_and_fetch(demo_sim, monkeypatch))
    assert out["cards"] and out["mail"], "the drift was delivered to Teams and by e-mail"
    assert out["links"], "the drift alert links at least one runbook"
    assert any("CLIENT_OUTBOUND_BLOCKED" in link for link in out["links"])
    for link, (status, content_type, text) in out["pages"].items():
        assert link.startswith(f"http://127.0.0.1:{out['port']}/api/v1/runbooks/")
        assert status == 200, link
        assert content_type == "text/html"
        code = link.rsplit("/", 1)[1]
        assert f"<code>{code}</code>" in text
