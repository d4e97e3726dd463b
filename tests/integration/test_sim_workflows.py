"""The simulator's Teams Workflows webhook behaves as Workflows does (sim/FIDELITY.md,
"Teams Workflows webhook"): 202 before the flow runs, failures only in the flow-run log,
cards above Adaptive Cards 1.4 failing the run, the ~28 KB limit and 4 posts a second
inside the run; and the confirming flow docs/teams-workflow.md describes (200 after the
post, 502 with the action's error when it failed)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from sim.testing import SimulatorProcess, start_simulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Any:
    process = start_simulator("demo", tmp_path_factory.mktemp("workflows-sim"))
    yield process
    process.stop()


def message(body: list[dict[str, Any]], version: str = "1.4") -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard", "version": version, "body": body},
        }],
    }


def text_card(text: str, version: str = "1.4") -> dict[str, Any]:
    return message([{"type": "TextBlock", "text": text, "wrap": True}], version)


def settled_runs(sim: SimulatorProcess, name: str, count: int) -> list[dict[str, Any]]:
    """The flow-run log once ``count`` runs have finished (runs finish after the 202)."""
    deadline = time.monotonic() + 10
    while True:
        runs = sim.control.flow_runs(name)
        if len(runs) >= count and all(r["status"] != "Running" for r in runs):
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(f"flow runs did not finish: {runs}")
        time.sleep(0.05)


CASES = [
    ("good", text_card("Contoso drifted"), "Succeeded", None),
    ("v15", text_card("a 1.5 card", version="1.5"), "Failed", "above 1.4"),
    ("table", message([{"type": "Table", "columns": [], "rows": []}]), "Failed",
     "not a valid Adaptive Card 1.4"),
    ("heading", message([{"type": "TextBlock", "text": "x", "style": "heading"}]), "Failed",
     "not a valid Adaptive Card 1.4"),
    ("big", text_card("x" * 29_000), "Failed", "Request Entity too large"),
    ("connector", {"text": "connector style"}, "Failed", '"type": "message"'),
]


@pytest.mark.parametrize(("name", "body", "status", "error"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_accepting_flow_answers_202_and_fails_only_in_its_run(
    sim: SimulatorProcess, name: str, body: dict[str, Any], status: str, error: str | None
) -> None:
    hook = f"accepting-{name}"
    response = httpx.post(sim.webhook_url(hook), json=body, verify=sim.ca_file)
    assert response.status_code == 202  # whatever happens next
    assert response.content == b""
    (run,) = settled_runs(sim, hook, 1)
    assert run["status"] == status
    assert run["runId"] == response.headers["x-ms-workflow-run-id"]
    posted = sim.control.webhook_messages(hook)
    if error is None:
        assert "error" not in run and len(posted) == 1
    else:
        assert error in run["error"]["message"] and posted == []


def test_a_body_that_is_not_json_is_refused_by_the_trigger(sim: SimulatorProcess) -> None:
    response = httpx.post(sim.webhook_url("not-json"), content=b"{oops",
                          headers={"Content-Type": "application/json"}, verify=sim.ca_file)
    assert response.status_code == 400
    assert sim.control.flow_runs("not-json") == []
    assert sim.control.webhook_rejections("not-json")[0]["status"] == 400


def test_throttling_above_four_posts_a_second_fails_runs_not_requests(
    sim: SimulatorProcess,
) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(verify=sim.ca_file) as client:
            return list(await asyncio.gather(*(
                client.post(sim.webhook_url("burst"), json=text_card(f"n{i}"))
                for i in range(12))))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {202}
    runs = settled_runs(sim, "burst", 12)
    failed = [r for r in runs if r["status"] == "Failed"]
    assert failed and all(r["error"]["status"] == 429 for r in failed)
    assert len(sim.control.webhook_messages("burst")) == 12 - len(failed)


def test_the_confirming_flow_answers_200_only_after_the_post(sim: SimulatorProcess) -> None:
    sim.control.set_webhook_flow("confirming", "confirming")
    with httpx.Client(verify=sim.ca_file) as client:
        ok = client.post(sim.webhook_url("confirming"), json=text_card("posted"))
        assert ok.status_code == 200 and ok.json()["posted"] is True
        time.sleep(1.1)
        refused = client.post(sim.webhook_url("confirming"), json=text_card("x", "1.5"))
        assert refused.status_code == 502
        assert refused.json()["actionStatus"] == 400
        too_big = client.post(sim.webhook_url("confirming"), json=text_card("x" * 29_000))
        assert too_big.status_code == 502 and too_big.json()["actionStatus"] == 413
    assert [r["status"] for r in sim.control.flow_runs("confirming")] == [
        "Succeeded", "Failed", "Failed"]
    assert len(sim.control.webhook_messages("confirming")) == 1
