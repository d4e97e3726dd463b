"""``xtap-watch clients ack`` against Azurite and the simulator (issue 18.1): the operator
acknowledges a real drift from the command line, the acknowledgement is stored with the
client's alert state, and ``--lift`` removes it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.local_env import BLOCK_OUTBOUND, VENDOR_TENANT_ID
from shared.cli import main as cli
from tests.integration.app_helpers import with_app

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_acknowledgement() -> Any:
    from shared.services.acknowledgements import read_acknowledgement

    return asyncio.run(with_app(lambda app: read_acknowledgement(app, CONTOSO)))


def test_an_operator_acknowledges_a_drift_and_lifts_it_from_the_cli(seeded, demo_sim, capsys):
    ack = ("clients", "ack", CONTOSO, "--reason", "ticket 4711: Contoso fixes it today")
    code, _, _ = run_cli(capsys, "check", CONTOSO)
    assert code == 0  # ALLOWED
    code, out, err = run_cli(capsys, *ack, "--for", "2h")
    assert code == 2 and out == "" and "not drifted" in err and err.count("\n") == 1

    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
    code, _, _ = run_cli(capsys, "check", CONTOSO)
    assert code != 0  # BLOCKED: drifted
    before = datetime.now(UTC)
    code, out, err = run_cli(capsys, *ack, "--for", "2h", "--by", "alice@osttra.com")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["tenantId"] == CONTOSO
    assert shown["acknowledgement"]["by"] == "alice@osttra.com"
    assert shown["acknowledgement"]["active"] is True
    until = datetime.fromisoformat(shown["acknowledgement"]["until"])
    assert before + timedelta(hours=2) <= until <= datetime.now(UTC) + timedelta(hours=2)

    stored = stored_acknowledgement()
    assert stored is not None and stored.by == "alice@osttra.com"
    assert stored.reason == "ticket 4711: Contoso fixes it today" and stored.until == until
    code, _, _ = run_cli(capsys, "check", CONTOSO)  # a check keeps it (same episode)
    assert stored_acknowledgement() == stored

    code, out, err = run_cli(capsys, "clients", "ack", CONTOSO, "--lift")
    assert code == 0, err
    assert json.loads(out)["lifted"]["reason"] == "ticket 4711: Contoso fixes it today"
    assert stored_acknowledgement() is None
    code, out, err = run_cli(capsys, "clients", "ack", CONTOSO, "--lift")
    assert code == 2 and "not acknowledged" in err
