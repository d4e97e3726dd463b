"""What every ``xtap-watch`` command shares: exit codes, ``--output``, progress, file checks.

Output follows the Azure CLI's habits: ``--output table`` (the default on a terminal) for
people, ``--output json`` (the default when piped) for scripts, keys in camelCase like the
HTTP API. Results go to stdout, progress and errors to stderr, so a pipe only ever sees the
result.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

# Exit codes (documented in README "Command line" and in `xtap-watch --help`).
EXIT_OK = 0
EXIT_FAILED = 1  # a service could not be reached or refused: the message says which and why
EXIT_BAD_INPUT = 2  # bad arguments, files or settings (DESIGN §6: the contract's "2")
EXIT_LIMITED = 3  # posture evaluate / check: the client's verdict is LIMITED
EXIT_BLOCKED = 4  # ... BLOCKED
EXIT_UNKNOWN = 5  # ... UNKNOWN (no evidence either way)
EXIT_INTERRUPTED = 130

VERDICT_EXIT = {
    "ALLOWED": EXIT_OK,
    "LIMITED": EXIT_LIMITED,
    "BLOCKED": EXIT_BLOCKED,
    "UNKNOWN": EXIT_UNKNOWN,
}

EXIT_CODES_HELP = """\
exit status:
  0  success (posture evaluate and check: the verdict is ALLOWED)
  1  a service failed: storage, Microsoft Graph or the token endpoint (one line says which)
  2  bad input: arguments, files or settings (one line names what to fix)
  3  posture evaluate / check: the verdict is LIMITED
  4  posture evaluate / check: the verdict is BLOCKED
  5  posture evaluate / check: the verdict is UNKNOWN"""


def verdict_exit(verdict: object) -> int:
    return VERDICT_EXIT.get(str(verdict), EXIT_UNKNOWN)


# --------------------------------------------------------------------------- output
OUTPUT_FORMATS = ("table", "json")


def output_format(args: Any, stream: TextIO | None = None) -> str:
    """``--output`` if given, else table on a terminal and JSON when piped (like ``az``)."""
    chosen = getattr(args, "output", None)
    if chosen:
        return str(chosen)
    stream = stream or sys.stdout
    return "table" if stream.isatty() else "json"


def explicit_json(args: Any) -> bool:
    """``--output json`` was asked for. Commands whose result is one text (a link, a header,
    an e-mail) print that text as it is otherwise, so ``$(xtap-watch ...)`` gets it."""
    return getattr(args, "output", None) == "json"


_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def camel(key: str) -> str:
    """``tenant_id`` → ``tenantId``; keys that are not snake_case are data, left alone."""
    if not _SNAKE.match(key):
        return key
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_keys(value: Any) -> Any:
    """Every snake_case key of a JSON value in camelCase, recursively (one key style)."""
    if isinstance(value, Mapping):
        return {camel(str(k)): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [camel_keys(v) for v in value]
    return value


@dataclass(frozen=True)
class Column:
    title: str
    get: Callable[[Mapping[str, Any]], Any]
    width: int | None = None  # at most this many characters (cut with "…"), None: any


def _cell(value: Any) -> str:
    if value is None or value == "" or value == [] or value == ():
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def _fit(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(1, width - 1)] + "…"


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """A plain-text table: a header, a rule, one line per row (no colour, no markup)."""
    cells = [[_fit(_cell(c.get(row)), c.width) for c in columns] for row in rows]
    widths = [
        max([len(c.title), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)
    ]
    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line([c.title for c in columns]), line(["-" * w for w in widths])]
    out += [line(values) for values in cells]
    return "\n".join(out)


def render_pairs(pairs: Iterable[tuple[str, Any]]) -> str:
    """``Key  value`` lines for one object (``clients show``, a job)."""
    items = [(k, _cell(v)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in items)


def emit(
    args: Any,
    value: Any,
    *,
    table: Callable[[Any], str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print a command's result as JSON (camelCase keys) or as its table."""
    stream = stream or sys.stdout
    if output_format(args, stream) == "table" and table is not None:
        text = table(value)
    else:
        text = json.dumps(camel_keys(value), indent=2, default=str, allow_nan=False)
    stream.write(text + "\n")
    stream.flush()


# ------------------------------------------------------------------------- progress
class Progress:
    """One-line progress on stderr while long work runs, only where a person watches.

    On a terminal the line is redrawn in place; piped or redirected, nothing is written
    (a script reads the result, not the journey) unless ``always`` is set.
    """

    def __init__(self, what: str, total: int | None = None, *, stream: TextIO | None = None,
                 always: bool = False) -> None:
        self.what = what
        self.total = total
        self.stream = stream or sys.stderr
        self.live = always or self.stream.isatty()
        self._shown = False

    def update(self, done: int, note: str = "") -> None:
        if not self.live:
            return
        count = f"{done}/{self.total}" if self.total is not None else str(done)
        text = f"{self.what}: {count}" + (f" ({note})" if note else "")
        self.stream.write(f"\r\x1b[2K{text}" if self.stream.isatty() else f"{text}\n")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self.live and self._shown and self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()


def note(text: str) -> None:
    """A remark for the person at the terminal (stderr: never mixed into the result)."""
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- files
def writable_file(path_text: str, option: str) -> Path:
    """The path, after checking it can be written — before any work is done."""
    from shared.cli import CliError

    path = Path(path_text)
    if path.is_dir():
        raise CliError(f"{option}: {path_text} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"{option}: cannot write {path_text}: no such directory {parent}")
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        raise CliError(f"{option}: cannot write {path_text}: permission denied")
    return path
