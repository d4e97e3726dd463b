"""azure-core's aiohttp transport with a bounded connection pool.

Left to itself, the transport opens an ``aiohttp.ClientSession`` with aiohttp's default
connector: up to 100 connections per client. At the host's queue concurrency (48 checks,
each reading three rows at once) the table client alone then holds 100 sockets after a
sweep (issue 16.1 asks for at most 64 in all). A bounded pool makes further requests wait
for a free connection instead; the storage service answers in milliseconds, so a dozen
connections carry the checks of one instance.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport


class PooledAioHttpTransport(AioHttpTransport):  # type: ignore[misc]
    def __init__(self, connections: int, **kwargs: Any) -> None:
        if connections < 1:
            raise ValueError("a pool holds at least one connection")
        super().__init__(**kwargs)
        self.connections = connections

    async def open(self) -> None:
        opened: aiohttp.ClientSession | None = getattr(self, "session", None)
        if opened is None and self._session_owner and not self._has_been_opened:
            # What azure-core's own open() builds, with a bounded connector.
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections),
                trust_env=self._use_env_settings,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        await super().open()
