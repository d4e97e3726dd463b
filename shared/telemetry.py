"""Observability: OpenTelemetry spans per trigger, Azure Monitor export, secret-free logs.

* :func:`configure_telemetry` turns on Azure Monitor export (azure-monitor-opentelemetry)
  only when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set; without it (tests, the local
  runner, the CLI) it imports nothing heavy. In Azure the exporter authenticates with the
  managed identity named in ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (local auth is
  disabled on the App Insights resource). It always installs log redaction.
* :func:`trigger_span` wraps one trigger invocation in a span that carries the client tenant
  as ``xtap.client_tenant_id``, so App Insights can split every request, dependency and log
  line by client. Log records emitted inside the span carry the same attribute, which the
  Azure Monitor log exporter turns into a custom dimension.
* :func:`redact` and :class:`RedactSecretsFilter` keep credentials out of logs, by URL
  component and at any percent-encoding depth: the ``sig=`` of a Teams Workflows webhook
  URL, the path of an Office 365 connector webhook, bearer tokens and JWTs, client secrets
  and assertions (quoted values with spaces too), the managed-identity ``X-IDENTITY-HEADER``,
  storage keys and SAS signatures, function keys in ``?code=``, invitation redemption
  tickets. Control characters in a message are escaped, so caller-supplied text cannot
  start a forged log line.
* :func:`quiet_noisy_loggers` (called by :func:`configure_telemetry`) keeps httpx and the
  Azure SDKs at WARNING; host.json does the same for the host's own categories.

Only ``opentelemetry-api`` is imported at module level: it is small, and without a configured
SDK its tracer is a no-op, so spans cost next to nothing in tests and locally.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace

CONNECTION_STRING_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
CLIENT_TENANT_ATTRIBUTE = "xtap.client_tenant_id"
TRACER_NAME = "xtap-watch"
REDACTED = "[REDACTED]"

# ------------------------------------------------------------------------------ redaction
# Credentials are found by URL component, at any level of percent-encoding: a URL logged
# inside another URL's query (``?next=https%3A%2F%2F...%26sig%3D...``) or encoded twice
# (``%2526ticket%253D``) is cleaned like a plain one. Each pattern keeps the name of the
# thing (so a log still says *what* was there) and replaces only the value. Order matters:
# specific shapes before the generic key=value rules.
_PCT = r"%(?:25)*"  # a percent sign, itself percent-encoded any number of times
_QUERY_SEP = rf"(?:[?&]|{_PCT}(?:26|3[fF]))"
_EQUALS = rf"(?:=|{_PCT}3[dD])"
_SLASH = rf"(?:/|{_PCT}2[fF])"
# A query value ends at the next separator of any encoding level, or where the text does.
_QUERY_VALUE = rf"(?:(?!{_PCT}(?:26|23))[^&#\s\"'<>])+"
_PATH_REST = rf"(?:(?!{_PCT}(?:3[fF]|26|23))[^?&#\s\"'<>])+"
# Query parameters that are credentials: Workflows/SAS signature, function keys, the
# invitation redemption ticket, OAuth values passed in URLs.
_QUERY_SECRETS = r"(?:sig|signature|code|ticket|client_secret|access_token|id_token|refresh_token)"
# Names whose value is a credential wherever it appears (form bodies, JSON, headers, env).
_CREDENTIAL_NAMES = (
    r"[\w-]*(?:secret|password|passwd|client_assertion|access_token|refresh_token|id_token|"
    r"api[_-]?key|identity[_-]header)[\w-]*"
)
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization headers and token responses: "Bearer eyJ...".
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*"), rf"\1 {REDACTED}"),
    # Any JWT (three base64url segments, header starting {"...): access, ID and MI tokens.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Office 365 connector ("Incoming Webhook") URLs: the secret is in the path, so the
    # whole path after /webhookb2/ (or the legacy outlook.office.com/webhook/) goes.
    (
        re.compile(
            rf"(?i)((?:webhook\.office\.com|outlook\.office(?:365)?\.com){_SLASH}"
            rf"webhook(?:b2)?{_SLASH}){_PATH_REST}"
        ),
        rf"\1{REDACTED}",
    ),
    # A password in a URL's userinfo (scheme://user:password@host).
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@\"'<>]+:)[^@/\s\"'<>]+@"), rf"\1{REDACTED}@"),
    # Credential query parameters, at any encoding level (a number is kept: the error page's
    # ``?code=700016`` is an AADSTS code, not a credential).
    (
        re.compile(
            rf"(?i)({_QUERY_SEP}{_QUERY_SECRETS}{_EQUALS})"
            rf"(?!\d+(?![^&#\s\"'<>%]))({_QUERY_VALUE})"
        ),
        rf"\1{REDACTED}",
    ),
    # Storage connection strings.
    (
        re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey)=[^;\s\"']+"),
        rf"\1={REDACTED}",
    ),
    # Entra client secret values have a recognisable shape: 3 chars, a digit, "Q~", 31-34 more.
    (
        re.compile(
            r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])"
        ),
        REDACTED,
    ),
    # "key": "a value, spaces and all" / 'key': '...' (JSON, Python reprs of dicts/headers).
    (
        re.compile(rf"(?i)(\b{_CREDENTIAL_NAMES}[\"']?\s*[:=]\s*)([\"'])(?:\\.|(?!\2).)*\2"),
        rf"\1\2{REDACTED}\2",
    ),
    # key=value / Key: value, unquoted (form bodies, env, header lines).
    (
        re.compile(rf"(?i)(\b{_CREDENTIAL_NAMES}[\"']?\s*[:=]\s*)(?![\"'])[^\s\"'&,;}}]+"),
        rf"\1{REDACTED}",
    ),
)

# Characters that would let caller-supplied text start a new log line or rewrite the
# terminal: C0 controls but tab, DEL, C1 controls, and the Unicode line separators.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def redact(text: str) -> str:
    """Return ``text`` with every credential-looking value replaced by ``[REDACTED]``."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def escape_controls(text: str) -> str:
    """Line breaks and control characters as visible escapes (``\\n``, ``\\x1b``): a log
    line cannot be split or forged by text a caller supplied."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _clean(text: str) -> str:
    return escape_controls(redact(text))


class RedactedError(Exception):
    """Stands in for a logged exception whose message contained a credential."""


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        # Bad %-args: leave the record as is so logging reports it the usual way at emit time
        # instead of the log call itself raising.
        return
    cleaned = _clean(message)
    if cleaned != message:
        record.msg = cleaned
        record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        exc_type, exc, tb = record.exc_info
        try:
            text = str(exc)
        except Exception:  # an exception whose __str__ fails: logging reports it as is
            text = ""
        cleaned_exc = _clean(text)
        if cleaned_exc != text:
            name = getattr(exc_type, "__name__", "Exception")
            replacement = RedactedError(f"{name}: {cleaned_exc}")
            record.exc_info = (RedactedError, replacement, tb)
            record.exc_text = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)


class RedactSecretsFilter(logging.Filter):
    """A logging filter that scrubs credentials from the message and any exception text
    (and escapes control characters, so caller-supplied text cannot forge a line).

    Attach it to a handler to clean everything that handler emits, whatever logger it came
    from; :func:`install_log_redaction` does it process-wide at record creation instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


# The client tenant of the trigger being handled, for log records created inside its span.
_client_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "xtap_client_tenant", default=None
)
_installed_factory: Callable[..., logging.LogRecord] | None = None


def install_log_redaction() -> None:
    """Redact every log record when it is created and tag it with the current client tenant.

    A record factory rather than a filter on some handlers: the Functions worker, the Azure
    Monitor exporter and the CLI each add handlers of their own, at different times, and all
    of them must see the cleaned record. Idempotent.
    """
    global _installed_factory
    current = logging.getLogRecordFactory()
    if current is _installed_factory:
        return
    previous = current

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        tenant = _client_tenant.get()
        if tenant is not None and not hasattr(record, CLIENT_TENANT_ATTRIBUTE):
            setattr(record, CLIENT_TENANT_ATTRIBUTE, tenant)
        return record

    logging.setLogRecordFactory(factory)
    _installed_factory = factory


# ------------------------------------------------------------------------------ noise
# Client libraries that log every request at INFO: httpx writes each webhook URL, the
# azure-core HTTP logging policy each storage poll (thousands of lines an hour, billed by
# Application Insights), azure-identity each token. WARNING keeps their failures.
NOISY_LOGGERS = ("httpx", "httpcore", "azure", "msal")


def quiet_noisy_loggers() -> None:
    """Put the chatty client libraries at WARNING, unless a level was set on purpose."""
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


# ------------------------------------------------------------------------------ export
_azure_monitor_configured = False


def _sdk_already_configured() -> bool:
    # The Functions Python worker configures Azure Monitor itself when
    # PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is set; configuring twice double-exports.
    provider = trace.get_tracer_provider()
    return type(provider).__module__.startswith("opentelemetry.sdk")


def configure_telemetry(
    env: Mapping[str, str] | None = None,
    *,
    logger_name: str = "shared",
    configure: Callable[..., None] | None = None,
) -> bool:
    """Set up log redaction and, when a connection string is present, Azure Monitor export.

    ``env`` defaults to ``os.environ``. ``logger_name`` is the logger whose records are
    exported as App Insights traces (the application package, so the host's own log lines,
    which it exports itself, are not sent twice). ``configure`` replaces
    ``azure.monitor.opentelemetry.configure_azure_monitor`` (tests). Returns True when export
    is on. Safe to call more than once per process.
    """
    global _azure_monitor_configured
    install_log_redaction()
    quiet_noisy_loggers()
    source = os.environ if env is None else env
    connection_string = (source.get(CONNECTION_STRING_SETTING) or "").strip()
    if not connection_string:
        return False
    if _azure_monitor_configured:
        return True
    if configure is None:
        if _sdk_already_configured():
            _azure_monitor_configured = True
            return True
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure = configure_azure_monitor
    configure(connection_string=connection_string, logger_name=logger_name)
    _azure_monitor_configured = True
    return True


# ------------------------------------------------------------------------------ spans
_AttributeValue = str | bool | int | float


def _attribute_value(value: object) -> _AttributeValue:
    if isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def _span_attributes(client_tenant_id: str | None, attrs: Mapping[str, object]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if client_tenant_id:
        attributes[CLIENT_TENANT_ATTRIBUTE] = client_tenant_id.lower()
    for key, value in attrs.items():
        if value is None:
            continue
        name = key if "." in key else f"xtap.{key}"
        if isinstance(value, list | tuple):
            attributes[name] = [_attribute_value(item) for item in value]
        else:
            attributes[name] = _attribute_value(value)
    return attributes


@contextmanager
def trigger_span(
    name: str, client_tenant_id: str | None = None, **attrs: object
) -> Iterator[trace.Span]:
    """One span for one trigger invocation (``with trigger_span("queue.check_client", tid):``).

    ``client_tenant_id`` becomes the ``xtap.client_tenant_id`` attribute (lower-cased GUID);
    other keyword attributes are added as ``xtap.<key>`` (keys with a dot are kept as given),
    ``None`` values skipped, strings redacted. An exception escaping the block is recorded on
    the span, which is marked as an error, and re-raised.
    """
    tracer = trace.get_tracer(TRACER_NAME)
    token = _client_tenant.set(client_tenant_id.lower() if client_tenant_id else None)
    try:
        with tracer.start_as_current_span(
            name, attributes=_span_attributes(client_tenant_id, attrs)
        ) as span:
            yield span
    finally:
        _client_tenant.reset(token)


def current_client_tenant() -> str | None:
    """The client tenant of the innermost :func:`trigger_span`, if any."""
    return _client_tenant.get()


# ------------------------------------------------------------------------------ metrics
CHANGE_TO_ALERT_METRIC = "xtap.change_to_alert_seconds"
SOURCE_ATTRIBUTE = "xtap.source"
LATENCY_BASIS_ATTRIBUTE = "xtap.latency_basis"
# Buckets from seconds to a day: an audit event is usually minutes late, a posture change
# is seen within a sweep interval, an outage of the watcher can stretch it to hours.
CHANGE_TO_ALERT_BUCKETS = (
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0
)
_histograms: dict[int, Any] = {}


def change_to_alert_histogram(provider: metrics.MeterProvider | None = None) -> Any:
    """The ``xtap.change_to_alert_seconds`` histogram of ``provider`` (default: the global
    one, a no-op until Azure Monitor export configures the SDK; the API's proxy binds to the
    real provider once it is set)."""
    source = provider if provider is not None else metrics.get_meter_provider()
    key = id(source)
    histogram = _histograms.get(key)
    if histogram is None:
        histogram = source.get_meter(TRACER_NAME).create_histogram(
            CHANGE_TO_ALERT_METRIC,
            unit="s",
            description="From a change (audit activityDateTime, or the previous check for "
            "posture changes) to the alert xtap-watch created about it",
            explicit_bucket_boundaries_advisory=list(CHANGE_TO_ALERT_BUCKETS),
        )
        _histograms[key] = histogram
    return histogram


def record_change_to_alert(
    seconds: float,
    source: str,
    *,
    basis: str | None = None,
    provider: metrics.MeterProvider | None = None,
) -> None:
    """Record one change → alert latency, tagged with its source (``audit`` | ``posture``)
    and basis (``audit_event``: exact; ``previous_check``: an upper bound). Never raises:
    a metric must not cost an alert."""
    attributes = {SOURCE_ATTRIBUTE: source}
    if basis:
        attributes[LATENCY_BASIS_ATTRIBUTE] = basis
    try:
        change_to_alert_histogram(provider).record(max(0.0, float(seconds)), attributes)
    except Exception:  # a broken exporter is logged by OpenTelemetry; alerts go on
        logging.getLogger(__name__).debug("change_to_alert metric not recorded", exc_info=True)


__all__ = [
    "CHANGE_TO_ALERT_METRIC",
    "CLIENT_TENANT_ATTRIBUTE",
    "REDACTED",
    "RedactSecretsFilter",
    "RedactedError",
    "configure_telemetry",
    "current_client_tenant",
    "escape_controls",
    "install_log_redaction",
    "quiet_noisy_loggers",
    "record_change_to_alert",
    "redact",
    "trigger_span",
]
