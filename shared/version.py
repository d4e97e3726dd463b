"""The product's version, from one source: ``pyproject.toml``'s ``[project] version``.

Installed (``pip install -e .``, a wheel) it comes from the package metadata; in a Function
App deployment, which ships the project folder without installing it, from the
``pyproject.toml`` shipped beside ``shared/``.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "xtap-watch"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@cache
def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return "unknown"
    return str(project.get("version") or "unknown")
