"""The Teams Workflows webhook as the simulator serves it (a TEST DOUBLE).

A Workflows webhook is a Power Automate flow: the trigger "When a Teams webhook request is
received", then the action "Post card in a chat or channel". Two kinds of flow:

* ``accepting`` (the default, what the Teams "Send webhook alerts to a channel" template
  builds): the trigger answers **202 Accepted at once**, before the flow runs. Whatever
  goes wrong afterwards — a card the action cannot render, a message over ~28 KB
  ("Request Entity too large"), throttling above 4 posts a second — fails the *flow run*,
  visible only in the run history (here: the flow-run log ``runs``), never to the caller.
* ``confirming`` (the flow docs/teams-workflow.md tells the vendor to build): it posts the
  card, then a "Respond to a webhook request" action answers **200** after the post
  succeeded, or **502** with the failed action's status and error when it did not.

The post action renders Adaptive Cards only up to **1.4** (microsoft/AdaptiveCards #8965,
#7676; MicrosoftDocs/msteams-docs #9801): a card whose ``version`` is above 1.4, or that the
official 1.4 schema rejects (a 1.5 element such as ``Table``), fails the run — the fail-safe
reading of "this card couldn't be displayed". Successful posts land in the channel
(``state.webhook_messages[name]``). Sources and tests: sim/FIDELITY.md, "Teams Workflows
webhook".
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from sim.clock import iso_seconds, utcnow
from sim.state import SimState

TEAMS_MAX_BYTES = 28 * 1024  # "the message size limit is about 28 KB" (Teams connector)
TEAMS_MAX_PER_SECOND = 4
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
HIGHEST_CARD_VERSION = (1, 4)
# Microsoft's official schema, vendored once for the product's own tests.
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "shared" / "schemas" / "adaptive-card-1.4.json"

FlowKind = Literal["accepting", "confirming"]


@functools.cache
def _card_validator() -> Any:
    from jsonschema import Draft6Validator

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft6Validator(schema)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


class PostFailed(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _version(text: Any) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return None


def card_problem(card: dict[str, Any]) -> str | None:
    """Why "Post card in a chat or channel" cannot show ``card`` (None: it can)."""
    version = _version(card.get("version"))
    if version is None:
        return f"The card's version {card.get('version')!r} is not a schema version."
    if version > HIGHEST_CARD_VERSION:
        return (f"The card's version {card.get('version')} is above 1.4, the highest this "
                "action renders; Teams would show \"We're sorry, this card couldn't be "
                "displayed\".")
    errors = sorted(_card_validator().iter_errors(card), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(card)"
        return (f"The card is not a valid Adaptive Card 1.4 at {where}: "
                f"{first.message[:300]}")
    return None


def payload_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "The body must be a JSON object."
    if payload.get("type") != "message":
        return 'The body must have "type": "message".'
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return 'The body must have a non-empty "attachments" list.'
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, dict):
            return f"attachments[{index}] must be an object."
        if attachment.get("contentType") != ADAPTIVE_CARD:
            return f"attachments[{index}].contentType must be {ADAPTIVE_CARD!r}."
        content = attachment.get("content")
        if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
            return (f"attachments[{index}].content must be an Adaptive Card object"
                    ' ("type": "AdaptiveCard").')
        problem = card_problem(content)
        if problem:
            return f"attachments[{index}]: {problem}"
    return None


class WorkflowsWebhooks:
    """Every ``/webhooks/teams/{name}`` flow: its kind, run log and throttle window."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.flows: dict[str, FlowKind] = {}
        self.run_delay_seconds = 0.0
        self.runs: dict[str, list[dict[str, Any]]] = {}
        self.rejected: dict[str, list[dict[str, Any]]] = {}  # refused by the trigger itself
        self._windows: dict[str, deque[float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def configure(self, name: str, kind: FlowKind) -> dict[str, Any]:
        if kind not in ("accepting", "confirming"):
            raise ValueError(f"flow kind must be accepting or confirming, got {kind!r}")
        self.flows[name] = kind
        return {"name": name, "kind": kind}

    def describe(self, name: str) -> dict[str, Any]:
        return {
            "kind": self.flows.get(name, "accepting"),
            "messages": self.state.webhook_messages.get(name, []),
            "rejected": self.rejected.get(name, []),
            "runs": self.runs.get(name, []),
        }

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        raw = await request.read()
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            # The trigger cannot parse the body at all: refused before any run starts.
            self.rejected.setdefault(name, []).append(
                {"status": 400, "reason": "The body is not valid JSON.",
                 "at": iso_seconds(utcnow())})
            return _json(400, {"error": {"code": "InvalidRequestContent",
                                         "message": "The request body is not valid JSON."}})
        run: dict[str, Any] = {
            "runId": uuid.uuid4().hex,
            "status": "Running",
            "startedAt": iso_seconds(utcnow()),
            "size": len(raw),
        }
        self.runs.setdefault(name, []).append(run)
        headers = {"x-ms-workflow-run-id": run["runId"]}
        if self.flows.get(name, "accepting") == "confirming":
            try:
                await self._post(name, payload, len(raw))
            except PostFailed as failed:
                self._finish(run, failed)
                return _json(502, {"posted": False, "actionStatus": failed.status,
                                   "error": {"code": failed.code, "message": failed.message}},
                             headers)
            self._finish(run, None)
            return _json(200, {"posted": True, "runId": run["runId"]}, headers)
        task = asyncio.get_running_loop().create_task(self._run_later(name, run, payload,
                                                                      len(raw)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=202, headers=headers)

    async def _run_later(self, name: str, run: dict[str, Any], payload: Any, size: int) -> None:
        if self.run_delay_seconds:
            await asyncio.sleep(self.run_delay_seconds)
        try:
            await self._post(name, payload, size)
        except PostFailed as failed:
            self._finish(run, failed)
        else:
            self._finish(run, None)

    @staticmethod
    def _finish(run: dict[str, Any], failed: PostFailed | None) -> None:
        run["finishedAt"] = iso_seconds(utcnow())
        if failed is None:
            run["status"] = "Succeeded"
            return
        run["status"] = "Failed"
        run["error"] = {"status": failed.status, "code": failed.code, "message": failed.message}

    async def _post(self, name: str, payload: Any, size: int) -> None:
        """The "Post card in a chat or channel" action."""
        now = time.monotonic()
        window = self._windows.setdefault(name, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= TEAMS_MAX_PER_SECOND:
            raise PostFailed(429, "TooManyRequests",
                             "Rate limit is exceeded: at most 4 posts per second.")
        window.append(now)
        if size > TEAMS_MAX_BYTES:
            raise PostFailed(413, "RequestEntityTooLarge",
                             f"Request Entity too large: the message is {size} bytes, "
                             "over the ~28 KB limit.")
        problem = payload_problem(payload)
        if problem:
            raise PostFailed(400, "BadRequest", problem)
        self.state.webhook_messages.setdefault(name, []).append(
            {"name": name, "receivedAt": iso_seconds(utcnow()), "size": size, "body": payload}
        )
