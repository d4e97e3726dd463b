"""The vendor's default and authorization policy are parsed once per snapshot, not per check.

Every check of a sweep carries the same vendor snapshot; ``vendor_inputs`` keeps one parsed
copy and compares by value, so a changed policy is never answered from the old parse.
Documented Graph examples (../shared/fixtures/graph/) are the inputs.
"""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shared.domain.clients import ClientRecord
from shared.domain.messages import VendorSnapshot
from shared.services import vendor_policy
from shared.services.vendor_policy import VendorPolicyUnreadable, vendor_inputs

CLIENT = ClientRecord(tenant_id="3d0f5dd8-1c2b-4a4e-9c59-0c8b1f3a7e21", name="Contoso")


def _fixture(graph_fixtures: Path, name: str) -> dict[str, Any]:
    body = json.loads((graph_fixtures / name).read_text())
    return {k: v for k, v in body.items() if not k.startswith("@odata")}


def _snapshot(default: dict[str, Any], authorization: dict[str, Any] | None) -> VendorSnapshot:
    return VendorSnapshot(
        generation=3,
        read_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
        default=default,
        authorization=authorization,
        partner=None,  # known: the vendor has no entry for this client (no Graph read)
        partner_known=True,
    )


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counted = {"default": 0, "authorization": 0}

    def counting(kind: str, parse: Any) -> Any:
        def wrapped(raw: Any) -> Any:
            counted[kind] += 1
            return parse(raw)

        return wrapped

    monkeypatch.setattr(
        vendor_policy,
        "parse_default_policy",
        counting("default", vendor_policy.parse_default_policy),
    )
    monkeypatch.setattr(
        vendor_policy,
        "parse_authorization_policy",
        counting("authorization", vendor_policy.parse_authorization_policy),
    )
    return counted


def test_checks_with_the_same_snapshot_parse_it_once(graph_fixtures, parses):
    default = _fixture(graph_fixtures, "policies.crossTenantAccessPolicy.default.get.response.json")
    authorization = _fixture(graph_fixtures, "policies.authorizationPolicy.get.response.json")
    app = SimpleNamespace(extras={})

    async def checks() -> list[Any]:
        # Each message's checks hold their own copies (each parsed from the queue's JSON).
        return [
            await vendor_inputs(
                app, CLIENT, _snapshot(copy.deepcopy(default), copy.deepcopy(authorization)), 3
            )
            for _ in range(50)
        ]

    inputs = asyncio.run(checks())
    assert parses == {"default": 1, "authorization": 1}
    assert {i.source for i in inputs} == {"snapshot"}
    assert all(i.partner is None for i in inputs)
    assert inputs[0].default.is_service_default is True
    assert inputs[-1].authorization == inputs[0].authorization is not None


def test_a_changed_policy_is_parsed_afresh_and_answers_with_the_change(graph_fixtures, parses):
    default = _fixture(graph_fixtures, "policies.crossTenantAccessPolicy.default.get.response.json")
    app = SimpleNamespace(extras={})
    first = asyncio.run(vendor_inputs(app, CLIENT, _snapshot(default, None), 3))
    changed = copy.deepcopy(default)
    changed["b2bCollaborationInbound"]["usersAndGroups"]["accessType"] = "blocked"
    second = asyncio.run(vendor_inputs(app, CLIENT, _snapshot(changed, None), 3))

    assert parses == {"default": 2, "authorization": 0}
    assert first.authorization is None and second.authorization is None
    inbound = (first.default.b2b_collaboration_inbound, second.default.b2b_collaboration_inbound)
    assert [s.users_and_groups.access_type for s in inbound if s and s.users_and_groups] == [
        "allowed",
        "blocked",
    ]


def test_a_policy_that_does_not_parse_is_reported_by_every_check(graph_fixtures, parses):
    default = _fixture(graph_fixtures, "policies.crossTenantAccessPolicy.default.get.response.json")
    default["b2bCollaborationInbound"] = ["not", "an", "object"]
    app = SimpleNamespace(extras={})
    for _ in range(2):
        with pytest.raises(VendorPolicyUnreadable) as caught:
            asyncio.run(vendor_inputs(app, CLIENT, _snapshot(default, None), 3))
        assert caught.value.where == "default cross-tenant access policy"
    assert parses["default"] == 2
