"""Start and stop Azurite (the Azure Storage emulator) on free loopback ports.

Azurite is installed from npm into ``devtools/azurite/node_modules`` by ``scripts/setup``.
By default it runs in memory (nothing left on disk: tests, the demo), with telemetry off,
on ports the OS picks. With ``location`` it keeps its data in that folder, so a registry
and the alert state survive between runs (``./scripts/demo --real``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = ROOT / "devtools" / "azurite" / "node_modules" / ".bin" / "azurite"

# The well-known Azurite development account key (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (\S+)")


@dataclass
class AzuriteProcess:
    process: subprocess.Popen[str]
    endpoints: dict[str, str]
    workdir: str
    _log: list[str] = field(default_factory=list)

    @property
    def connection_string(self) -> str:
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={self.endpoints['Blob']}/{DEV_ACCOUNT};"
            f"QueueEndpoint={self.endpoints['Queue']}/{DEV_ACCOUNT};"
            f"TableEndpoint={self.endpoints['Table']}/{DEV_ACCOUNT};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> AzuriteProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_azurite(timeout: float = 30.0, location: Path | None = None) -> AzuriteProcess:
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"Azurite is not installed at {AZURITE_BIN}: run scripts/setup first")
    workdir = tempfile.mkdtemp(prefix="xtap-azurite-")
    if location is not None:
        location.mkdir(parents=True, exist_ok=True)
        persistence = ["--location", str(location)]
    else:
        persistence = ["--inMemoryPersistence"]
    args = [
        str(AZURITE_BIN),
        *persistence,
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
    ]
    for svc in ("blob", "queue", "table"):
        args += [f"--{svc}Host", "127.0.0.1", f"--{svc}Port", "0"]
    process = subprocess.Popen(
        args,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "AZURITE_ACCOUNTS": ""},
    )
    endpoints: dict[str, str] = {}
    log: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while len(endpoints) < 3:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("Azurite did not start:\n" + "".join(log))
        line = process.stdout.readline()
        if not line:
            continue
        log.append(line)
        match = _LISTENING.search(line)
        if match:
            endpoints[match.group(1)] = match.group(2).rstrip("/")

    # Keep draining its output so a chatty Azurite never blocks on a full pipe.
    def _drain() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            if len(log) < 2000:
                log.append(line)

    threading.Thread(target=_drain, daemon=True).start()
    return AzuriteProcess(process=process, endpoints=endpoints, workdir=workdir, _log=log)


def reset_storage(connection_string: str) -> None:
    """Empty every queue and table so tests sharing one Azurite don't see each other."""
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueServiceClient

    queues = QueueServiceClient.from_connection_string(connection_string)
    for queue in queues.list_queues():
        queues.delete_queue(queue.name)
    tables = TableServiceClient.from_connection_string(connection_string)
    for table in tables.list_tables():
        tables.delete_table(table.name)
