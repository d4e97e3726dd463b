"""The ``xtap-watch`` command (also ``python -m shared``).

Each command group lives in its own module under ``shared/entrypoints/`` exposing
``register(subparsers)``; handlers return an exit code. Bad input raises ``CliError``
and becomes one line on stderr with exit status 2 (DESIGN §6).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "shared.entrypoints.cli_posture",
    "shared.entrypoints.cli_audit",
    "shared.entrypoints.cli_clients",
    "shared.entrypoints.cli_run",
    "shared.entrypoints.cli_reinvite",
    "shared.entrypoints.cli_report",
)


class CliError(Exception):
    """Bad input or configuration: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage plus the error; the contract is one line.
        raise CliError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xtap-watch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from shared.config import ConfigError

    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args))
    except (CliError, ConfigError) as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
