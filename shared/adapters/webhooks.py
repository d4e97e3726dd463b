"""Posting Adaptive Card messages to Teams Workflows webhooks.

What the answer means (sim/FIDELITY.md, "Teams Workflows webhook"):

* **202** — the flow was *triggered*. Workflows answers before the flow runs; a card it
  cannot render, a message over ~28 KB or throttling fail the run later, visible only in
  the flow's run history. The post is *accepted, unconfirmed*.
* **200** — a flow built as docs/teams-workflow.md says ("Respond to a webhook request"
  after "Post card in a chat or channel") answers only after the post succeeded: the
  post is *confirmed*.
* **502 from such a flow** — the post action failed; its body carries the action's status
  (``actionStatus``): 429/5xx are retried, 400/413 (a refused card) are permanent.
* Other 4xx than 408/429 are permanent (the flow was deleted, the URL is wrong); 408, 429
  and 5xx are retried, honouring ``Retry-After``.

Workflows throttles a webhook above ~4 requests/second; we pace ourselves per URL in
process.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

# Teams throttles "more than four requests in a second"; pacing at exactly 4/s sits on the
# edge of any sliding window, so keep a margin (one instance; several instances can still
# collide — the confirming flow turns that 429 into a retry).
MIN_INTERVAL_SECONDS = 0.3
MAX_RETRY_AFTER_SECONDS = 30.0


class DeliveryError(Exception):
    def __init__(self, message: str, *, transient: bool, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class WebhookReceipt:
    """How far a post is known to have gone."""

    status: int
    confirmed: bool  # True: the flow answered after posting (200); False: 202, not yet
    run_id: str | None = None

    @property
    def confirmation(self) -> str:
        return "confirmed" if self.confirmed else "accepted-unconfirmed"


class _Pacer:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    async def wait(self, key: str) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            delay = self._last.get(key, 0.0) + MIN_INTERVAL_SECONDS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last[key] = time.monotonic()


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and exc.transient


def _transient(status: int) -> bool:
    return status in (408, 429) or status >= 500


class TeamsWebhookClient:
    def __init__(self, ca_file: str | None = None, attempts: int = 4) -> None:
        verify: Any = ssl.create_default_context(cafile=ca_file) if ca_file else True
        # A confirming flow answers after its post (seconds; the platform allows 120 s).
        self._http = httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(60.0, connect=10.0))
        self._pacer = _Pacer()
        self._attempts = attempts

    async def post(self, url: str, body: bytes) -> WebhookReceipt:
        """POST the message; raises :class:`DeliveryError` when it cannot be delivered."""

        def wait_for(state: Any) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                return float(min(retry_after, MAX_RETRY_AFTER_SECONDS))
            return float(wait_exponential_jitter(initial=0.5, max=8)(state))

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_for,
            retry=retry_if_exception(_retryable),
            reraise=True,
        ):
            with attempt:
                return await self._post_once(url, body)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_once(self, url: str, body: bytes) -> WebhookReceipt:
        await self._pacer.wait(url.split("?")[0])
        try:
            response = await self._http.post(
                url, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"webhook unreachable: {type(exc).__name__}", transient=True
            ) from exc
        status = response.status_code
        run_id = response.headers.get("x-ms-workflow-run-id")
        if status < 300:
            return WebhookReceipt(status=status, confirmed=status != 202, run_id=run_id)
        retry_after_header = response.headers.get("Retry-After")
        retry_after = float(retry_after_header) if (retry_after_header or "").isdigit() else None
        action_status = _action_status(response)
        if action_status is not None:
            # The confirming flow ran and its post failed: the action's status decides.
            raise DeliveryError(
                f"the flow's post failed ({action_status}): {response.text[:300]}",
                transient=_transient(action_status),
                status=action_status,
                retry_after=retry_after,
            )
        raise DeliveryError(
            f"webhook answered {status}: {response.text[:200]}",
            transient=_transient(status),
            status=status,
            retry_after=retry_after,
        )

    async def close(self) -> None:
        await self._http.aclose()


def _action_status(response: httpx.Response) -> int | None:
    """``actionStatus`` of the documented flow's failure answer, if that is what this is."""
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("actionStatus") if isinstance(body, dict) else None
    return value if isinstance(value, int) and 100 <= value <= 599 else None
