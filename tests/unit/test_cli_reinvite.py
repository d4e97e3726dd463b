"""``xtap-watch reinvite`` / ``reviews``: bad input is one line and exit 2, before any I/O."""

from __future__ import annotations

import pytest

from shared.cli import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (
            ["reinvite", "request", "--email", "x' or userType eq 'Member", "--reason", "r"],
            "--email",
        ),
        (["reinvite", "request", "--user-id", "nope", "--reason", "r"], "--user-id"),
        (
            [
                "reinvite",
                "request",
                "--user-id",
                "264e6d50-eaec-461e-b187-873b1bcf855f",
                "--reason",
                " ",
            ],
            "reason",
        ),
        (
            [
                "reinvite",
                "request",
                "--email",
                "a@contoso-markets.com",
                "--reason",
                "r",
                "--redirect-url",
                "http://insecure.example",
            ],
            "--redirect-url",
        ),
        (["reinvite", "request", "--reason", "r"], "one of the arguments"),
        (["reinvite", "status", "job-1"], "job_id"),
        (["reviews", "ensure", "--tenant", "contoso"], "--tenant"),
        (["reviews", "ensure"], "one of the arguments"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, needle, capsys, monkeypatch):
    def no_io(*args, **kwargs):
        raise AssertionError("bad input must be refused before any I/O")

    monkeypatch.setattr("shared.entrypoints.cli_reinvite.run_with_app", no_io)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert needle in err
