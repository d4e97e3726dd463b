"""Build the app from the test's settings (Azurite + simulator), use it, close it."""

from __future__ import annotations

from typing import Any


async def with_app(use: Any) -> Any:
    from shared.bootstrap import build_app
    from shared.config import load_settings

    app = build_app(load_settings())
    await app.ensure_storage()
    try:
        return await use(app)
    finally:
        await app.close()
