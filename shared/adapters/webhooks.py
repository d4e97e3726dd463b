"""Posting Adaptive Card messages to Teams Workflows webhooks.

Workflows throttles a webhook above ~4 requests/second; we pace ourselves per URL in
process and honour Retry-After on 429. 4xx other than 408/429 is permanent (the flow was
deleted, the URL is wrong, the card was refused) and is not retried.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

MIN_INTERVAL_SECONDS = 0.25  # ≤ 4 requests per second per webhook
MAX_RETRY_AFTER_SECONDS = 30.0


class DeliveryError(Exception):
    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


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


class TeamsWebhookClient:
    def __init__(self, ca_file: str | None = None, attempts: int = 4) -> None:
        import httpx

        verify: Any = True
        if ca_file:
            import ssl

            verify = ssl.create_default_context(cafile=ca_file)
        self._http = httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(20.0, connect=10.0))
        self._pacer = _Pacer()
        self._attempts = attempts

    async def post(self, url: str, body: bytes) -> int:
        """POST the message; returns the status. Raises DeliveryError when it can't."""
        from tenacity import (
            AsyncRetrying,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential_jitter,
        )

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, DeliveryError) and exc.transient

        def wait_for(state: Any) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                return float(min(retry_after, MAX_RETRY_AFTER_SECONDS))
            return float(wait_exponential_jitter(initial=0.5, max=8)(state))

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_for,
            retry=retry_if_exception(retryable),
            reraise=True,
        ):
            with attempt:
                return await self._post_once(url, body)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_once(self, url: str, body: bytes) -> int:
        import httpx

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
        if status < 300:
            return status
        transient = status in (408, 429) or status >= 500
        error = DeliveryError(
            f"webhook answered {status}: {response.text[:200]}", transient=transient, status=status
        )
        retry_after = response.headers.get("Retry-After")
        if retry_after and retry_after.isdigit():
            error.retry_after = float(retry_after)  # type: ignore[attr-defined]
        raise error

    async def close(self) -> None:
        await self._http.aclose()
