"""Packing a sweep's checks into queue messages, and reading them back (issue 16.3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import RootModel, ValidationError

from shared import config
from shared.config import ConfigError, load_settings
from shared.domain.messages import (
    MAX_CHECKS_PER_MESSAGE,
    QUEUE_MESSAGE_LIMIT_BYTES,
    CheckClient,
    CheckClientBatch,
    CheckQueueMessage,
    VendorSnapshot,
)
from shared.domain.sweep_batches import MessageGroups, pack_checks

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
APP = "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14"
# The vendor's default policy as Graph documents it (fixtures/graph, shortened).
VENDOR_DEFAULT = {
    "isServiceDefault": True,
    "b2bCollaborationOutbound": {
        "usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers",
                                                                  "targetType": "user"}]},
        "applications": {"accessType": "allowed", "targets": [{"target": "AllApplications",
                                                               "targetType": "application"}]},
    },
}
QueueMessage = RootModel[CheckQueueMessage]


def _tenant(i: int) -> str:
    return f"{i:08x}-0000-4000-8000-000000000000"


def _check(i: int, partner_padding: int = 0) -> CheckClient:
    partner = {"tenantId": _tenant(i), "note": "x" * partner_padding} if partner_padding else None
    return CheckClient(
        tenant_id=_tenant(i),
        sweep_id="20261202T090000-abcd1234",
        requested_at=NOW,
        signin_counts={"500212": i % 3},
        vendor=VendorSnapshot(generation=3, read_at=NOW, default=VENDOR_DEFAULT, partner=partner),
    )


def _read(text: str) -> CheckClient | CheckClientBatch:
    return QueueMessage.model_validate_json(text).root


def _tenants(texts: list[str]) -> list[str]:
    out: list[str] = []
    for text in texts:
        message = _read(text)
        out += [message.tenant_id] if isinstance(message, CheckClient) else [
            c.tenant_id for c in message.checks
        ]
    return out


def test_checks_are_packed_per_message_in_order_and_read_back_whole():
    checks = [_check(i) for i in range(37)]
    texts = pack_checks(checks, 16)
    assert [len(_read(t).checks) for t in texts] == [16, 16, 5]  # type: ignore[union-attr]
    assert _tenants(texts) == [c.tenant_id for c in checks]
    # Nothing is lost on the way: each check reads back equal to what was packed.
    back = [c for t in texts for c in _read(t).checks]  # type: ignore[union-attr]
    assert back == checks


def test_a_lone_check_travels_as_a_plain_check_client_message():
    texts = pack_checks([_check(1)], 16)
    assert len(texts) == 1 and json.loads(texts[0])["type"] == "check_client"
    assert isinstance(_read(texts[0]), CheckClient)
    # One check per message (XTAP_CHECKS_PER_MESSAGE=1) is the former design exactly.
    assert [json.loads(t)["type"] for t in pack_checks([_check(i) for i in range(3)], 1)] == [
        "check_client"
    ] * 3


def test_a_group_too_large_for_a_queue_message_is_split_until_each_part_fits():
    # Partner entries of ~6 KB: 16 of them cannot share one message.
    checks = [_check(i, partner_padding=6_000) for i in range(16)]
    texts = pack_checks(checks, 16)
    assert len(texts) > 1
    assert all(len(t.encode("utf-8")) <= QUEUE_MESSAGE_LIMIT_BYTES for t in texts)
    assert _tenants(texts) == [c.tenant_id for c in checks]


def test_a_single_check_larger_than_a_message_is_left_for_the_queue_to_refuse():
    huge = _check(1, partner_padding=QUEUE_MESSAGE_LIMIT_BYTES)
    texts = pack_checks([huge, _check(2)], 16)
    assert [json.loads(t)["type"] for t in texts] == ["check_client", "check_client"]


@pytest.mark.parametrize("per_message", [0, -1, MAX_CHECKS_PER_MESSAGE + 1])
def test_pack_refuses_a_count_outside_what_a_message_may_carry(per_message):
    with pytest.raises(ValueError, match="per_message"):
        pack_checks([_check(1)], per_message)


def test_a_batch_message_carries_one_to_the_documented_maximum_of_checks():
    CheckClientBatch(checks=[_check(i) for i in range(MAX_CHECKS_PER_MESSAGE)])
    with pytest.raises(ValidationError):
        CheckClientBatch(checks=[])
    with pytest.raises(ValidationError):
        CheckClientBatch(checks=[_check(i) for i in range(MAX_CHECKS_PER_MESSAGE + 1)])


def test_a_message_goes_out_when_its_last_client_is_decided_in_tenant_id_order():
    tenants = [_tenant(i) for i in range(10)]
    groups: MessageGroups[str] = MessageGroups(list(reversed(tenants)), 4)  # any input order
    assert groups.undecided == 10
    # Decided in listing order: each run of four goes out with its fourth, the last two
    # with the tenth.
    handed = [groups.decide(t, f"share of {t}") for t in tenants]
    assert [h is not None for h in handed] == [False, False, False, True] * 2 + [False, True]
    assert handed[3] == [f"share of {t}" for t in tenants[:4]]
    assert handed[7] == [f"share of {t}" for t in tenants[4:8]]
    assert handed[9] == [f"share of {t}" for t in tenants[8:]]
    assert groups.undecided == 0


def test_out_of_order_decisions_wait_for_the_whole_run_and_come_back_sorted():
    tenants = [_tenant(i) for i in range(6)]
    groups: MessageGroups[int] = MessageGroups(tenants, 3)
    assert groups.decide(tenants[4], 4) is None
    assert groups.decide(tenants[0], 0) is None
    assert groups.decide(tenants[2], 2) is None
    assert groups.decide(tenants[1], 1) == [0, 1, 2]  # the first run, whatever came first
    assert groups.undecided == 2
    assert groups.decide(tenants[5], 5) is None
    assert groups.decide(tenants[3], 3) == [3, 4, 5]


def test_a_tenant_decided_twice_or_not_in_the_sweep_is_refused():
    tenants = [_tenant(i) for i in range(3)]
    groups: MessageGroups[int] = MessageGroups([*tenants, tenants[0]], 2)  # a repeat counts once
    assert groups.undecided == 3
    groups.decide(tenants[0], 0)
    with pytest.raises(ValueError, match="twice"):
        groups.decide(tenants[0], 0)
    with pytest.raises(ValueError, match="not one of"):
        groups.decide(_tenant(99), 99)
    with pytest.raises(ValueError, match="at least 1"):
        MessageGroups(tenants, 0)


def test_config_and_messages_agree_on_the_most_checks_per_message():
    assert config.MAX_CHECKS_PER_MESSAGE == MAX_CHECKS_PER_MESSAGE


def _env(**overrides: str) -> dict[str, str]:
    return {
        "XTAP_VENDOR_TENANT_ID": VENDOR,
        "XTAP_VENDOR_APP_IDS": APP,
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        **overrides,
    }


def test_batching_settings_have_defaults_and_name_themselves_when_wrong():
    settings = load_settings(_env())
    assert (settings.checks_per_message, settings.check_concurrency) == (16, 96)
    assert settings.token_cache_size == 10_000
    for name, value in (
        ("XTAP_CHECKS_PER_MESSAGE", "0"),
        ("XTAP_CHECKS_PER_MESSAGE", "65"),
        ("XTAP_CHECKS_PER_MESSAGE", "many"),
        ("XTAP_CHECK_CONCURRENCY", "0"),
        ("XTAP_TOKEN_CACHE_SIZE", "-1"),
    ):
        with pytest.raises(ConfigError) as raised:
            load_settings(_env(**{name: value}))
        assert raised.value.setting == name, (name, value)
