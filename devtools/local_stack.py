"""The demo's local stack for a person to use: its HTTP server, what it delivered, the file
to ``source``, and the legend (``./scripts/demo``, ``./scripts/demo --keep``).

Everything here writes under ``.local/`` (git-ignored) and prints plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.local_env import ROOT, VENDOR_TENANT_ID

LOCAL = ROOT / ".local"
ENV_FILE = LOCAL / "xtap-watch.env"
DELIVERED_DIR = LOCAL / "demo" / "delivered"
PREFERRED_PORT = 7071  # what `func start` uses: links and habits carry over

LEGEND = """\
Verdict (each client's outbound policy toward the vendor):
  ALLOWED   every user can reach every vendor app
  LIMITED   only some users or some vendor apps (fine when it is the client's agreed scope)
  BLOCKED   nobody can reach the vendor's apps: every sign-in fails with AADSTS500212
  UNKNOWN   no evidence either way (not consented, unreachable, or a policy not understood)
State (what xtap-watch alerts on; alerts are sent only when it changes):
  new              not yet observed conclusively
  ok               as it should be (ALLOWED, or LIMITED as agreed)
  drifted          broken or narrowed: an alert went out, reminders follow until it recovers
  consent_missing  the client has not consented to the read-only app (alerted once)
Finding codes (CLIENT_*, VENDOR_*, SIGNIN_*, POLICY_*) each have a runbook page:
  {runbooks}/<CODE>   (rendered from docs/findings/<CODE>.md)"""


def severity_rank(severity: str) -> int:
    return {"high": 0, "medium": 1, "review": 2, "low": 3, "info": 4}.get(severity, 5)


def alert_order(alert: Mapping[str, Any]) -> tuple[int, str, str]:
    """A fixed order for printing alerts (the outbox's order depends on worker timing)."""
    return (severity_rank(str(alert.get("severity"))), str(alert.get("kind")),
            str(alert.get("title")))


# ------------------------------------------------------------------------------ HTTP
async def serve_runner_http(runner: Any, preferred: int = PREFERRED_PORT) -> tuple[Any, int]:
    """The runner's HTTP server on ``preferred`` if it is free, else on any free port."""
    if preferred:
        try:
            return await runner.serve_http(port=preferred)  # type: ignore[no-any-return]
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    return await runner.serve_http(port=0)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------- delivered
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "alert"


@dataclass(frozen=True)
class Saved:
    directory: Path
    cards: list[Path]
    emails: list[Path]
    images: list[Path]
    images_note: str


def save_delivered(
    teams: Iterable[Mapping[str, Any]],
    mail: Iterable[Mapping[str, Any]],
    out: Path,
    images: bool = True,
) -> Saved:
    """Write what the simulator's webhook and mailbox received, byte for byte: each card
    as the JSON posted, each e-mail as its HTML (and text) body; then PNGs if a renderer
    is installed (``./scripts/setup`` for the tests brings it; the demo does not need it)."""
    from devtools.delivered import card_kind, mail_kind

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    teams, mail = list(teams), list(mail)

    def kind_of_card(record: Mapping[str, Any]) -> str:
        from devtools.cardrender.render import card_of

        try:
            return str(card_kind(card_of(dict(record))))
        except (KeyError, IndexError, TypeError, ValueError):
            return "card"

    # Named and numbered in a fixed order (delivery order depends on worker timing).
    cards: list[Path] = []
    ordered = sorted(teams, key=lambda r: (kind_of_card(r), json.dumps(r.get("body"))))
    for number, record in enumerate(ordered, start=1):
        body = record.get("body", record)
        kind = kind_of_card(record)
        path = out / f"teams-{number:02d}-{kind}.json"
        path.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        cards.append(path)
    emails: list[Path] = []
    mail_ordered = sorted(mail, key=lambda m: (mail_kind(dict(m)), str(m.get("subject"))))
    for number, message in enumerate(mail_ordered, start=1):
        kind = _slug(mail_kind(dict(message)))
        content = (message.get("body") or {}).get("content", "")
        content_type = str((message.get("body") or {}).get("contentType", "html")).lower()
        suffix = "html" if content_type == "html" else "txt"
        path = out / f"mail-{number:02d}-{kind}.{suffix}"
        path.write_text(str(content), encoding="utf-8")
        emails.append(path)
    pngs, note = _render_images(teams, mail, out) if images else ([], "")
    return Saved(out, cards, emails, pngs, note)


def _render_images(
    teams: Iterable[Mapping[str, Any]], mail: Iterable[Mapping[str, Any]], out: Path
) -> tuple[list[Path], str]:
    from devtools.cardrender.render import RenderSetupError, check_node_modules, find_chromium

    try:
        find_chromium()
        check_node_modules()
    except RenderSetupError:
        return [], (
            "PNG previews need the card renderer and Chromium, which the demo does not install:"
            " after ./scripts/setup (what ./scripts/test runs) the demo renders them too"
        )
    from devtools.delivered import render_delivered

    delivered = {"teams": list(teams), "mail": [dict(m) for m in mail]}
    try:
        results, emails = asyncio.run(render_delivered(delivered, out, 1.0))
    except RenderSetupError as exc:
        return [], f"PNG previews could not be rendered: {exc}"
    return [r.png for r in results] + [png for png, _ in emails], ""


# -------------------------------------------------------------------- the env file
def write_env_file(env: Mapping[str, str], extra: Mapping[str, str], path: Path = ENV_FILE
                   ) -> Path:
    """A file to ``source``: the stack's settings (test-double credentials), the local API
    address and ``.venv/bin`` on PATH, so ``xtap-watch`` and curl reach the running stack."""
    lines = [
        "# Written by ./scripts/demo --keep: the settings of the local stack it keeps running",
        "# (Azurite, the Graph simulator - a test double - and the local Functions runner).",
        "# The credentials are the simulator's, valid nowhere but on 127.0.0.1.",
        "# Use: source .local/xtap-watch.env   (stale once that demo stops)",
    ]
    for key in sorted(env):
        lines.append(f"export {key}={shlex.quote(env[key])}")
    for key, value in extra.items():
        lines.append(f"export {key}={shlex.quote(value)}")
    lines.append(f'export PATH={shlex.quote(str(ROOT / ".venv" / "bin"))}:"$PATH"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _rel(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def how_to_use(api: str, sim_url: str, example_tenant: str, env_file: Path = ENV_FILE
               ) -> str:
    rel = _rel(env_file)
    return f"""\
The local stack stays up until Ctrl+C: Azurite, the Graph simulator and the runner (timers on
their schedules: audit scan every minute, sweep hourly; queues processed as they fill; HTTP
API at {api}/api/).

In another terminal, from this folder:
  source {rel}
  xtap-watch clients list
  xtap-watch check {example_tenant}
  xtap-watch sweep                      # queues every client; the runner here checks them
  curl -s -H "$(xtap-watch dev principal --role Reinvite.Request)" \\
      "$XTAP_LOCAL_API/api/v1/clients/{example_tenant}/posture"
  python -m devtools.simctl allow {example_tenant}   # the client allows the vendor
  python -m devtools.simctl block {example_tenant}   # ... or blocks it (a drift)
Runbooks: {api}/api/v1/runbooks  ·  OpenAPI: {api}/api/v1/openapi.json (needs the header)
Simulator (a test double of Graph and Entra): {sim_url}"""


WHAT_NEXT = """\
What next:
  ./scripts/demo --keep   keep this stack up and use the CLI and HTTP API against it
  ./scripts/demo --real   the same job against your tenant (README, "Against your tenant")
  README "Command line"   every xtap-watch command; xtap-watch COMMAND --help for examples"""


async def serve_until_interrupted(
    runner: Any, on_ready: Callable[[], None] | None = None
) -> None:
    """Timers on schedule and queues, like the host, until Ctrl+C."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(runner.serve_timers(stop)),
        asyncio.create_task(runner.serve_queues(stop)),
    ]
    if on_ready is not None:
        on_ready()
    try:
        await asyncio.Event().wait()
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)


def example_client(clients: Iterable[Any]) -> str:
    """A client for the printed examples (the first by name that is not the vendor)."""
    for client in clients:
        if client.tenant_id != VENDOR_TENANT_ID:
            return str(client.tenant_id)
    return "<client tenant ID>"
