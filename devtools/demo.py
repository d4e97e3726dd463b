"""The main job, run locally: ``./scripts/demo`` (``python -m devtools.demo``).

Default: starts Azurite and the Graph simulator (demo scenario: the vendor and five
clients), runs the audit scan and the posture sweep through the local Functions runner,
then makes one client drift (and a vendor admin change a setting), runs again, delivers
the alerts to the simulator's Teams webhook and mailbox, and prints what happened. Last,
the portfolio report (``GET /api/v1/report``) is served signed in as a local operator; the
demo prints its address and saves an HTML copy (``--report-file``; ``--screenshot PNG``
renders it in headless Chromium). ``--keep`` leaves everything up (``--serve`` too).

Against a real tenant: export the ``XTAP_*`` settings (README, "Against your tenant": the
vendor tenant, its sign-in apps, the vendor credential and the client reader credential)
and run ``./scripts/demo --real``: one audit scan and one sweep of the clients in the
registry. Storage is an Azurite that keeps its data in ``.local/azurite-real`` (or the
storage in ``AzureWebJobsStorage`` if you set it), so the registry and the alert state
survive between runs and an alert is sent once, not on every run. Alerts go only to the
channels you set; ``--no-deliver`` prints them in full and sends nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
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
    if not count:  # Peek Messages takes 1 to 32 messages; an empty outbox has none
        return []
    return [json.loads(m) for m in await app.queues.peek_all(QUEUE_ALERTS, limit=count)]


def _print_alerts(alerts: list[dict[str, Any]]) -> None:
    from devtools.local_stack import alert_order

    if not alerts:
        say("(no alerts)")
    for alert in sorted(alerts, key=alert_order):
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
class DemoOptions:
    keep: bool = False  # leave Azurite, the simulator and the runner up (Ctrl+C stops)
    port: int = 7071  # the runner's HTTP port when free (else any free port)
    state_dir: Path = ROOT / ".local"  # delivered cards and e-mails, the file to source
    images: bool = True  # PNG previews of what was delivered, where a renderer is installed


@dataclass(frozen=True)
class ReportOptions:
    html_copy: Path = ROOT / ".local" / "demo-report.html"
    screenshot: Path | None = None
    port: int = 0


async def _show_report(
    runner: Any, app: Any, options: ReportOptions, *, keep_open: bool = False
) -> Any:
    """Serve the portfolio report through the runner, save a copy, maybe a screenshot.
    With ``keep_open`` the signed-in server stays up and is returned (the caller stops it)."""
    import aiohttp

    from devtools.easyauth import demo_operator, serve_signed_in

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
        if not keep_open:
            say("(the server stops with the demo: ./scripts/demo --keep keeps it open)")
    except BaseException:
        await site.cleanup()
        raise
    if keep_open:
        return site
    await site.cleanup()
    return None


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


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


async def run_demo(
    sim: Any, options: DemoOptions | None = None, report: ReportOptions | None = None
) -> int:
    from devtools.local_stack import (
        LEGEND,
        WHAT_NEXT,
        example_client,
        how_to_use,
        save_delivered,
        serve_runner_http,
        serve_until_interrupted,
        write_env_file,
    )
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import ClientRegistry
    from shared.bootstrap import get_app, set_app
    from shared.domain.runbooks import app_runbook_base

    options = options or DemoOptions()
    report = report or ReportOptions()
    report_site = None
    runner = LocalRunner()
    # The runner serves the HTTP API from the start, so the runbook links in the alerts the
    # demo delivers point at pages that answer (GET /api/v1/runbooks/<CODE>).
    site, port = await serve_runner_http(runner, options.port)
    api = f"http://127.0.0.1:{port}"
    os.environ["XTAP_PUBLIC_API_URL"] = api
    set_app(None)
    app = await get_app()
    # The flow docs/teams-workflow.md asks the vendor to build: it answers 200 only after
    # the card was posted, so delivery is confirmed (a plain Workflows webhook answers 202).
    sim.control.set_webhook_flow(WEBHOOK_NAME, "confirming")
    registered = await seed_registry(app, load_demo_scenario())
    say(f"Registered {registered} clients of the demo scenario in the Azurite registry.")
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
        mail = [m["message"] for m in sim.control.mailbox()]
        saved = await asyncio.to_thread(
            save_delivered, teams, mail, options.state_dir / "demo" / "delivered", options.images
        )
        where = _shown(saved.directory)
        say(f"Teams cards posted to the Workflows webhook: {len(teams)}")
        say(f"E-mails sent through Graph sendMail:         {len(mail)}")
        say(f"Saved as delivered in {where}/: cards as the JSON posted (teams-*.json), e-mails")
        say("as their HTML bodies (mail-*.html: open one in a browser)"
            + (f", and {len(saved.images)} PNG previews." if saved.images else "."))
        if saved.images_note:
            say(saved.images_note)
        say()
        say("Nothing was sent anywhere real: the webhook and mailbox are the simulator's.")

        report_site = await _show_report(runner, app, report, keep_open=options.keep)

        heading("Legend")
        say(LEGEND.format(runbooks=app_runbook_base(api)))
        say()
        if options.keep:
            clients = await ClientRegistry(app.tables).list()
            env_file = write_env_file(
                {k: v for k, v in os.environ.items()
                 if k.startswith("XTAP_") or k == "AzureWebJobsStorage"},
                {"XTAP_LOCAL_API": api, "XTAP_SIM_URL": sim.base_url},
                options.state_dir / "xtap-watch.env",
            )
            heading("Local operator mode")
            await serve_until_interrupted(
                runner,
                lambda: say(how_to_use(api, sim.base_url, example_client(clients), env_file)),
            )
        else:
            say(WHAT_NEXT)
    finally:
        if report_site is not None:
            await report_site.cleanup()
        await site.cleanup()
        await runner.close()
        await app.close()
        set_app(None)
    return 0


REAL_STORAGE = ROOT / ".local" / "azurite-real"
LOCAL_AZURITE = "UseDevelopmentStorage=true"  # stands in while settings are checked


def _print_alert_in_full(alert: dict[str, Any]) -> None:
    say(f"[{alert['severity'].upper():<6}] {alert['kind']:<24} {alert['title']}")
    indent = " " * 9
    if alert.get("summary"):
        say(textwrap.indent(textwrap.fill(alert["summary"], WIDTH - 9), indent))
    for step in alert.get("remediation_steps", []):
        say(textwrap.indent(textwrap.fill(f"→ {step}", WIDTH - 9), indent))
    for link in alert.get("links", []):
        say(f"{indent}{link['title']}: {link['url']}")


async def _take_outbox(app: Any) -> list[dict[str, Any]]:
    """Every alert in the outbox, removed from it unsent (Peek would show only 32)."""
    from shared.config import QUEUE_ALERTS

    taken = []
    while batch := await app.queues.receive(QUEUE_ALERTS, max_messages=32, visibility_timeout=60):
        for message in batch:
            taken.append(json.loads(message.content))
            await app.queues.delete(QUEUE_ALERTS, message)
    return taken


async def run_real(
    *,
    deliver: bool = True,
    storage_note: str = "",
    report: ReportOptions | None = None,
    keep: bool = False,
    state_dir: Path = ROOT / ".local",
) -> int:
    from devtools.local_stack import serve_runner_http, serve_until_interrupted, write_env_file
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import ClientRegistry
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_ALERTS

    runner = LocalRunner()
    site = None
    if keep:
        site, port = await serve_runner_http(runner)
        api = f"http://127.0.0.1:{port}"
        os.environ.setdefault("XTAP_PUBLIC_API_URL", api)
    set_app(None)
    app = await get_app()
    try:
        await app.ensure_storage()
        say(f"xtap-watch against tenant {app.settings.vendor_tenant_id}")
        if storage_note:
            say(storage_note)
        clients = await ClientRegistry(app.tables).list()
        if not clients:
            say()
            say("No clients are registered yet, so there is nothing to sweep. Register one with")
            say("  xtap-watch clients add --domain <a client's domain>")
            say("against this storage (./scripts/demo --real --keep keeps it up and prints how).")
        heading("Audit scan + posture sweep against your tenant")
        await runner.fire_timer("audit_timer")
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
        await _postures(app)
        say()
        if not deliver:
            alerts = await _take_outbox(app)
            say(f"Alerts (--no-deliver: printed, not sent) ({len(alerts)}):")
            for alert in alerts:
                _print_alert_in_full(alert)
            say()
            say(f"{len(alerts)} alert(s) removed from the outbox unsent. They count as handled:")
            say("the next run alerts only on what changes after this one.")
            return 0
        queued = await app.queues.approximate_count(QUEUE_ALERTS)
        alerts = await _peek_outbox(app)  # the first 32: Peek Messages returns no more
        say(f"Alerts to deliver ({queued}):")
        for alert in alerts:
            _print_alert_in_full(alert)
        if queued > len(alerts):
            say(f"… and {queued - len(alerts)} more (in the Teams channel and mailbox you set)")
        await runner.drain(["deliver_alert"])
        channels = [
            name
            for name, on in (
                ("Teams (XTAP_TEAMS_WEBHOOK_URL)", app.settings.teams_webhook_url),
                ("e-mail (XTAP_MAIL_SENDER)", app.settings.mail_sender),
            )
            if on
        ]
        say()
        say(
            f"{queued} alert(s) delivered through "
            + (", ".join(channels) if channels else "no channel (none is configured)")
            + "; an alert is sent once, at the state change, not on every run."
        )
        if not (os.environ.get("XTAP_PUBLIC_API_URL") or os.environ.get("XTAP_DOCS_BASE_URL")):
            say("Runbook links point at this machine (http://127.0.0.1:7071/api/v1/runbooks/…):")
            say("set XTAP_PUBLIC_API_URL to your deployment's address so recipients can open them.")
        if report is not None:
            await _show_report(runner, app, report)
        if keep:
            # Only where storage and the runner are: your XTAP_* settings (secrets among
            # them) stay in your shell, never in a file.
            env_file = write_env_file(
                {"AzureWebJobsStorage": os.environ["AzureWebJobsStorage"]},
                {"XTAP_LOCAL_API": api},
                state_dir / "xtap-watch.env",
            )
            heading("Local operator mode (your tenant)")
            await serve_until_interrupted(runner, lambda: say(_real_keep_help(api, env_file)))
    finally:
        if site is not None:
            await site.cleanup()
        await runner.close()
        await app.close()
        set_app(None)
    return 0


def _real_keep_help(api: str, env_file: Path) -> str:
    return f"""\
Azurite (your registry) and the runner stay up until Ctrl+C: timers on their schedules,
queues processed (alerts are delivered to your channels), HTTP API at {api}/api/.

In another terminal with your XTAP_* settings exported, from this folder:
  source {_shown(env_file)}       # this storage, and .venv/bin on PATH
  xtap-watch clients add --domain <a client's domain> --contact <their admin's e-mail>
  xtap-watch clients list
  xtap-watch sweep                # the runner here checks them"""


def real_settings_problems(env: dict[str, str]) -> list[str]:
    """Every setting problem of a --real run, one line each (empty: good to go)."""
    from shared.config import ConfigError, ConfigErrors, credential_problems, load_settings

    problems: list[ConfigError] = []
    try:
        load_settings(env)
    except ConfigErrors as exc:
        problems += exc.problems
    except ConfigError as exc:
        problems.append(exc)
    named = {p.setting for p in problems}
    problems += [p for p in credential_problems(env) if p.setting not in named]
    return [str(p) for p in problems]


def main_real(
    *,
    deliver: bool,
    report: ReportOptions | None = None,
    keep: bool = False,
    state_dir: Path | None = None,
) -> int:
    from devtools.azurite import start_azurite

    own_storage = bool(os.environ.get("AzureWebJobsStorage"))
    # Settings are checked before anything starts: a mistake costs a second, not a sweep.
    problems = real_settings_problems(
        dict(os.environ) | ({} if own_storage else {"AzureWebJobsStorage": LOCAL_AZURITE})
    )
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print(
            "(the settings for --real: README, \"Against your tenant\"; "
            "local.settings.example.json lists them all)",
            file=sys.stderr,
        )
        return 2
    with contextlib.ExitStack() as stack:
        if own_storage:
            note = "Storage: AzureWebJobsStorage from your environment."
        else:
            location = REAL_STORAGE if state_dir is None else state_dir / "azurite-real"
            azurite = stack.enter_context(start_azurite(location=location))
            os.environ["AzureWebJobsStorage"] = azurite.connection_string
            stack.callback(os.environ.pop, "AzureWebJobsStorage", None)
            note = (
                f"Storage: Azurite keeping its data in {_shown(location)} "
                "(registry and alert state survive; delete the folder to start over)."
            )
        try:
            return asyncio.run(
                run_real(
                    deliver=deliver,
                    storage_note=note,
                    report=report,
                    keep=keep,
                    state_dir=state_dir or REAL_STORAGE.parent,
                )
            )
        except KeyboardInterrupt:  # --keep ends with Ctrl+C
            say("\nStopped: Azurite and the runner are down (the registry is kept).")
            return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real", action="store_true", help="use the XTAP_* settings of your environment"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave Azurite, the simulator and the runner up and print how to use them",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DemoOptions.state_dir,
        help="where the delivered cards and e-mails and the file to source go (.local)",
    )
    parser.add_argument(
        "--no-images", action="store_true", help="do not render PNG previews of the alerts"
    )
    parser.add_argument(
        "--port", type=int, default=DemoOptions.port, help="the runner's HTTP port (7071)"
    )
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
        "--serve", action="store_true", help="keep serving until Ctrl+C (the same as --keep)"
    )
    parser.add_argument(
        "--report-port", type=int, default=0, help="port of the signed-in report server"
    )
    parser.add_argument(
        "--no-deliver",
        action="store_true",
        help="with --real: print the alerts in full and send none",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.keep = args.keep or args.serve
    report = ReportOptions(
        html_copy=args.report_file.resolve(),
        screenshot=args.screenshot.resolve() if args.screenshot else None,
        port=args.report_port,
    )
    if args.keep:
        # Ctrl+C (or a SIGTERM from a supervisor) stops the stack cleanly, with Azurite and
        # the simulator, even where the shell started us with SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
    # The level goes on the console handler too: the app puts the client libraries' loggers
    # at WARNING themselves (shared/telemetry.py), and a logger's own level, not the root's,
    # decides what reaches the root's handlers (an unconsented client's refused token would
    # print Entra's whole answer in the middle of the demo's report).
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if args.verbose else logging.ERROR)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[console],
    )
    from devtools.azurite import start_azurite

    if args.real:
        if args.no_deliver and args.keep:
            parser.error("--no-deliver and --keep do not go together: the kept runner delivers")
        return main_real(
            deliver=not args.no_deliver,
            report=report,
            keep=args.keep,
            state_dir=args.state_dir.resolve(),
        )
    if args.no_deliver:
        parser.error("--no-deliver goes with --real (the demo delivers only to the simulator)")
    with start_azurite() as azurite:
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
                try:
                    options = DemoOptions(
                        keep=args.keep,
                        port=args.port,
                        state_dir=args.state_dir.resolve(),
                        images=not args.no_images,
                    )
                    return asyncio.run(run_demo(sim, options, report))
                except KeyboardInterrupt:  # --keep ends with Ctrl+C
                    say("\nStopped: Azurite, the simulator and the runner are down.")
                    return 0


if __name__ == "__main__":
    sys.exit(main())
