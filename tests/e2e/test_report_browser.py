"""The portfolio report in a real browser: Playwright driving Debian's headless Chromium.

The page is the one ``GET /api/v1/report`` serves: the runner's HTTP server (a real
aiohttp server in a background thread) in front of ``function_app.py``, Azurite and the
Graph simulator's demo scenario after two sweeps (Contoso drifted in between). The
browser sends ``X-MS-CLIENT-PRINCIPAL`` as App Service Authentication would. The
runbook pages are the repository's ``docs/`` served on loopback (``XTAP_DOCS_BASE_URL``).
Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.local_env import (
    BLOCK_OUTBOUND,
    VENDOR_TENANT_ID,
    WEBHOOK_NAME,
    load_demo_scenario,
    scenario_clients,
    seed_registry,
    settings_env,
)
from shared.domain.principal import encode_client_principal

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
READER = encode_client_principal(
    name="account.manager@osttra.com",
    object_id="5b8c2e1d-4f3a-4b6c-9d8e-7f1a2b3c4d5e",
    roles=("Report.Read",),
    tenant_id=VENDOR_TENANT_ID,
)
DEMO_CLIENTS = {c.tenant_id: c.name for c in scenario_clients(load_demo_scenario())}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def docs_url() -> Iterator[str]:
    """The repository's docs/ on loopback: where the report's runbook links point."""
    handler = functools.partial(_Quiet, directory=str(ROOT / "docs"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def report_url(azurite: Any, demo_sim: Any, docs_url: str) -> Iterator[str]:
    """The demo stack after two sweeps, served by the runner; yields the report's URL."""
    from devtools.azurite import reset_storage

    reset_storage(azurite.connection_string)
    env = settings_env(
        graph_base=demo_sim.base_url,
        ca_file=demo_sim.ca_file,
        storage_connection_string=azurite.connection_string,
        webhook_url=demo_sim.webhook_url(WEBHOOK_NAME),
        overrides={"XTAP_DOCS_BASE_URL": docs_url},
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    state: dict[str, Any] = {}

    async def start() -> int:
        from devtools.runner import LocalRunner
        from shared.bootstrap import get_app, set_app

        set_app(None)
        state["app"] = app = await get_app()
        await seed_registry(app, load_demo_scenario())
        state["runner"] = runner = LocalRunner()
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
        demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
        state["web"], port = await runner.serve_http()
        return int(port)

    async def stop() -> None:
        from shared.bootstrap import set_app

        await state["web"].cleanup()
        await state["runner"].close()
        await state["app"].close()
        set_app(None)

    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        thread.start()
        port = asyncio.run_coroutine_threadsafe(start(), loop).result(120)
        try:
            yield f"http://127.0.0.1:{port}/api/v1/report"
        finally:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from devtools.report_browser import ChromiumMissing, launch_options

    try:
        options = launch_options()
    except ChromiumMissing as exc:
        pytest.fail(str(exc))  # scripts/setup installs it: missing is a broken setup
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(**options)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, report_url: str) -> Iterator[Any]:
    from devtools.report_browser import LAPTOP_VIEWPORT

    context = browser.new_context(
        viewport=LAPTOP_VIEWPORT, extra_http_headers={"X-MS-CLIENT-PRINCIPAL": READER}
    )
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    response = page.goto(report_url)
    assert response is not None and response.status == 200
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    context.close()


def visible_rows(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "#rows tr:not([hidden])",
        "rows => rows.map(r => ({tenant: r.querySelector('.tenant').textContent,"
        " name: r.querySelector('.name').textContent, verdict: r.dataset.verdict,"
        " state: r.dataset.state, codes: r.dataset.codes}))",
    )


def test_the_table_lists_every_demo_client_without_console_errors(page, tmp_path):
    rows = visible_rows(page)
    assert {r["tenant"]: r["name"] for r in rows} == DEMO_CLIENTS
    assert rows[0]["tenant"] == CONTOSO and rows[0]["verdict"] == "BLOCKED"  # worst first
    totals = {
        b.get_attribute("data-verdict"): int(b.inner_text().split()[0])
        for b in page.query_selector_all(".totals button")
    }
    assert sum(totals.values()) == len(DEMO_CLIENTS) and totals["BLOCKED"] == 1
    assert (
        page.inner_text("#shown") == f"Showing {len(DEMO_CLIENTS)} of {len(DEMO_CLIENTS)} clients"
    )
    # Readable on a laptop: the page itself does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate(
        "document.querySelector('#portfolio').scrollWidth"
        " <= document.querySelector('.table-wrap').clientWidth"
    )
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert page.problems == []  # CSP hashes right: no refused style or script


def test_filtering_by_verdict_state_and_finding(page, tmp_path):
    page.select_option("#f-verdict", "BLOCKED")
    rows = visible_rows(page)
    assert [r["tenant"] for r in rows] == [CONTOSO]
    assert page.inner_text("#shown") == f"Showing 1 of {len(DEMO_CLIENTS)} clients"
    assert "verdict=BLOCKED" in page.url
    page.screenshot(path=str(tmp_path / "report-blocked.png"), full_page=True)

    page.click("#f-clear")
    assert len(visible_rows(page)) == len(DEMO_CLIENTS)
    page.click('.totals button[data-verdict="ALLOWED"]')
    allowed = visible_rows(page)
    assert allowed and all(r["verdict"] == "ALLOWED" for r in allowed)
    page.click('.totals button[data-verdict="ALLOWED"]')  # a second click clears it
    assert len(visible_rows(page)) == len(DEMO_CLIENTS)

    page.select_option("#f-state", "drifted")
    assert all(r["state"] == "drifted" for r in visible_rows(page))
    page.click("#f-clear")
    page.select_option("#f-finding", "CLIENT_OUTBOUND_BLOCKED")
    assert [r["tenant"] for r in visible_rows(page)] == [CONTOSO]
    page.click("#f-clear")
    page.fill("#f-text", "fabrikam")
    assert [r["name"] for r in visible_rows(page)] == ["Fabrikam Clearing"]
    assert page.problems == []


def test_a_filtered_link_opens_filtered_and_sorting_works(page, report_url):
    page.goto(report_url + "#verdict=BLOCKED")
    assert [r["tenant"] for r in visible_rows(page)] == [CONTOSO]
    page.goto(report_url)
    page.click('th[data-sort="name"] button')
    names = [r["name"] for r in visible_rows(page)]
    assert names == sorted(names, key=str.lower)
    assert page.get_attribute('th[data-sort="name"]', "aria-sort") == "ascending"
    page.click('th[data-sort="name"] button')
    assert [r["name"] for r in visible_rows(page)] == sorted(names, key=str.lower, reverse=True)
    assert page.problems == []


def test_every_runbook_link_resolves(page, docs_url):
    links = page.eval_on_selector_all("ul.findings a", "as => as.map(a => a.href)")
    assert links, "the demo's findings should link their runbooks"
    for href in sorted(set(links)):
        assert href.startswith(docs_url + "/findings/"), href
        response = page.request.get(href)
        code = href.rsplit("/", 1)[1].removesuffix(".md")
        assert response.status == 200, href
        assert code in response.text(), href
    with page.expect_popup() as popup:
        page.click("ul.findings a >> nth=0")
    opened = popup.value
    opened.wait_for_load_state()
    assert opened.url == links[0]


def test_print_hides_the_controls_and_keeps_the_table(page, tmp_path):
    page.select_option("#f-verdict", "BLOCKED")
    page.emulate_media(media="print")
    assert not page.is_visible(".controls")
    assert page.is_visible("#portfolio")
    assert page.inner_text("#printfilter") == "Filtered: verdict=BLOCKED"
    assert (
        page.evaluate("getComputedStyle(document.querySelector('thead')).display")
        == "table-header-group"
    )
    pdf = page.pdf(path=str(tmp_path / "report.pdf"), format="A4", landscape=True)
    assert pdf[:4] == b"%PDF"
    page.screenshot(path=str(tmp_path / "report-print.png"), full_page=True)
    assert page.problems == []
