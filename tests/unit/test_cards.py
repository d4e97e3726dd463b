"""Teams cards: every alert kind's card against the official Adaptive Card 1.5 JSON schema,
the Workflows envelope, the 28 KB refusal, the compact fallback, links and text safety."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from shared.domain.messages import (
    AlertKind,
    AlertRecord,
    ClientRef,
    FindingRef,
    Link,
    SettingChange,
    Severity,
)
from shared.rendering.cards import (
    TEAMS_MAX_ACTIONS,
    TEAMS_MESSAGE_LIMIT_BYTES,
    MessageTooLarge,
    encode_teams_message,
    render_teams_message,
    render_teams_message_compact,
)
from shared.rendering.presentation import (
    ENTRA_CROSS_TENANT_ACCESS,
    KIND_PRESENTATION,
    RenderSettings,
)
from shared.rendering.samples import CONTOSO, OUTBOUND_BLOCKED, SAMPLE_ALERTS, SAMPLE_NOW

SCHEMA_PATH = Path(__file__).parents[2] / "shared" / "schemas" / "adaptive-card-1.5.json"
SETTINGS = RenderSettings(
    vendor_name="OSTTRA",
    entra_portal_url="https://entra.microsoft.com",
    docs_base_url="https://github.com/xtap-watch/xtap-watch/blob/main/docs",
    api_base_url="https://xtap-watch.azurewebsites.net",
)


@pytest.fixture(scope="module")
def validator() -> Draft6Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema, format_checker=Draft6Validator.FORMAT_CHECKER)


def card_of(message: dict[str, Any]) -> dict[str, Any]:
    (attachment,) = message["attachments"]
    return attachment["content"]


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def schema_errors(validator: Draft6Validator, card: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(card)]


# ------------------------------------------------------------------------- the schema


def test_vendored_schema_is_the_official_adaptive_card_1_5_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["id"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    # 1.5 is the version that added Table and the heading text style.
    assert {"Table", "TableRow", "TableCell", "TextBlockStyle"} <= set(schema["definitions"])
    assert schema["definitions"]["Table"]["version"] == "1.5"


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlok", "text": "x"}]},
        {"type": "AdaptiveCard", "version": "1.5",
         "body": [{"type": "TextBlock", "text": "x", "color": "purple"}]},
        {"type": "AdaptiveCard", "version": "1.5",
         "body": [{"type": "Container", "style": "loud", "items": []}]},
        {"type": "AdaptiveCard", "version": "1.5", "body": [],
         "actions": [{"type": "Action.OpenUrl", "title": "no url"}]},
        {"type": "AdaptiveCard", "version": "1.5", "body": [], "msteams": {"width": "Full"}},
    ],
    ids=["unknown-element", "bad-color", "bad-container-style", "url-missing", "extra-key"],
)
def test_schema_rejects_broken_cards(validator: Draft6Validator, broken: dict[str, Any]) -> None:
    """The validator is live: the card tests below would catch these mistakes."""
    assert schema_errors(validator, broken)


# --------------------------------------------------------------- one card per kind


def test_every_alert_kind_has_a_sample_and_a_presentation() -> None:
    assert set(SAMPLE_ALERTS) == set(AlertKind)
    assert set(KIND_PRESENTATION) == set(AlertKind)


@pytest.mark.parametrize("kind", list(AlertKind), ids=lambda k: k.value)
def test_card_of_every_kind_is_valid_adaptive_card_1_5(
    validator: Draft6Validator, kind: AlertKind
) -> None:
    alert = SAMPLE_ALERTS[kind]
    message = render_teams_message(alert, SETTINGS)

    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    assert schema_errors(validator, card) == []
    assert len(encode_teams_message(message)) <= TEAMS_MESSAGE_LIMIT_BYTES


@pytest.mark.parametrize("kind", list(AlertKind), ids=lambda k: k.value)
def test_card_shows_title_severity_and_kind_in_a_coloured_header(kind: AlertKind) -> None:
    alert = SAMPLE_ALERTS[kind]
    card = card_of(render_teams_message(alert, SETTINGS))
    header = card["body"][0]
    assert header["type"] == "Container"
    expected_style = (
        "good" if KIND_PRESENTATION[kind].good_news
        else {"high": "attention", "medium": "warning", "review": "warning", "low": "accent",
              "info": "emphasis"}[alert.severity.value]
    )
    assert header["style"] == expected_style
    header_text = [n.get("text") for n in walk(header)]
    assert alert.title in header_text
    label = KIND_PRESENTATION[kind].label.format(vendor="OSTTRA").upper()
    assert label in header_text
    assert card["fallbackText"].startswith(f"[{alert.severity.value.capitalize()}")


@pytest.mark.parametrize("kind", list(AlertKind), ids=lambda k: k.value)
def test_card_shows_every_fact_of_the_record(kind: AlertKind) -> None:
    """Client, tenant, who/when, before → after, evidence counts, findings with their
    remediation, and the remediation steps all reach the card."""
    alert = SAMPLE_ALERTS[kind]
    texts = {n["text"] for n in walk(card_of(render_teams_message(alert, SETTINGS)))
             if isinstance(n.get("text"), str)}
    expected: list[str] = []
    if alert.client:
        expected += [alert.client.name, alert.client.tenant_id]
    if alert.who:
        expected.append(alert.who)
    for change in alert.changes:
        expected += [change.setting, change.before or "(not set)", change.after or "(not set)"]
    for label, count in alert.evidence.items():
        expected += [label, f"{count:,}"]
    for finding in alert.findings:
        expected += [finding.code, finding.message]
        if finding.remediation:
            expected.append(finding.remediation)
    expected += list(alert.remediation_steps)
    expected += list(alert.facts.values())
    expected += [item.title for item in alert.items]
    missing = [text for text in expected if text not in texts]
    assert missing == []


def test_vendor_change_card_leads_with_what_changed_and_who() -> None:
    alert = SAMPLE_ALERTS[AlertKind.VENDOR_SETTING_CHANGED]
    body = card_of(render_teams_message(alert, SETTINGS))["body"]
    assert body[1]["text"] == "What changed"
    texts = [n.get("text") for n in walk(body)]
    assert "Changed by" in texts and "bob@contoso.com" in texts
    assert "2026-11-23 09:18:00 UTC" in texts


def test_digest_card_lists_members_most_severe_first() -> None:
    digest = SAMPLE_ALERTS[AlertKind.DIGEST]
    texts = [n["text"] for n in walk(card_of(render_teams_message(digest, SETTINGS)))
             if isinstance(n.get("text"), str)]
    positions = [texts.index(item.title) for item in digest.items]
    assert positions == sorted(positions)
    assert texts[positions[0] - 1] == "High"  # the severity label beside the first member
    assert f"{len(digest.items)} alerts" in texts


# ------------------------------------------------------------------------- buttons


def actions_of(alert: AlertRecord) -> list[dict[str, Any]]:
    return card_of(render_teams_message(alert, SETTINGS)).get("actions", [])


def test_client_card_buttons_open_entra_and_the_top_findings_runbook() -> None:
    actions = actions_of(SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED])
    assert all(a["type"] == "Action.OpenUrl" for a in actions)
    urls = [a["url"] for a in actions]
    assert f"https://entra.microsoft.com/{ENTRA_CROSS_TENANT_ACCESS}" in urls
    assert (
        "https://github.com/xtap-watch/xtap-watch/blob/main/docs/findings/"
        "CLIENT_DEFAULT_OUTBOUND_BLOCKED.md" in urls
    )
    # every finding also links its own runbook inline, from a TextRun
    card = card_of(render_teams_message(SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED], SETTINGS))
    inline = [n["selectAction"]["url"] for n in walk(card) if n.get("type") == "TextRun"
              and "selectAction" in n]
    assert [u.rsplit("/", 1)[1] for u in inline] == [
        "CLIENT_DEFAULT_OUTBOUND_BLOCKED.md", "CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN.md",
        "CLIENT_AUTO_REDEMPTION_NOT_TICKED.md",
    ]


def test_reinvite_card_links_its_status_from_links_or_from_the_job_id() -> None:
    done = SAMPLE_ALERTS[AlertKind.REINVITE_DONE]
    assert actions_of(done)[0] == {
        "type": "Action.OpenUrl",
        "title": "Re-invite status",
        "url": "https://xtap-watch.azurewebsites.net/api/v1/reinvites/job-20261123-0007",
    }
    failed = SAMPLE_ALERTS[AlertKind.REINVITE_FAILED]  # no link, only facts["job_id"]
    assert {"title": "Re-invite status", "type": "Action.OpenUrl",
            "url": "https://xtap-watch.azurewebsites.net/api/v1/reinvites/job-20261123-0008"
            } in actions_of(failed)
    without_api = RenderSettings(api_base_url=None)
    titles = [a["title"] for a in
              card_of(render_teams_message(failed, without_api)).get("actions", [])]
    assert "Re-invite status" not in titles


def test_buttons_refuse_non_web_links_dedupe_and_stop_at_the_teams_maximum() -> None:
    links = tuple(Link(title=f"Evidence query {i}", url=f"https://portal.azure.com/#q{i}")
                  for i in range(10))
    alert = SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED].model_copy(update={"links": (
        Link(title="Run this", url="javascript:alert(1)"),
        Link(title="Local", url="file:///etc/passwd"),
        links[0],
        links[0],
        *links,
    )})
    actions = actions_of(alert)
    urls = [a["url"] for a in actions]
    assert len(actions) == TEAMS_MAX_ACTIONS
    assert len(set(urls)) == len(urls)
    assert all(u.startswith("https://") for u in urls)
    assert all(len(a["title"]) <= 24 for a in actions)


def test_operational_cards_have_no_entra_button() -> None:
    for kind in (AlertKind.DELIVERY_FAILING, AlertKind.POISON_MESSAGE):
        assert not any("entra.microsoft.com" in a["url"]
                       for a in actions_of(SAMPLE_ALERTS[kind]))


def test_runbook_url_escapes_the_code() -> None:
    assert SETTINGS.runbook_url("A B/../x") == (
        "https://github.com/xtap-watch/xtap-watch/blob/main/docs/findings/A%20B%2F..%2Fx.md"
    )


# --------------------------------------------------------------------- text safety

HOSTILE = "[Open the fix](https://evil.example/phish) **now** <script>x</script>"


def test_outside_text_never_reaches_markdown_elements() -> None:
    """TextBlock and FactSet render Markdown in Teams; outside data goes to TextRuns."""
    alert = AlertRecord(
        dedup_key=HOSTILE,
        kind=AlertKind.VENDOR_SETTING_CHANGED,
        severity=Severity.HIGH,
        title=HOSTILE,
        summary=HOSTILE,
        client=ClientRef(name=HOSTILE, tenant_id=CONTOSO.tenant_id, domains=(HOSTILE,)),
        changes=(SettingChange(setting=HOSTILE, before=HOSTILE, after=HOSTILE),),
        who=HOSTILE,
        when=SAMPLE_NOW,
        evidence={HOSTILE: 3},
        findings=(FindingRef(code="X", severity=Severity.LOW, message=HOSTILE,
                             remediation=HOSTILE),),
        remediation_steps=(HOSTILE,),
        facts={"note": HOSTILE},
        created_at=SAMPLE_NOW,
        source="audit",
    )
    card = card_of(render_teams_message(alert, SETTINGS))
    markdown_texts = [n["text"] for n in walk(card) if n.get("type") == "TextBlock"]
    markdown_texts += [f["value"] for n in walk(card) if n.get("type") == "FactSet"
                       for f in n["facts"]]
    assert not any("evil.example" in text for text in markdown_texts)
    literal = [n["text"] for n in walk(card) if n.get("type") == "TextRun"]
    assert literal.count(HOSTILE) >= 12


# ------------------------------------------------------------------- size limits


def alert_with_findings(count: int, text: str = "x" * 200) -> AlertRecord:
    return SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED].model_copy(update={
        "findings": tuple(
            FindingRef(code=f"CLIENT_FINDING_{i:03d}", severity=Severity.MEDIUM,
                       message=f"{i}: {text}", remediation=text)
            for i in range(count)
        ),
    })


def test_card_over_28_kb_is_refused_with_its_size() -> None:
    alert = alert_with_findings(200)
    with pytest.raises(MessageTooLarge) as refused:
        render_teams_message(alert, SETTINGS)
    error = refused.value
    assert error.limit_bytes == TEAMS_MESSAGE_LIMIT_BYTES == 28 * 1024
    assert error.size_bytes > error.limit_bytes
    assert error.dedup_key == alert.dedup_key and error.kind is AlertKind.CLIENT_DRIFTED
    assert f"{error.size_bytes:,} bytes" in str(error)
    assert alert.dedup_key in str(error)


def padded(chars: int, char: str = "x") -> AlertRecord:
    """The recovered sample with a fact of ``chars`` characters (a fact shows once)."""
    return SAMPLE_ALERTS[AlertKind.CLIENT_RECOVERED].model_copy(
        update={"facts": {"note": char * chars}})


def test_limit_is_measured_in_utf8_bytes_of_the_posted_json() -> None:
    one = len(encode_teams_message(render_teams_message(padded(1), SETTINGS)))
    fits = TEAMS_MESSAGE_LIMIT_BYTES - one + 1  # fact length that fills the limit exactly
    exactly_full = render_teams_message(padded(fits), SETTINGS)
    assert len(encode_teams_message(exactly_full)) == TEAMS_MESSAGE_LIMIT_BYTES
    with pytest.raises(MessageTooLarge) as refused:
        render_teams_message(padded(fits + 1), SETTINGS)
    assert refused.value.size_bytes == TEAMS_MESSAGE_LIMIT_BYTES + 1
    # "é" is one character but two UTF-8 bytes: a fact with fewer characters than
    # fit as ASCII still overflows, because the webhook counts bytes.
    with pytest.raises(MessageTooLarge):
        render_teams_message(padded(fits // 2 + 1, "é"), SETTINGS)
    render_teams_message(padded(fits // 2 - 1, "é"), SETTINGS)


def test_encoded_message_is_compact_utf8_json() -> None:
    message = render_teams_message(padded(3, "é"), SETTINGS)
    raw = encode_teams_message(message)
    assert "ééé".encode() in raw  # not \\u00e9 escapes, which would count six bytes
    assert b"\\u00e9" not in raw and b"\n" not in raw
    assert json.loads(raw) == message


def test_compact_card_fits_validates_and_says_what_it_left_out(
    validator: Draft6Validator,
) -> None:
    alert = alert_with_findings(200)
    message = render_teams_message_compact(alert, SETTINGS)
    assert len(encode_teams_message(message)) <= TEAMS_MESSAGE_LIMIT_BYTES
    card = card_of(message)
    assert schema_errors(validator, card) == []
    notes = [n["text"] for n in walk(card) if n.get("type") == "TextBlock"
             and "not shown here" in n.get("text", "")]
    assert len(notes) == 1
    hidden = int(notes[0].split()[0])
    shown = sum(1 for n in walk(card) if n.get("type") == "TextRun"
                and str(n.get("text", "")).startswith("CLIENT_FINDING_"))
    assert shown + hidden >= 200
    assert shown >= 1  # the most severe findings still show
    assert alert.title in [n.get("text") for n in walk(card)]


def test_compact_keeps_a_small_card_whole() -> None:
    alert = SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED]
    assert card_of(render_teams_message_compact(alert, SETTINGS)) == card_of(
        render_teams_message(alert, SETTINGS))


def test_compact_digest_of_an_alert_storm_fits() -> None:
    from shared.rendering.digest import collapse

    storm = [
        AlertRecord(
            dedup_key=f"posture:{i:036d}:drifted",
            kind=AlertKind.CLIENT_DRIFTED,
            severity=Severity.HIGH,
            title=f"Client {i} can no longer sign in to OSTTRA after a default policy change",
            client=ClientRef(name=f"Client {i}", tenant_id=f"{i:08d}-0000-4000-8000-000000000000"),
            created_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
            source="posture",
        )
        for i in range(500)
    ]
    (digest,) = collapse(storm, threshold=5, now=SAMPLE_NOW)
    with pytest.raises(MessageTooLarge):
        render_teams_message(digest, SETTINGS)
    compact = render_teams_message_compact(digest, SETTINGS)
    assert len(encode_teams_message(compact)) <= TEAMS_MESSAGE_LIMIT_BYTES
    texts = [n.get("text") for n in walk(card_of(compact))]
    assert "500 alerts" in texts


def test_sample_finding_is_rendered_with_its_severity_colour() -> None:
    card = card_of(render_teams_message(SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED], SETTINGS))
    runs = [n for n in walk(card) if n.get("type") == "TextRun"]
    labels = {r["text"]: r.get("color") for r in runs if r["text"] in ("HIGH", "MEDIUM", "LOW")}
    assert labels == {"HIGH": "attention", "MEDIUM": "warning", "LOW": "accent"}
    assert OUTBOUND_BLOCKED.code in [r["text"] for r in runs]


def test_every_sample_finding_links_an_existing_runbook_page() -> None:
    findings_dir = Path(__file__).parents[2] / "docs" / "findings"
    if not findings_dir.is_dir():
        pytest.skip("docs/findings not present")
    codes = {f.code for alert in SAMPLE_ALERTS.values() for f in alert.findings}
    missing = sorted(c for c in codes if not (findings_dir / f"{c}.md").is_file())
    assert missing == []
