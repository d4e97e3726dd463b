"""Configuration: one typed object, validated at start, errors name the setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import SETTINGS, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
APP = "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14"
AZURITE = "UseDevelopmentStorage=true"


def _env(**overrides: str) -> dict[str, str]:
    env = {
        "XTAP_VENDOR_TENANT_ID": VENDOR,
        "XTAP_VENDOR_APP_IDS": APP,
        "AzureWebJobsStorage": AZURITE,
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != "<unset>"}


def test_minimal_configuration_loads_with_documented_defaults():
    settings = load_settings(_env())
    assert settings.vendor_tenant_id == VENDOR
    assert settings.vendor_app_ids == (APP,)
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert settings.vendor_credential == "managed_identity"
    assert settings.sweep_schedule == "0 */15 * * * *"
    assert settings.reminder_hours == 24


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"XTAP_VENDOR_TENANT_ID": "<unset>"}, "XTAP_VENDOR_TENANT_ID"),
        ({"XTAP_VENDOR_TENANT_ID": "osttra.com"}, "XTAP_VENDOR_TENANT_ID"),
        ({"XTAP_VENDOR_APP_IDS": "not-a-guid"}, "XTAP_VENDOR_APP_IDS"),
        ({"XTAP_VENDOR_APP_IDS": " , "}, "XTAP_VENDOR_APP_IDS"),
        ({"AzureWebJobsStorage": "<unset>"}, "AzureWebJobsStorage"),
        ({"AzureWebJobsStorage": "garbage"}, "AzureWebJobsStorage"),
        ({"XTAP_GRAPH_BASE_URL": "graph.microsoft.com"}, "XTAP_GRAPH_BASE_URL"),
        ({"XTAP_VENDOR_CREDENTIAL": "password"}, "XTAP_VENDOR_CREDENTIAL"),
        ({"XTAP_VENDOR_CREDENTIAL": "client_secret"}, "XTAP_VENDOR_CLIENT_ID"),
        ({"XTAP_REMINDER_HOURS": "0"}, "XTAP_REMINDER_HOURS"),
        ({"XTAP_REMINDER_HOURS": "soon"}, "XTAP_REMINDER_HOURS"),
        ({"XTAP_SWEEP_SCHEDULE": "0 * * * *"}, "XTAP_SWEEP_SCHEDULE"),
        ({"XTAP_AUDIT_SOURCE": "log_analytics"}, "XTAP_LOG_ANALYTICS_WORKSPACE_ID"),
        ({"XTAP_ALERT_EMAILS": "admins"}, "XTAP_ALERT_EMAILS"),
        ({"XTAP_MAIL_SENDER": "alerts@osttra.com"}, "XTAP_ALERT_EMAILS"),
    ],
)
def test_bad_configuration_names_the_setting(overrides, setting):
    with pytest.raises(ConfigError) as err:
        load_settings(_env(**overrides))
    assert err.value.setting == setting
    assert str(err.value).startswith(f"{setting}: ")


def test_identity_based_storage_needs_both_endpoints():
    env = _env(AzureWebJobsStorage="<unset>")
    env["AzureWebJobsStorage__queueServiceUri"] = "https://st.queue.core.windows.net"
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert err.value.setting == "AzureWebJobsStorage"
    env["AzureWebJobsStorage__tableServiceUri"] = "https://st.table.core.windows.net"
    assert load_settings(env).storage.connection_string is None


def test_secrets_never_appear_in_the_settings_repr():
    settings = load_settings(
        _env(
            XTAP_VENDOR_CREDENTIAL="client_secret",
            XTAP_VENDOR_CLIENT_ID=APP,
            XTAP_VENDOR_CLIENT_SECRET="s3cr3t-value",
        )
    )
    assert "s3cr3t-value" not in repr(settings)


def test_every_setting_is_documented_and_unique():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(s.description for s in SETTINGS)


def _import_function_app(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_functions_host_refuses_to_start_on_bad_configuration():
    done = _import_function_app(
        {"FUNCTIONS_WORKER_RUNTIME": "python", **_env(XTAP_VENDOR_TENANT_ID="<unset>")}
    )
    assert done.returncode != 0
    assert "XTAP_VENDOR_TENANT_ID: is required" in done.stderr


def test_importing_function_app_outside_the_host_needs_no_settings_and_no_msgraph():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, function_app; "
            "heavy = ('msgraph', 'msgraph_core', 'kiota_http', 'azure.identity', 'jinja2',"
            " 'azure.storage', 'azure.data', 'pydantic'); "
            "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') "
            "for h in heavy)))",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    functions = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, function_app; print(json.dumps(sorted("
            "f.get_function_name() for f in function_app.app.get_functions())))",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert functions.returncode == 0, functions.stderr
    # Exactly these, by name: a function lost in a merge (or one added without a test
    # noticing) fails here. Add a new function's name when you add the function.
    assert json.loads(functions.stdout) == sorted(EXPECTED_FUNCTIONS)


EXPECTED_FUNCTIONS = (
    # timers
    "sweep_timer",
    "audit_timer",
    "guest_hygiene_timer",
    "access_review_timer",
    "purge_timer",
    "watchdog_timer",
    "heartbeat_timer",
    # queues
    "check_client",
    "deliver_alert",
    "reinvite_job",
    "access_review_job",
    # HTTP API
    "api_health",
    "api_openapi",
    "api_client_posture",
    "api_client_acknowledgement",
    "api_reinvite_create",
    "api_reinvite_status",
    "api_access_review_ensure",
    "api_access_review_status",
    "api_report",
    "api_whatif",
    "api_runbook_index",
    "api_runbook",
    "api_doctor",
)


@pytest.mark.parametrize(
    "schedule",
    [
        "61 99 * * * nonsense",  # out of range and not a field at all
        "0 * * * *",  # five fields: a Unix cron, not NCRONTAB
        "0 0 0 * * * 2027",  # seven fields (a year field is not NCRONTAB)
        "@hourly",
        "60 * * * * *",
        "0 60 * * * *",
        "0 0 24 * * *",
        "0 0 0 0 * *",
        "0 0 0 32 * *",
        "0 0 0 * 13 *",
        "0 0 0 * * 7",  # NCRONTAB days of the week are 0-6
        "0 0 0 L * *",  # Quartz extensions the host does not read
        "0 0 0 ? * *",
        "0 0 0 * * 1#2",
        "H 0 * * * *",
        "0 0 0 31 2 *",  # never fires
        "0 */0 * * * *",
        "0 5-1 * * * *",
        "0 0 0 * Jan Funday",
        "0 0 0 * Ju *",  # too short: June or July?
        "0 0 0 * * Tu",
        "00:05:00",  # a TimeSpan schedule: not accepted here (DESIGN: NCRONTAB)
        "0 0 0 * * MON,",
    ],
)
def test_schedules_are_validated_as_the_functions_host_reads_them(schedule):
    with pytest.raises(ConfigError) as err:
        load_settings(_env(XTAP_AUDIT_SCHEDULE=schedule))
    assert err.value.setting == "XTAP_AUDIT_SCHEDULE"
    assert "NCRONTAB" in str(err.value) and repr(schedule) in str(err.value)


@pytest.mark.parametrize(
    "schedule",
    [
        "0 */5 * * * *",
        "0 0 * * * *",
        "0 30 9 * * 1-5",
        "0 30 9 * Jan Mon",
        "*/10 * * * * *",
        "0 0 9-17 * * *",
        "0 0 7,18 * * *",
        "0 0 0 29 2 *",  # leap days only, but it does fire
        "0 0 7 * * 0",
        "0 0 0 1 1 *",
        "0 30 9 * January Monday",  # names in full, any case (Microsoft docs)
        "0 30 9 * jan-MAR sun,Saturday",
        "0 0 12 * * Tue-Thu",
    ],
)
def test_documented_ncrontab_schedules_are_accepted(schedule):
    assert load_settings(_env(XTAP_SWEEP_SCHEDULE=schedule)).sweep_schedule == schedule


# ------------------------------------------ unresolved Key Vault references (issue 12.6)

UNRESOLVED = "@Microsoft.KeyVault(SecretUri=https://xtap-kv.vault.azure.net/secrets/teams-webhook/)"


def test_an_unresolved_teams_webhook_reference_makes_the_channel_unavailable_not_a_crash():
    settings = load_settings(_env(XTAP_TEAMS_WEBHOOK_URL=UNRESOLVED,
                                  XTAP_MAIL_SENDER="xtap@osttra.com",
                                  XTAP_ALERT_EMAILS="admins@osttra.com"))
    assert settings.teams_webhook_url is None
    (route, why), = settings.channel_problems
    assert route == "teams:admins"
    assert "XTAP_TEAMS_WEBHOOK_URL is an unresolved Key Vault reference" in why
    assert settings.mail_sender == "xtap@osttra.com"  # e-mail still works


def test_an_unresolved_reference_elsewhere_is_a_startup_error_naming_the_setting():
    with pytest.raises(ConfigError) as refused:
        load_settings(_env(XTAP_VENDOR_CREDENTIAL="client_secret",
                           XTAP_VENDOR_CLIENT_ID="3b8f2d6a-7c41-4e95-a0d2-8f1b6c3e9a74",
                           XTAP_VENDOR_CLIENT_SECRET=UNRESOLVED.lower()))
    assert str(refused.value).startswith(
        "XTAP_VENDOR_CLIENT_SECRET: is an unresolved Key Vault reference")


@pytest.mark.parametrize("marker", ["WEBSITE_SITE_NAME", "FUNCTIONS_WORKER_RUNTIME"])
def test_the_start_check_runs_on_any_plan(marker: str):
    """Flex Consumption does not take FUNCTIONS_WORKER_RUNTIME as an app setting; App
    Service sets WEBSITE_SITE_NAME on every app. Either one means "under the host"."""
    done = _import_function_app({marker: "xtap-prod", **_env(XTAP_VENDOR_TENANT_ID="<unset>")})
    assert done.returncode != 0
    assert "XTAP_VENDOR_TENANT_ID: is required" in done.stderr


@pytest.mark.parametrize("marker", ["WEBSITE_SITE_NAME", "FUNCTIONS_WORKER_RUNTIME"])
def test_the_app_starts_under_the_host_with_an_unresolved_teams_webhook_reference(marker: str):
    done = _import_function_app({marker: "xtap-prod", **_env(XTAP_TEAMS_WEBHOOK_URL=UNRESOLVED)})
    assert done.returncode == 0, done.stderr


def test_reinvite_redirect_hosts_empty_as_deployed_means_the_vendors_own_hosts():
    # infra/main.bicep always defines the app setting; left empty it must mean "the default".
    deployed = load_settings(_env(XTAP_REINVITE_REDIRECT_HOSTS=""))
    assert deployed.reinvite_redirect_hosts == ("sso.osttra.com", "myapps.microsoft.com")
    assert load_settings(_env()).reinvite_redirect_hosts == deployed.reinvite_redirect_hosts
    widened = load_settings(_env(XTAP_REINVITE_REDIRECT_HOSTS="SSO.osttra.com, portal.osttra.com"))
    assert widened.reinvite_redirect_hosts == ("sso.osttra.com", "portal.osttra.com")
    with pytest.raises(ConfigError) as error:
        load_settings(_env(XTAP_REINVITE_REDIRECT_HOSTS="https://evil.example/"))
    assert error.value.setting == "XTAP_REINVITE_REDIRECT_HOSTS"
