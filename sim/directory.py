"""Groups, service principals, directory roles and B2B settings of the Graph simulator.

A TEST DOUBLE, not Microsoft Entra. What it reproduces, each with its source in
``sim/FIDELITY.md`` ("Users and invitations", "Groups and access reviews",
"Cross-tenant access policy"):

* security groups: ``POST /groups`` (``Group.Create``; the creating app becomes owner),
  ``GET /groups`` with ``$filter`` on ``mailNickname``/``displayName``, members listed,
  added (``POST /groups/{id}/members/$ref``: 204, 400 when already a member, 404 when the
  object does not exist) and removed (``DELETE …/members/{id}/$ref``), all with
  ``GroupMember.ReadWrite.All``;
* ``GET /servicePrincipals(appId='…')`` and ``GET /roleManagement/directory/roleAssignments
  ?$filter=principalId eq '…'`` — directory roles held by an app's service principal;
* app-only ``POST /invitations`` refused while ``allowInvitesFrom`` is
  ``adminsAndGuestInviters`` unless the calling principal holds an inviting role (Guest
  Inviter, User Administrator, Global Administrator);
* ``POST /invitations`` naming an *internal* account converts it to B2B, one way;
* access review definitions refused (400) unless their scope is one Microsoft documents;
* ``GET /beta/policies/b2bManagementPolicies`` (beta only, ``Policy.Read.B2BManagementPolicy``).
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sim.clock import iso_seconds, utcnow
from sim.graph import (
    CONTEXT_ROOT,
    GraphHttpError,
    Route,
    _apply_filter,
    _collection,
    _function_argument,
    _json,
    _page_offset,
    _parse_filter,
    _project,
    _r,
    _reject_unsupported_options,
    _select,
    _user_view,
)
from sim.responses import SimResponse
from sim.state import ScenarioError, Tenant, stable_id

if TYPE_CHECKING:
    from sim.graph import GraphApi, GraphRequest, Principal

# Built-in role template IDs ("Microsoft Entra built-in roles").
ROLE_TEMPLATES: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Guest Inviter": "95e79109-95c0-4d8e-aee3-d01accf2d47b",
    "Directory Readers": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
}
# The roles "Only users assigned to specific admin roles can invite guest users" admits.
INVITING_ROLES = frozenset({"Global Administrator", "User Administrator", "Guest Inviter"})

GROUP_READ = frozenset(
    {
        "Group.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
GROUP_CREATE = frozenset({"Group.Create", "Group.ReadWrite.All", "Directory.ReadWrite.All"})
GROUP_MEMBER_WRITE = frozenset(
    {"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"}
)
APP_READ = frozenset(
    {
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
ROLE_READ = frozenset(
    {
        "RoleManagement.Read.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
B2B_POLICY_READ = frozenset(
    {"Policy.Read.B2BManagementPolicy", "Policy.ReadWrite.B2BManagementPolicy"}
)
CLOUDS = frozenset({"microsoftonline.com", "microsoftonline.us", "partner.microsoftonline.cn"})

GROUP_FILTERABLE = ("id", "displayName", "mailNickname", "securityEnabled", "mailEnabled")


# ------------------------------------------------------------------------- loading
def load_directory(tenant: Tenant, raw: dict[str, Any], now: datetime) -> None:
    """The scenario keys of this module (format: ``sim/README.md``)."""
    for app_id, roles in (raw.get("servicePrincipalDirectoryRoles") or {}).items():
        set_service_principal_roles(tenant, app_id, roles)
    if raw.get("b2bManagementPolicy") is not None:
        set_b2b_management_policy(tenant, raw["b2bManagementPolicy"])
    if raw.get("allowedCloudEndpoints") is not None:
        set_allowed_cloud_endpoints(tenant, raw["allowedCloudEndpoints"])
    if raw.get("cloudInstanceName"):
        cloud = str(raw["cloudInstanceName"]).lower()
        if cloud not in CLOUDS:
            raise ScenarioError(f"cloudInstanceName must be one of {sorted(CLOUDS)}")
        tenant.cloud_instance_name = cloud
    for group in raw.get("groups") or []:
        add_group(tenant, group, now)


def set_service_principal_roles(tenant: Tenant, app_id: str, roles: Any) -> None:
    if not isinstance(roles, list) or any(r not in ROLE_TEMPLATES for r in roles):
        raise ScenarioError(f"service principal roles must be a list of {sorted(ROLE_TEMPLATES)}")
    tenant.service_principal_roles[str(app_id).lower()] = [str(r) for r in roles]


def set_b2b_management_policy(tenant: Tenant, value: Any) -> None:
    """``{"allowedDomains": [...]}`` / ``{"blockedDomains": [...]}``, raw policy objects, or
    ``"none"`` (the beta endpoint answers an empty list)."""
    if value == "none":
        tenant.b2b_management_policies = []
        return
    if isinstance(value, list):
        tenant.b2b_management_policies = copy.deepcopy(value)
        return
    if not isinstance(value, dict):
        raise ScenarioError("b2bManagementPolicy is an object, a list of policies or 'none'")
    lists = {
        "AllowedDomains": [str(d) for d in value.get("allowedDomains", [])],
        "BlockedDomains": [str(d) for d in value.get("blockedDomains", [])],
    }
    definition = {"B2BManagementPolicy": {"InvitationsAllowedAndBlockedDomainsPolicy": lists}}
    tenant.b2b_management_policies = [
        {
            "@odata.type": "#microsoft.graph.b2bManagementPolicy",
            "id": stable_id("b2b-policy", tenant.id),
            "deletedDateTime": None,
            "description": "B2BManagementPolicy",
            "displayName": "B2BManagementPolicy",
            "definition": [json.dumps(definition, separators=(",", ":"))],
            "isOrganizationDefault": True,
        }
    ]


def set_allowed_cloud_endpoints(tenant: Tenant, value: Any) -> None:
    if not isinstance(value, list) or any(str(v).lower() not in CLOUDS for v in value):
        raise ScenarioError(f"allowedCloudEndpoints must be a list of {sorted(CLOUDS)}")
    tenant.allowed_cloud_endpoints = [str(v).lower() for v in value]


def add_group(tenant: Tenant, raw: dict[str, Any], now: datetime) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw.get("displayName"):
        raise ScenarioError("a group needs 'displayName'")
    nickname = str(raw.get("mailNickname") or re.sub(r"[^A-Za-z0-9]", "", raw["displayName"]))
    group_id = str(raw.get("id") or stable_id("group", tenant.id, nickname.lower())).lower()
    group = {
        "id": group_id,
        "deletedDateTime": None,
        "classification": None,
        "createdDateTime": iso_seconds(now),
        "description": raw.get("description"),
        "displayName": raw["displayName"],
        "groupTypes": list(raw.get("groupTypes") or []),
        "isAssignableToRole": None,
        "mail": None,
        "mailEnabled": bool(raw.get("mailEnabled", False)),
        "mailNickname": nickname,
        "membershipRule": raw.get("membershipRule"),
        "membershipRuleProcessingState": "On" if raw.get("membershipRule") else None,
        "securityEnabled": bool(raw.get("securityEnabled", True)),
        "visibility": None,
    }
    tenant.groups[group_id] = group
    members: list[str] = []
    for key in raw.get("members") or []:
        user = tenant.find_user(str(key)) or _user_by_mail(tenant, str(key))
        if user is None:
            raise ScenarioError(f"group {raw['displayName']!r}: no user {key!r}")
        members.append(user["id"])
    tenant.group_members[group_id] = members
    return group


def _user_by_mail(tenant: Tenant, mail: str) -> dict[str, Any] | None:
    lowered = mail.lower()
    return next(
        (u for u in tenant.users.values() if str(u.get("mail") or "").lower() == lowered), None
    )


def directory_summary(tenant: Tenant) -> dict[str, Any]:
    """What the control API shows of this module's state."""
    return {
        "groups": [
            {**g, "members": list(tenant.group_members.get(g["id"], []))}
            for g in tenant.groups.values()
        ],
        "servicePrincipalDirectoryRoles": tenant.service_principal_roles,
        "b2bManagementPolicies": tenant.b2b_management_policies,
        "allowedCloudEndpoints": tenant.allowed_cloud_endpoints,
        "cloudInstanceName": tenant.cloud_instance_name,
    }


def set_directory(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    """Control API: change service principal roles, the B2B policy or the cloud settings."""
    for app_id, roles in (body.get("servicePrincipalDirectoryRoles") or {}).items():
        set_service_principal_roles(tenant, app_id, roles)
    if "b2bManagementPolicy" in body:
        if body["b2bManagementPolicy"] is None:
            tenant.b2b_management_policies = None
        else:
            set_b2b_management_policy(tenant, body["b2bManagementPolicy"])
    if "allowedCloudEndpoints" in body:
        set_allowed_cloud_endpoints(tenant, body["allowedCloudEndpoints"])
    if body.get("cloudInstanceName"):
        load_directory(tenant, {"cloudInstanceName": body["cloudInstanceName"]}, utcnow())
    return directory_summary(tenant)


# ------------------------------------------------------------------ invitations
def is_external_account(user: dict[str, Any]) -> bool:
    """B2B accounts carry ``#EXT#`` in their UPN or a federated (external) identity."""
    if "#EXT#" in str(user.get("userPrincipalName") or "").upper():
        return True
    return any(
        isinstance(i, dict) and i.get("signInType") == "federated"
        for i in user.get("identities") or []
    )


def service_principal_roles(tenant: Tenant, app_id: str) -> list[str]:
    return list(tenant.service_principal_roles.get(app_id.lower(), []))


def app_invite_refusal(tenant: Tenant, who: Principal) -> str | None:
    """Why an app-only invitation is refused by the tenant's guest invite settings, if it is.

    ``invitation-post``: "Application permissions (app-only) do not work if B2B invitations
    are disabled on the tenant or if B2B invitations are restricted to administrators." The
    error body of the second case is undocumented: the simulator answers Graph's generic
    403 ``Authorization_RequestDenied``, which is what the product must not misread.
    """
    setting = str(tenant.authorization_policy.get("allowInvitesFrom") or "").lower()
    if setting != "adminsandguestinviters":
        return None
    if INVITING_ROLES & set(service_principal_roles(tenant, who.app_id)):
        return None
    return "Insufficient privileges to complete the operation."


def convert_internal_user(
    tenant: Tenant, user: dict[str, Any], email: str, record: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """ "Invite internal users to B2B collaboration": the account keeps its object ID, UPN,
    groups and apps, and becomes a B2B account — one way (userType is not changed)."""
    user["externalUserState"] = "PendingAcceptance"
    user["externalUserStateChangeDateTime"] = iso_seconds(now)
    user["mail"] = email
    record["invitedUserId"] = user["id"]
    record["convertedInternalUser"] = True
    return {"id": user["id"], "userPrincipalName": user["userPrincipalName"]}


# --------------------------------------------------------------- access reviews
_GUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
_GUEST_FILTER = r"(?:/?\?\$(?:count=true&\$)?filter=\(userType eq 'Guest'\))?"
_GROUP_SCOPE = re.compile(
    rf"^/groups/(?P<group>{_GUID})/(?:transitiveMembers|members)(?:/microsoft\.graph\.user)?"
    + _GUEST_FILTER
    + r"$"
)
_RELATIVE_MEMBERS = re.compile(r"^\./members(?:/microsoft\.graph\.user)?" + _GUEST_FILTER + "$")
_OTHER_DOCUMENTED = (
    re.compile(r"^/identityGovernance/entitlementManagement/accessPackageAssignments\?\$filter="),
    re.compile(rf"^/roleManagement/directory/roleDefinitions/{_GUID}$"),
    re.compile(r"^/roleManagement/directory/role(?:Assignment|Eligibility)ScheduleInstances\?"),
    re.compile(rf"^/servicePrincipals/{_GUID}/appRoleAssignedTo$"),
    re.compile(rf"^/teams/{_GUID}/channels\?\$filter=\(membershipType eq 'shared'\)$"),
)
_PRINCIPAL_SCOPES = {"/users", "/users?$filter=(userType eq 'Guest')"}
SCOPE_DOCS = "https://learn.microsoft.com/graph/accessreviews-scope-concept"


def review_scope_problem(tenant: Tenant, body: dict[str, Any]) -> str | None:
    """Why the definition's scope is not one Microsoft documents (None: it is)."""
    scope = body.get("scope") or {}
    kind = scope.get("@odata.type", "#microsoft.graph.accessReviewQueryScope")
    if kind == "#microsoft.graph.principalResourceMembershipsScope":
        principals = scope.get("principalScopes") or []
        resources = scope.get("resourceScopes") or []
        if not principals or not resources:
            return "principalResourceMembershipsScope needs principalScopes and resourceScopes"
        for item in principals:
            if str((item or {}).get("query")) not in _PRINCIPAL_SCOPES:
                return f"principal scope '{(item or {}).get('query')}' is not supported"
        for item in resources:
            problem = _query_problem(tenant, str((item or {}).get("query") or ""), False)
            if problem:
                return problem
        return None
    return _query_problem(
        tenant, str(scope.get("query") or ""), bool(body.get("instanceEnumerationScope"))
    )


def _query_problem(tenant: Tenant, query: str, enumerated: bool) -> str | None:
    match = _GROUP_SCOPE.match(query)
    if match:
        if match["group"].lower() not in tenant.groups:
            return f"the group '{match['group']}' in scope query '{query}' does not exist"
        return None
    if _RELATIVE_MEMBERS.match(query):
        return None if enumerated else "a './members' scope needs an instanceEnumerationScope"
    if any(p.match(query) for p in _OTHER_DOCUMENTED):
        return None
    return f"the scope query '{query}' is not a supported access review scope"


# --------------------------------------------------------------------- handlers
def _members(tenant: Tenant, group_id: str) -> list[str]:

    if group_id.lower() not in tenant.groups:
        raise GraphHttpError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{group_id}' does not exist or one of its queried reference-property"
            " objects are not present.",
        )
    return tenant.group_members.setdefault(group_id.lower(), [])


async def h_groups(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:

    _reject_unsupported_options(req, {"$filter", "$select", "$top", "$skiptoken"})
    node = _parse_filter(req, GROUP_FILTERABLE, code="Request_BadRequest")
    items = _apply_filter(node, who.tenant.groups.values(), code="Request_BadRequest")
    page, next_link = _page_offset(req, items, api.page_size, 999)
    fields = _select(req, None)
    return _json(200, _collection("groups", [_project(g, fields) for g in page], next_link))


async def h_group(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:

    _members(who.tenant, match["id"])
    body = {"@odata.context": CONTEXT_ROOT + "groups/$entity"}
    body.update(who.tenant.groups[match["id"].lower()])
    return _json(200, body)


async def h_create_group(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:

    body = req.body
    if req.body_invalid or not isinstance(body, dict):
        raise GraphHttpError(400, "Request_BadRequest", "The request body must be a JSON object.")
    for prop, kind in (
        ("displayName", str),
        ("mailNickname", str),
        ("mailEnabled", bool),
        ("securityEnabled", bool),
    ):
        if not isinstance(body.get(prop), kind):
            raise GraphHttpError(
                400,
                "Request_BadRequest",
                f"Invalid value specified for property '{prop}' of resource 'Group'.",
            )
    if body["mailEnabled"] and not body.get("groupTypes"):
        raise GraphHttpError(
            400, "Request_BadRequest", "Mail-enabled security groups cannot be created in Graph."
        )
    group = add_group(
        who.tenant,
        {
            "id": str(uuid.uuid4()),
            "displayName": body["displayName"],
            "mailNickname": body["mailNickname"],
            "description": body.get("description"),
            "securityEnabled": body["securityEnabled"],
            "mailEnabled": body["mailEnabled"],
            "groupTypes": body.get("groupTypes") or [],
        },
        utcnow(),
    )
    response = {"@odata.context": CONTEXT_ROOT + "groups/$entity"}
    response.update(group)
    return _json(201, response)


async def h_group_members(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:

    _reject_unsupported_options(req, {"$select", "$top", "$skiptoken"})
    member_ids = _members(who.tenant, match["id"])
    users = [who.tenant.users[m] for m in member_ids if m in who.tenant.users]
    page, next_link = _page_offset(req, users, api.page_size, 999)
    fields = _select(req, None)
    values = [{"@odata.type": "#microsoft.graph.user", **_user_view(u, fields)} for u in page]
    return _json(200, _collection("directoryObjects", values, next_link))


_ODATA_ID = re.compile(rf"/directoryObjects/(?P<id>{_GUID})$")


async def h_add_group_member(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:

    members = _members(who.tenant, match["id"])
    body = req.body if isinstance(req.body, dict) else {}
    found = _ODATA_ID.search(str(body.get("@odata.id") or ""))
    if found is None:
        raise GraphHttpError(
            400, "Request_BadRequest", "Invalid URL format specified in @odata.id."
        )
    member_id = found["id"].lower()
    if member_id not in who.tenant.users:
        raise GraphHttpError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{member_id}' does not exist or one of its queried reference-property"
            " objects are not present.",
        )
    if member_id in members:
        raise GraphHttpError(
            400,
            "Request_BadRequest",
            "One or more added object references already exist for the following modified"
            " properties: 'members'.",
        )
    members.append(member_id)
    return SimResponse(204, None, {})


async def h_remove_group_member(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:

    members = _members(who.tenant, match["id"])
    member_id = match["member"].lower()
    if member_id not in members:
        raise GraphHttpError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{member_id}' does not exist or one of its queried reference-property"
            " objects are not present.",
        )
    members.remove(member_id)
    return SimResponse(204, None, {})


def _quoted_argument(raw: str) -> str:
    return _function_argument(raw, "appId").lower()


async def h_service_principal_by_app_id(
    api: GraphApi, req: GraphRequest, who: Principal, match: dict[str, str]
) -> SimResponse:

    app_id = _quoted_argument(match["arg"])
    app = api.state.applications.get(app_id)
    identity = api.state.managed_identities.get(app_id)
    known = (
        app is not None and (app.home_tenant_id == who.tenant.id or app_id in who.tenant.consents)
    ) or (identity is not None and identity.tenant_id == who.tenant.id)
    if not known:
        raise GraphHttpError(
            404,
            "Request_ResourceNotFound",
            f"Resource 'servicePrincipals(appId='{app_id}')' does not exist.",
        )
    display = identity.display_name if identity else app.display_name  # type: ignore[union-attr]
    body = {
        "@odata.context": CONTEXT_ROOT + "servicePrincipals/$entity",
        "id": stable_id("sp", who.tenant.id, app_id),
        "appId": app_id,
        "displayName": display,
        "servicePrincipalType": "ManagedIdentity" if identity else "Application",
        "accountEnabled": True,
    }
    return _json(200, body)


_PRINCIPAL_FILTER = re.compile(rf"^principalId eq '(?P<id>{_GUID})'$")


async def h_role_assignments(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:

    _reject_unsupported_options(req, {"$filter", "$select"})
    found = _PRINCIPAL_FILTER.match(req.query.get("$filter", "").strip())
    if found is None:
        raise GraphHttpError(
            400,
            "BadRequest",
            "This simulated endpoint supports only $filter=principalId eq '{id}'.",
        )
    principal_id = found["id"].lower()
    tenant = who.tenant
    values = []
    for app_id, roles in tenant.service_principal_roles.items():
        if stable_id("sp", tenant.id, app_id) != principal_id:
            continue
        for role in roles:
            template = ROLE_TEMPLATES[role]
            values.append(
                {
                    "id": stable_id("role-assignment", principal_id, template),
                    "principalId": principal_id,
                    "roleDefinitionId": template,
                    "directoryScopeId": "/",
                }
            )
    return _json(200, _collection("roleManagement/directory/roleAssignments", values, None))


async def h_b2b_management_policies(
    api: GraphApi, req: GraphRequest, who: Principal, _m: dict[str, str]
) -> SimResponse:

    policies = who.tenant.b2b_management_policies or []
    return _json(
        200,
        {
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#policies/"
            "b2bManagementPolicies",
            "value": copy.deepcopy(policies),
        },
    )


_ID = r"(?P<id>[^/()]+)"
DIRECTORY_ROUTES: tuple[Route, ...] = (
    _r("GET", r"/groups", h_groups, GROUP_READ),
    _r("POST", r"/groups", h_create_group, GROUP_CREATE),
    _r("GET", r"/groups/" + _ID, h_group, GROUP_READ),
    _r(
        "GET",
        r"/groups/" + _ID + r"/members(?:/microsoft\.graph\.user)?",
        h_group_members,
        GROUP_READ,
    ),
    _r("POST", r"/groups/" + _ID + r"/members/\$ref", h_add_group_member, GROUP_MEMBER_WRITE),
    _r(
        "DELETE",
        r"/groups/" + _ID + r"/members/(?P<member>[^/()]+)/\$ref",
        h_remove_group_member,
        GROUP_MEMBER_WRITE,
    ),
    _r(
        "GET",
        r"/servicePrincipals\(appId=(?P<arg>[^)]*)\)",
        h_service_principal_by_app_id,
        APP_READ,
    ),
    _r("GET", r"/roleManagement/directory/roleAssignments", h_role_assignments, ROLE_READ),
)
# Beta only ("List b2bManagementPolicy objects": GET /beta/policies/b2bManagementPolicies).
BETA_ROUTES: tuple[Route, ...] = (
    _r("GET", r"/policies/b2bManagementPolicies", h_b2b_management_policies, B2B_POLICY_READ),
)
