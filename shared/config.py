"""Every setting xtap-watch reads, in one place, validated once at start.

Settings come from the process environment (Azure app settings, or
``local.settings.json`` values exported by the local runner). A bad or missing value
raises :class:`ConfigError` whose message starts with the setting's name, so the Functions
host log (and the CLI) says exactly what to fix.

``SETTINGS`` below is the catalogue: infra/ must define every setting marked
``infra=True`` (a test keeps Bicep and this file in step).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import urlsplit

# The most clients one sweep message may carry: shared.domain.messages'
# MAX_CHECKS_PER_MESSAGE (not imported: importing this module must not import pydantic;
# tests/unit/test_check_batches.py holds the two equal).
MAX_CHECKS_PER_MESSAGE = 64

GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
AUTHORITY_HOST = "https://login.microsoftonline.com"
LOG_ANALYTICS_ENDPOINT = "https://api.loganalytics.io"


# App Service passes an app setting whose Key Vault reference it could not resolve as the
# reference text itself ("If a reference isn't resolved properly, the reference string is
# used instead", App Service docs "Use Key Vault references as app settings").
KEY_VAULT_REFERENCE_PREFIX = "@microsoft.keyvault("


def is_unresolved_reference(value: str | None) -> bool:
    return value is not None and value.strip().lower().startswith(KEY_VAULT_REFERENCE_PREFIX)


def under_functions_host(env: Mapping[str, str]) -> bool:
    """Running in Azure (App Service / Functions, any plan).

    ``WEBSITE_SITE_NAME`` is set by the platform on every app (App Service "Environment
    variables and app settings" reference: read-only, the app name). The Flex Consumption
    plan does not take ``FUNCTIONS_WORKER_RUNTIME`` as an app setting (the runtime lives in
    ``functionAppConfig.runtime``: "Flex Consumption plan deprecations"), so that variable
    alone is no longer a reliable sign; it is still honoured where it is set.
    """
    return any(env.get(name) for name in ("WEBSITE_SITE_NAME", "FUNCTIONS_WORKER_RUNTIME",
                                          "WEBSITE_INSTANCE_ID"))


class ConfigError(ValueError):
    """A setting is missing or malformed. ``setting`` names it."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


class ConfigErrors(ConfigError):
    """Every setting problem found at once; ``setting`` names the first, ``problems`` all.

    A person fixing configuration should see the whole list in one go, not one setting per
    attempt.
    """

    def __init__(self, problems: list[ConfigError]) -> None:
        ValueError.__init__(self, "; ".join(str(p) for p in problems))
        self.setting = problems[0].setting
        self.problems = tuple(problems)


@dataclass(frozen=True)
class SettingSpec:
    name: str
    description: str
    required: bool = False
    default: str | None = None
    infra: bool = True  # defined by infra/main.bicep as an app setting
    secret: bool = False  # must come through a Key Vault reference in Azure


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("XTAP_VENDOR_TENANT_ID", "The vendor's Entra tenant ID (GUID).", required=True),
    SettingSpec(
        "XTAP_VENDOR_APP_IDS",
        "Comma-separated application (client) IDs of the vendor's sign-in apps that "
        "client users must be allowed to reach.",
        required=True,
    ),
    SettingSpec("XTAP_VENDOR_NAME", "Display name of the vendor in alerts.", default="OSTTRA"),
    SettingSpec("XTAP_VENDOR_DOMAIN", "The vendor's sign-in domain.", default="sso.osttra.com"),
    SettingSpec("XTAP_GRAPH_BASE_URL", "Microsoft Graph base URL.", default=GRAPH_BASE_URL),
    SettingSpec("XTAP_AUTHORITY_HOST", "Entra authority host.", default=AUTHORITY_HOST),
    SettingSpec(
        "XTAP_TLS_CA_FILE",
        "Extra CA bundle to trust (local simulator only; never set in Azure).",
        infra=False,
    ),
    SettingSpec(
        "XTAP_VENDOR_CREDENTIAL",
        "How the app signs in to the vendor tenant: managed_identity | client_secret.",
        default="managed_identity",
    ),
    SettingSpec("AZURE_CLIENT_ID", "Client ID of the user-assigned managed identity.", infra=True),
    SettingSpec(
        "XTAP_VENDOR_CLIENT_ID", "App ID used with client_secret (local only).", infra=False
    ),
    SettingSpec(
        "XTAP_USE_IMDS",
        "true only on an Azure VM, scale set or AKS node whose instance metadata endpoint "
        "serves the managed identity. Elsewhere off App Service a managed-identity credential "
        "is refused as a setting error instead of probing 169.254.169.254.",
        infra=False,
    ),
    SettingSpec(
        "XTAP_VENDOR_CLIENT_SECRET",
        "Secret used with client_secret (local only).",
        infra=False,
        secret=True,
    ),
    SettingSpec(
        "XTAP_CLIENT_READER_APP_ID",
        "App ID of the multi-tenant read-only app clients consent to (Policy.Read.All).",
    ),
    SettingSpec(
        "XTAP_CLIENT_READER_CREDENTIAL",
        "How the reader app authenticates: federated_managed_identity | client_secret.",
        default="federated_managed_identity",
    ),
    SettingSpec(
        "XTAP_CLIENT_READER_SECRET",
        "Reader app secret (local only).",
        infra=False,
        secret=True,
    ),
    SettingSpec(
        "XTAP_ADMIN_CONSENT_REDIRECT_URI",
        "Where the admin-consent link returns the client admin.",
        default="https://entra.microsoft.com",
    ),
    SettingSpec(
        "XTAP_AUDIT_SOURCE", "Where audit events come from: graph | log_analytics.", default="graph"
    ),
    SettingSpec(
        "XTAP_SIGNIN_SOURCE",
        "Where sign-in evidence comes from: graph | log_analytics | none.",
        default="graph",
    ),
    SettingSpec("XTAP_LOG_ANALYTICS_WORKSPACE_ID", "Log Analytics workspace (customer) ID."),
    SettingSpec(
        "XTAP_LOG_ANALYTICS_ENDPOINT",
        "Log Analytics query endpoint.",
        default=LOG_ANALYTICS_ENDPOINT,
    ),
    SettingSpec(
        "XTAP_TEAMS_WEBHOOK_URL",
        "Teams Workflows webhook URL for the admins' channel (Key Vault reference).",
        secret=True,
    ),
    SettingSpec("XTAP_MAIL_SENDER", "Mailbox (UPN or ID) that sends alert mail."),
    SettingSpec("XTAP_ALERT_EMAILS", "Comma-separated admin addresses for alert mail."),
    SettingSpec(
        "XTAP_SWEEP_SCHEDULE",
        "NCRONTAB of the client posture sweep (every 15 minutes: drift seen in minutes).",
        default="0 */15 * * * *",
    ),
    # Every minute at second 30: half a minute away from the sweep (second 0), which reads
    # sign-ins from the same Graph reports budget (5 requests / 10 s per app per tenant).
    SettingSpec("XTAP_AUDIT_SCHEDULE", "NCRONTAB of the audit scan.", default="30 * * * * *"),
    SettingSpec(
        "XTAP_HYGIENE_SCHEDULE", "NCRONTAB of the guest hygiene run.", default="0 30 6 * * *"
    ),
    SettingSpec(
        "XTAP_REVIEW_SCHEDULE",
        "NCRONTAB of the access-review ensure run.",
        default="0 0 7 * * 1",
    ),
    SettingSpec("XTAP_REMINDER_HOURS", "Hours between reminders of an open drift.", default="24"),
    SettingSpec(
        "XTAP_UNKNOWN_ALERT_HOURS",
        "Hours a client may stay UNKNOWN (tenant unreachable, policy not understood) before "
        "that is an alert of its own; also the least time between two UNKNOWN signals.",
        default="24",
    ),
    SettingSpec(
        "XTAP_TENANT_CACHE_SIZE",
        "Client tenants whose credential and Graph client a process keeps (LRU); memory "
        "stays flat however many clients are registered.",
        default="256",
        infra=False,
    ),
    SettingSpec(
        "XTAP_TOKEN_CACHE_SIZE",
        "Client tenants' access tokens a process keeps until shortly before they expire "
        "(LRU, a few KB each): a sweep every 15 minutes asks Entra for each client's "
        "token about once an hour instead of at every sweep.",
        default="10000",
        infra=False,
    ),
    SettingSpec(
        "XTAP_CHECKS_PER_MESSAGE",
        "Clients one sweep queue message carries (1-64): fewer queue operations and "
        "executions per client; a client whose check fails is retried in its own message.",
        default="16",
        infra=False,
    ),
    SettingSpec(
        "XTAP_CHECK_CONCURRENCY",
        "Client checks one worker process runs at once, across the sweep messages the host "
        "hands it (each check mostly waits on Graph).",
        default="96",
        infra=False,
    ),
    SettingSpec("XTAP_AUDIT_OVERLAP_MINUTES", "Overlap of consecutive audit scans.", default="15"),
    SettingSpec("XTAP_SIGNIN_WINDOW_HOURS", "Window for counting sign-in failures.", default="24"),
    SettingSpec(
        "XTAP_SIGNIN_THRESHOLD",
        "Failures per client in the window that count as evidence.",
        default="5",
    ),
    SettingSpec(
        "XTAP_DIGEST_THRESHOLD",
        "More alerts than this from one run collapse into one digest card.",
        default="5",
    ),
    SettingSpec(
        "XTAP_DIGEST_HOLD_SECONDS",
        "How long alerts past the digest threshold wait for the rest of their run.",
        default="60",
        infra=False,
    ),
    SettingSpec(
        "XTAP_PENDING_GUEST_DAYS",
        "Days in PendingAcceptance before a guest is reported stuck.",
        default="14",
    ),
    SettingSpec(
        "XTAP_PURGE_SCHEDULE",
        "NCRONTAB of the retention purge of the ledgers and seen audit events.",
        default="0 17 * * * *",
    ),
    SettingSpec(
        "XTAP_JOB_RETENTION_DAYS",
        "Days a re-invite or access-review job (and its claims) is kept after its last change.",
        default="90",
    ),
    SettingSpec(
        "XTAP_DELIVERY_RETENTION_DAYS",
        "Days an alert's delivery ledger rows (and digest batch rows) are kept after their "
        "last change; held digest alerts are never purged.",
        default="90",
    ),
    SettingSpec(
        "XTAP_SEEN_EVENTS_MARGIN_MINUTES",
        "Seen audit event IDs are kept for the audit overlap plus this margin, counted back "
        "from the last completed scan.",
        default="60",
    ),
    SettingSpec(
        "XTAP_PURGE_MAX_ROWS",
        "Most rows one purge run deletes per table (the rest wait for the next run).",
        default="5000",
    ),
    SettingSpec(
        "XTAP_HEARTBEAT_SCHEDULE",
        "NCRONTAB of the daily heartbeat summary to every channel (UTC unless the app sets "
        "WEBSITE_TIME_ZONE); a missing heartbeat means the alert path is broken.",
        default="0 0 8 * * *",
    ),
    SettingSpec(
        "XTAP_WATCHDOG_SCHEDULE",
        "NCRONTAB of the watchdog: audit scan stalled, sweep unfinished, channel failing.",
        default="45 */5 * * * *",
    ),
    SettingSpec(
        "XTAP_SWEEP_EXPECTED_MINUTES",
        "How long a posture sweep of every client should take; the watchdog calls a sweep "
        "unfinished when clients are still unchecked after twice this.",
        default="10",
    ),
    SettingSpec(
        "XTAP_API_ROLE", "App role a caller needs for the support API.", default="Reinvite.Request"
    ),
    SettingSpec(
        "XTAP_REPORT_ROLE",
        "App role that may read the portfolio report (GET /api/v1/report); the support "
        "role (XTAP_API_ROLE) may read it too. The API app registration defines both.",
        default="Report.Read",
        infra=False,
    ),
    SettingSpec(
        "XTAP_REINVITE_REDIRECT_URL",
        "Where a re-invited guest lands after redemption.",
        default="https://myapps.microsoft.com",
    ),
    SettingSpec(
        "XTAP_REINVITE_REDIRECT_HOSTS",
        "Comma-separated hosts a re-invite's redirectUrl may point at (default: the vendor's "
        "sign-in host XTAP_VENDOR_DOMAIN and the host of XTAP_REINVITE_REDIRECT_URL); infra "
        "parameter reinviteRedirectHosts.",
    ),
    SettingSpec(
        "XTAP_ACCESS_REVIEW_REVIEWERS",
        "Comma-separated user object IDs who review client guests.",
    ),
    SettingSpec(
        "XTAP_ENTRA_PORTAL_URL",
        "Base URL of the Entra admin center used in alert links.",
        default="https://entra.microsoft.com",
    ),
    SettingSpec(
        "XTAP_PUBLIC_API_URL",
        "Public base URL of this Function App (https://<app>.azurewebsites.net), for links.",
    ),
    SettingSpec(
        "XTAP_DOCS_BASE_URL",
        "Optional override: base URL of a published copy of docs/ (alert links then point "
        "to <base>/findings/<CODE>.md). Unset, alerts link to the runbooks this app serves "
        "itself, <public URL>/api/v1/runbooks/<CODE>.",
    ),
    SettingSpec(
        "AzureWebJobsStorage",
        "Storage connection string (local/Azurite). In Azure use the identity-based "
        "AzureWebJobsStorage__queueServiceUri/__tableServiceUri settings instead.",
        infra=False,
        secret=True,
    ),
    SettingSpec("AzureWebJobsStorage__queueServiceUri", "Queue endpoint (identity-based)."),
    SettingSpec("AzureWebJobsStorage__tableServiceUri", "Table endpoint (identity-based)."),
    SettingSpec("AzureWebJobsStorage__blobServiceUri", "Blob endpoint (identity-based)."),
    SettingSpec("AzureWebJobsStorage__credential", "managedidentity in Azure."),
    SettingSpec("AzureWebJobsStorage__clientId", "Managed identity used for storage."),
)

_BY_NAME = {s.name: s for s in SETTINGS}

# Queue and table names: fixed, not settings, because function_app.py binds triggers to
# them at import time and infra creates them.
QUEUE_CHECK_CLIENT = "xtap-check-client"
QUEUE_ALERTS = "xtap-alerts"
QUEUE_REINVITES = "xtap-reinvites"
QUEUE_ACCESS_REVIEWS = "xtap-access-reviews"
QUEUES = (QUEUE_CHECK_CLIENT, QUEUE_ALERTS, QUEUE_REINVITES, QUEUE_ACCESS_REVIEWS)

TABLE_CLIENTS = "xtapClients"
TABLE_POSTURE = "xtapPosture"
TABLE_ALERT_STATE = "xtapAlertState"
TABLE_CURSORS = "xtapCursors"
TABLE_JOBS = "xtapJobs"
TABLE_DELIVERIES = "xtapDeliveries"
TABLE_SEEN_EVENTS = "xtapSeenEvents"
TABLES = (
    TABLE_CLIENTS,
    TABLE_POSTURE,
    TABLE_ALERT_STATE,
    TABLE_CURSORS,
    TABLE_JOBS,
    TABLE_DELIVERIES,
    TABLE_SEEN_EVENTS,
)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# NCRONTAB as the Functions timer trigger reads it: six fields, {second} {minute} {hour}
# {day} {month} {day-of-week}, each a list of *, values or ranges with an optional /step.
# Months and days may be named in English, whole or abbreviated to three letters or more,
# in any case; days of the week are 0-6 from Sunday (Microsoft docs, "Timer trigger for
# Azure Functions", NCRONTAB expressions).
_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_NCRONTAB_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
_NCRONTAB_ITEM = re.compile(
    r"^(\*|(?P<a>\d+|[A-Za-z]+)(?:-(?P<b>\d+|[A-Za-z]+))?)(?:/(?P<step>\d+))?$"
)
NCRONTAB_HELP = (
    "a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week})"
)


def _name_value(part: str, names: tuple[str, ...], low: int) -> int | None:
    word = part.lower()
    matches = [i for i, name in enumerate(names) if len(word) >= 3 and name.startswith(word)]
    return low + matches[0] if len(matches) == 1 else None


def normalise_ncrontab(expression: str) -> str:
    """The expression with month and day names replaced by their numbers (what croniter
    reads); call :func:`ncrontab_problem` first."""
    out = []
    for text, (_, low, _high, names) in zip(expression.split(), _NCRONTAB_FIELDS, strict=True):
        if names:
            text = re.sub(
                r"[A-Za-z]+",
                lambda m: str(_name_value(m.group(), names, low)),  # noqa: B023 - used at once
                text,
            )
        out.append(text)
    return " ".join(out)


def ncrontab_problem(expression: str) -> str | None:
    """Why ``expression`` is not a schedule the Functions host would run, or ``None``.

    Syntax and ranges are checked field by field, then the pinned cron library parses it
    (seconds first, as NCRONTAB writes them) and must find a next occurrence: a schedule
    that never fires (``0 0 0 31 2 *``) is a misconfiguration too.
    """
    fields = expression.split()
    if len(fields) != 6:
        return f"has {len(fields)} fields, not 6"
    for text, (name, low, high, names) in zip(fields, _NCRONTAB_FIELDS, strict=True):
        for item in text.split(","):
            match = _NCRONTAB_ITEM.match(item)
            if match is None:
                return f"the {name} field {text!r} is not *, a value, a range or a step"
            values = []
            for part in (match.group("a"), match.group("b")):
                if part is None:
                    continue
                if part.isdigit():
                    value: int | None = int(part)
                elif not names:
                    return f"the {name} field {text!r} takes numbers only"
                else:
                    value = _name_value(part, names, low)
                    if value is None:
                        return f"the {name} field {text!r} names no single {name}"
                if value is None or not low <= value <= high:
                    return f"the {name} field {text!r} is outside {low}-{high}"
                values.append(value)
            if len(values) == 2 and values[0] > values[1]:
                return f"the {name} field {text!r} has a range that runs backwards"
            if match.group("step") is not None and int(match.group("step")) == 0:
                return f"the {name} field {text!r} has a step of 0"
    from datetime import UTC, datetime

    from croniter import CroniterBadDateError, croniter

    try:
        schedule = croniter(
            normalise_ncrontab(expression),
            datetime(2026, 1, 1, tzinfo=UTC),
            second_at_beginning=True,
        )
    except (ValueError, KeyError) as exc:  # CroniterBadCronError is a ValueError
        return f"is not understood ({exc})"
    try:
        schedule.get_next(datetime)
    except CroniterBadDateError:
        return "never fires"
    return None


@dataclass(frozen=True)
class StorageSettings:
    """Either a connection string (Azurite, local) or identity-based endpoints (Azure)."""

    connection_string: str | None
    queue_service_uri: str | None
    table_service_uri: str | None
    client_id: str | None


# A queue message lives at most 7 days unless sent with another TTL (Put Message's
# default messagettl); a redelivered or re-queued poison message must still find the ledger
# rows that de-duplicate it, so no ledger retention may be shorter than that plus a day.
MESSAGE_LIFETIME_DAYS = 7
MIN_LEDGER_RETENTION_DAYS = MESSAGE_LIFETIME_DAYS + 1


@dataclass(frozen=True)
class RetentionSettings:
    """How long each growing table keeps rows (see shared/services/retention.py)."""

    purge_schedule: str = "0 17 * * * *"
    job_retention_days: int = 90
    delivery_retention_days: int = 90
    seen_events_margin_minutes: int = 60
    purge_max_rows: int = 5000


@dataclass(frozen=True)
class SelfWatchSettings:
    """xtap-watch watching itself (shared/services/watchdog.py, heartbeat.py)."""

    heartbeat_schedule: str = "0 0 8 * * *"
    watchdog_schedule: str = "45 */5 * * * *"
    sweep_expected_minutes: int = 10


C = TypeVar("C", bound=str)  # one of a setting's allowed values
VendorCredential = Literal["managed_identity", "client_secret"]
ReaderCredential = Literal["federated_managed_identity", "client_secret"]


@dataclass(frozen=True)
class Settings:
    vendor_tenant_id: str
    vendor_app_ids: tuple[str, ...]
    vendor_name: str
    vendor_domain: str
    graph_base_url: str
    authority_host: str
    tls_ca_file: str | None
    vendor_credential: VendorCredential
    managed_identity_client_id: str | None
    vendor_client_id: str | None
    vendor_client_secret: str | None = field(repr=False)
    client_reader_app_id: str | None
    client_reader_credential: ReaderCredential
    client_reader_secret: str | None = field(repr=False)
    admin_consent_redirect_uri: str
    audit_source: Literal["graph", "log_analytics"]
    signin_source: Literal["graph", "log_analytics", "none"]
    log_analytics_workspace_id: str | None
    log_analytics_endpoint: str
    teams_webhook_url: str | None = field(repr=False)
    mail_sender: str | None
    alert_emails: tuple[str, ...]
    sweep_schedule: str
    audit_schedule: str
    hygiene_schedule: str
    review_schedule: str
    reminder_hours: int
    unknown_alert_hours: int
    tenant_cache_size: int
    token_cache_size: int
    checks_per_message: int
    check_concurrency: int
    audit_overlap_minutes: int
    signin_window_hours: int
    signin_threshold: int
    digest_threshold: int
    digest_hold_seconds: int
    pending_guest_days: int
    api_role: str
    reinvite_redirect_url: str
    reinvite_redirect_hosts: tuple[str, ...]
    access_review_reviewers: tuple[str, ...]
    entra_portal_url: str
    docs_base_url: str  # where finding links point (shared/domain/runbooks.py)
    public_api_url: str | None
    storage: StorageSettings
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    self_watch: SelfWatchSettings = field(default_factory=SelfWatchSettings)
    # Alert routes that cannot work, with why (route id, reason): the app still starts
    # and alerts on the other channel (an unresolved Key Vault reference for the Teams
    # webhook must not stop e-mail).
    channel_problems: tuple[tuple[str, str], ...] = ()
    report_role: str = "Report.Read"


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str | None:
        spec = _BY_NAME[name]
        value = self.env.get(name)
        if value is not None:
            value = value.strip()
        if is_unresolved_reference(value):
            raise ConfigError(
                name,
                "is an unresolved Key Vault reference (App Service passed the reference "
                "text): give the app's managed identity the Key Vault Secrets User role on "
                "the vault and check that the secret exists",
            )
        if not value:
            value = spec.default
        if not value and spec.required:
            raise ConfigError(name, f"is required ({spec.description})")
        return value or None

    def text(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            raise ConfigError(name, "is required")
        return value

    def guid(self, name: str) -> str | None:
        value = self.raw(name)
        if value is not None and not _GUID.match(value):
            raise ConfigError(name, f"must be a GUID, got {value!r}")
        return value.lower() if value else None

    def guid_list(self, name: str) -> tuple[str, ...]:
        value = self.raw(name) or ""
        items = tuple(v.strip().lower() for v in value.split(",") if v.strip())
        for item in items:
            if not _GUID.match(item):
                raise ConfigError(name, f"must be comma-separated GUIDs, got {item!r}")
        if _BY_NAME[name].required and not items:
            raise ConfigError(name, "needs at least one GUID")
        return items

    def url(self, name: str) -> str:
        value = self.text(name)
        if not value.startswith(("https://", "http://")):
            raise ConfigError(name, f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    def optional_url(self, name: str) -> str | None:
        return self.url(name) if self.raw(name) else None

    def choice(self, name: str, choices: tuple[C, ...]) -> C:
        value = self.text(name)
        for choice in choices:
            if value == choice:
                return choice
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")

    def positive_int(self, name: str) -> int:
        value = self.text(name)
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, f"must be a whole number, got {value!r}") from None
        if number <= 0:
            raise ConfigError(name, f"must be positive, got {number}")
        return number

    def positive_int_at_most(self, name: str, most: int) -> int:
        number = self.positive_int(name)
        if number > most:
            raise ConfigError(name, f"must be at most {most}, got {number}")
        return number

    def schedule(self, name: str) -> str:
        value = self.text(name)
        problem = ncrontab_problem(value)
        if problem is not None:
            raise ConfigError(
                name, f"must be {NCRONTAB_HELP}, e.g. '0 */5 * * * *'; {value!r} {problem}"
            )
        return value

    def readable_file(self, name: str) -> str | None:
        value = self.raw(name)
        if value is not None and not os.path.isfile(value):
            raise ConfigError(
                name,
                f"no such file: {value} (the CA of the local simulator; unset it to use "
                "Microsoft's services)",
            )
        return value

    def emails(self, name: str) -> tuple[str, ...]:
        items = tuple(v.strip() for v in (self.raw(name) or "").split(",") if v.strip())
        for item in items:
            if "@" not in item or " " in item:
                raise ConfigError(name, f"must be comma-separated e-mail addresses, got {item!r}")
        return items


# What a reader method stands in with once it has recorded a problem, so reading goes on
# and every other setting is still checked (the placeholders never leave load_settings).
_PLACEHOLDERS: dict[str, object] = {
    "raw": None,
    "text": "",
    "guid": None,
    "guid_list": (),
    "url": "https://invalid.invalid",
    "optional_url": None,
    "positive_int": 1,
    "schedule": "0 0 * * * *",
    "emails": (),
    "readable_file": None,
}


class _CollectingReader(_Reader):
    """A reader that records each setting's first problem and carries on."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.problems: dict[str, ConfigError] = {}

    def record(self, exc: ConfigError) -> None:
        self.problems.setdefault(exc.setting, exc)

    def choice(self, name: str, choices: tuple[C, ...]) -> C:
        try:
            return super().choice(name, choices)
        except ConfigError as exc:
            self.record(exc)
            return choices[0]


def _collecting(method_name: str) -> None:
    method = getattr(_Reader, method_name)

    def read(self: _CollectingReader, name: str, *args: object) -> object:
        try:
            return method(self, name, *args)
        except ConfigError as exc:
            self.record(exc)
            return _PLACEHOLDERS[method_name]

    setattr(_CollectingReader, method_name, read)


for _name in _PLACEHOLDERS:
    _collecting(_name)


def _storage(r: _Reader) -> StorageSettings:
    conn = r.raw("AzureWebJobsStorage")
    queue_uri = r.optional_url("AzureWebJobsStorage__queueServiceUri")
    table_uri = r.optional_url("AzureWebJobsStorage__tableServiceUri")
    if not conn and not (queue_uri and table_uri):
        raise ConfigError(
            "AzureWebJobsStorage",
            "is required: a connection string locally, or AzureWebJobsStorage__queueServiceUri"
            " and AzureWebJobsStorage__tableServiceUri with a managed identity in Azure",
        )
    if conn and "AccountName=" not in conn and conn != "UseDevelopmentStorage=true":
        raise ConfigError("AzureWebJobsStorage", "is not a storage connection string")
    return StorageSettings(
        connection_string=conn,
        queue_service_uri=queue_uri,
        table_service_uri=table_uri,
        client_id=r.guid("AzureWebJobsStorage__clientId"),
    )


def _runbook_base(r: _Reader) -> str:
    """Where alert links to finding pages point: the override, else this app's own route.

    The app's public address is XTAP_PUBLIC_API_URL, else the default host name App Service
    gives every app (WEBSITE_HOSTNAME), else the local runner's default address.
    """
    from shared.domain.runbooks import LOCAL_APP_URL, app_runbook_base

    override = r.optional_url("XTAP_DOCS_BASE_URL")
    if override:
        return override
    public = r.optional_url("XTAP_PUBLIC_API_URL")
    host = (r.env.get("WEBSITE_HOSTNAME") or "").strip()
    return app_runbook_base(public or (f"https://{host}" if host else LOCAL_APP_URL))


_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(?::\d{1,5})?$")


def _redirect_hosts(r: _Reader) -> tuple[str, ...]:
    """Hosts a re-invite may send a guest to: the vendor's own (issue 13.10)."""
    configured = r.raw("XTAP_REINVITE_REDIRECT_HOSTS")
    if configured:
        hosts = tuple(dict.fromkeys(h.strip().lower() for h in configured.split(",") if h.strip()))
        for host in hosts:
            if not _HOST.match(host):
                raise ConfigError(
                    "XTAP_REINVITE_REDIRECT_HOSTS",
                    f"must be comma-separated host names, got {host!r}",
                )
        return hosts
    default_host = (urlsplit(r.url("XTAP_REINVITE_REDIRECT_URL")).hostname or "").lower()
    vendor_host = r.text("XTAP_VENDOR_DOMAIN").strip().lower()
    return tuple(dict.fromkeys(h for h in (vendor_host, default_host) if h))


def _retention(r: _Reader) -> RetentionSettings:
    for name in ("XTAP_JOB_RETENTION_DAYS", "XTAP_DELIVERY_RETENTION_DAYS"):
        if r.positive_int(name) < MIN_LEDGER_RETENTION_DAYS:
            raise ConfigError(
                name,
                f"must be at least {MIN_LEDGER_RETENTION_DAYS} days: a queue message lives up "
                f"to {MESSAGE_LIFETIME_DAYS} days and a redelivered one must still find the "
                "rows that de-duplicate it",
            )
    return RetentionSettings(
        purge_schedule=r.schedule("XTAP_PURGE_SCHEDULE"),
        job_retention_days=r.positive_int("XTAP_JOB_RETENTION_DAYS"),
        delivery_retention_days=r.positive_int("XTAP_DELIVERY_RETENTION_DAYS"),
        seen_events_margin_minutes=r.positive_int("XTAP_SEEN_EVENTS_MARGIN_MINUTES"),
        purge_max_rows=r.positive_int("XTAP_PURGE_MAX_ROWS"),
    )


def _self_watch(r: _Reader) -> SelfWatchSettings:
    return SelfWatchSettings(
        heartbeat_schedule=r.schedule("XTAP_HEARTBEAT_SCHEDULE"),
        watchdog_schedule=r.schedule("XTAP_WATCHDOG_SCHEDULE"),
        sweep_expected_minutes=r.positive_int("XTAP_SWEEP_EXPECTED_MINUTES"),
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise :class:`ConfigErrors` listing every bad one
    (``setting`` names the first, so a single problem reads as before)."""
    r = _CollectingReader(os.environ if env is None else env)
    vendor_credential: VendorCredential = r.choice(
        "XTAP_VENDOR_CREDENTIAL", ("managed_identity", "client_secret")
    )
    reader_credential: ReaderCredential = r.choice(
        "XTAP_CLIENT_READER_CREDENTIAL", ("federated_managed_identity", "client_secret")
    )
    teams_webhook_url: str | None = None
    channel_problems: tuple[tuple[str, str], ...] = ()
    if is_unresolved_reference(r.env.get("XTAP_TEAMS_WEBHOOK_URL")):
        # One channel unusable is not a reason to stop every function, e-mail included.
        channel_problems = ((
            "teams:admins",
            "XTAP_TEAMS_WEBHOOK_URL is an unresolved Key Vault reference (App Service "
            "passed the reference text instead of the webhook URL)",
        ),)
    else:
        teams_webhook_url = r.optional_url("XTAP_TEAMS_WEBHOOK_URL")
    settings = Settings(
        vendor_tenant_id=r.guid("XTAP_VENDOR_TENANT_ID") or "",
        vendor_app_ids=r.guid_list("XTAP_VENDOR_APP_IDS"),
        vendor_name=r.text("XTAP_VENDOR_NAME"),
        vendor_domain=r.text("XTAP_VENDOR_DOMAIN"),
        graph_base_url=r.url("XTAP_GRAPH_BASE_URL"),
        authority_host=r.url("XTAP_AUTHORITY_HOST"),
        tls_ca_file=r.readable_file("XTAP_TLS_CA_FILE"),
        vendor_credential=vendor_credential,
        managed_identity_client_id=r.guid("AZURE_CLIENT_ID"),
        vendor_client_id=r.guid("XTAP_VENDOR_CLIENT_ID"),
        vendor_client_secret=r.raw("XTAP_VENDOR_CLIENT_SECRET"),
        client_reader_app_id=r.guid("XTAP_CLIENT_READER_APP_ID"),
        client_reader_credential=reader_credential,
        client_reader_secret=r.raw("XTAP_CLIENT_READER_SECRET"),
        admin_consent_redirect_uri=r.url("XTAP_ADMIN_CONSENT_REDIRECT_URI"),
        audit_source=r.choice("XTAP_AUDIT_SOURCE", ("graph", "log_analytics")),
        signin_source=r.choice(
            "XTAP_SIGNIN_SOURCE", ("graph", "log_analytics", "none")
        ),
        log_analytics_workspace_id=r.guid("XTAP_LOG_ANALYTICS_WORKSPACE_ID"),
        log_analytics_endpoint=r.url("XTAP_LOG_ANALYTICS_ENDPOINT"),
        teams_webhook_url=teams_webhook_url,
        mail_sender=r.raw("XTAP_MAIL_SENDER"),
        alert_emails=r.emails("XTAP_ALERT_EMAILS"),
        sweep_schedule=r.schedule("XTAP_SWEEP_SCHEDULE"),
        audit_schedule=r.schedule("XTAP_AUDIT_SCHEDULE"),
        hygiene_schedule=r.schedule("XTAP_HYGIENE_SCHEDULE"),
        review_schedule=r.schedule("XTAP_REVIEW_SCHEDULE"),
        reminder_hours=r.positive_int("XTAP_REMINDER_HOURS"),
        unknown_alert_hours=r.positive_int("XTAP_UNKNOWN_ALERT_HOURS"),
        tenant_cache_size=r.positive_int("XTAP_TENANT_CACHE_SIZE"),
        token_cache_size=r.positive_int("XTAP_TOKEN_CACHE_SIZE"),
        checks_per_message=r.positive_int_at_most(
            "XTAP_CHECKS_PER_MESSAGE", MAX_CHECKS_PER_MESSAGE
        ),
        check_concurrency=r.positive_int("XTAP_CHECK_CONCURRENCY"),
        audit_overlap_minutes=r.positive_int("XTAP_AUDIT_OVERLAP_MINUTES"),
        signin_window_hours=r.positive_int("XTAP_SIGNIN_WINDOW_HOURS"),
        signin_threshold=r.positive_int("XTAP_SIGNIN_THRESHOLD"),
        digest_threshold=r.positive_int("XTAP_DIGEST_THRESHOLD"),
        digest_hold_seconds=r.positive_int("XTAP_DIGEST_HOLD_SECONDS"),
        pending_guest_days=r.positive_int("XTAP_PENDING_GUEST_DAYS"),
        api_role=r.text("XTAP_API_ROLE"),
        reinvite_redirect_url=r.url("XTAP_REINVITE_REDIRECT_URL"),
        reinvite_redirect_hosts=_guarded(r, _redirect_hosts, ()),
        access_review_reviewers=r.guid_list("XTAP_ACCESS_REVIEW_REVIEWERS"),
        entra_portal_url=r.url("XTAP_ENTRA_PORTAL_URL"),
        docs_base_url=_runbook_base(r),
        public_api_url=r.optional_url("XTAP_PUBLIC_API_URL"),
        storage=_guarded(r, _storage, StorageSettings(None, None, None, None)),
        retention=_guarded(r, _retention, RetentionSettings()),
        self_watch=_self_watch(r),
        channel_problems=channel_problems,
        report_role=r.text("XTAP_REPORT_ROLE"),
    )
    if not r.problems:
        for problem in _combination_problems(settings):
            r.record(problem)
    if r.problems:
        raise ConfigErrors(list(r.problems.values()))
    return settings


T = TypeVar("T")


def _guarded(r: _CollectingReader, read: Callable[[_Reader], T], placeholder: T) -> T:
    try:
        return read(r)
    except ConfigError as exc:
        r.record(exc)
        return placeholder


# Environment variables through which a platform hands a process its managed identity
# (App Service / Functions: IDENTITY_ENDPOINT + IDENTITY_HEADER; Azure Arc and Service Fabric
# also set IDENTITY_ENDPOINT; Cloud Shell: MSI_ENDPOINT; AKS pod identity:
# AZURE_POD_IDENTITY_AUTHORITY_HOST). Without one, azure-identity falls back to probing the
# instance metadata address, which only answers on an Azure VM.
MANAGED_IDENTITY_ENV = (
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


def managed_identity_available(env: Mapping[str, str]) -> bool:
    """Whether a managed identity can be had here without probing the network."""
    if any((env.get(name) or "").strip() for name in MANAGED_IDENTITY_ENV):
        return True
    return (env.get("XTAP_USE_IMDS") or "").strip().lower() == "true"


def credential_problems(env: Mapping[str, str], *, reader: bool = True) -> list[ConfigError]:
    """What stops the two identities from signing in here, as setting errors.

    For runs outside the Functions host (the CLI, ``./scripts/demo --real``): a managed
    identity configured where none exists is a setting to change, not a timeout to wait
    for. ``reader``: the command reads client tenants (the read-only app is needed too).
    Read from ``env`` directly, so it adds to :func:`load_settings`' list even when that
    failed (malformed values are that function's to report).
    """
    r = _CollectingReader(env)
    vendor_credential = r.choice("XTAP_VENDOR_CREDENTIAL", ("managed_identity", "client_secret"))
    reader_app_id = r.guid("XTAP_CLIENT_READER_APP_ID")
    reader_credential = r.choice(
        "XTAP_CLIENT_READER_CREDENTIAL", ("federated_managed_identity", "client_secret")
    )
    problems: list[ConfigError] = []
    local_fix = "off Azure use client_secret (see README, \"Against your tenant\")"
    if vendor_credential == "managed_identity" and not managed_identity_available(env):
        problems.append(
            ConfigError(
                "XTAP_VENDOR_CREDENTIAL",
                "is managed_identity, but this machine has no managed identity (no "
                f"IDENTITY_ENDPOINT or MSI_ENDPOINT; XTAP_USE_IMDS is not true): {local_fix}: "
                "XTAP_VENDOR_CREDENTIAL=client_secret with XTAP_VENDOR_CLIENT_ID and "
                "XTAP_VENDOR_CLIENT_SECRET",
            )
        )
    if not reader:
        return problems
    if not reader_app_id and "XTAP_CLIENT_READER_APP_ID" not in r.problems:
        problems.append(
            ConfigError(
                "XTAP_CLIENT_READER_APP_ID",
                "is required to read client tenants' policies (the multi-tenant read-only "
                "app clients consent to); without it every client is UNKNOWN",
            )
        )
    elif reader_credential == "federated_managed_identity" and not (
        managed_identity_available(env)
    ):
        problems.append(
            ConfigError(
                "XTAP_CLIENT_READER_CREDENTIAL",
                "is federated_managed_identity, which needs the app's managed identity: "
                f"{local_fix}: XTAP_CLIENT_READER_CREDENTIAL=client_secret with "
                "XTAP_CLIENT_READER_SECRET (a secret of the read-only app)",
            )
        )
    return problems


def _combination_problems(s: Settings) -> list[ConfigError]:
    problems: list[ConfigError] = []
    if s.vendor_credential == "client_secret":
        for name, value in (
            ("XTAP_VENDOR_CLIENT_ID", s.vendor_client_id),
            ("XTAP_VENDOR_CLIENT_SECRET", s.vendor_client_secret),
        ):
            if not value:
                problems.append(
                    ConfigError(name, "is required when XTAP_VENDOR_CREDENTIAL=client_secret")
                )
    if (
        s.client_reader_credential == "client_secret"
        and s.client_reader_app_id
        and not (s.client_reader_secret)
    ):
        problems.append(
            ConfigError(
                "XTAP_CLIENT_READER_SECRET",
                "is required when XTAP_CLIENT_READER_CREDENTIAL=client_secret",
            )
        )
    if "log_analytics" in (s.audit_source, s.signin_source) and not s.log_analytics_workspace_id:
        problems.append(
            ConfigError(
                "XTAP_LOG_ANALYTICS_WORKSPACE_ID",
                "is required when XTAP_AUDIT_SOURCE or XTAP_SIGNIN_SOURCE is log_analytics",
            )
        )
    if s.mail_sender and not s.alert_emails:
        problems.append(
            ConfigError("XTAP_ALERT_EMAILS", "is required when XTAP_MAIL_SENDER is set")
        )
    return problems
