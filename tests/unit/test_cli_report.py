"""``xtap-watch report`` / ``whatif``: bad input is one line and exit 2, before any I/O."""

from __future__ import annotations

import json

import pytest

from shared.cli import main


@pytest.fixture(autouse=True)
def no_app(monkeypatch):
    """Fail loudly if bad input got as far as building the app (storage, Graph)."""
    import shared.entrypoints.cli_report as cli_report

    def must_not_run(use_case):
        raise AssertionError("bad input reached the app")

    monkeypatch.setattr(cli_report, "run_with_app", must_not_run)


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ")
    return err


def test_whatif_needs_a_proposal(capsys):
    assert "--default FILE and/or --partner" in one_line_error(capsys, ["whatif"])


def test_whatif_names_the_missing_or_broken_file(capsys, tmp_path):
    assert "not found" in one_line_error(capsys, ["whatif", "--default", str(tmp_path / "x")])
    broken = tmp_path / "broken.json"
    broken.write_text('{"inboundTrust": ')
    err = one_line_error(capsys, ["whatif", "--default", str(broken)])
    assert "not valid JSON" in err and "line 1" in err


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([], "expected a JSON object"),
        ({"b2bCollaborationInbnd": {}}, "b2bCollaborationInbnd: is not a property"),
        ({"inboundTrust": {"isMfaAccepted": "yes"}}, "inboundTrust.isMfaAccepted"),
        ({"tenantId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}, "looks like a partner entry"),
    ],
)
def test_whatif_refuses_a_malformed_default_naming_the_property(capsys, tmp_path, body, words):
    path = tmp_path / "default.json"
    path.write_text(json.dumps(body))
    err = one_line_error(capsys, ["whatif", "--default", str(path)])
    assert f"--default {path}" in err and words in err


def test_whatif_partner_needs_a_guid_and_a_matching_entry(capsys, tmp_path):
    assert "not a GUID" in one_line_error(capsys, ["whatif", "--partner", "contoso", "none"])
    entry = tmp_path / "entry.json"
    entry.write_text(json.dumps({"tenantId": "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"}))
    err = one_line_error(
        capsys, ["whatif", "--partner", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", str(entry)]
    )
    assert "tenantId: names tenant" in err


def test_report_options(capsys, tmp_path):
    assert "is a directory" in one_line_error(capsys, ["report", "--html", str(tmp_path)])
    missing = tmp_path / "nope" / "out.html"
    assert "no such directory" in one_line_error(capsys, ["report", "--html", str(missing)])
    assert "not allowed with" in one_line_error(capsys, ["report", "--json", "--html", "x"])
