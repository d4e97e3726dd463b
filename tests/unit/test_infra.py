"""The deployment (infra/, azure.yaml) agrees with itself, with the code and with DESIGN §4.

Bicep cannot be compiled here (no Bicep CLI), so every ``infra/**/*.bicep`` file is parsed
with pycep-parser (a real Bicep grammar, pinned in requirements-dev.txt) and checked:

* across modules: every module file exists, every parameter passed to it exists, every
  required one is passed, every ``<module>.outputs.<name>`` referenced exists, and no file
  declares a parameter it never uses;
* infra <-> config drift: every setting marked ``infra=True`` is an app setting, no unknown
  ``XTAP_*`` setting is, local-only settings never are, secrets are Key Vault references,
  and defaults in main.bicep / main.parameters.json equal the config defaults;
* the Graph permissions granted as code are exactly DESIGN §4's (Mail.Send via Exchange RBAC),
  granted last and only once the identity has replicated (issue 15.2/15.3);
* the API app is callable by tools (identifier URI, user_impersonation, Azure CLI
  pre-authorised) behind App Service Authentication whose credential is the managed identity;
* no cost traps: zone redundancy off and separate, Flex regions only, maximumInstanceCount
  at least 40, no settings Flex ignores;
* no secret literal anywhere, storage identity-only, every parameter documented, azure.yaml
  states and enforces the azd minimum.

checkov runs separately (scripts/checkov.sh); comments (where checkov skips live) are read
from the raw text because a parser drops them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from devtools.handbook import DESIGN
from shared import config

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
APP_CONFIG = INFRA / "modules" / "app-config.bicep"
FUNCTION_APP = INFRA / "modules" / "function-app.bicep"
STORAGE = INFRA / "modules" / "storage.bicep"
ENTRA_APPS = INFRA / "graph" / "entra-apps.bicep"
GRAPH_GRANTS = INFRA / "graph" / "graph-grants.bicep"
PARAMETERS = INFRA / "main.parameters.json"
GRANT_SCRIPT = INFRA / "scripts" / "grant_graph_permissions.py"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
PERMISSIONS_DOC = ROOT / "docs" / "permissions.md"
AZURE_YAML = ROOT / "azure.yaml"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# DESIGN §4, "Vendor tenant (application permissions)".
DESIGN_VENDOR_PERMISSIONS = {
    "Policy.Read.All",
    "AuditLog.Read.All",
    "Directory.Read.All",
    "User.Invite.All",
    "AccessReview.ReadWrite.All",
    "Mail.Send",
    "CrossTenantInformation.ReadBasic.All",
}
# DESIGN §4's "+ a role able to reset redemption": Graph documents User.ReadWrite.All as the
# minimum for resetRedemption app-only.
RESET_REDEMPTION_PERMISSION = "User.ReadWrite.All"
# Granted beyond DESIGN §4, each for a feature added since, each behind its own switch, with
# Microsoft Graph's documented least privilege (docs/permissions.md cites the pages):
# variable in graph-grants.bicep -> (permissions, the module parameter that switches it).
DOCUMENTED_EXTRAS = {
    # guest access reviews: POST /groups ("Create group": Group.Create) and
    # POST|DELETE /groups/{id}/members/$ref ("Add members", "Remove member").
    "accessReviewGroupGraphAppRoles": (
        ["Group.Create", "GroupMember.ReadWrite.All"],
        "grantAccessReviewGroups",
    ),
    # vendor-side check "client domains on the invitation allow/deny list": GET
    # /beta/policies/b2bManagementPolicies lists only Policy.Read.B2BManagementPolicy.
    "b2bPolicyGraphAppRoles": (["Policy.Read.B2BManagementPolicy"], "grantB2bPolicyRead"),
}
AZURE_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"

# Flex Consumption regions in Microsoft's azd templates (functions-quickstart-python-http-azd
# infra/main.bicep, commit 7ed4638 of 2025-11-24; remote-mcp-functions-python, 2026-04-30).
MICROSOFT_FLEX_REGIONS = {
    "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "centralindia",
    "centralus", "eastasia", "eastus", "eastus2", "eastus2euap", "francecentral",
    "germanywestcentral", "italynorth", "japaneast", "koreacentral", "northcentralus",
    "northeurope", "norwayeast", "southafricanorth", "southcentralus", "southeastasia",
    "southindia", "spaincentral", "swedencentral", "uaenorth", "uksouth", "ukwest",
    "westcentralus", "westeurope", "westus", "westus2", "westus3",
}  # fmt: skip


# ------------------------------------------------------------------------------ parsing
@cache
def parser() -> BicepParser:
    # Building the LALR tables takes about a second; do it once. cache=False: no files in /tmp.
    return BicepParser(cache=False)


@cache
def bicep(path: Path) -> dict[str, Any]:
    return dict(parser().parse(file_path=path))


def unwrap(config_node: dict[str, Any]) -> dict[str, Any]:
    """The body of a resource or module, inside any `if (...)` or `[for ...]` wrapper."""
    while "config" in config_node and ("condition" in config_node or "loop_type" in config_node):
        config_node = config_node["config"]
    return config_node


def dotted(node: Any) -> str | None:
    """``a.b.c`` for a property-access chain (``tenant().tenantId`` for a call); None else."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "function" in node:
        return f"{node['function']['type']}()"
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        left, right = dotted(operands["operand_1"]), dotted(operands["operand_2"])
        return f"{left}.{right}" if left and right else None
    return None


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def module_output_refs(node: Any, modules: set[str]) -> set[tuple[str, str]]:
    """Every ``<module>.outputs.<name>`` in an expression tree or inside string interpolation."""
    found: set[tuple[str, str]] = set()
    for item in walk(node):
        texts = []
        if isinstance(item, str):
            texts = re.findall(r"\$\{([^}]*)\}", item)
        elif (path := dotted(item)) is not None:
            texts = [path]
        for text in texts:
            for symbol, output in re.findall(r"\b(\w+)\.\??outputs\.(\w+)", text):
                if symbol in modules:
                    found.add((symbol, output))
    return found


def required_params(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {
        name
        for name, spec in bicep(path).get("parameters", {}).items()
        if spec.get("default") is None
        and not re.search(rf"^param\s+{name}\s+\S+\?", text, re.M)  # nullable: optional
    }


def resource(path: Path, symbol: str) -> dict[str, Any]:
    return unwrap(bicep(path)["resources"][symbol]["config"])


def module(path: Path, symbol: str) -> dict[str, Any]:
    return unwrap(bicep(path)["modules"][symbol]["config"])


def param_default(path: Path, name: str) -> Any:
    return bicep(path)["parameters"][name]["default"]


def decorator(path: Path, name: str, kind: str) -> Any:
    for item in bicep(path)["parameters"][name]["decorators"]:
        if item["type"] == kind:
            return item["argument"]
    return None


def variable(path: Path, name: str) -> Any:
    return bicep(path)["variables"][name]["value"]


@pytest.fixture(scope="module")
def app_settings() -> dict[str, Any]:
    settings = resource(APP_CONFIG, "appSettings")
    assert settings["name"] == "appsettings"
    return dict(settings["properties"])


def easy_auth() -> dict[str, Any]:
    auth = resource(APP_CONFIG, "authSettings")
    assert auth["name"] == "authsettingsV2"
    return dict(auth["properties"])


# ------------------------------------------------------------------------------ parse + wiring
@pytest.mark.parametrize("path", BICEP_FILES, ids=[str(p.relative_to(INFRA)) for p in BICEP_FILES])
def test_every_bicep_file_parses(path: Path) -> None:
    tree = bicep(path)
    assert tree.get("resources") or tree.get("modules"), f"{path.name} declares nothing"


def test_the_parser_sees_module_wiring_the_checks_rely_on() -> None:
    """The cross-module checks below can only fail if the parser exposes what they read."""
    tree = parser().parse(
        text="module m 'x.bicep' = {\n  name: 'm'\n  params: {\n"
        "    a: other.outputs.one\n    b: 'https://${other.outputs.two}/'\n  }\n}\n"
    )
    params = unwrap(tree["modules"]["m"]["config"])["params"]
    refs = module_output_refs(params, {"other"})
    assert refs == {("other", "one"), ("other", "two")}


def test_modules_exist_and_receive_exactly_their_parameters() -> None:
    checked = 0
    for path in BICEP_FILES:
        for symbol, spec in bicep(path).get("modules", {}).items():
            target = (path.parent / spec["detail"]["path"]).resolve()
            assert target.is_file(), f"{path.name}: module {symbol} -> missing {target}"
            declared = set(bicep(target).get("parameters", {}))
            passed = set(unwrap(spec["config"]).get("params", {}))
            unknown = sorted(passed - declared)
            missing = sorted(required_params(target) - passed)
            assert not unknown, f"{path.name}: {symbol} passes unknown parameters {unknown}"
            assert not missing, f"{path.name}: {symbol} does not pass required {missing}"
            checked += 1
    assert checked >= 9


def test_every_referenced_module_output_exists() -> None:
    references = 0
    for path in BICEP_FILES:
        modules = bicep(path).get("modules", {})
        outputs = {
            symbol: set(bicep((path.parent / spec["detail"]["path"]).resolve()).get("outputs", {}))
            for symbol, spec in modules.items()
        }
        tree = {k: v for k, v in bicep(path).items() if k != "parameters"}
        for symbol, output in module_output_refs(tree, set(modules)):
            assert output in outputs[symbol], f"{path.name}: {symbol}.outputs.{output} missing"
            references += 1
    assert references >= 20  # distinct (module, output) pairs


def test_no_file_declares_a_parameter_it_never_uses() -> None:
    for path in BICEP_FILES:
        tree = bicep(path)
        body = json.dumps({k: v for k, v in tree.items() if k != "parameters"})
        for name in tree.get("parameters", {}):
            assert re.search(rf"(?<![\w.]){re.escape(name)}\b", body), (
                f"{path.relative_to(INFRA)}: parameter {name} is never used"
            )


def test_graph_extension_is_configured_for_the_graph_files() -> None:
    bicepconfig = json.loads((INFRA / "bicepconfig.json").read_text())
    assert bicepconfig["extensions"]["microsoftGraphV1"].startswith(
        "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:"
    )
    for path in (ENTRA_APPS, GRAPH_GRANTS):
        assert bicep(path)["extensions"], f"{path.name} must import the Graph extension"
    outside = [p for p in BICEP_FILES if p.parent.name != "graph" and "extensions" in bicep(p)]
    assert outside == [], "checkov cannot parse `extension`; keep it inside infra/graph/"


# ------------------------------------------------------------------------------ app settings
def test_every_infra_setting_of_config_is_an_app_setting(app_settings: dict[str, Any]) -> None:
    expected = {spec.name for spec in config.SETTINGS if spec.infra}
    missing = sorted(expected - app_settings.keys())
    assert not missing, f"shared/config.py settings with infra=True missing from Bicep: {missing}"


def test_bicep_defines_no_setting_the_config_does_not_know(app_settings: dict[str, Any]) -> None:
    known = {spec.name for spec in config.SETTINGS}
    unknown = sorted(n for n in app_settings if n.startswith("XTAP_") and n not in known)
    assert not unknown, f"XTAP_* app settings unknown to shared/config.py: {unknown}"


def test_local_only_settings_are_never_deployed(app_settings: dict[str, Any]) -> None:
    local_only = {spec.name for spec in config.SETTINGS if not spec.infra}
    # e.g. the Azurite connection string, client secrets, the simulator's CA bundle.
    assert local_only & app_settings.keys() == set()
    assert "AzureWebJobsStorage" not in app_settings


def test_secret_settings_are_key_vault_references(app_settings: dict[str, Any]) -> None:
    secrets = [spec.name for spec in config.SETTINGS if spec.infra and spec.secret]
    assert secrets, "config marks the Teams webhook as a secret"
    for name in secrets:
        value = app_settings[name]["operator"]["operands"]["true_value"]
        assert value.startswith("@Microsoft.KeyVault(SecretUri=${"), name


def test_host_storage_is_identity_based(app_settings: dict[str, Any]) -> None:
    assert app_settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert app_settings["AzureWebJobsStorage__clientId"] == "managedIdentityClientId"
    assert app_settings["AZURE_CLIENT_ID"] == "managedIdentityClientId"
    for service in ("blob", "queue", "table"):
        assert app_settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"{service}Endpoint"
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "ClientId=${managedIdentityClientId};Authorization=AAD"
    )


def _resolve(node: Any) -> Any:
    """Follow an app setting's value back to a literal in app-config.bicep or main.bicep."""
    if isinstance(node, dict) and node.get("function", {}).get("type") == "string":
        node = node["function"]["parameters"]["value_to_convert"]
    if not isinstance(node, str | int | bool):
        return None
    app_params = bicep(APP_CONFIG)["parameters"]
    if not isinstance(node, str) or node not in app_params:
        return node
    passed = module(MAIN, "appConfig")["params"][node]
    if isinstance(passed, str) and passed in bicep(MAIN)["parameters"]:
        return param_default(MAIN, passed)
    if isinstance(passed, str) and passed in bicep(MAIN).get("variables", {}):
        return variable(MAIN, passed)
    return passed if isinstance(passed, str | int | bool) else None


# Settings whose Azure value is computed from the deployment, not a parameter default.
DERIVED_SETTINGS = {"XTAP_AUTHORITY_HOST": "environment().authentication.loginEndpoint"}


def test_bicep_defaults_equal_config_defaults(app_settings: dict[str, Any]) -> None:
    checked = []
    for spec in config.SETTINGS:
        if not (spec.infra and spec.default is not None):
            continue
        value = app_settings[spec.name]
        if spec.name in DERIVED_SETTINGS:
            assert dotted(value) == DERIVED_SETTINGS[spec.name]
            continue
        resolved = _resolve(value)
        assert str(resolved) == spec.default, f"{spec.name}: Bicep {resolved!r} vs {spec.default!r}"
        checked.append(spec.name)
    assert {"XTAP_SWEEP_SCHEDULE", "XTAP_REMINDER_HOURS", "XTAP_GRAPH_BASE_URL"} <= set(checked)


def test_parameter_file_covers_every_parameter_with_the_config_defaults() -> None:
    parameters = json.loads(PARAMETERS.read_text())["parameters"]
    by_name = {spec.name: spec for spec in config.SETTINGS}
    main_params = bicep(MAIN)["parameters"]
    for param, body in parameters.items():
        assert param in main_params, f"main.parameters.json sets unknown parameter {param}"
        match = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", body["value"])
        assert match, f"{param}: expected an azd ${{VAR}} reference"
        env_name, default = match.groups()
        if env_name.startswith("XTAP_"):
            # XTAP_* is reserved for app settings: the azd variable must be the setting itself.
            assert env_name in by_name, f"{env_name} is not a setting of shared/config.py"
            if default is not None:
                assert default == by_name[env_name].default, env_name
        bicep_default = main_params[param]["default"]
        if default is not None and bicep_default is not None:
            expected = (
                str(bicep_default).lower()
                if isinstance(bicep_default, bool)
                else str(bicep_default)
            )
            assert default == expected, f"{param}: {default!r} vs main.bicep {bicep_default!r}"
    # Every parameter can be set with `azd env set NAME value`, not only the required ones.
    assert sorted(main_params.keys() - parameters.keys()) == []


def test_reinvite_redirect_hosts_is_a_parameter_and_an_app_setting(
    app_settings: dict[str, Any],
) -> None:
    assert app_settings["XTAP_REINVITE_REDIRECT_HOSTS"] == "reinviteRedirectHosts"
    assert module(MAIN, "appConfig")["params"]["reinviteRedirectHosts"] == "reinviteRedirectHosts"
    # Empty by default: shared/config.py then allows the vendor's sign-in host and the host of
    # XTAP_REINVITE_REDIRECT_URL (tests/unit/test_config.py checks the empty value).
    assert param_default(MAIN, "reinviteRedirectHosts") == ""
    parameters = json.loads(PARAMETERS.read_text())["parameters"]
    assert parameters["reinviteRedirectHosts"]["value"] == "${XTAP_REINVITE_REDIRECT_HOSTS}"
    spec = next(s for s in config.SETTINGS if s.name == "XTAP_REINVITE_REDIRECT_HOSTS")
    assert spec.infra and spec.default is None


def test_outputs_named_like_settings_are_settings() -> None:
    known = {spec.name for spec in config.SETTINGS}
    outputs = bicep(MAIN)["outputs"]
    assert {"XTAP_CLIENT_READER_APP_ID", "XTAP_PUBLIC_API_URL"} <= outputs.keys()
    assert [n for n in outputs if n.startswith("XTAP_") and n not in known] == []


def test_support_role_matches_the_api_role_setting() -> None:
    api_role_default = next(s.default for s in config.SETTINGS if s.name == "XTAP_API_ROLE")
    assert variable(MAIN, "supportAppRole") == api_role_default
    roles = resource(ENTRA_APPS, "apiApp")["appRoles"]
    (role,) = [r for r in roles if r["value"] == "supportAppRole"]
    assert role["allowedMemberTypes"] == ["User"]
    assert f'SUPPORT_APP_ROLE = "{api_role_default}"' in GRANT_SCRIPT.read_text()


# ------------------------------------------------------------------------------ Graph grants
def _design_section_4_permissions() -> set[str] | None:
    """Read DESIGN §4 when the handbook is found (it is in CI)."""
    if not DESIGN.is_file():
        return None
    text = DESIGN.read_text(encoding="utf-8")
    line = next(
        (ln for ln in text.splitlines() if "Vendor tenant (application permissions)" in ln),
        None,
    )
    if line is None:
        return None
    start = text.index(line)
    bullet = text[start : text.index("\n*", start + 1)]
    return set(re.findall(r"`([A-Za-z]+(?:\.[A-Za-z]+)+)`", bullet))


def test_our_copy_of_design_permissions_is_current() -> None:
    from_design = _design_section_4_permissions()
    if from_design is None:
        pytest.skip("DESIGN.md is not beside the repository")
    assert from_design == DESIGN_VENDOR_PERMISSIONS


def test_graph_grants_are_design_section_4_plus_documented_extras_each_for_a_feature() -> None:
    granted = set(variable(GRAPH_GRANTS, "managedIdentityGraphAppRoles"))
    assert variable(GRAPH_GRANTS, "resetRedemptionGraphAppRoles") == [RESET_REDEMPTION_PERMISSION]
    # Mail.Send is the one DESIGN permission not granted in Entra: an Entra grant applies to
    # every mailbox and Exchange RBAC for Applications cannot narrow it (they are additive).
    assert granted == DESIGN_VENDOR_PERMISSIONS - {"Mail.Send"}
    for path in (ENTRA_APPS, GRAPH_GRANTS):
        assert "Mail.Send" not in json.dumps(bicep(path)), path.name
    assert "'Application Mail.Send'" in GRANT_SCRIPT.read_text()
    # The granted list is the base, then each optional list behind its own switch, nothing else.
    (base, *switched) = variable(GRAPH_GRANTS, "grantedGraphAppRoles")["function"][
        "parameters"
    ].values()
    assert base == "managedIdentityGraphAppRoles"
    optional = {"resetRedemptionGraphAppRoles": "grantResetRedemption"} | {
        name: switch for name, (_roles, switch) in DOCUMENTED_EXTRAS.items()
    }
    seen = {}
    for arg in switched:
        operands = arg["operator"]["operands"]
        assert operands["false_value"] == []
        seen[operands["true_value"]] = operands["condition"]
    assert seen == optional
    for name, (roles, _switch) in DOCUMENTED_EXTRAS.items():
        assert variable(GRAPH_GRANTS, name) == roles, name
        assert not set(roles) & DESIGN_VENDOR_PERMISSIONS, f"{name} repeats a DESIGN permission"
        doc = PERMISSIONS_DOC.read_text(encoding="utf-8")
        for role in roles:
            assert f"`{role}`" in doc, f"docs/permissions.md does not explain {role}"


def test_optional_grants_are_switched_from_main_and_follow_their_feature() -> None:
    params = module(MAIN, "graphGrants")["params"]
    assert params["grantResetRedemption"] == "grantResetRedemption"
    assert params["grantB2bPolicyRead"] == "grantB2bPolicyRead"
    # The group roles only while access reviews are configured (reviewers set), and the admin
    # may still decline them.
    review = json.dumps(params["grantAccessReviewGroups"])
    assert "grantAccessReviewGroups" in review and "accessReviewReviewers" in review
    assert '"empty"' in review
    parameters = json.loads(PARAMETERS.read_text())["parameters"]
    assert parameters["grantAccessReviewGroups"]["value"] == "${GRANT_ACCESS_REVIEW_GROUPS=true}"
    assert parameters["grantB2bPolicyRead"]["value"] == "${GRANT_B2B_POLICY_READ=true}"
    for name in ("grantResetRedemption", "grantAccessReviewGroups", "grantB2bPolicyRead"):
        assert param_default(MAIN, name) is True, name
    # Inside the module, a caller that passes nothing grants no group roles.
    assert param_default(GRAPH_GRANTS, "grantAccessReviewGroups") is False


def test_the_doctor_expects_exactly_what_infra_can_grant() -> None:
    """Every role the doctor checks is one infra grants, and every grant is checked."""
    from shared.domain.doctor import Features, optional_graph_roles, required_graph_roles

    everything = Features(audit_source="graph", signin_source="graph", access_reviews=True)
    expected = set(required_graph_roles(everything)) | set(optional_graph_roles(everything))
    grantable = set(variable(GRAPH_GRANTS, "managedIdentityGraphAppRoles"))
    grantable |= set(variable(GRAPH_GRANTS, "resetRedemptionGraphAppRoles"))
    for name in DOCUMENTED_EXTRAS:
        grantable |= set(variable(GRAPH_GRANTS, name))
    assert expected == grantable


def test_graph_roles_go_to_the_managed_identity_only_once_it_has_replicated() -> None:
    spec = bicep(GRAPH_GRANTS)["resources"]["managedIdentityGraphGrants"]["config"]
    looped = spec["loop_type"]["detail"]["array_name"]["operator"]
    # [for role in (declareGrants ? grantedGraphAppRoles : []): ...]
    assert looped["type"] == "conditional"
    assert looped["operands"] == {
        "condition": "declareGrants",
        "true_value": "grantedGraphAppRoles",
        "false_value": [],
    }
    declare = json.dumps(variable(GRAPH_GRANTS, "declareGrants"))
    assert "grantGraphAppRoles" in declare and "identityExistedBefore" in declare
    existed = json.dumps(variable(GRAPH_GRANTS, "identityExistedBefore"))
    assert (
        "previousManagedIdentityPrincipalId" in existed and "managedIdentityPrincipalId" in existed
    )
    grant = unwrap(spec)
    assert grant["principalId"] == "managedIdentityPrincipalId"
    assert dotted(grant["resourceId"]) == "microsoftGraph.id"
    app_role_id = json.dumps(grant["appRoleId"])
    assert "Application" in app_role_id  # application permissions, not delegated scopes
    assert resource(GRAPH_GRANTS, "microsoftGraph")["appId"] == "microsoftGraphAppId"
    assert variable(GRAPH_GRANTS, "microsoftGraphAppId") == "00000003-0000-0000-c000-000000000000"


def test_graph_grants_run_last_and_nothing_waits_for_them() -> None:
    grants = module(MAIN, "graphGrants")
    assert grants["dependsOn"] == ["appConfig"]
    params = grants["params"]
    assert dotted(params["managedIdentityPrincipalId"]) == "identity.outputs.principalId"
    assert params["grantGraphAppRoles"] == "grantGraphAppRoles"
    assert params["previousManagedIdentityPrincipalId"] == "previousManagedIdentityPrincipalId"
    # App settings and authentication must not depend on a grant that may be refused.
    for symbol in bicep(MAIN)["modules"]:
        if symbol != "graphGrants":
            refs = module_output_refs(module(MAIN, symbol), {"graphGrants"})
            assert refs == set(), f"{symbol} waits for the Graph grants"
    # azd records the principal ID as an output and passes it back on the next provision.
    parameters = json.loads(PARAMETERS.read_text())["parameters"]
    assert parameters["previousManagedIdentityPrincipalId"]["value"] == (
        "${MANAGED_IDENTITY_PRINCIPAL_ID}"
    )
    assert "MANAGED_IDENTITY_PRINCIPAL_ID" in bicep(MAIN)["outputs"]
    assert "GRAPH_GRANTS_DEFERRED_TO_HOOK" in bicep(MAIN)["outputs"]
    assert parameters["grantGraphAppRoles"]["value"] == "${GRANT_GRAPH_APP_ROLES=true}"


def test_grant_script_expects_the_same_roles_as_the_grants_file() -> None:
    text = GRANT_SCRIPT.read_text()
    for constant, bicep_variable in (
        ("DEFAULT_GRAPH_APP_ROLES", "managedIdentityGraphAppRoles"),
        ("RESET_REDEMPTION_ROLES", "resetRedemptionGraphAppRoles"),
        ("ACCESS_REVIEW_GROUP_ROLES", "accessReviewGroupGraphAppRoles"),
        ("B2B_POLICY_ROLES", "b2bPolicyGraphAppRoles"),
    ):
        match = re.search(rf"^{constant} = \(([^)]*)\)", text, re.M)
        assert match, constant
        script_roles = re.findall(r'"([^"]+)"', match.group(1))
        assert script_roles == variable(GRAPH_GRANTS, bicep_variable), constant


def test_client_reader_app_is_multi_tenant_read_only_with_the_identity_as_credential() -> None:
    reader = resource(ENTRA_APPS, "clientReaderApp")
    assert reader["signInAudience"] == "AzureADMultipleOrgs"
    assert variable(ENTRA_APPS, "clientReaderGraphAppRoles") == ["Policy.Read.All"]
    (access,) = reader["requiredResourceAccess"]
    assert access["resourceAppId"] == "microsoftGraphAppId"
    assert access["resourceAccess"]["loop_type"]["detail"]["array_name"] == (
        "clientReaderGraphAppRoles"
    )
    assert access["resourceAccess"]["config"]["type"] == "Role"
    # The admin-consent link returns only to a registered redirect URI.
    assert reader["web"]["redirectUris"] == ["adminConsentRedirectUri"]
    text = json.dumps(bicep(ENTRA_APPS))
    assert "passwordCredentials" not in text and "keyCredentials" not in text
    fic = resource(ENTRA_APPS, "clientReaderApp__managedIdentityCredential")
    assert fic["name"].startswith("${clientReaderApp.uniqueName}/")
    assert fic["issuer"] == "federationIssuer"
    assert variable(ENTRA_APPS, "federationIssuer") == (
        "${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0"
    )
    assert fic["subject"] == "managedIdentityPrincipalId"
    assert fic["audiences"] == ["api://AzureADTokenExchange"]


# ------------------------------------------------------------------------------ callable API
def test_api_app_exposes_user_impersonation_for_the_azure_cli() -> None:
    api = resource(ENTRA_APPS, "apiApp")
    assert api["signInAudience"] == "AzureADMyOrg"
    assert api["identifierUris"] == ["apiIdentifierUri"]
    # api://<tenantId>/<string>: accepted under Entra's default identifier URI restrictions.
    assert variable(ENTRA_APPS, "apiIdentifierUri") == (
        "api://${tenant().tenantId}/xtap-watch-api-${resourceToken}"
    )
    (scope,) = api["api"]["oauth2PermissionScopes"]
    assert scope["value"] == "user_impersonation" and scope["isEnabled"] is True
    assert scope["id"] == "userImpersonationScopeId"
    (pre,) = api["api"]["preAuthorizedApplications"]
    assert pre == {"appId": "azureCliAppId", "delegatedPermissionIds": ["userImpersonationScopeId"]}
    assert variable(ENTRA_APPS, "azureCliAppId") == AZURE_CLI_APP_ID
    assert api["api"]["requestedAccessTokenVersion"] == 2
    # No implicit flow: Easy Auth uses the code flow with the managed identity as credential.
    assert api["web"]["implicitGrantSettings"] == {
        "enableIdTokenIssuance": False,
        "enableAccessTokenIssuance": False,
    }
    fic = resource(ENTRA_APPS, "apiApp__managedIdentityCredential")
    assert fic["subject"] == "managedIdentityPrincipalId"
    assert fic["audiences"] == ["api://AzureADTokenExchange"]
    assert resource(ENTRA_APPS, "apiServicePrincipal")["appRoleAssignmentRequired"] is True


def test_easy_auth_accepts_the_api_audiences_with_the_identity_as_credential(
    app_settings: dict[str, Any],
) -> None:
    props = easy_auth()
    aad = props["identityProviders"]["azureActiveDirectory"]
    assert aad["registration"]["clientId"] == "apiAppId"
    assert (
        aad["registration"]["clientSecretSettingName"] == "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"
    )
    assert app_settings["OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"] == "managedIdentityClientId"
    assert dotted(app_settings["WEBSITE_AUTH_AAD_ALLOWED_TENANTS"]) == "tenant().tenantId"
    assert aad["validation"]["allowedAudiences"] == ["apiAppId", "apiIdentifierUri"]
    allowed = json.dumps(aad["validation"]["defaultAuthorizationPolicy"]["allowedApplications"])
    assert "apiAppId" in allowed and "preAuthorizedClientAppIds" in allowed
    params = module(MAIN, "appConfig")["params"]
    assert dotted(params["apiIdentifierUri"]) == "entra.outputs.apiIdentifierUri"
    assert [dotted(p) for p in params["preAuthorizedClientAppIds"]] == [
        "entra.outputs.azureCliAppId"
    ]
    assert "API_IDENTIFIER_URI" in bicep(MAIN)["outputs"]


def test_easy_auth_requires_entra_except_for_health() -> None:
    props = easy_auth()
    validation = props["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "Return401"
    assert validation["excludedPaths"] == "anonymousPaths"
    assert param_default(APP_CONFIG, "anonymousPaths") == [
        "/api/v1/health",
        "/api/v1/runbooks",
        "/api/v1/runbooks/*",
    ]
    assert props["platform"]["enabled"] is True


# ------------------------------------------------------------------------------ cost traps
def test_zone_redundancy_is_its_own_parameter_and_off() -> None:
    assert param_default(MAIN, "zoneRedundant") is False
    assert module(MAIN, "functionApp")["params"]["zoneRedundant"] == "zoneRedundant"
    assert param_default(FUNCTION_APP, "zoneRedundant") is False
    assert resource(FUNCTION_APP, "plan")["properties"]["zoneRedundant"] == "zoneRedundant"
    # Storage replication no longer switches the plan's zone redundancy on.
    assert "storageSkuName" not in json.dumps(module(MAIN, "functionApp"))
    parameters = json.loads(PARAMETERS.read_text())["parameters"]
    assert parameters["zoneRedundant"]["value"] == "${ZONE_REDUNDANT=false}"


def test_location_is_restricted_to_flex_consumption_regions() -> None:
    allowed = decorator(MAIN, "location", "allowed")
    assert allowed, "location needs @allowed: azd then offers only these regions"
    assert set(allowed) <= MICROSOFT_FLEX_REGIONS
    assert not [r for r in allowed if r.endswith("euap")], "canary regions are not for vendors"
    assert len(allowed) >= 25


def test_maximum_instance_count_respects_the_flex_minimum() -> None:
    for path in (MAIN, FUNCTION_APP):
        assert decorator(path, "maximumInstanceCount", "min_value") == 40, path.name
        assert decorator(path, "maximumInstanceCount", "max_value") == 1000, path.name
        assert param_default(path, "maximumInstanceCount") >= 40
    scale = resource(FUNCTION_APP, "functionApp")["properties"]["functionAppConfig"]
    assert scale["scaleAndConcurrency"]["maximumInstanceCount"] == "maximumInstanceCount"


def test_no_settings_flex_consumption_ignores() -> None:
    site = resource(FUNCTION_APP, "functionApp")["properties"]
    assert "ftpsState" not in site["siteConfig"]
    policies = [
        unwrap(spec["config"])["name"]
        for spec in bicep(FUNCTION_APP)["resources"].values()
        if spec["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    ]
    assert policies == ["scm"]
    settings = resource(APP_CONFIG, "appSettings")["properties"]
    # App settings Microsoft lists as deprecated on Flex Consumption (functionAppConfig owns them).
    for deprecated in (
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
        "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    ):
        assert deprecated not in settings, deprecated


def test_public_cloud_only_no_national_cloud_parameters(app_settings: dict[str, Any]) -> None:
    params = bicep(MAIN)["parameters"]
    assert "graphBaseUrl" not in params and "logAnalyticsEndpoint" not in params
    assert app_settings["XTAP_GRAPH_BASE_URL"] == "https://graph.microsoft.com/v1.0"
    assert app_settings["XTAP_LOG_ANALYTICS_ENDPOINT"] == "https://api.loganalytics.io"


# ------------------------------------------------------------------------------ resources
def test_storage_is_identity_only_and_holds_the_config_queues_and_tables() -> None:
    props = resource(STORAGE, "storage")["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert variable(STORAGE, "queueNames") == list(config.QUEUES)
    poison = variable(STORAGE, "poisonQueueNames")
    assert poison["loop_type"]["detail"]["array_name"] == "queueNames"
    assert poison["config"] == "${name}-poison"
    queues = bicep(STORAGE)["resources"]["queues"]["config"]["loop_type"]["detail"]["array_name"]
    assert queues["function"]["type"] == "concat"
    assert re.findall(r"\w*queueNames", json.dumps(queues), re.I) == [
        "queueNames",
        "poisonQueueNames",
    ]
    assert variable(STORAGE, "tableNames") == list(config.TABLES)


def test_function_app_is_flex_consumption_python_with_identity_deployment() -> None:
    plan = resource(FUNCTION_APP, "plan")
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    site = resource(FUNCTION_APP, "functionApp")["properties"]
    flex = site["functionAppConfig"]
    assert flex["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert param_default(FUNCTION_APP, "pythonVersion") == "3.11"
    storage = flex["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert site["keyVaultReferenceIdentity"] == "identityId"
    assert site["httpsOnly"] is True


def test_key_vault_is_rbac_mode_with_purge_protection() -> None:
    props = resource(INFRA / "modules" / "keyvault.bicep", "keyVault")["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enablePurgeProtection"] is True
    assert "accessPolicies" not in props


def test_every_role_assignment_says_why() -> None:
    raw = (INFRA / "modules" / "roles.bicep").read_text().splitlines()
    assignments = [
        i for i, ln in enumerate(raw) if "'Microsoft.Authorization/roleAssignments@" in ln
    ]
    assert len(assignments) >= 6
    for index in assignments:
        assert raw[index - 1].startswith("//"), f"no justification above: {raw[index]}"


# ------------------------------------------------------------------------------ hygiene
SECRET_SHAPES = {
    "storage key": re.compile(r"AccountKey=|DefaultEndpointsProtocol=|listKeys\("),
    "SAS / webhook signature": re.compile(r"[?&]sig=[A-Za-z0-9%]"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\."),
    "Entra client secret": re.compile(r"[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"),
    "client secret credential": re.compile(
        r"(?i)clientSecret\s*:|client_secret\s*=|passwordCredentials"
    ),
    "webhook URL": re.compile(r"(?i)logic\.azure\.com|powerplatform\.com|webhook\.office\.com"),
}


def test_no_secret_literal_in_infra() -> None:
    files = sorted(p for p in INFRA.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files.append(AZURE_YAML)
    assert len(files) >= 12
    for path in files:
        text = path.read_text(encoding="utf-8")
        for what, pattern in SECRET_SHAPES.items():
            assert not pattern.search(text), f"{path.relative_to(ROOT)} contains a {what}"
        # The only client-secret setting Easy Auth names is the managed identity's client ID.
        for name in re.findall(r"clientSecretSettingName:\s*'([^']*)'", text):
            assert name == "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID", path.name
    # Nothing secret is passed as a parameter either, so no @secure() is needed anywhere.
    assert "@secure()" not in "".join(p.read_text() for p in BICEP_FILES)


def test_checkov_skips_say_why() -> None:
    for path in BICEP_FILES:
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                match = re.search(r"checkov:skip=(CKV2?_[A-Z]+_\d+):(.{20,})", line)
                assert match, f"{path.name}: skip without an id and a reason: {line.strip()}"


def test_no_registry_modules() -> None:
    for path in BICEP_FILES:
        assert "br/public:" not in path.read_text(), path.name


def test_every_parameter_is_documented() -> None:
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    undocumented = [name for name in bicep(MAIN)["parameters"] if f"`{name}`" not in doc]
    assert not undocumented, f"parameters missing from docs/deploy.md: {undocumented}"
    parameters = json.loads(PARAMETERS.read_text())["parameters"]
    for body in parameters.values():
        env_name = re.match(r"\$\{(\w+)", body["value"]).group(1)
        if not env_name.startswith("AZURE_"):
            assert f"`{env_name}`" in doc, f"azd variable {env_name} missing from docs/deploy.md"


# ------------------------------------------------------------------------------ azure.yaml
def _azure_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load(AZURE_YAML.read_text(encoding="utf-8")))


def test_azure_yaml_deploys_the_repo_as_a_python_function() -> None:
    api = _azure_yaml()["services"]["api"]
    assert api == {"project": ".", "language": "python", "host": "function"}
    assert "'azd-service-name': 'api'" in FUNCTION_APP.read_text()


def test_azure_yaml_enforces_the_azd_minimum_the_docs_state() -> None:
    required = _azure_yaml()["requiredVersions"]["azd"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)\.(\d+)", required)
    assert match, required
    # Graph extension needs Bicep >= 0.36.1 (azd 1.17.0); .funcignore from azd 1.18.0;
    # pwsh hooks fall back to Windows PowerShell 5.1 from azd 1.18.2.
    assert tuple(int(g) for g in match.groups()) >= (1, 18, 2)
    version = ".".join(match.groups())
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    assert f"azd {version}" in doc or f"`azd` {version}" in doc, "docs/deploy.md must state it"
    assert "0.36.1" in doc


def test_post_provision_hook_runs_the_python_script_on_posix_and_windows() -> None:
    hook = _azure_yaml()["hooks"]["postprovision"]
    assert set(hook) == {"posix", "windows"}
    for platform, spec in hook.items():
        assert "infra/scripts/grant_graph_permissions.py --postprovision" in spec["run"], platform
        assert spec["continueOnError"] is True, platform
    assert hook["posix"]["shell"] == "sh"
    # `pwsh` hooks run in Windows PowerShell 5.1 when PowerShell 7 is absent (azd >= 1.18.2):
    # no `&&`/`||` (7-only), the py launcher first.
    windows = hook["windows"]
    assert windows["shell"] == "pwsh"
    assert "&&" not in windows["run"] and "||" not in windows["run"]
    assert "py -3 " in windows["run"]
    assert GRANT_SCRIPT.is_file()


def test_funcignore_keeps_infra_and_tooling_out_of_the_package() -> None:
    ignored = set((ROOT / ".funcignore").read_text().split())
    assert {"infra", "tests", "sim", "devtools", "azure.yaml", "local.settings.json"} <= ignored
    assert "shared" not in ignored and "function_app.py" not in ignored
