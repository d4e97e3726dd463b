"""Setting problems reported all at once, and identities that cannot exist here named as
settings instead of probed over the network (#14.6, #14.8)."""

from __future__ import annotations

import pytest

from shared.config import ConfigErrors, credential_problems, load_settings

TENANT = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
APP = "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14"
READER = "c4a1e9d2-6b37-4f58-9e20-1d7a3c5b8f96"


def test_every_bad_setting_is_listed_at_once_the_first_named_as_before():
    with pytest.raises(ConfigErrors) as err:
        load_settings(
            {
                "XTAP_VENDOR_APP_IDS": "not-a-guid",
                "XTAP_REMINDER_HOURS": "soon",
                "XTAP_AUDIT_SOURCE": "syslog",
            }
        )
    names = [p.setting for p in err.value.problems]
    assert names == [
        "XTAP_VENDOR_TENANT_ID",
        "XTAP_VENDOR_APP_IDS",
        "XTAP_AUDIT_SOURCE",
        "XTAP_REMINDER_HOURS",
        "AzureWebJobsStorage",
    ]
    assert err.value.setting == "XTAP_VENDOR_TENANT_ID"
    assert str(err.value).startswith("XTAP_VENDOR_TENANT_ID: is required")


def test_both_halves_of_a_client_secret_credential_are_named():
    with pytest.raises(ConfigErrors) as err:
        load_settings(
            {
                "XTAP_VENDOR_TENANT_ID": TENANT,
                "XTAP_VENDOR_APP_IDS": APP,
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "XTAP_VENDOR_CREDENTIAL": "client_secret",
                "XTAP_CLIENT_READER_APP_ID": READER,
                "XTAP_CLIENT_READER_CREDENTIAL": "client_secret",
            }
        )
    assert [p.setting for p in err.value.problems] == [
        "XTAP_VENDOR_CLIENT_ID",
        "XTAP_VENDOR_CLIENT_SECRET",
        "XTAP_CLIENT_READER_SECRET",
    ]


def test_managed_identities_off_azure_are_setting_errors():
    problems = credential_problems({"XTAP_CLIENT_READER_APP_ID": READER})
    assert [p.setting for p in problems] == [
        "XTAP_VENDOR_CREDENTIAL",
        "XTAP_CLIENT_READER_CREDENTIAL",
    ]
    assert "no managed identity" in str(problems[0])
    assert "XTAP_VENDOR_CREDENTIAL=client_secret" in str(problems[0])
    assert "XTAP_CLIENT_READER_CREDENTIAL=client_secret" in str(problems[1])
    assert credential_problems({}, reader=False)[0].setting == "XTAP_VENDOR_CREDENTIAL"


@pytest.mark.parametrize(
    "marker",
    [
        {"IDENTITY_ENDPOINT": "http://localhost:8081/msi/token", "IDENTITY_HEADER": "x"},
        {"MSI_ENDPOINT": "http://localhost:50342/oauth2/token"},
        {"XTAP_USE_IMDS": "true"},
    ],
)
def test_a_managed_identity_is_fine_where_the_platform_provides_one(marker):
    assert credential_problems({"XTAP_CLIENT_READER_APP_ID": READER, **marker}) == []


def test_the_reader_app_is_required_and_named():
    problems = credential_problems(
        {
            "XTAP_VENDOR_CREDENTIAL": "client_secret",
            "XTAP_CLIENT_READER_CREDENTIAL": "client_secret",
        }
    )
    assert [p.setting for p in problems] == ["XTAP_CLIENT_READER_APP_ID"]
    assert "every client is UNKNOWN" in str(problems[0])
