"""The report's read role is one value in the code and in the API app registration."""

from __future__ import annotations

import re
from pathlib import Path

from shared import config

ROOT = Path(__file__).resolve().parents[2]


def test_report_role_default_is_the_role_the_app_registration_defines():
    default = next(s.default for s in config.SETTINGS if s.name == "XTAP_REPORT_ROLE")
    bicep = (ROOT / "infra" / "graph" / "graph-permissions.bicep").read_text()
    assert re.search(rf"^var reportAppRole = '{re.escape(default)}'$", bicep, re.M)
    assert "value: reportAppRole" in bicep
    assert config.load_settings(
        {
            "XTAP_VENDOR_TENANT_ID": "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50",
            "XTAP_VENDOR_APP_IDS": "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        }
    ).report_role == default == "Report.Read"
