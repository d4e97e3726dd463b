"""An httpx transport whose requests beyond its pool wait in a semaphore, not in httpcore.

httpcore's connection pool rescans every queued request each time a connection frees:
with the host's queue concurrency in flight over a few connections, that scan is
quadratic and was ~9% of a sweeping process's CPU (profiled 2,000-client repeat sweep,
issue 16.3). Waiting here first keeps httpcore's queue as short as its pool: the same
sockets, the same bound on waiting (httpx's pool timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx


class _ReleasedOnClose(httpx.AsyncByteStream):
    """A response body that gives its slot back once read or closed (the connection is
    httpcore's until then)."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class GatedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, slots: int, wait_s: float) -> None:
        if slots < 1:
            raise ValueError("a gate holds at least one slot")
        self._inner = inner
        self._gate = asyncio.Semaphore(slots)
        self._wait_s = wait_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.wait_for(self._gate.acquire(), self._wait_s)
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no free connection", request=request) from exc
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._gate.release()
            raise
        stream = response.stream
        if response.is_closed or not isinstance(stream, httpx.AsyncByteStream):
            # A body already read (not what httpx's own transport returns): nothing held.
            self._gate.release()
            return response
        response.stream = _ReleasedOnClose(stream, self._gate.release)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
