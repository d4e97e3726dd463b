"""Each vendor-setting-changed and drift card says how long after the change it was detected
(issue 18.4), on the Teams card and in the e-mail; alerts without a latency say nothing."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.domain.audit import decode_audit_records
from shared.domain.audit_severity import to_alert_record
from shared.domain.detection_latency import from_previous_check
from shared.domain.messages import AlertKind, AlertRecord, Severity
from shared.rendering.cards import render_teams_message
from shared.rendering.email import render_admin_email
from shared.rendering.presentation import RenderSettings
from shared.services.detection import audit_latency
from tests.unit.alert_samples import SAMPLE_ALERTS

SETTINGS = RenderSettings()
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "audit"


def _texts(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "title", "value") and isinstance(value, str):
                out.append(value)
            else:
                out.extend(_texts(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_texts(item))
    return out


def _vendor_change() -> AlertRecord:
    records = json.loads((FIXTURE / "directoryAudits.crossTenantAccess.json").read_text())
    change = decode_audit_records(records["value"][:1]).items[0]
    created = datetime(2026, 11, 20, 8, 39, 56, 629900, tzinfo=UTC)  # 134 s after the event
    return audit_latency(to_alert_record(change, Severity.MEDIUM, [], None, created))


def _drift() -> AlertRecord:
    drifted = SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED]
    latency = from_previous_check(
        "2026-11-23T08:26:00+00:00", "ALLOWED", drifted.created_at
    )
    assert latency is not None
    return drifted.model_copy(update=latency.alert_fields())


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_vendor_change, "2 min 14 s after the change"),
        (_drift, "at most 1 h after the change (the check at 2026-11-23 08:26:00 UTC still "
                 "saw the old posture)"),
    ],
    ids=["vendor_setting_changed", "client_drifted"],
)
def test_the_card_and_the_mail_say_how_long_after_the_change(make, expected):
    alert = make()
    card = render_teams_message(alert, SETTINGS)["attachments"][0]["content"]
    texts = _texts(card["body"])
    assert "Detected" in texts
    assert expected in texts
    mail = render_admin_email(alert, SETTINGS)
    assert expected in html.unescape(mail.html)
    assert "Detected" in mail.text and expected in mail.text


def test_an_alert_without_a_latency_has_no_detected_line():
    alert = SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED]
    assert alert.detection_latency_seconds is None
    card = render_teams_message(alert, SETTINGS)["attachments"][0]["content"]
    assert "Detected" not in _texts(card["body"])
    assert "Detected" not in render_admin_email(alert, SETTINGS).text
