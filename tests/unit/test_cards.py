"""Teams cards: every alert kind's card against the official Adaptive Card 1.4 JSON schema,
the Workflows envelope, the size budget, the compact fallback, the 3 a.m. layout (short
summary, each fix once, identifiers behind "Show details"), links and text safety."""

from __future__ import annotations

import hashlib
import json
import re
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
    DETAILS_ID,
    TEAMS_MAX_ACTIONS,
    TEAMS_MESSAGE_BUDGET_BYTES,
    TEAMS_MESSAGE_LIMIT_BYTES,
    MessageTooLarge,
    encode_teams_message,
    render_teams_message,
    render_teams_message_compact,
)
from shared.rendering.presentation import (
    BUTTON_TITLE_MAX,
    ENTRA_CROSS_TENANT_ACCESS,
    KIND_PRESENTATION,
    RenderSettings,
)
from tests.unit.alert_samples import (
    CONTOSO,
    GRAPH_FIX,
    OUTBOUND_BLOCKED,
    PORTAL_FIX,
    PRODUCER_DRIFT,
    SAMPLE_ALERTS,
    SAMPLE_NOW,
)

SCHEMAS = Path(__file__).parents[2] / "shared" / "schemas"
SCHEMA_PATH = SCHEMAS / "adaptive-card-1.4.json"
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


def walk(node: Any, *, skip_details: bool = False) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if skip_details and node.get("id") == DETAILS_ID:
            return
        yield node
        for key, value in node.items():
            if skip_details and key == "actions":
                continue
            yield from walk(value, skip_details=skip_details)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value, skip_details=skip_details)


def texts(card: dict[str, Any], *, visible_only: bool = False) -> list[str]:
    """Text of a card's body (or of one element, e.g. the details container)."""
    root = card["body"] if card.get("type") == "AdaptiveCard" else card
    return [n["text"] for n in walk(root, skip_details=visible_only)
            if isinstance(n.get("text"), str)]


def details_of(card: dict[str, Any]) -> dict[str, Any]:
    (details,) = [n for n in walk(card["body"]) if n.get("id") == DETAILS_ID]
    return details


def schema_errors(validator: Draft6Validator, card: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(card)]


# ------------------------------------------------------------------------- the schema


def test_vendored_schema_is_the_official_adaptive_card_1_4_schema() -> None:
    raw = SCHEMA_PATH.read_bytes()
    schema = json.loads(raw)
    assert schema["id"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    definitions = set(schema["definitions"])
    # 1.4 has Action.Execute and ToggleVisibility, and none of what 1.5 added.
    assert {"Action.Execute", "Action.ToggleVisibility", "RichTextBlock"} <= definitions
    assert not {"Table", "TableRow", "TableCell", "TextBlockStyle"} & definitions
    source = (SCHEMAS / "adaptive-card-1.4.SOURCE.md").read_text(encoding="utf-8")
    assert hashlib.sha256(raw).hexdigest() in source


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlok", "text": "x"}]},
        {"type": "AdaptiveCard", "version": "1.4",
         "body": [{"type": "TextBlock", "text": "x", "color": "purple"}]},
        {"type": "AdaptiveCard", "version": "1.4",
         "body": [{"type": "Container", "style": "loud", "items": []}]},
        {"type": "AdaptiveCard", "version": "1.4", "body": [],
         "actions": [{"type": "Action.OpenUrl", "title": "no url"}]},
        {"type": "AdaptiveCard", "version": "1.4", "body": [], "msteams": {"width": "Full"}},
        # 1.5 features that Workflows' "Post card in a chat or channel" cannot show:
        {"type": "AdaptiveCard", "version": "1.4",
         "body": [{"type": "Table", "columns": [], "rows": []}]},
        {"type": "AdaptiveCard", "version": "1.4",
         "body": [{"type": "TextBlock", "text": "x", "style": "heading"}]},
    ],
    ids=["unknown-element", "bad-color", "bad-container-style", "url-missing", "extra-key",
         "table-1.5", "heading-style-1.5"],
)
def test_schema_rejects_broken_cards(validator: Draft6Validator, broken: dict[str, Any]) -> None:
    """The validator is live: the card tests below would catch these mistakes."""
    assert schema_errors(validator, broken)


# --------------------------------------------------------------- one card per kind


def test_every_alert_kind_has_a_sample_and_a_presentation() -> None:
    assert set(SAMPLE_ALERTS) == set(AlertKind)
    assert set(KIND_PRESENTATION) == set(AlertKind)


ALL_CARDS = [*SAMPLE_ALERTS.values(), PRODUCER_DRIFT]
CARD_IDS = [a.kind.value for a in SAMPLE_ALERTS.values()] + ["producer_drift"]


@pytest.mark.parametrize("alert", ALL_CARDS, ids=CARD_IDS)
def test_card_of_every_kind_is_valid_adaptive_card_1_4(
    validator: Draft6Validator, alert: AlertRecord
) -> None:
    message = render_teams_message(alert, SETTINGS)

    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert schema_errors(validator, card) == []
    assert len(encode_teams_message(message)) <= TEAMS_MESSAGE_BUDGET_BYTES


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


def joined(values: list[str]) -> str:
    return " ".join(" ".join(v.split()) for v in values)


@pytest.mark.parametrize("alert", ALL_CARDS, ids=CARD_IDS)
def test_card_carries_everything_on_the_record_visible_or_in_details(alert: AlertRecord) -> None:
    """Client, tenant, who, before → after, evidence, findings, fixes, facts and digest
    members all reach the card — the bookkeeping behind "Show details"."""
    text = joined(texts(card_of(render_teams_message(alert, SETTINGS))))
    expected: list[str] = []
    if alert.client:
        expected += [alert.client.name, alert.client.tenant_id]
    if alert.who:
        expected.append(alert.who)
    for change in alert.changes:
        expected += [change.setting]
    for label, count in alert.evidence.items():
        expected += [label, f"{count:,}"]
    for finding in alert.findings:
        expected.append(finding.code)
    expected += [v for k, v in alert.facts.items() if "since" not in k.lower()]
    expected += [item.title for item in alert.items]
    missing = [value for value in expected if " ".join(value.split()) not in text]
    assert missing == []


def test_long_producer_summary_becomes_one_or_two_sentences_and_moves_to_details() -> None:
    card = card_of(render_teams_message(PRODUCER_DRIFT, SETTINGS))
    header = card["body"][0]
    summary = header["items"][2]["inlines"][0]["text"]
    assert summary == OUTBOUND_MESSAGE
    assert len(re.findall(r"[.!?](\s|$)", summary)) <= 2
    assert PRODUCER_DRIFT.summary in texts(details_of(card))
    assert PRODUCER_DRIFT.summary not in texts(card, visible_only=True)


OUTBOUND_MESSAGE = PRODUCER_DRIFT.findings[0].message


def test_each_fix_appears_once_and_its_graph_request_only_in_details() -> None:
    card = card_of(render_teams_message(PRODUCER_DRIFT, SETTINGS))
    visible = texts(card, visible_only=True)
    assert [t for t in visible if PORTAL_FIX in t] == [
        f"What Contoso Markets' administrator must change: {PORTAL_FIX}"]
    assert not any(GRAPH_FIX in t for t in visible)
    assert GRAPH_FIX in texts(details_of(card))


def test_internal_identifiers_show_only_behind_show_details() -> None:
    alert = PRODUCER_DRIFT
    card = card_of(render_teams_message(alert, SETTINGS))
    # The client's tenant ID may appear in one place outside the details: the command
    # that sends the client their instructions, which needs it.
    visible = joined([t for t in texts(card, visible_only=True)
                      if not t.startswith("xtap-watch clients instructions ")])
    hidden = joined(texts(details_of(card)))
    for internal in (alert.dedup_key, alert.client.tenant_id if alert.client else "",
                     alert.batch_id or "", "Episode"):
        assert internal not in visible, internal
        assert internal in hidden, internal
    # the vendor's own tenant ID is an instruction value inside the fix, not bookkeeping
    assert "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50" not in visible.replace(PORTAL_FIX, "")
    details = details_of(card)
    assert details["isVisible"] is False
    toggles = [a for a in card["actions"] if a["type"] == "Action.ToggleVisibility"]
    assert toggles == [{"type": "Action.ToggleVisibility", "title": "Show details",
                        "targetElements": [DETAILS_ID]}]


def test_verdict_fact_says_before_and_after_once() -> None:
    card = card_of(render_teams_message(PRODUCER_DRIFT, SETTINGS))
    visible = texts(card, visible_only=True)
    assert "BLOCKED (was ALLOWED)" in visible
    assert "Previous verdict" not in visible


def test_client_card_names_the_contact_and_the_command_to_send_instructions() -> None:
    card = card_of(render_teams_message(PRODUCER_DRIFT, SETTINGS))
    visible = texts(card, visible_only=True)
    assert "it-admin@contoso-markets.com" in visible
    command = ("xtap-watch clients instructions 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d "
               "--send-to it-admin@contoso-markets.com")
    assert command in visible
    no_contact = PRODUCER_DRIFT.model_copy(update={"client": PRODUCER_DRIFT.client.model_copy(
        update={"contacts": ()})} if PRODUCER_DRIFT.client else {})
    visible = joined(texts(card_of(render_teams_message(no_contact, SETTINGS)),
                           visible_only=True))
    assert "No contact is registered for Contoso Markets" in visible
    assert "--send-to <admin address>" in visible


def test_what_changed_shows_the_effective_setting_before_and_after() -> None:
    card = card_of(render_teams_message(PRODUCER_DRIFT, SETTINGS))
    visible = texts(card, visible_only=True)
    i = visible.index("What changed")
    assert visible[i + 1:i + 5] == [
        "Outbound B2B collaboration: users and groups",
        "allowed: all users (inherited from the default)", "  →  ",
        "blocked: all users (set on the OSTTRA entry)",
    ]


def test_vendor_change_card_shows_what_changed_and_who() -> None:
    alert = SAMPLE_ALERTS[AlertKind.VENDOR_SETTING_CHANGED]
    visible = texts(card_of(render_teams_message(alert, SETTINGS)), visible_only=True)
    assert "What changed" in visible
    assert "Changed by" in visible and "bob@contoso.com" in visible
    assert "2026-11-23 09:18:00 UTC" in visible
    assert "2b1d4c6e-2f1a-4d5b-9e8c-7a6b5c4d3e2f" not in visible  # correlation ID: details


def test_digest_card_lists_members_most_severe_first() -> None:
    digest = SAMPLE_ALERTS[AlertKind.DIGEST]
    all_texts = texts(card_of(render_teams_message(digest, SETTINGS)))
    positions = [all_texts.index(item.title) for item in digest.items]
    assert positions == sorted(positions)
    assert all_texts[positions[0] - 2] == "High"  # the severity label beside the first member
    assert f"{len(digest.items)} alerts, most severe first" in all_texts


def test_digest_card_says_how_many_more_and_where_their_ids_are() -> None:
    digest = SAMPLE_ALERTS[AlertKind.DIGEST].model_copy(
        update={"omitted": 392, "omitted_refs": ("Directory_a", "Directory_b")})
    card = card_of(render_teams_message(digest, SETTINGS))
    visible = joined(texts(card, visible_only=True))
    listed = len(digest.items)
    assert f"{listed + 392} alerts, most severe first" in visible
    assert f"… and {392} more (their event IDs are under Show details" in visible
    assert "Directory_a, Directory_b" in joined(texts(details_of(card)))


# ------------------------------------------------------------------------- buttons


def actions_of(alert: AlertRecord) -> list[dict[str, Any]]:
    return card_of(render_teams_message(alert, SETTINGS)).get("actions", [])


def url_buttons(alert: AlertRecord) -> list[dict[str, Any]]:
    return [a for a in actions_of(alert) if a["type"] == "Action.OpenUrl"]


@pytest.mark.parametrize("alert", ALL_CARDS, ids=CARD_IDS)
def test_button_titles_are_short_and_never_cut(alert: AlertRecord) -> None:
    for action in actions_of(alert):
        assert len(action["title"]) <= BUTTON_TITLE_MAX, action
        assert not action["title"].endswith("…")
    assert len(actions_of(alert)) <= 4


def test_client_card_buttons_open_entra_and_the_top_findings_runbook() -> None:
    urls = [a["url"] for a in url_buttons(SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED])]
    assert urls == [
        f"https://entra.microsoft.com/{ENTRA_CROSS_TENANT_ACCESS}",
        "https://github.com/xtap-watch/xtap-watch/blob/main/docs/findings/"
        "CLIENT_DEFAULT_OUTBOUND_BLOCKED.md",
    ]
    # every finding links its own runbook from a TextRun
    card = card_of(render_teams_message(SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED], SETTINGS))
    inline = [n["selectAction"]["url"] for n in walk(card["body"], skip_details=True)
              if n.get("type") == "TextRun" and "selectAction" in n]
    assert [u.rsplit("/", 1)[1] for u in inline] == [
        "CLIENT_DEFAULT_OUTBOUND_BLOCKED.md", "CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN.md",
        "CLIENT_AUTO_REDEMPTION_NOT_TICKED.md",
    ]


def test_producer_links_with_long_titles_go_to_the_details() -> None:
    card = card_of(render_teams_message(PRODUCER_DRIFT, SETTINGS))
    titles = [a["title"] for a in card["actions"]]
    assert titles == ["Cross-tenant access", "Runbook", "Acknowledge", "Show details"]
    long_link = Link(title="Sign-in logs filtered to this client's tenant (last 24 hours)",
                     url="https://entra.microsoft.com/#view/SignIns")
    card = card_of(render_teams_message(
        PRODUCER_DRIFT.model_copy(update={"links": (*PRODUCER_DRIFT.links, long_link)}),
        SETTINGS))
    assert [a["title"] for a in card["actions"]] == titles
    assert long_link.title in texts(details_of(card))


def test_reinvite_card_links_its_status_from_links_or_from_the_job_id() -> None:
    done = SAMPLE_ALERTS[AlertKind.REINVITE_DONE]
    assert {
        "type": "Action.OpenUrl",
        "title": "Re-invite status",
        "url": "https://xtap-watch.azurewebsites.net/api/v1/reinvites/job-20261123-0007",
    } in actions_of(done)
    failed = SAMPLE_ALERTS[AlertKind.REINVITE_FAILED]  # no link, only facts["job_id"]
    assert {"title": "Re-invite status", "type": "Action.OpenUrl",
            "url": "https://xtap-watch.azurewebsites.net/api/v1/reinvites/job-20261123-0008"
            } in actions_of(failed)
    without_api = RenderSettings(api_base_url=None)
    titles = [a["title"] for a in
              card_of(render_teams_message(failed, without_api)).get("actions", [])]
    assert "Re-invite status" not in titles


def test_buttons_refuse_non_web_links_dedupe_and_stop_at_four() -> None:
    links = tuple(Link(title=f"Query {i}", url=f"https://portal.azure.com/#q{i}")
                  for i in range(10))
    alert = SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED].model_copy(update={"links": (
        Link(title="Run this", url="javascript:alert(1)"),
        Link(title="Local", url="file:///etc/passwd"),
        links[0],
        links[0],
        *links,
    )})
    actions = actions_of(alert)
    urls = [a["url"] for a in actions if "url" in a]
    assert len(actions) == 4 <= TEAMS_MAX_ACTIONS  # three links and "Show details"
    assert len(set(urls)) == len(urls)
    assert all(u.startswith("https://") for u in urls)


def test_operational_cards_have_no_entra_button() -> None:
    for kind in (AlertKind.DELIVERY_FAILING, AlertKind.POISON_MESSAGE):
        assert not any("entra.microsoft.com" in a.get("url", "")
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
    assert literal.count(HOSTILE) >= 10


# ------------------------------------------------------------------- size limits


def alert_with_findings(count: int, text: str = "x" * 200) -> AlertRecord:
    return SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED].model_copy(update={
        "findings": tuple(
            FindingRef(code=f"CLIENT_FINDING_{i:03d}", severity=Severity.MEDIUM,
                       message=f"{i}: {text}", remediation=text)
            for i in range(count)
        ),
    })


def test_card_over_the_budget_is_refused_with_its_size() -> None:
    """~28 KB is Workflows' limit; we stop at 24 KiB, leaving headroom for the flow."""
    alert = alert_with_findings(200)
    with pytest.raises(MessageTooLarge) as refused:
        render_teams_message(alert, SETTINGS)
    error = refused.value
    assert TEAMS_MESSAGE_LIMIT_BYTES == 28 * 1024
    assert error.limit_bytes == TEAMS_MESSAGE_BUDGET_BYTES == 24 * 1024
    assert error.size_bytes > error.limit_bytes
    assert error.dedup_key == alert.dedup_key and error.kind is AlertKind.CLIENT_DRIFTED
    assert f"{error.size_bytes:,} bytes" in str(error)
    assert alert.dedup_key in str(error)


def padded(chars: int, char: str = "x") -> AlertRecord:
    """The recovered sample with a detail line of ``chars`` characters (shown once)."""
    return SAMPLE_ALERTS[AlertKind.CLIENT_RECOVERED].model_copy(
        update={"details": (char * chars,)})


def test_limit_is_measured_in_utf8_bytes_of_the_posted_json() -> None:
    one = len(encode_teams_message(render_teams_message(padded(1), SETTINGS)))
    fits = TEAMS_MESSAGE_BUDGET_BYTES - one + 1  # line length that fills the budget exactly
    exactly_full = render_teams_message(padded(fits), SETTINGS)
    assert len(encode_teams_message(exactly_full)) == TEAMS_MESSAGE_BUDGET_BYTES
    with pytest.raises(MessageTooLarge) as refused:
        render_teams_message(padded(fits + 1), SETTINGS)
    assert refused.value.size_bytes == TEAMS_MESSAGE_BUDGET_BYTES + 1
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
    assert len(encode_teams_message(message)) <= TEAMS_MESSAGE_BUDGET_BYTES
    card = card_of(message)
    assert schema_errors(validator, card) == []
    assert not [n for n in walk(card) if n.get("id") == DETAILS_ID]  # details dropped first
    notes = [n["text"] for n in walk(card) if n.get("type") == "TextBlock"
             and "not shown here" in n.get("text", "")]
    assert len(notes) == 1
    hidden = int(notes[0].split()[0])
    shown = sum(1 for n in walk(card) if n.get("type") == "TextRun"
                and re.match(r"\d+: x", str(n.get("text", ""))))
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
    for message in (render_teams_message(digest, SETTINGS),
                    render_teams_message_compact(digest, SETTINGS)):
        assert len(encode_teams_message(message)) <= TEAMS_MESSAGE_BUDGET_BYTES
        shown = joined(texts(card_of(message), visible_only=True))
        listed = sum(1 for a in digest.items if a.title in shown)
        total = len(digest.items) + digest.omitted
        assert total == 500
        assert "500 alerts, most severe first" in shown
        assert f"… and {500 - listed} more" in shown


def test_sample_finding_is_rendered_with_its_severity_colour() -> None:
    card = card_of(render_teams_message(SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED], SETTINGS))
    runs = [n for n in walk(card["body"], skip_details=True) if n.get("type") == "TextRun"]
    labels = {r["text"]: r.get("color") for r in runs if r["text"] in ("HIGH", "MEDIUM", "LOW")}
    assert labels == {"HIGH": "attention", "MEDIUM": "warning", "LOW": "accent"}
    assert OUTBOUND_BLOCKED.code in texts(details_of(card))


def test_every_sample_finding_links_an_existing_runbook_page() -> None:
    findings_dir = Path(__file__).parents[2] / "docs" / "findings"
    if not findings_dir.is_dir():
        pytest.skip("docs/findings not present")
    codes = {f.code for alert in SAMPLE_ALERTS.values() for f in alert.findings}
    missing = sorted(c for c in codes if not (findings_dir / f"{c}.md").is_file())
    assert missing == []
