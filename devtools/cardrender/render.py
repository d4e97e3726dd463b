"""Render Adaptive Cards with the official ``adaptivecards`` JS renderer in headless Chromium.

The browser is Debian's ``/usr/bin/chromium`` (``apt-get install chromium``) driven by
Python Playwright (``playwright``, pinned) through ``executable_path`` — Playwright never
downloads a browser here. The renderer and markdown-it come from this folder's
``node_modules`` (``npm ci --prefix devtools/cardrender``) and load from ``file://``, so
rendering needs no network at all; the browser's own background traffic is switched off
by flags and its name resolution is pointed nowhere.

For each card the page (``page.html``) parses it with a ``SerializationContext`` and
reports the renderer's parse events and ``validateProperties()`` events; this module adds
any console error or uncaught exception and saves a PNG of the rendered card. HTML pages
(the e-mails) are screenshotted the same way (:meth:`CardRenderer.render_html`).

    python -m devtools.cardrender OUT_DIR MESSAGE.json [...] [--scale 2]

renders cards saved as JSON (a Teams webhook body, an attachment's ``content``, or a list
of either). ``python -m devtools.delivered`` renders what the demo really delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page.html"
HOST_CONFIG = HERE / "hostconfig-teams-light.json"
REQUIRED_FILES = (
    HERE / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js",
    HERE / "node_modules" / "markdown-it" / "dist" / "markdown-it.min.js",
)
DEBIAN_CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 640, "height": 900}  # the page's card frame is 560 px wide
MARGIN = 8

CHROMIUM_FLAGS = (
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    # Nothing the page needs is on the network; make sure nothing else gets there.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


class RenderSetupError(RuntimeError):
    """Chromium, Playwright or the npm packages are missing, or the browser did not start."""


def find_chromium() -> str:
    """``XTAP_CHROMIUM`` if set, else Debian's ``/usr/bin/chromium`` (or chromium on PATH)."""
    candidates = [os.environ.get("XTAP_CHROMIUM"), DEBIAN_CHROMIUM, "chromium",
                  "chromium-browser"]
    for candidate in candidates:
        if candidate and (path := shutil.which(candidate)):
            return path
    raise RenderSetupError(
        "Chromium not found: install it with `apt-get install -y chromium` "
        "(or set XTAP_CHROMIUM to a Chromium binary)"
    )


def check_node_modules() -> None:
    missing = [str(p.relative_to(HERE)) for p in REQUIRED_FILES if not p.is_file()]
    if missing:
        raise RenderSetupError(
            f"missing {', '.join(missing)}: run `npm ci --prefix devtools/cardrender`"
        )


@dataclass
class RenderResult:
    name: str
    parse_events: list[dict[str, Any]]
    validation_events: list[dict[str, Any]]
    console_problems: list[str]
    rendered: bool
    counts: dict[str, int]
    button_titles: list[str]
    truncated_buttons: list[str]
    hrefs: list[str]
    text: str
    png: Path
    width: int = 0
    height: int = 0
    # Height with every hidden (toggleable) element shown, e.g. after "Show details".
    expanded_height: int = 0
    problems: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.problems = (
            [f"parse {e['event']}: {e['message']}" for e in self.parse_events]
            + [f"validation {e['event']}: {e['message']}" for e in self.validation_events]
            + self.console_problems
            + ([] if self.rendered else ["renderer returned no element"])
        )


class CardRenderer:
    """One headless Chromium (via Playwright) with the renderer page loaded."""

    def __init__(self, *, scale: float = 1.0) -> None:
        self.scale = scale
        self._playwright: Any = None
        self._browser: Any = None
        self._page: Any = None
        self._console: list[str] = []
        self._host_config = json.loads(HOST_CONFIG.read_text(encoding="utf-8"))

    async def __aenter__(self) -> CardRenderer:
        check_node_modules()
        chromium = find_chromium()
        try:
            from playwright.async_api import async_playwright
        except ImportError as exc:  # pragma: no cover - requirements-dev pins it
            raise RenderSetupError("Python Playwright is not installed (requirements-dev)") from exc
        try:
            self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=chromium, args=list(CHROMIUM_FLAGS), headless=True
            )
            self._page = await self._new_page()
            await self._page.goto(PAGE.as_uri())
            await self._page.wait_for_function(
                "typeof window.renderCard === 'function' && document.readyState === 'complete'"
            )
        except BaseException as exc:
            await self.__aexit__(None, None, None)
            if isinstance(exc, Exception) and not isinstance(exc, RenderSetupError):
                raise RenderSetupError(f"Chromium did not start: {exc}") from exc
            raise
        if self._console:
            problems = list(self._console)
            await self.__aexit__(None, None, None)
            raise RenderSetupError(f"renderer page reported problems: {problems}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None

    async def _new_page(self) -> Any:
        page = await self._browser.new_page(viewport=VIEWPORT, device_scale_factor=self.scale)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self._console.append(f"exception: {error}"))
        return page

    def _on_console(self, message: Any) -> None:
        if message.type in ("error", "warning", "assert"):
            self._console.append(f"console.{message.type}: {message.text}")

    async def render(self, name: str, card: dict[str, Any], out_dir: Path) -> RenderResult:
        """Render one Adaptive Card (the ``content`` of a Teams attachment) to a PNG."""
        self._console.clear()
        page = self._page
        report = await page.evaluate(
            "([card, hostConfig]) => window.renderCard(card, hostConfig)",
            [card, self._host_config],
        )
        rect = report["rect"]
        png = out_dir / f"card-{name.replace('_', '-')}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(
            path=str(png),
            full_page=True,
            clip={"x": max(rect["x"] - MARGIN, 0), "y": max(rect["y"] - MARGIN, 0),
                  "width": rect["width"] + 2 * MARGIN, "height": rect["height"] + 2 * MARGIN},
        )
        expanded = await page.evaluate("() => window.expandedHeight()")
        return RenderResult(
            name=name,
            parse_events=report["parseEvents"],
            validation_events=report["validationEvents"],
            console_problems=list(self._console),
            rendered=report["rendered"],
            counts=report["counts"],
            button_titles=report["buttonTitles"],
            truncated_buttons=report["truncatedButtons"],
            hrefs=[h for h in report["hrefs"] if h],
            text=report["text"],
            png=png,
            width=round(rect["width"]),
            height=round(rect["height"]),
            expanded_height=round(expanded),
        )

    async def render_html(self, name: str, html: str, out_dir: Path, width: int = 720,
                          scale: float | None = None) -> tuple[Path, int]:
        """Screenshot an HTML document (an e-mail body) at ``width`` CSS px; (png, height)."""
        page = await self._browser.new_page(viewport={"width": width, "height": 600},
                                            device_scale_factor=scale or self.scale)
        try:
            # Offline like the cards: block anything the document would fetch.
            await page.route("**/*", lambda route: route.abort()
                             if not route.request.url.startswith(("data:", "about:"))
                             else route.continue_())
            await page.set_content(html, wait_until="load")
            height = int(await page.evaluate("() => document.documentElement.scrollHeight"))
            png = out_dir / f"{name}.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(png), full_page=True)
            return png, height
        finally:
            await page.close()


async def render_cards(cards: dict[str, dict[str, Any]], out_dir: Path,
                       scale: float = 1.0) -> list[RenderResult]:
    async with CardRenderer(scale=scale) as renderer:
        return [await renderer.render(name, card, out_dir) for name, card in cards.items()]


def card_of(payload: Any) -> dict[str, Any]:
    """The Adaptive Card inside a Teams webhook body (or the card itself)."""
    if isinstance(payload, dict) and payload.get("type") == "message":
        content = payload["attachments"][0]["content"]
        return dict(content)
    if isinstance(payload, dict) and isinstance(payload.get("body"), dict):
        return card_of(payload["body"])  # a simulator record {"body": <webhook body>}
    if isinstance(payload, dict) and payload.get("type") == "AdaptiveCard":
        return payload
    raise ValueError("not a Teams message or an Adaptive Card")


def cards_from_files(paths: Sequence[Path]) -> dict[str, dict[str, Any]]:
    cards: dict[str, dict[str, Any]] = {}
    for path in paths:
        payload = json.loads(path.read_text(encoding="utf-8"))
        items = payload if isinstance(payload, list) else [payload]
        for index, item in enumerate(items):
            name = path.stem if len(items) == 1 else f"{path.stem}-{index + 1}"
            cards[name] = card_of(item)
    return cards


def report(results: Sequence[RenderResult]) -> int:
    failed = 0
    for result in results:
        status = "ok" if not result.problems else "PROBLEMS"
        print(f"{status:8} {result.png}  {result.width}x{result.height}px  "
              f"(details shown: {result.expanded_height}px)  "
              f"{result.counts['buttons']} buttons")
        for problem in result.problems:
            print(f"         {problem}")
        failed += bool(result.problems)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.cardrender",
        description="Render Adaptive Cards (saved Teams webhook bodies) with the official "
        "renderer in headless Chromium and save PNG previews. To render what the demo "
        "delivered, use `python -m devtools.delivered`.",
    )
    parser.add_argument("out_dir", type=Path, help="folder for card-<name>.png files")
    parser.add_argument("files", type=Path, nargs="+",
                        help="JSON files: a webhook body, a card, or a list of them")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="device pixel ratio of the screenshots (2 for crisp docs)")
    args = parser.parse_args(argv)
    try:
        cards = cards_from_files(args.files)
        results = asyncio.run(render_cards(cards, args.out_dir, args.scale))
    except (OSError, ValueError) as error:
        print(f"cardrender: {error}", file=sys.stderr)
        return 2
    except RenderSetupError as error:
        print(f"cardrender: {error}", file=sys.stderr)
        return 2
    return report(results)
