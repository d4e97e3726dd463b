"""Real rendering: every card through the official ``adaptivecards`` JS renderer in
headless Chromium (Debian's, driven by Playwright), with the renderer's own parse and
validation events as the verdict, and a PNG of each card saved under the test's tmp dir.
Also the 3 a.m. layout: a typical drift card at most 900 px tall at the preview's width,
no button title cut, details hidden until "Show details"."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from devtools.cardrender.render import (
    RenderResult,
    RenderSetupError,
    check_node_modules,
    find_chromium,
    render_cards,
)
from shared.domain.messages import AlertKind, FindingRef, Severity
from shared.rendering.cards import render_teams_message, render_teams_message_compact
from shared.rendering.presentation import RenderSettings
from tests.unit.alert_samples import PRODUCER_DRIFT, SAMPLE_ALERTS

pytestmark = pytest.mark.browser

SETTINGS = RenderSettings(api_base_url="https://xtap-watch.azurewebsites.net")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE_WHO = "[Open the fix](https://evil.example/phish)"


def content(message: dict[str, Any]) -> dict[str, Any]:
    return message["attachments"][0]["content"]  # type: ignore[no-any-return]


def cards_under_test() -> dict[str, dict[str, Any]]:
    cards = {kind.value: content(render_teams_message(alert, SETTINGS))
             for kind, alert in SAMPLE_ALERTS.items()}
    storm = SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED].model_copy(update={"findings": tuple(
        FindingRef(code=f"CLIENT_FINDING_{i:03d}", severity=Severity.MEDIUM,
                   message=f"Finding {i}: " + "the outbound setting is not as expected " * 5,
                   remediation="Allow outbound B2B collaboration for OSTTRA. " * 4)
        for i in range(200))})
    cards["compact_storm"] = content(render_teams_message_compact(storm, SETTINGS))
    cards["producer_drift"] = content(render_teams_message(PRODUCER_DRIFT, SETTINGS))
    hostile = SAMPLE_ALERTS[AlertKind.VENDOR_SETTING_CHANGED].model_copy(
        update={"who": HOSTILE_WHO})
    cards["hostile_text"] = content(render_teams_message(hostile, SETTINGS))
    # Negative control: the same harness must report a card the renderer rejects.
    cards["broken_control"] = {"type": "AdaptiveCard", "version": "1.4",
                               "body": [{"type": "TextBlok", "text": "typo"},
                                        {"type": "TextBlock", "text": "x", "color": "purple"}]}
    return cards


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any],
                                                                          RenderResult]]:
    try:
        find_chromium()
        check_node_modules()
    except RenderSetupError as missing:
        if os.environ.get("CI"):
            pytest.fail(f"card rendering is part of CI: {missing}")
        pytest.skip(str(missing))
    out_dir = tmp_path_factory.mktemp("cards")
    cards = cards_under_test()
    results = asyncio.run(render_cards(cards, out_dir))
    return {r.name: (cards[r.name], r) for r in results}


NAMES = [kind.value for kind in AlertKind] + ["compact_storm", "hostile_text", "producer_drift"]


@pytest.mark.parametrize("name", NAMES)
def test_card_renders_without_renderer_errors_or_warnings(
    rendered: dict[str, tuple[dict[str, Any], RenderResult]], name: str
) -> None:
    _, result = rendered[name]
    assert result.problems == []
    assert result.rendered


@pytest.mark.parametrize("name", NAMES)
def test_rendered_dom_shows_the_card(
    rendered: dict[str, tuple[dict[str, Any], RenderResult]], name: str
) -> None:
    card, result = rendered[name]
    # The header's title is the first TextRun of the card.
    title = card["body"][0]["items"][1]["inlines"][0]["text"]
    assert title in result.text
    assert result.counts["textBlocks"] + result.counts["richTextBlocks"] >= 5
    assert result.counts["containers"] >= 2
    assert result.button_titles == [a["title"] for a in card.get("actions", [])]
    assert result.truncated_buttons == []
    png = result.png.read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000
    assert result.width == 560 and result.height > 250


def test_outside_text_renders_as_literal_text_not_a_link(
    rendered: dict[str, tuple[dict[str, Any], RenderResult]],
) -> None:
    _, result = rendered["hostile_text"]
    assert HOSTILE_WHO in result.text
    assert not any("evil.example" in href for href in result.hrefs)


def test_runbook_links_render_as_links(
    rendered: dict[str, tuple[dict[str, Any], RenderResult]],
) -> None:
    _, result = rendered[AlertKind.CLIENT_DRIFTED.value]
    runbooks = {h for h in result.hrefs if "/api/v1/runbooks/" in h}  # served by the app
    assert len(runbooks) == len(SAMPLE_ALERTS[AlertKind.CLIENT_DRIFTED].findings)


def test_a_typical_drift_card_is_at_most_900_px_tall_until_details_are_shown(
    rendered: dict[str, tuple[dict[str, Any], RenderResult]],
) -> None:
    """Issue 14.1: the card the demo's drift really produces, at the preview's width."""
    _, result = rendered["producer_drift"]
    assert result.width == 560
    assert result.height <= 900
    assert result.expanded_height > result.height  # the details are there, behind the toggle
    assert "Show details" in result.button_titles
    assert "client:1a2b3c4d" not in result.text  # the dedup key is hidden until then


def test_harness_reports_a_card_the_renderer_rejects(
    rendered: dict[str, tuple[dict[str, Any], RenderResult]],
) -> None:
    _, result = rendered["broken_control"]
    events = " | ".join(result.problems)
    assert "UnknownElementType" in events and "InvalidPropertyValue" in events


def test_the_harness_reports_a_cut_button_title(tmp_path: Path) -> None:
    """Negative control for the truncation check: six long titles cannot all fit."""
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [
        {"type": "TextBlock", "text": "x"}],
        "actions": [{"type": "Action.OpenUrl", "title": f"Cross-tenant access settings {i}",
                     "url": f"https://example.com/{i}"} for i in range(5)]}
    try:
        (result,) = asyncio.run(render_cards({"cut": card}, tmp_path))
    except RenderSetupError as missing:
        pytest.skip(str(missing))
    assert result.truncated_buttons


def test_pngs_are_one_per_card(
    rendered: dict[str, tuple[dict[str, Any], RenderResult]],
) -> None:
    pngs = {r.png for _, r in rendered.values()}
    assert len(pngs) == len(rendered)
    assert all(Path(p).parent == Path(next(iter(pngs))).parent for p in pngs)
