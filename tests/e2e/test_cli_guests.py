"""The operators' CLI for guest work against Azurite and the Graph simulator."""

from __future__ import annotations

import json

import pytest

from devtools.local_env import VENDOR_TENANT_ID, load_demo_scenario, seed_registry
from shared.cli import main

pytestmark = pytest.mark.e2e

NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"


def _seed() -> None:
    from shared.entrypoints.cli_app import run_with_app

    async def seed(app):
        await seed_registry(app, load_demo_scenario())

    run_with_app(seed)


def test_reinvite_request_and_status(app_env, demo_sim, capsys):
    _seed()
    assert (
        main(
            [
                "reinvite",
                "request",
                "--email",
                "frank.settle@northwind-securities.com",
                "--reason",
                "ticket 4711",
                "--as",
                "ops.oncall@osttra.com",
            ]
        )
        == 0
    )
    job = json.loads(capsys.readouterr().out)
    assert job["state"] == "queued" and job["requestedBy"] == "ops.oncall@osttra.com"
    assert job["client"]["tenantId"] == NORTHWIND
    assert main(["reinvite", "status", job["jobId"]]) == 0
    assert json.loads(capsys.readouterr().out)["jobId"] == job["jobId"]

    # A member is refused with one line and exit 2, like every bad input.
    assert (
        main(["reinvite", "request", "--email", "j.doe@contoso-markets.com", "--reason", "x"]) == 2
    )
    assert "member" in capsys.readouterr().err


def test_reviews_ensure_inline_is_idempotent(app_env, demo_sim, capsys, monkeypatch):
    monkeypatch.setenv("XTAP_ACCESS_REVIEW_REVIEWERS", "6f2a9c1e-3b5d-4e7f-8a9b-0c1d2e3f4a5b")
    _seed()
    jobs = []
    for _ in range(2):
        assert main(["reviews", "ensure", "--tenant", NORTHWIND, "--inline"]) == 0
        jobs += json.loads(capsys.readouterr().out)
    assert [j["state"] for j in jobs] == ["done", "done"]
    assert [j["created"] for j in jobs] == [True, False]
    assert jobs[0]["definitionId"] == jobs[1]["definitionId"]
    names = [
        d["displayName"]
        for d in demo_sim.control.access_review_definitions(VENDOR_TENANT_ID)
        if d["displayName"] == "xtap-watch guest review: Northwind Securities"
    ]
    assert len(names) == 1
