"""Progress on long CLI work (issue #14.6: sweep, reviews ensure --all, import of many
clients): one line redrawn in place on a terminal, nothing when piped, never on stdout."""

from __future__ import annotations

import io

from shared.entrypoints.cli_common import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_redrawn_in_place_and_ended_once():
    terminal = _Terminal()
    progress = Progress("imported", 3, stream=terminal)
    for done in (1, 2, 3):
        progress.update(done, "Contoso Markets")
    progress.done()
    text = terminal.getvalue()
    assert text.count("\r\x1b[2K") == 3
    assert text.endswith("imported: 3/3 (Contoso Markets)\n")
    assert text.count("\n") == 1


def test_piped_it_writes_nothing_unless_asked():
    piped = io.StringIO()
    progress = Progress("checked", 5, stream=piped)
    progress.update(2)
    progress.done()
    assert piped.getvalue() == ""
    logged = io.StringIO()
    always = Progress("queued", None, stream=logged, always=True)
    always.update(7, "waiting")
    always.done()
    assert logged.getvalue() == "queued: 7 (waiting)\n"


def test_progress_goes_to_stderr_by_default(capsys):
    progress = Progress("ensured", 1, always=True)
    progress.update(1)
    out, err = capsys.readouterr()
    assert out == "" and err == "ensured: 1/1\n"
