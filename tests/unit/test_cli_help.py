"""Help a person can read (issue #14.6): every command has a description or help line and
an example, no markup or internal references; --version; the exit codes are documented."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from shared.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
MARKUP = re.compile(r"``|\*\*|§|DESIGN|issue #|shared/|\.py\b|TODO")


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaves(child, (*path, name))


def test_every_command_has_an_example_and_no_markup():
    leaves = list(_leaves(build_parser()))
    assert len(leaves) >= 19
    for path, parser in leaves:
        text = parser.format_help()
        assert "example" in (parser.epilog or ""), f"xtap-watch {' '.join(path)}: no example"
        assert f"xtap-watch {path[0]}" in parser.epilog, path
        found = MARKUP.search(text)
        assert found is None, f"xtap-watch {' '.join(path)} --help shows {found.group(0)!r}"
        assert "--output" in text and "--verbose" in text


def test_top_level_help_lists_exit_codes_and_version_prints():
    text = build_parser().format_help()
    assert "exit status:" in text and "5  posture evaluate / check: the verdict is UNKNOWN" in text
    done = subprocess.run([sys.executable, "-m", "shared", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and re.fullmatch(r"xtap-watch \d+\.\d+\.\d+\n", done.stdout)


def test_cli_is_not_imported_by_the_function_app():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, function_app; print(sorted(m for m in sys.modules "
         "if m.startswith('shared.entrypoints.cli') or m == 'shared.cli'))"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
