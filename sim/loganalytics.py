"""Simulated Log Analytics query API (a TEST DOUBLE of api.loganalytics.io).

``POST /loganalytics/v1/workspaces/{workspaceId}/query`` with ``{"query", "timespan"}``
answers ``{"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [...]}]}``
— what azure-monitor-query's ``LogsQueryClient(credential, endpoint=base_url + "/loganalytics")``
reads. The workspace belongs to one simulated tenant (``logAnalyticsWorkspaceId`` in the
scenario); its ``SigninLogs`` and ``AuditLogs`` tables are derived from that tenant's Graph
sign-ins and directory audits, so both sources tell the same story.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sim.kql import KqlError, compile_query
from sim.odata import parse_datetime
from sim.state import Tenant

SIGNIN_COLUMNS: list[tuple[str, str]] = [
    ("TenantId", "string"),
    ("TimeGenerated", "datetime"),
    ("CreatedDateTime", "datetime"),
    ("Id", "string"),
    ("CorrelationId", "string"),
    ("OperationName", "string"),
    ("Category", "string"),
    ("ResultType", "string"),
    ("ResultSignature", "string"),
    ("ResultDescription", "string"),
    ("UserPrincipalName", "string"),
    ("UserDisplayName", "string"),
    ("UserId", "string"),
    ("UserType", "string"),
    ("AppId", "string"),
    ("AppDisplayName", "string"),
    ("ResourceDisplayName", "string"),
    ("ResourceIdentity", "string"),
    ("HomeTenantId", "string"),
    ("ResourceTenantId", "string"),
    ("CrossTenantAccessType", "string"),
    ("IPAddress", "string"),
    ("ClientAppUsed", "string"),
    ("ConditionalAccessStatus", "string"),
    ("IsInteractive", "bool"),
    ("Status", "dynamic"),
    ("LocationDetails", "dynamic"),
    ("DeviceDetail", "dynamic"),
    ("Type", "string"),
]

AUDIT_COLUMNS: list[tuple[str, str]] = [
    ("TenantId", "string"),
    ("TimeGenerated", "datetime"),
    ("ActivityDateTime", "datetime"),
    ("Id", "string"),
    ("CorrelationId", "string"),
    ("OperationName", "string"),
    ("ActivityDisplayName", "string"),
    ("Category", "string"),
    ("Result", "string"),
    ("ResultReason", "string"),
    ("ResultDescription", "string"),
    ("LoggedByService", "string"),
    ("AADOperationType", "string"),
    ("InitiatedBy", "dynamic"),
    ("TargetResources", "dynamic"),
    ("AdditionalDetails", "dynamic"),
    ("Identity", "string"),
    ("Type", "string"),
]

SCHEMAS = {"SigninLogs": SIGNIN_COLUMNS, "AuditLogs": AUDIT_COLUMNS}
# Hidden per-row value behind KQL's ingestion_time(); never returned as a column.
INGESTION_KEY = "__ingestion_time"


def _t(value: Any) -> datetime | None:
    try:
        return parse_datetime(str(value)) if value else None
    except ValueError:
        return None


def _ingested(tenant: Tenant, record: dict[str, Any], time_field: str) -> datetime | None:
    """TimeGenerated: when Log Analytics received the row (Entra FAQ), not the event time."""
    return tenant.log_ingested.get(str(record.get("id"))) or _t(record.get(time_field))


def signin_rows(tenant: Tenant, now: datetime | None = None) -> list[dict[str, Any]]:
    rows = []
    for s in tenant.sign_ins:
        ingested = _ingested(tenant, s, "createdDateTime")
        if now is not None and ingested is not None and ingested > now:
            continue  # not ingested yet
        status = s.get("status") or {}
        code = int(status.get("errorCode") or 0)
        rows.append(
            {
                "TenantId": tenant.id,
                "TimeGenerated": ingested,
                INGESTION_KEY: ingested,
                "CreatedDateTime": _t(s.get("createdDateTime")),
                "Id": s.get("id"),
                "CorrelationId": s.get("correlationId"),
                "OperationName": "Sign-in activity",
                "Category": "SignInLogs",
                "ResultType": str(code),
                "ResultSignature": "SUCCESS" if code == 0 else "None",
                "ResultDescription": status.get("failureReason") or "",
                "UserPrincipalName": s.get("userPrincipalName"),
                "UserDisplayName": s.get("userDisplayName"),
                "UserId": s.get("userId"),
                "UserType": str(s.get("userType") or "").capitalize() or None,
                "AppId": s.get("appId"),
                "AppDisplayName": s.get("appDisplayName"),
                "ResourceDisplayName": s.get("resourceDisplayName"),
                "ResourceIdentity": s.get("resourceId"),
                "HomeTenantId": s.get("homeTenantId"),
                "ResourceTenantId": s.get("resourceTenantId"),
                "CrossTenantAccessType": s.get("crossTenantAccessType"),
                "IPAddress": s.get("ipAddress"),
                "ClientAppUsed": s.get("clientAppUsed"),
                "ConditionalAccessStatus": s.get("conditionalAccessStatus"),
                "IsInteractive": bool(s.get("isInteractive")),
                "Status": status,
                "LocationDetails": s.get("location"),
                "DeviceDetail": s.get("deviceDetail"),
                "Type": "SigninLogs",
            }
        )
    return rows


def audit_rows(tenant: Tenant, now: datetime | None = None) -> list[dict[str, Any]]:
    rows = []
    for e in tenant.audits:
        ingested = _ingested(tenant, e, "activityDateTime")
        if now is not None and ingested is not None and ingested > now:
            continue  # not ingested yet
        initiated = e.get("initiatedBy") or {}
        identity = None
        if initiated.get("user"):
            identity = initiated["user"].get("userPrincipalName") or initiated["user"].get(
                "displayName"
            )
        elif initiated.get("app"):
            identity = initiated["app"].get("displayName")
        moment = _t(e.get("activityDateTime"))
        rows.append(
            {
                "TenantId": tenant.id,
                "TimeGenerated": ingested,
                INGESTION_KEY: ingested,
                "ActivityDateTime": moment,
                "Id": e.get("id"),
                "CorrelationId": e.get("correlationId"),
                "OperationName": e.get("activityDisplayName"),
                "ActivityDisplayName": e.get("activityDisplayName"),
                "Category": e.get("category"),
                "Result": e.get("result"),
                "ResultReason": e.get("resultReason"),
                "ResultDescription": e.get("resultReason"),
                "LoggedByService": e.get("loggedByService"),
                "AADOperationType": e.get("operationType"),
                "InitiatedBy": initiated,
                "TargetResources": e.get("targetResources") or [],
                "AdditionalDetails": e.get("additionalDetails") or [],
                "Identity": identity,
                "Type": "AuditLogs",
            }
        )
    return rows


_DURATION_RE = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def _duration(text: str) -> timedelta:
    match = _DURATION_RE.match(text)
    if match is None or text in {"P", "PT"}:
        raise KqlError(f"Invalid timespan {text!r}: expected an ISO-8601 duration or interval")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )


def parse_timespan(value: Any, now: datetime) -> tuple[datetime, datetime] | None:
    """ISO-8601 ``PT86400.0S`` | ``start/end`` | ``start/PT1H`` | ``PT1H/end`` → (start, end)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise KqlError("timespan must be an ISO-8601 string")
    try:
        if "/" in value:
            first, second = value.split("/", 1)
            if first.startswith("P"):
                end = parse_datetime(second)
                return end - _duration(first), end
            start = parse_datetime(first)
            if second.startswith("P"):
                return start, start + _duration(second)
            return start, parse_datetime(second)
        return now - _duration(value), now
    except ValueError as exc:
        raise KqlError(f"Invalid timespan {value!r}") from exc


def _cell(value: Any, col_type: str) -> Any:
    if value is None:
        return None
    if col_type == "datetime" and isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if col_type == "dynamic":
        return json.dumps(value, separators=(",", ":"))
    return value


PARTIAL_LIMIT_MESSAGE = (
    "Query result set has exceeded the internal record count limit {limit} records"
    " (E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)"
)


def run_query(tenant: Tenant, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Execute a query against one tenant's logs; raises KqlError for a 400.

    Tables the workspace does not hold (tenant flag ``logAnalyticsTables``) fail as Log
    Analytics does (SEM0100); more rows than ``logAnalyticsRowLimit`` give a partial answer:
    the rows up to the limit and a ``PartialError`` beside them (HTTP 200).
    """
    query_text = body.get("query")
    if not isinstance(query_text, str):
        raise KqlError("The request body needs a 'query' string")
    window = parse_timespan(body.get("timespan"), now)
    present = set(tenant.flags.get("logAnalyticsTables") or SCHEMAS)
    schemas = {name: cols for name, cols in SCHEMAS.items() if name in present}
    query = compile_query(query_text, schemas, now)
    rows = signin_rows(tenant, now) if query.table == "SigninLogs" else audit_rows(tenant, now)
    if window is not None:
        start, end = window
        rows = [
            r for r in rows if r["TimeGenerated"] is not None and start <= r["TimeGenerated"] <= end
        ]
    result_rows, columns = query.run(rows, list(SCHEMAS[query.table]))
    limit = int(tenant.flags.get("logAnalyticsRowLimit") or 500_000)
    partial = len(result_rows) > limit
    answer: dict[str, Any] = {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": [{"name": name, "type": col_type} for name, col_type in columns],
                "rows": [
                    [_cell(row.get(name), col_type) for name, col_type in columns]
                    for row in result_rows[:limit]
                ],
            }
        ]
    }
    if partial:
        answer["error"] = partial_error(PARTIAL_LIMIT_MESSAGE.format(limit=limit))
    return answer


def partial_error(message: str) -> dict[str, Any]:
    """The ``error`` beside the tables of a partially successful query (HTTP 200)."""
    return {
        "code": "PartialError",
        "message": "There were some errors when processing your query.",
        "details": [
            {
                "code": "EngineError",
                "message": "Something went wrong processing your query on the server.",
                "innererror": {
                    "code": "-2133196797",
                    "message": message,
                    "severity": 2,
                    "severityName": "Error",
                },
            }
        ],
    }


def la_error(status: int, code: str, message: str, inner_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "code": code, "correlationId": str(uuid.uuid4())}
    if inner_code:
        error["innererror"] = {"code": inner_code, "message": message}
    return {"error": error}


def semantic_error(message: str, sem_code: str = "SEM0100") -> dict[str, Any]:
    """Log Analytics' 400 for a query that parses but names what does not exist."""
    return {
        "error": {
            "message": "The request had some invalid properties",
            "code": "BadArgumentError",
            "correlationId": str(uuid.uuid4()),
            "innererror": {
                "code": "SemanticError",
                "message": "A semantic error occurred.",
                "innererror": {"code": sem_code, "message": message},
            },
        }
    }
