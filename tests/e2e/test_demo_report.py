"""The demo says where the portfolio report is and leaves an HTML copy (issue 17.4).

``devtools.demo.run_demo`` runs whole (two rounds through the local runner on Azurite and
the simulator's demo scenario); the copy is the page the runner served it.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from devtools.local_env import load_demo_scenario, scenario_clients

pytestmark = pytest.mark.e2e

DEMO_CLIENTS = [c.name for c in scenario_clients(load_demo_scenario())]


def test_the_demo_prints_where_the_report_is_served_and_writes_a_copy(
    app_env, demo_sim, tmp_path, capsys, monkeypatch
):
    from devtools.demo import DemoOptions, ReportOptions, run_demo

    monkeypatch.setenv("XTAP_PUBLIC_API_URL", "")  # the demo sets it: restored afterwards
    copy = tmp_path / "report.html"
    options = DemoOptions(port=0, state_dir=tmp_path, images=False)
    assert asyncio.run(run_demo(demo_sim, options, ReportOptions(html_copy=copy))) == 0
    out = capsys.readouterr().out

    section = out.split("Portfolio report", 1)[1]
    assert re.search(r"Served by the local runner: +http://127\.0\.0\.1:\d+/api/v1/report\n",
                     section), section[:600]
    assert f"HTML copy:                   {copy}\n" in section
    assert re.search(r"\b1 BLOCKED\b", section)  # Contoso blocked the vendor in round 2
    page = copy.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "client portfolio" in page
    for name in DEMO_CLIENTS:
        assert name in page
    assert "CLIENT_OUTBOUND_BLOCKED" in page
