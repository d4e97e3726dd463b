"""``xtap-watch clients ack`` (issue 18.1): bad input is one line and exit 2, before any I/O."""

from __future__ import annotations

import pytest

from shared.cli import main

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


@pytest.fixture(autouse=True)
def no_app(monkeypatch):
    """Fail loudly if bad input got as far as building the app (storage, Graph)."""
    import shared.entrypoints.cli_ack as cli_ack

    def must_not_run(use_case):
        raise AssertionError("bad input reached the app")

    monkeypatch.setattr(cli_ack, "run_with_app", must_not_run)


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["not-a-guid", "--reason", "r", "--for", "2h"], ("tenant_id", "GUID")),
        ([CONTOSO, "--reason", "r"], ("--until", "--for")),
        ([CONTOSO, "--reason", "r", "--for", "2h", "--until", "2030-01-01T00:00:00Z"],
         ("exactly one",)),
        ([CONTOSO, "--reason", "r", "--for", "soon"], ("--for", "90m")),
        ([CONTOSO, "--reason", "r", "--for", "31d"], ("--until/--for", "30 days")),
        ([CONTOSO, "--reason", "r", "--for", "0m"], ("--until/--for", "future")),
        # Durations past what a date can hold: still the option's one-line error.
        ([CONTOSO, "--reason", "r", "--for", "3000000d"], ("--for", "30 days")),
        ([CONTOSO, "--reason", "r", "--for", "99999999999d"], ("--for", "30 days")),
        ([CONTOSO, "--reason", "r", "--until", "2030-01-01"], ("--until/--for", "time zone")),
        ([CONTOSO, "--reason", " ", "--for", "2h"], ("--reason", "required")),
        ([CONTOSO, "--lift", "--reason", "r"], ("--lift",)),
    ],
    ids=["guid", "no-end", "both-ends", "not-a-duration", "over-30-days", "not-future",
         "date-overflow", "int-overflow", "no-zone", "blank-reason", "lift-with-reason"],
)
def test_bad_acknowledgements_are_one_line_naming_the_option(capsys, argv, words):
    err = one_line_error(capsys, ["clients", "ack", *argv])
    for word in words:
        assert word in err, err
