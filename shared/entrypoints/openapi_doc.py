"""The OpenAPI 3.0 document of the support API, built from the validation constants.

``shared/schemas/openapi.json`` is this document, checked in and served by
``GET /api/v1/openapi.json``; a unit test keeps the two identical. After changing the
API, regenerate it with::

    python -m shared.entrypoints.openapi_doc > shared/schemas/openapi.json
"""

from __future__ import annotations

import json
from typing import Any

from shared.domain.messages import GUID_PATTERN
from shared.domain.reinvite import (
    EMAIL_PATTERN,
    MAX_EMAIL_LENGTH,
    MAX_REASON_LENGTH,
    MAX_URL_LENGTH,
    REDIRECT_URL_PATTERN,
)
from shared.domain.report import STATES, VERDICTS
from shared.domain.whatif import MAX_PARTNER_PROPOSALS
from shared.services.access_reviews import REVIEW_JOB_ID_PATTERN

_JSON = "application/json"
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_STATE_REF = {"$ref": "#/components/schemas/JobState"}
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_DATE_TIME = {"type": "string", "format": "date-time"}
_POLICY_PROPOSAL = {
    "type": "object",
    "description": "A crossTenantAccessPolicyConfigurationDefault or ...Partner as Graph "
    "returns it, or only the properties to change.",
    "properties": {
        name: {"type": "object", "nullable": True}
        for name in (
            "b2bCollaborationInbound",
            "b2bCollaborationOutbound",
            "b2bDirectConnectInbound",
            "b2bDirectConnectOutbound",
            "inboundTrust",
            "automaticUserConsentSettings",
        )
    },
}


def _err(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {_JSON: {"schema": _ERROR_REF}},
    }
    if headers:
        response["headers"] = headers
    return response


def _ok(description: str, schema: str, location: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if location:
        response["headers"] = {
            "Location": {
                "description": "The job's status URL.",
                "required": True,
                "schema": _STRING,
            }
        }
    return response


_COMMON = {
    "401": _err(
        "No usable X-MS-CLIENT-PRINCIPAL (App Service Authentication did not sign the "
        "caller in), or a principal from another tenant.",
        {"WWW-Authenticate": {"description": "Authentication challenge.", "schema": _STRING}},
    ),
    "403": _err(
        "The caller lacks the app role configured in XTAP_API_ROLE (default Reinvite.Request)."
    ),
    "429": _err(
        "Per-caller rate limit (30 requests a minute by default).",
        {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    ),
    "503": _err("Storage or Microsoft Graph is unavailable; retry later."),
}


def _responses(extra: dict[str, Any], forbidden: str | None = None) -> dict[str, Any]:
    common = dict(_COMMON)
    if forbidden is not None:
        common["403"] = _err(forbidden)
    return dict(sorted({**extra, **common}.items()))


def _path_param(name: str, pattern: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
    }


_STEP = {
    "type": "object",
    "required": ["at", "state", "detail"],
    "properties": {"at": _DATE_TIME, "state": _STATE_REF, "detail": _STRING},
}
_JOB_ERROR = {
    "type": "object",
    "nullable": True,
    "properties": {
        "status": {"type": "integer"},
        "code": _STRING,
        "message": _STRING,
        "explanation": _STRING,
        "remediation": _STRING,
    },
}

_DESCRIPTION = (
    "Re-invite B2B guests (invitation redemption reset), ensure guest access reviews and "
    "read client posture. App Service Authentication (Microsoft Entra) sits in front of "
    "the Function App: callers send `Authorization: Bearer <token>` for the API's app "
    "registration; App Service validates it and passes the claims to the function in "
    "`X-MS-CLIENT-PRINCIPAL`, which the function checks for the app role (XTAP_API_ROLE, "
    "default `Reinvite.Request`). The portfolio report also admits the read-only role "
    "XTAP_REPORT_ROLE (default `Report.Read`). Only `GET /api/v1/health` is anonymous."
)

_SCHEMAS: dict[str, Any] = {
    "ReinviteRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["reason"],
        "description": "Exactly one of userId or email.",
        "oneOf": [{"required": ["userId"]}, {"required": ["email"]}],
        "properties": {
            "userId": {
                "type": "string",
                "pattern": GUID_PATTERN,
                "description": "The guest's object ID in the vendor tenant.",
            },
            "email": {
                "type": "string",
                "maxLength": MAX_EMAIL_LENGTH,
                "pattern": EMAIL_PATTERN,
                "description": "The guest's mail. Letters, digits and . _ + - before the @ "
                "only; anything else: use userId.",
            },
            "reason": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_REASON_LENGTH,
                "description": "Why (recorded in the ledger and the alert).",
            },
            "sendInvitationMessage": {"type": "boolean", "default": False},
            "redirectUrl": {
                "type": "string",
                "maxLength": MAX_URL_LENGTH,
                "pattern": REDIRECT_URL_PATTERN,
                "description": "Where the guest lands after redemption (https only, and only "
                "the vendor's hosts: XTAP_REINVITE_REDIRECT_HOSTS). "
                "Default: XTAP_REINVITE_REDIRECT_URL.",
            },
        },
    },
    "JobState": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
    "ReinviteAccepted": {
        "type": "object",
        "required": ["jobId", "state", "statusUrl", "existing", "job"],
        "properties": {
            "jobId": _STRING,
            "state": _STATE_REF,
            "statusUrl": _STRING,
            "existing": {"type": "boolean"},
            "job": {"$ref": "#/components/schemas/ReinviteJob"},
        },
    },
    "ReinviteJob": {
        "type": "object",
        "required": [
            "jobId",
            "state",
            "userId",
            "reason",
            "requestedBy",
            "requestedAt",
            "updatedAt",
            "attempts",
            "steps",
        ],
        "properties": {
            "jobId": _STRING,
            "state": _STATE_REF,
            "userId": _STRING,
            "email": _NULLABLE_STRING,
            "displayName": _NULLABLE_STRING,
            "client": {
                "type": "object",
                "nullable": True,
                "properties": {"tenantId": _STRING, "name": _NULLABLE_STRING},
            },
            "reason": _STRING,
            "sendInvitationMessage": {"type": "boolean"},
            "redirectUrl": _NULLABLE_STRING,
            "requestedBy": _STRING,
            "requesterEmail": _NULLABLE_STRING,
            "requestedAt": _DATE_TIME,
            "updatedAt": _DATE_TIME,
            "attempts": {"type": "integer", "minimum": 0},
            "invitationId": _NULLABLE_STRING,
            "statusUrl": _STRING,
            "steps": {"type": "array", "items": _STEP},
            "error": _JOB_ERROR,
        },
    },
    "AccessReviewAccepted": {
        "type": "object",
        "required": ["jobId", "state", "statusUrl", "job"],
        "properties": {
            "jobId": _STRING,
            "state": _STATE_REF,
            "statusUrl": _STRING,
            "job": {"$ref": "#/components/schemas/AccessReviewJob"},
        },
    },
    "AccessReviewJob": {
        "type": "object",
        "required": [
            "jobId",
            "state",
            "tenantId",
            "requestedBy",
            "requestedAt",
            "updatedAt",
            "steps",
        ],
        "properties": {
            "jobId": _STRING,
            "state": _STATE_REF,
            "tenantId": _STRING,
            "client": _NULLABLE_STRING,
            "displayName": _NULLABLE_STRING,
            "definitionId": _NULLABLE_STRING,
            "groupId": _NULLABLE_STRING,
            "created": {"type": "boolean"},
            "requestedBy": _STRING,
            "requestedAt": _DATE_TIME,
            "updatedAt": _DATE_TIME,
            "steps": {"type": "array", "items": _STEP},
            "error": _JOB_ERROR,
        },
    },
    "Posture": {
        "type": "object",
        "required": ["tenantId", "verdict"],
        "additionalProperties": True,
        "properties": {
            "tenantId": _STRING,
            "verdict": {"type": "string", "description": "ALLOWED | LIMITED | BLOCKED | UNKNOWN"},
            "checkedAt": _DATE_TIME,
            "findings": {"type": "array", "items": {"type": "object"}},
        },
    },
    "PortfolioReport": {
        "type": "object",
        "required": ["generatedAt", "clients", "totals", "states", "findings", "rows"],
        "properties": {
            "generatedAt": _DATE_TIME,
            "vendor": _STRING,
            "clients": {"type": "integer", "minimum": 0},
            "totals": {
                "type": "object",
                "description": "Clients per verdict (every verdict listed, zeros included).",
                "required": list(VERDICTS),
                "properties": {v: {"type": "integer", "minimum": 0} for v in VERDICTS},
            },
            "states": {
                "type": "object",
                "description": "Clients per alert state.",
                "properties": {s: {"type": "integer", "minimum": 0} for s in STATES},
            },
            "findings": {
                "type": "object",
                "description": "Clients per finding code.",
                "additionalProperties": {"type": "integer"},
            },
            "rows": {"type": "array", "items": {"$ref": "#/components/schemas/ReportRow"}},
        },
    },
    "ReportRow": {
        "type": "object",
        "required": ["tenantId", "name", "verdict", "state", "consent", "findings"],
        "properties": {
            "tenantId": _STRING,
            "name": _STRING,
            "verdict": {"type": "string", "enum": list(VERDICTS)},
            "state": {"type": "string", "enum": list(STATES)},
            "since": {**_DATE_TIME, "nullable": True},
            "consent": {"type": "string", "enum": ["unknown", "granted", "missing"]},
            "checkedAt": {**_DATE_TIME, "nullable": True},
            "reason": _NULLABLE_STRING,
            "findings": {"type": "array", "items": {"$ref": "#/components/schemas/ReportFinding"}},
            "vendorFindings": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ReportFinding"},
            },
            "signins": {"type": "object", "nullable": True},
            "acknowledgement": {
                "type": "object",
                "description": "Present only when the client's drift is acknowledged.",
                "properties": {
                    "by": _NULLABLE_STRING,
                    "reason": _NULLABLE_STRING,
                    "until": {**_DATE_TIME, "nullable": True},
                    "at": {**_DATE_TIME, "nullable": True},
                    "active": {"type": "boolean"},
                },
            },
        },
    },
    "ReportFinding": {
        "type": "object",
        "required": ["code", "severity", "runbook"],
        "properties": {
            "code": _STRING,
            "severity": _STRING,
            "title": _STRING,
            "message": _STRING,
            "runbook": {"type": "string", "description": "The finding's runbook page."},
        },
    },
    "WhatIfRequest": {
        "type": "object",
        "additionalProperties": False,
        "description": "A proposed vendor default policy, partner entries, or both. Each "
        "top-level property given replaces the current one whole (as a PATCH would); "
        "properties not given keep their current value; properties that are not part of "
        "a cross-tenant access policy are refused.",
        "properties": {
            "default": {**_POLICY_PROPOSAL, "nullable": True},
            "partners": {
                "type": "array",
                "maxItems": MAX_PARTNER_PROPOSALS,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["tenantId", "policy"],
                    "properties": {
                        "tenantId": {"type": "string", "pattern": GUID_PATTERN},
                        "policy": {
                            **_POLICY_PROPOSAL,
                            "nullable": True,
                            "description": "The proposed entry; null deletes it.",
                        },
                    },
                },
            },
        },
    },
    "WhatIfResult": {
        "type": "object",
        "required": ["clients", "newlyBroken", "newlyRecovered", "changed", "unchanged"],
        "properties": {
            "clients": {"type": "integer", "minimum": 0},
            "newlyBroken": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/WhatIfClient"},
            },
            "newlyRecovered": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/WhatIfClient"},
            },
            "changed": {"type": "array", "items": {"$ref": "#/components/schemas/WhatIfClient"}},
            "unchanged": {"type": "integer", "minimum": 0},
        },
    },
    "WhatIfClient": {
        "type": "object",
        "required": ["tenantId", "name", "change", "brokenBefore", "brokenAfter", "added"],
        "properties": {
            "tenantId": _STRING,
            "name": _STRING,
            "change": {"type": "string", "enum": ["newly_broken", "newly_recovered", "changed"]},
            "brokenBefore": {"type": "boolean"},
            "brokenAfter": {"type": "boolean"},
            "added": {"type": "array", "items": {"type": "object"}},
            "removed": {"type": "array", "items": _STRING},
            "findingsAfter": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
            # degraded: an alert channel cannot work (e.g. an unresolved Key Vault
            # reference); the app runs and alerts on the other channel.
            "channels": {"type": "object", "additionalProperties": _STRING},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": _STRING, "message": _STRING, "field": _STRING},
            }
        },
    },
}


def _paths() -> dict[str, Any]:
    return {
        "/api/v1/reinvites": {
            "post": {
                "operationId": "createReinvite",
                "summary": "Queue an invitation redemption reset for a registered client's guest",
                "description": (
                    "Looks the user up in the vendor tenant (by object ID, or by `mail`), "
                    "refuses members and guests whose home domain is not a registered "
                    "client's, then queues the reset and answers 202 with the job. A second "
                    "request for the same user within 15 minutes returns the existing job "
                    "(`existing: true`) unless that job failed."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        _JSON: {"schema": {"$ref": "#/components/schemas/ReinviteRequest"}}
                    },
                },
                "responses": _responses(
                    {
                        "202": _ok(
                            "Queued (or the existing job for this user).",
                            "ReinviteAccepted",
                            location=True,
                        ),
                        "400": _err(
                            "Invalid body, or a redirectUrl to a host that is not the "
                            "vendor's; `error.field` names the field."
                        ),
                        "404": _err("No such user in the vendor tenant."),
                        "409": _err(
                            "Several accounts share that mail (re-invite by userId), a "
                            "concurrent request for the same user, or a repeat of the "
                            "pending job with other parameters (conflicting_request)."
                        ),
                        "413": _err("Body larger than 16 KiB."),
                        "415": _err("Body is not application/json (UTF-8)."),
                        "502": _err("Microsoft Graph refused the lookup."),
                    }
                ),
            }
        },
        "/api/v1/reinvites/{jobId}": {
            "get": {
                "operationId": "getReinvite",
                "summary": "A re-invite job and its step history",
                "parameters": [_path_param("jobId", GUID_PATTERN)],
                "responses": _responses(
                    {
                        "200": _ok("The job.", "ReinviteJob"),
                        "400": _err("jobId is not a GUID."),
                        "404": _err("No such job."),
                    }
                ),
            }
        },
        "/api/v1/clients/{tenantId}/posture": {
            "get": {
                "operationId": "getClientPosture",
                "summary": "The client's latest outbound posture verdict and its evidence",
                "parameters": [_path_param("tenantId", GUID_PATTERN)],
                "responses": _responses(
                    {
                        "200": _ok("The latest evaluated posture.", "Posture"),
                        "400": _err("tenantId is not a GUID."),
                        "404": _err("Not a registered client, or not checked yet."),
                    }
                ),
            }
        },
        "/api/v1/clients/{tenantId}/access-review": {
            "post": {
                "operationId": "ensureAccessReview",
                "summary": "Queue 'ensure the recurring access review of this client's guests'",
                "description": (
                    "Finds the client's review definition by name or creates it (never a "
                    "second one). No request body. Follow the job at statusUrl."
                ),
                "parameters": [_path_param("tenantId", GUID_PATTERN)],
                "responses": _responses(
                    {
                        "202": _ok("Queued.", "AccessReviewAccepted", location=True),
                        "400": _err("tenantId is not a GUID."),
                        "404": _err("Not a registered client."),
                        "409": _err(
                            "Access reviews are not configured "
                            "(XTAP_ACCESS_REVIEW_REVIEWERS is empty)."
                        ),
                    }
                ),
            }
        },
        "/api/v1/access-reviews/{jobId}": {
            "get": {
                "operationId": "getAccessReview",
                "summary": "An access-review job and its step history",
                "parameters": [_path_param("jobId", REVIEW_JOB_ID_PATTERN)],
                "responses": _responses(
                    {
                        "200": _ok("The job.", "AccessReviewJob"),
                        "400": _err("jobId is not an access-review job ID."),
                        "404": _err("No such job."),
                    }
                ),
            }
        },
        "/api/v1/report": {
            "get": {
                "operationId": "getPortfolioReport",
                "summary": "The portfolio report: every registered client, totals per verdict",
                "description": (
                    "HTML by default (a self-contained page: sort and filter in the page, "
                    "printable); JSON when `Accept` prefers `application/json`. Readable "
                    "with the app role XTAP_REPORT_ROLE (default `Report.Read`) or the "
                    "support role XTAP_API_ROLE."
                ),
                "responses": _responses(
                    {
                        "200": {
                            "description": "The report.",
                            "headers": {
                                "Vary": {"description": "Accept.", "schema": _STRING},
                            },
                            "content": {
                                "text/html": {"schema": {"type": "string"}},
                                _JSON: {"schema": {"$ref": "#/components/schemas/PortfolioReport"}},
                            },
                        },
                        "406": _err("`Accept` allows neither text/html nor application/json."),
                    },
                    forbidden="The caller holds neither the report role (XTAP_REPORT_ROLE, "
                    "default Report.Read) nor the support role (XTAP_API_ROLE).",
                ),
            }
        },
        "/api/v1/whatif": {
            "post": {
                "operationId": "whatIfVendorPolicy",
                "summary": "Which clients a proposed vendor policy would newly break or recover",
                "description": (
                    "Runs the vendor-side checks of every registered client against the "
                    "current vendor policy (read from Graph) and against the proposal, and "
                    "lists the clients that would newly break (a HIGH vendor-side finding: "
                    "guests refused, looping on MFA registration, or not invitable), newly "
                    "recover, or change otherwise. Read-only: nothing is written to Graph."
                ),
                "requestBody": {
                    "required": True,
                    "content": {_JSON: {"schema": {"$ref": "#/components/schemas/WhatIfRequest"}}},
                },
                "responses": _responses(
                    {
                        "200": _ok("The comparison.", "WhatIfResult"),
                        "400": _err(
                            "Invalid body, or a partner tenant that is not a registered "
                            "client; `error.field` names the field (e.g. "
                            "`partners[0].policy.b2bCollaborationInbound`)."
                        ),
                        "413": _err("Body larger than 256 KiB."),
                        "415": _err("Body is not application/json (UTF-8)."),
                        "502": _err(
                            "Microsoft Graph refused the read, or returned a vendor policy "
                            "this version does not understand."
                        ),
                    }
                ),
            }
        },
        "/api/v1/health": {
            "get": {
                "operationId": "getHealth",
                "summary": "Liveness (anonymous): ok, degraded (an alert channel is "
                "unavailable, named in channels) or unavailable",
                "security": [],
                "responses": {
                    "200": _ok("Up.", "Health"),
                    "503": _ok("Storage unreachable.", "Health"),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "responses": _responses(
                    {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {_JSON: {"schema": {"type": "object"}}},
                        }
                    }
                ),
            }
        },
    }


def build_document() -> dict[str, Any]:
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": "xtap-watch support API",
            "version": "1.0.0",
            "description": _DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "security": [{"appServicePrincipal": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "appServicePrincipal": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-MS-CLIENT-PRINCIPAL",
                    "description": (
                        "Set by App Service Authentication (never by the caller, whose own "
                        "copy App Service strips): base64 JSON {auth_typ, claims:[{typ,val}], "
                        "name_typ, role_typ}. The caller authenticates to App Service with a "
                        "Microsoft Entra bearer token."
                    ),
                }
            },
            "schemas": _SCHEMAS,
        },
    }
    # A plain-JSON copy: no shared sub-objects between the paths.
    result: dict[str, Any] = json.loads(json.dumps(document))
    return result


if __name__ == "__main__":
    print(json.dumps(build_document(), indent=2, ensure_ascii=False))
