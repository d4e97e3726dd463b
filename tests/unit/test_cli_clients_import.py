"""``xtap-watch clients import``: the progress line a person watches on a terminal."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from types import SimpleNamespace

from shared.cli import main

VENDOR = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENTS = [
    {"tenantId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "name": "Contoso Markets"},
    {"tenantId": "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e", "name": "Fabrikam Clearing"},
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Tables:
    def __init__(self) -> None:
        self.rows: list[str] = []

    async def upsert(self, table: str, entity: dict[str, object]) -> None:
        self.rows.append(str(entity["RowKey"]))


class Clouds:
    """Stands in for the OpenID resolver the import looks each client's cloud up with."""

    async def cloud_of(self, tenant_id: str) -> str:
        return "microsoftonline.com"


def test_progress_counts_clients_without_repeating_the_total(tmp_path, monkeypatch, capsys):
    # import_clients reports (done, total); the CLI once handed that straight to
    # Progress.update(done, note), so each line read "imported: 1/2 (2)".
    source = tmp_path / "clients.json"
    source.write_text(json.dumps({"clients": CLIENTS}))
    tables = Tables()
    app = SimpleNamespace(
        settings=SimpleNamespace(vendor_tenant_id=VENDOR),
        tables=tables,
        extras={"registration_clouds": Clouds()},
    )
    monkeypatch.setattr(
        "shared.entrypoints.cli_clients.run_with_app",
        lambda use, **needs: asyncio.run(use(app)),
    )
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    assert main(["clients", "import", str(source)]) == 0

    assert sorted(tables.rows) == [c["tenantId"] for c in CLIENTS]
    lines = [line for line in terminal.getvalue().split("\r\x1b[2K") if line.strip()]
    assert [line.strip() for line in lines] == ["imported: 1/2", "imported: 2/2"]
    assert json.loads(capsys.readouterr().out) == {"imported": 2}
