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


def storage_only_settings(connection_string: str) -> Any:
    """Settings for storage-only tests: a fresh Azurite, no Graph."""
    from devtools.azurite import reset_storage
    from shared.config import load_settings

    reset_storage(connection_string)
    return load_settings(
        {
            "XTAP_VENDOR_TENANT_ID": "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50",
            "XTAP_VENDOR_APP_IDS": "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14",
            "AzureWebJobsStorage": connection_string,
        }
    )


async def with_app_of(settings: Any, use: Any) -> Any:
    """``with_app`` for the given settings rather than the environment's."""
    from shared.bootstrap import build_app

    app = build_app(settings)
    await app.ensure_storage()
    try:
        return await use(app)
    finally:
        await app.close()
