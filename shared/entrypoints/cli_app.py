"""Running an async use case from the CLI with a freshly built App."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from shared.bootstrap import App

T = TypeVar("T")


def run_with_app(use_case: Callable[[App], Awaitable[T]]) -> T:
    from shared.bootstrap import build_app, set_app
    from shared.config import load_settings

    settings = load_settings()

    async def main() -> T:
        app = build_app(settings)
        set_app(app)
        try:
            await app.ensure_storage()
            return await use_case(app)
        finally:
            set_app(None)
            await app.close()

    return asyncio.run(main())
