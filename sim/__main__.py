"""Run the Graph simulator (a TEST DOUBLE) as a process.

    python -m sim --host 127.0.0.1 --port 0 --scenario demo|generated:N|PATH --workdir DIR

Writes the throwaway CA certificate to ``DIR/ca.pem``, prints ONE JSON line
``{"base_url", "ca_file", "port"}`` to stdout, then serves (TLS) until SIGTERM/SIGINT.
Nothing else is ever written to stdout; diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys
from pathlib import Path

from aiohttp import web

from sim.scenarios import load_scenario
from sim.server import build_app
from sim.state import ScenarioError, SimState


def make_tls(workdir: Path, host: str) -> tuple[ssl.SSLContext, Path]:
    """A fresh CA (trustme) and a server certificate for the loopback names."""
    import trustme

    ca = trustme.CA(organization_name="xtap-watch Graph simulator test CA")
    names = ["127.0.0.1", "localhost", "::1"]
    if host not in names and host not in {"0.0.0.0", "::"}:
        names.insert(0, host)
    cert = ca.issue_cert(*names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    workdir.mkdir(parents=True, exist_ok=True)
    ca_file = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


async def serve(args: argparse.Namespace) -> int:
    try:
        state = SimState.from_scenario(load_scenario(args.scenario))
    except (ScenarioError, ValueError, KeyError) as exc:
        print(f"graph simulator: bad scenario: {exc}", file=sys.stderr)
        return 2
    context, ca_file = make_tls(args.workdir, args.host)
    app = build_app(state, page_size=args.page_size)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=context, backlog=2048)
    await site.start()
    port = int(runner.addresses[0][1])
    host = f"[{args.host}]" if ":" in args.host else args.host
    line = {"base_url": f"https://{host}:{port}", "ca_file": str(ca_file), "port": port}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    print(
        f"graph simulator (test double) serving {line['base_url']} with"
        f" {len(state.tenants)} tenants: {state.description}",
        file=sys.stderr,
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim", description="Graph simulator (a test double)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--scenario", default="demo", help="demo | generated:N | path to a scenario JSON file"
    )
    parser.add_argument("--workdir", required=True, help="directory for ca.pem")
    parser.add_argument("--page-size", type=int, default=100, help="default Graph page size")
    args = parser.parse_args(argv)
    args.workdir = Path(args.workdir).absolute()
    return asyncio.run(serve(args))


if __name__ == "__main__":
    raise SystemExit(main())
