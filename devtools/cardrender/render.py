"""Render Adaptive Cards with the official ``adaptivecards`` JS renderer in headless Chromium.

The browser is Debian's ``/usr/bin/chromium`` (``apt-get install chromium``), driven over
the Chrome DevTools Protocol on a loopback port with aiohttp's WebSocket client — no
browser download, no Playwright. The renderer and markdown-it come from this folder's
``node_modules`` (``npm ci --prefix devtools/cardrender``) and load from ``file://``, so
rendering needs no network at all; the browser's own background traffic is switched off
by flags and its name resolution is pointed nowhere.

For each card the page (``page.html``) parses it with a ``SerializationContext`` and
reports the renderer's parse events and ``validateProperties()`` events; this module adds
any console error or uncaught exception and saves a PNG of the rendered card.

    python -m devtools.cardrender OUT_DIR [--kind client_drifted ...] [--scale 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
from base64 import b64decode
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

HERE = Path(__file__).resolve().parent
PAGE = HERE / "page.html"
HOST_CONFIG = HERE / "hostconfig-teams-light.json"
REQUIRED_FILES = (
    HERE / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js",
    HERE / "node_modules" / "markdown-it" / "dist" / "markdown-it.min.js",
)

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
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
    "--remote-debugging-port=0",  # Chromium picks a free loopback port
)


class RenderSetupError(RuntimeError):
    """Chromium or the npm packages are missing, or the browser did not start."""


def find_chromium() -> str:
    """``XTAP_CHROMIUM`` if set, else Debian's chromium on PATH."""
    candidates = [os.environ.get("XTAP_CHROMIUM"), "chromium", "chromium-browser"]
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
    hrefs: list[str]
    text: str
    png: Path
    width: int = 0
    height: int = 0
    problems: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.problems = (
            [f"parse {e['event']}: {e['message']}" for e in self.parse_events]
            + [f"validation {e['event']}: {e['message']}" for e in self.validation_events]
            + self.console_problems
            + ([] if self.rendered else ["renderer returned no element"])
        )


class CardRenderer:
    """One headless Chromium with the renderer page loaded; render many cards in it."""

    def __init__(self, *, scale: float = 1.0, start_timeout: float = 30.0) -> None:
        self.scale = scale
        self.start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._profile: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._console: list[str] = []
        self._host_config = json.loads(HOST_CONFIG.read_text(encoding="utf-8"))

    async def __aenter__(self) -> CardRenderer:
        check_node_modules()
        chromium = find_chromium()
        self._profile = tempfile.mkdtemp(prefix="xtap-cardrender-")  # a fresh profile
        with _open_log(Path(self._profile) / "chromium.log") as log:
            self._process = await asyncio.create_subprocess_exec(
                chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank",
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )
        try:
            await self._connect()
            await self._open_page()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._session is not None:
            await self._session.close()
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)

    async def _connect(self) -> None:
        assert self._profile is not None and self._process is not None
        port_file = Path(self._profile) / "DevToolsActivePort"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while not port_file.is_file() or not port_file.read_text().strip():
            if self._process.returncode is not None or loop.time() > deadline:
                log = (Path(self._profile) / "chromium.log").read_text(errors="replace")
                raise RenderSetupError(f"Chromium did not start; its log:\n{log[-2000:]}")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self._session = aiohttp.ClientSession()
        targets: list[dict[str, Any]] = []
        while not any(t.get("type") == "page" for t in targets):
            async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            if loop.time() > deadline:
                raise RenderSetupError("Chromium opened no page target")
            await asyncio.sleep(0.1)
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if "id" in message:
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                self._on_event(message.get("method", ""), message.get("params", {}))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RenderSetupError("Chromium closed the DevTools connection"))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self._console.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning",
                                                                             "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in
                            params.get("args", []))
            self._console.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") in ("error", "warning"):
                self._console.append(f"log {entry['level']}: {entry.get('text')}")

    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._ws.send_str(json.dumps({"id": message_id, "method": method,
                                            "params": params}))
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise RenderSetupError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def _open_page(self) -> None:
        for domain in ("Runtime", "Page", "Log"):
            await self._call(f"{domain}.enable")
        await self._call("Emulation.setDeviceMetricsOverride", width=640, height=900,
                         deviceScaleFactor=self.scale, mobile=False)
        await self._call("Page.navigate", url=PAGE.as_uri())
        for _ in range(300):
            ready = await self._evaluate("typeof window.renderCard === 'function' && "
                                         "document.readyState === 'complete'")
            if ready is True:
                break
            await asyncio.sleep(0.05)
        else:
            raise RenderSetupError(f"renderer page did not load: {self._console}")
        if self._console:
            raise RenderSetupError(f"renderer page reported problems: {self._console}")

    async def _evaluate(self, expression: str) -> Any:
        result = await self._call("Runtime.evaluate", expression=expression,
                                  returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RenderSetupError(
                f"page script failed: {details.get('exception', {}).get('description')}"
            )
        return result.get("result", {}).get("value")

    async def render(self, name: str, card: dict[str, Any], out_dir: Path) -> RenderResult:
        """Render one Adaptive Card (the ``content`` of a Teams attachment) to a PNG."""
        self._console.clear()
        report = await self._evaluate(
            f"window.renderCard({json.dumps(card)}, {json.dumps(self._host_config)})"
        )
        rect = report["rect"]
        margin = 8
        shot = await self._call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": max(rect["x"] - margin, 0), "y": max(rect["y"] - margin, 0),
                  "width": rect["width"] + 2 * margin, "height": rect["height"] + 2 * margin,
                  "scale": 1},
        )
        png = _save_png(out_dir / f"card-{name.replace('_', '-')}.png", shot["data"])
        return RenderResult(
            name=name,
            parse_events=report["parseEvents"],
            validation_events=report["validationEvents"],
            console_problems=list(self._console),
            rendered=report["rendered"],
            counts=report["counts"],
            button_titles=report["buttonTitles"],
            hrefs=[h for h in report["hrefs"] if h],
            text=report["text"],
            png=png,
            width=round(rect["width"] * self.scale),
            height=round(rect["height"] * self.scale),
        )


def _open_log(path: Path) -> BinaryIO:
    return path.open("wb")


def _save_png(path: Path, base64_data: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b64decode(base64_data))
    return path


async def render_cards(cards: dict[str, dict[str, Any]], out_dir: Path,
                       scale: float = 1.0) -> list[RenderResult]:
    async with CardRenderer(scale=scale) as renderer:
        return [await renderer.render(name, card, out_dir) for name, card in cards.items()]


def sample_cards(kinds: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """The card of every sample alert (``shared.rendering.samples``), by kind."""
    from shared.rendering.cards import render_teams_message
    from shared.rendering.presentation import RenderSettings
    from shared.rendering.samples import SAMPLE_ALERTS

    settings = RenderSettings(api_base_url="https://xtap-watch.azurewebsites.net")
    cards: dict[str, dict[str, Any]] = {}
    for kind, alert in SAMPLE_ALERTS.items():
        if kinds and kind.value not in kinds:
            continue
        message = render_teams_message(alert, settings)
        cards[kind.value] = message["attachments"][0]["content"]
    return cards


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.cardrender",
        description="Render every xtap-watch card type with the official Adaptive Cards "
        "renderer in headless Chromium and save PNG previews.",
    )
    parser.add_argument("out_dir", type=Path, help="folder for card-<kind>.png files")
    parser.add_argument("--kind", action="append", default=[],
                        help="only this alert kind (repeatable), e.g. client_drifted")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="device pixel ratio of the screenshots (2 for crisp docs)")
    args = parser.parse_args(argv)
    cards = sample_cards(args.kind)
    if not cards:
        parser.error(f"no sample alert of kind {args.kind}")
    try:
        results = asyncio.run(render_cards(cards, args.out_dir, args.scale))
    except RenderSetupError as error:
        print(f"cardrender: {error}", file=sys.stderr)
        return 2
    failed = 0
    for result in results:
        status = "ok" if not result.problems else "PROBLEMS"
        print(f"{status:8} {result.png}  {result.width}x{result.height}px  "
              f"{result.counts['buttons']} buttons")
        for problem in result.problems:
            print(f"         {problem}")
        failed += bool(result.problems)
    return 1 if failed else 0
