"""The ``xtap-watch`` command (also ``python -m shared``).

Each command group lives in its own module under ``shared/entrypoints/`` exposing
``register(subparsers)``; handlers return an exit code. Every failure ends as one line on
stderr naming the cause and the fix: bad input and settings exit 2 (DESIGN §6), a service
that fails exits 1; ``--verbose`` adds the log and, for a failure we cannot explain, the
traceback. Exit codes: ``shared/entrypoints/cli_common.py``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

COMMAND_MODULES: tuple[str, ...] = (
    "shared.entrypoints.cli_posture",
    "shared.entrypoints.cli_audit",
    "shared.entrypoints.cli_clients",
    "shared.entrypoints.cli_run",
    "shared.entrypoints.cli_reinvite",
    "shared.entrypoints.cli_doctor",
    "shared.entrypoints.cli_report",
    "shared.entrypoints.cli_dev",
)

DESCRIPTION = """\
Watch Microsoft Entra cross-tenant access settings so that clients' staff can keep
signing in to the vendor as B2B guests: evaluate a client's policy, explain audit events,
keep the client registry, check clients, and queue guest work."""

EXAMPLES = """\
examples:
  xtap-watch clients list
  xtap-watch clients add --domain contoso.com --contact it-admin@contoso.com
  xtap-watch check 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d --output table
  xtap-watch posture evaluate --default default.json --partner none \\
      --vendor-tenant 0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50

Settings come from the environment (XTAP_*, AzureWebJobsStorage); a command asks only for
those it needs and names every missing one at once. Run "xtap-watch COMMAND --help" for a
command's options and an example."""


class CliError(Exception):
    """Bad input or configuration: reported as one line, exit status 2."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


class _Parser(argparse.ArgumentParser):
    """Every parser takes --output and --verbose, so they work after any command (az-style)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        common = self.add_argument_group("global options")
        common.add_argument(
            "-o",
            "--output",
            choices=("table", "json"),
            default=argparse.SUPPRESS,
            help="table (the default on a terminal) or json (the default when piped)",
        )
        common.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log what happens on stderr, with a traceback on an unexpected failure",
        )

    def error(self, message: str) -> NoReturn:
        # argparse prints usage plus the error; the contract is one line.
        raise CliError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from shared.entrypoints.cli_common import EXIT_CODES_HELP
    from shared.version import version

    parser = _Parser(
        prog="xtap-watch", description=DESCRIPTION, epilog=f"{EXAMPLES}\n\n{EXIT_CODES_HELP}"
    )
    parser.add_argument("--version", action="version", version=f"xtap-watch {version()}")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.CRITICAL,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        # Library warnings (token retries, HTTP client chatter) are not the result; the
        # one-line failure says what went wrong.
        logging.getLogger().setLevel(logging.CRITICAL)


def _say(line: str) -> None:
    print(f"error: {' '.join(line.split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from shared.config import ConfigError, ConfigErrors
    from shared.entrypoints.cli_app import CommandFailed, SettingsInvalid
    from shared.entrypoints.cli_common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED

    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = bool(getattr(args, "verbose", False))
        _configure_logging(verbose)
        return int(args.handler(args))
    except CliError as exc:
        _say(str(exc))
        return EXIT_BAD_INPUT
    except SettingsInvalid as exc:
        for problem in exc.problems:
            _say(str(problem))
        return EXIT_BAD_INPUT
    except ConfigErrors as exc:
        for problem in exc.problems:
            _say(str(problem))
        return EXIT_BAD_INPUT
    except ConfigError as exc:
        _say(str(exc))
        return EXIT_BAD_INPUT
    except CommandFailed as exc:
        _say(str(exc))
        if verbose:
            traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `xtap-watch ... | head`: the reader has all it wanted. Point stdout at devnull so
        # the interpreter's final flush does not raise again (Python docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        # Not a failure we know how to explain: still one line, the traceback on request.
        _say(f"unexpected {type(exc).__name__}: {exc} (run again with --verbose for details)")
        if verbose:
            traceback.print_exc(file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
