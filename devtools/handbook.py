"""Where the developers' handbook is: DESIGN.md, Microsoft's Graph JSON examples, the
reference documents. Tests and benchmarks read them from one place.

CI clones the repository beside the handbook (``<clone>/../shared``); a clone anywhere
else on a development machine finds the workspace copy; ``XTAP_HANDBOOK`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CANDIDATES = (
    Path(os.environ["XTAP_HANDBOOK"]) if os.environ.get("XTAP_HANDBOOK") else None,
    ROOT.parent / "shared",
    Path("/work/shared"),
)
HANDBOOK = next(
    (p for p in _CANDIDATES if p is not None and (p / "DESIGN.md").exists()), ROOT.parent / "shared"
)
GRAPH_FIXTURES = HANDBOOK / "fixtures" / "graph"
REFERENCE = HANDBOOK / "reference"
DESIGN = HANDBOOK / "DESIGN.md"
