"""Graph requests beyond the pool wait in front of httpcore's queue (issue 16.3)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from shared.adapters.gated_transport import GatedTransport

SLOTS = 3


class _Body(httpx.AsyncByteStream):
    """A body read from the connection as the client iterates it, like httpx's own
    transport returns (a ``content=`` response is read before the gate sees it)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield self._data

    async def aclose(self) -> None:
        return None


def _streamed(status: int, data: bytes) -> httpx.Response:
    return httpx.Response(status, stream=_Body(data))


def _client(handler: object, wait_s: float = 5.0) -> httpx.AsyncClient:
    inner = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=GatedTransport(inner, SLOTS, wait_s))


def test_at_most_the_pool_size_in_flight_and_every_answer_read() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        status = 429 if request.url.path.endswith("/throttled") else 200
        return _streamed(status, b'{"path": "%s"}' % request.url.path.encode())

    async def main() -> list[httpx.Response]:
        async with _client(handler) as client:
            paths = [f"/r{i}" if i % 4 else "/throttled" for i in range(40)]
            return await asyncio.gather(*(client.get(f"https://graph.test{p}") for p in paths))

    answers = asyncio.run(main())
    assert [a.json()["path"] for a in answers] == [
        f"/r{i}" if i % 4 else "/throttled" for i in range(40)
    ]
    assert peak == SLOTS  # error statuses gave their slot back too


def test_a_failed_request_and_a_body_closed_unread_give_their_slot_back() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/reset":
            raise httpx.ReadError("connection reset", request=request)
        return _streamed(200, b"x" * 10_000)

    async def main() -> int:
        async with _client(handler, wait_s=0.5) as client:
            for _ in range(SLOTS * 2):
                with pytest.raises(httpx.ReadError):
                    await client.get("https://graph.test/reset")
                async with client.stream("GET", "https://graph.test/big"):
                    pass  # closed without reading the body
            # Every slot is free again: this many at once need no wait.
            answers = await asyncio.gather(
                *(client.get("https://graph.test/ok") for _ in range(SLOTS))
            )
            return len(answers)

    assert asyncio.run(main()) == SLOTS


def test_no_free_slot_within_the_bound_is_httpxs_pool_timeout() -> None:
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return _streamed(200, b"{}")

    async def main() -> None:
        async with _client(handler, wait_s=0.05) as client:
            busy = [
                asyncio.create_task(client.get("https://graph.test/slow")) for _ in range(SLOTS)
            ]
            await asyncio.sleep(0.01)
            with pytest.raises(httpx.PoolTimeout):
                await client.get("https://graph.test/late")
            release.set()
            assert [r.status_code for r in await asyncio.gather(*busy)] == [200] * SLOTS

    asyncio.run(main())


def test_a_body_read_before_the_gate_sees_it_holds_no_slot() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"read": True})

    async def main() -> list[int]:
        async with _client(handler, wait_s=0.05) as client:
            return [(await client.get("https://graph.test/x")).status_code for _ in range(10)]

    assert asyncio.run(main()) == [200] * 10


def test_a_gate_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        GatedTransport(httpx.MockTransport(lambda r: httpx.Response(200)), 0, 1.0)
