"""Headless Chromium for the portfolio report, through Playwright (Python).

Always Debian's Chromium (``/usr/bin/chromium``, or ``XTAP_CHROMIUM``) through
``executable_path``: Playwright never downloads a browser here. Used by the report's
browser tests and by ``./scripts/demo --screenshot``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
LAPTOP_VIEWPORT = {"width": 1366, "height": 768}


class ChromiumMissing(RuntimeError):
    pass


def chromium_path() -> str:
    for candidate in (os.environ.get("XTAP_CHROMIUM"), DEFAULT_CHROMIUM, "chromium"):
        path = shutil.which(candidate) if candidate else None
        if path:
            return path
    raise ChromiumMissing(
        "Chromium not found: ./scripts/setup installs Debian's chromium "
        "(or set XTAP_CHROMIUM to a Chromium binary)"
    )


def launch_options() -> dict[str, Any]:
    return {"executable_path": chromium_path(), "headless": True, "args": list(CHROMIUM_ARGS)}
