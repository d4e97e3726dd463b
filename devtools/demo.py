"""The main job, run locally: ``./scripts/demo`` (``python -m devtools.demo``).

Default: starts Azurite and the Graph simulator (demo scenario: the vendor and five
clients), runs the audit scan and the posture sweep through the local Functions runner,
then makes one client drift (and a vendor admin change a setting), runs again, delivers
the alerts to the simulator's Teams webhook and mailbox, and prints what happened. Last,
the runner serves the portfolio report (``GET /api/v1/report``) and the demo prints its
address and saves an HTML copy (``--report-file``; ``--screenshot PNG`` renders it in
headless Chromium, ``--serve`` keeps it open until Ctrl+C).

Against a real tenant: export the ``XTAP_*`` settings (see README, "Run against your
tenant"; at least XTAP_VENDOR_TENANT_ID, XTAP_VENDOR_APP_IDS and a credential) and run
``./scripts/demo --real``: one audit scan and one sweep of the clients already in the
registry, with Azurite as storage. Alerts are delivered only to the channels you set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.local_env import (
    BLOCK_OUTBOUND,
    ROOT,
    VENDOR_TENANT_ID,
    WEBHOOK_NAME,
    load_demo_scenario,
    seed_registry,
    settings_env,
)

DRIFTING_CLIENT = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # Contoso Markets
VENDOR_MFA_ON_DEFAULT = {
    "inboundTrust": {
        "isMfaAccepted": True,
        "isCompliantDeviceAccepted": False,
        "isHybridAzureADJoinedDeviceAccepted": False,
    }
}

WIDTH = 100


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say()
    say(f"== {text} " + "=" * max(0, WIDTH - len(text) - 4))


async def _postures(app: Any) -> None:
    from shared.adapters.repositories import ClientRegistry, PostureStore

    store = PostureStore(app.tables)
    say(f"{'client':<24} {'verdict':<9} {'state':<16} findings")
    for client in await ClientRegistry(app.tables).list():
        posture = await store.get(client.tenant_id) or {}
        codes = ", ".join(f["code"] for f in posture.get("findings", [])) or "-"
        vendor = [f["code"] for f in posture.get("vendorFindings", [])]
        say(
            f"{client.name[:24]:<24} {posture.get('verdict', '?'):<9} "
            f"{posture.get('state', '?'):<16} {codes}"
        )
        if vendor:
            say(f"{'':<24} vendor side: {', '.join(vendor)}")


async def _peek_outbox(app: Any) -> list[dict[str, Any]]:
    from shared.config import QUEUE_ALERTS

    count = await app.queues.approximate_count(QUEUE_ALERTS)
    return [json.loads(m) for m in await app.queues.peek_all(QUEUE_ALERTS, limit=count)]


def _print_alerts(alerts: list[dict[str, Any]]) -> None:
    if not alerts:
        say("(no alerts)")
    for alert in alerts:
        say(f"[{alert['severity'].upper():<6}] {alert['kind']:<24} {alert['title']}")
        for step in alert.get("remediation_steps", [])[:1]:
            step = textwrap.shorten(step, 280, placeholder=" … (full steps in the card)")
            say(textwrap.indent(textwrap.fill(f"→ {step}", WIDTH - 10), " " * 10))


async def _round(runner: Any, app: Any, label: str) -> list[dict[str, Any]]:
    heading(label)
    await runner.fire_timer("audit_timer")
    await runner.fire_timer("sweep_timer")
    await runner.drain(["check_client"])
    await _postures(app)
    alerts = await _peek_outbox(app)
    say()
    say(f"Alerts queued for delivery ({len(alerts)}):")
    _print_alerts(alerts)
    await runner.drain()
    return alerts


@dataclass(frozen=True)
class ReportOptions:
    html_copy: Path = ROOT / ".local" / "demo-report.html"
    screenshot: Path | None = None
    serve: bool = False
    port: int = 0


async def _show_report(runner: Any, app: Any, options: ReportOptions) -> None:
    """Serve the portfolio report through the runner, save a copy, maybe a screenshot."""
    import aiohttp

    from devtools.easy_auth import demo_operator, serve_signed_in

    heading("Portfolio report")
    roles = tuple(dict.fromkeys((app.settings.report_role, app.settings.api_role)))
    site, port = await serve_signed_in(runner, demo_operator(VENDOR_TENANT_ID, roles), options.port)
    url = f"http://127.0.0.1:{port}/api/v1/report"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url, headers={"Accept": "text/html"}) as response:
                response.raise_for_status()
                html = await response.text()
            async with http.get(url, headers={"Accept": "application/json"}) as response:
                totals = (await response.json())["totals"]
        options.html_copy.parent.mkdir(parents=True, exist_ok=True)
        options.html_copy.write_text(html, encoding="utf-8")
        say("  ".join(f"{n} {verdict}" for verdict, n in totals.items()))
        say(f"Served by the local runner:  {url}")
        say("  (GET /api/v1/report; a local stand-in for App Service Authentication signs you")
        say("   in as demo.operator@osttra.com with the Report.Read role)")
        say(f"HTML copy:                   {options.html_copy}")
        if options.screenshot is not None:
            await _screenshot(url, options.screenshot)
            say(f"Screenshot (headless Chromium): {options.screenshot}")
        if options.serve:
            say("Serving the report until Ctrl+C …")
            await asyncio.Event().wait()
        else:
            say("(the server stops with the demo: ./scripts/demo --serve keeps it open)")
    finally:
        await site.cleanup()


async def _screenshot(url: str, target: Path) -> None:
    from playwright.async_api import async_playwright

    from devtools.report_browser import LAPTOP_VIEWPORT, launch_options

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch_options())
        try:
            page = await browser.new_page(viewport=LAPTOP_VIEWPORT)
            await page.goto(url)
            target.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(target), full_page=True)
        finally:
            await browser.close()


async def run_demo(sim: Any, report: ReportOptions | None = None) -> int:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    # The flow docs/teams-workflow.md asks the vendor to build: it answers 200 only after
    # the card was posted, so delivery is confirmed (a plain Workflows webhook answers 202).
    sim.control.set_webhook_flow(WEBHOOK_NAME, "confirming")
    registered = await seed_registry(app, load_demo_scenario())
    say(f"Registered {registered} clients of the demo scenario in the Azurite registry.")
    runner = LocalRunner()
    try:
        await _round(runner, app, "Round 1: audit scan + posture sweep")

        say()
        say("Now a Contoso Markets admin blocks outbound B2B collaboration to the vendor, and a")
        say("vendor admin turns on MFA trust in the vendor's default policy …")
        sim.control.set_partner_policy(
            DRIFTING_CLIENT, VENDOR_TENANT_ID, BLOCK_OUTBOUND, actor="it-admin@contoso-markets.com"
        )
        sim.control.set_default_policy(
            VENDOR_TENANT_ID, VENDOR_MFA_ON_DEFAULT, actor="admin@osttra.com"
        )
        await _round(runner, app, "Round 2: after the changes")

        heading("Delivered")
        teams = sim.control.webhook_messages(WEBHOOK_NAME)
        mail = sim.control.mailbox()
        say(f"Teams cards posted to the Workflows webhook: {len(teams)}")
        say(f"E-mails sent through Graph sendMail:         {len(mail)}")
        say()
        say("Nothing was sent anywhere real: the webhook and mailbox are the simulator's.")
        await _show_report(runner, app, report or ReportOptions())
    finally:
        await runner.close()
        await app.close()
        set_app(None)
    return 0


async def run_real(report: ReportOptions | None = None) -> int:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    runner = LocalRunner()
    try:
        alerts = await _round(runner, app, "Audit scan + posture sweep against your tenant")
        say(f"\n{len(alerts)} alert(s) processed.")
        await _show_report(runner, app, report or ReportOptions())
    finally:
        await runner.close()
        await app.close()
        set_app(None)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real", action="store_true", help="use the XTAP_* settings of your environment"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "--report-file",
        type=Path,
        default=ReportOptions.html_copy,
        help="where the HTML copy of the portfolio report goes",
    )
    parser.add_argument(
        "--screenshot", type=Path, help="also save a PNG of the report (headless Chromium)"
    )
    parser.add_argument(
        "--serve", action="store_true", help="keep serving the report until Ctrl+C"
    )
    parser.add_argument("--port", type=int, default=0, help="port for the report (default: free)")
    args = parser.parse_args(argv)
    report = ReportOptions(
        html_copy=args.report_file.resolve(),
        screenshot=args.screenshot.resolve() if args.screenshot else None,
        serve=args.serve,
        port=args.port,
    )
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from devtools.azurite import start_azurite
    from shared.config import ConfigError, load_settings

    with start_azurite() as azurite:
        if args.real:
            os.environ.setdefault("AzureWebJobsStorage", azurite.connection_string)
            try:
                load_settings()
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            return _interruptible(run_real(report))

        from sim.testing import start_simulator

        with tempfile.TemporaryDirectory(prefix="xtap-demo-") as work:
            with start_simulator("demo", Path(work)) as sim:
                os.environ.update(
                    settings_env(
                        graph_base=sim.base_url,
                        ca_file=sim.ca_file,
                        storage_connection_string=azurite.connection_string,
                        webhook_url=sim.webhook_url(WEBHOOK_NAME),
                    )
                )
                say(
                    "xtap-watch demo — Azurite and the Graph simulator (a test double) on 127.0.0.1"
                )
                return _interruptible(run_demo(sim, report))


def _interruptible(main: Any) -> int:
    try:
        return int(asyncio.run(main))
    except KeyboardInterrupt:  # --serve ends with Ctrl+C
        return 0


if __name__ == "__main__":
    sys.exit(main())
