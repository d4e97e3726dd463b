"""The deployment (infra/) agrees with the code (shared/config.py) and with DESIGN §4.

Bicep cannot be compiled here (no Bicep CLI), and checkov cannot parse the Microsoft Graph
extension file, so these tests read the Bicep text with a small tokenizer that understands
Bicep strings (including ``${...}`` interpolation), comments and bracket nesting, and check:

* infra <-> config drift: every setting marked ``infra=True`` is an app setting, no unknown
  ``XTAP_*`` setting is, local-only settings never are, secrets are Key Vault references,
  and defaults in main.bicep / main.parameters.json equal the config defaults;
* the Graph permissions granted as code are exactly DESIGN §4's (Mail.Send via Exchange RBAC);
* no secret literal anywhere in infra/, storage is identity-only, names match config;
* every parameter is documented in docs/deploy.md; the grant script is valid and does the
  right calls (driven through a fake ``az`` that records them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared import config

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
APP_CONFIG = INFRA / "modules" / "app-config.bicep"
STORAGE = INFRA / "modules" / "storage.bicep"
GRAPH = INFRA / "graph" / "graph-permissions.bicep"
PARAMETERS = INFRA / "main.parameters.json"
GRANT_SCRIPT = INFRA / "scripts" / "grant-graph-permissions.sh"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

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


# ------------------------------------------------------------------------------ tokenizer
def _string_end(text: str, start: int) -> int:
    """Index just past the Bicep string literal that starts at ``start``."""
    if text.startswith("'''", start):
        end = text.find("'''", start + 3)
        return len(text) if end < 0 else end + 3
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            return i + 1
        if text.startswith("${", i):
            i = _close_index(text, i + 1) + 1
            continue
        i += 1
    return len(text)


def _close_index(text: str, open_at: int) -> int:
    """Index of the bracket closing the one at ``open_at``, skipping strings."""
    pairs = {"{": "}", "[": "]", "(": ")"}
    stack = [pairs[text[open_at]]]
    i = open_at + 1
    while i < len(text):
        ch = text[i]
        if ch == "'":
            i = _string_end(text, i)
            continue
        if ch in pairs:
            stack.append(pairs[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
            if not stack:
                return i
        i += 1
    raise ValueError(f"unbalanced bracket at {open_at}")


def strip_comments(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "'":
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def statements(body: str) -> list[str]:
    """Split the inside of an object or array into its top-level, newline-separated items."""
    items: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "'":
            end = _string_end(body, i)
            current.append(body[i:end])
            i = end
            continue
        if ch in "{[(":
            end = _close_index(body, i)
            current.append(body[i : end + 1])
            i = end + 1
            continue
        if ch in "\n,":
            item = "".join(current).strip()
            if item:
                items.append(item)
            current = []
        else:
            current.append(ch)
        i += 1
    item = "".join(current).strip()
    if item:
        items.append(item)
    return items


def object_entries(block: str) -> dict[str, str]:
    """``{ key: value ... }`` -> {key: value text}. Quoted keys lose their quotes."""
    assert block.startswith("{") and block.endswith("}"), block[:40]
    entries: dict[str, str] = {}
    for item in statements(block[1:-1]):
        match = re.match(r"^('(?:[^']*)'|[A-Za-z_][\w]*)\s*:\s*(.*)$", item, re.S)
        if match:
            entries[match.group(1).strip("'")] = match.group(2).strip()
    return entries


def string_literals(array_block: str) -> list[str]:
    assert array_block.startswith("[") and array_block.endswith("]"), array_block[:40]
    values = []
    for item in statements(array_block[1:-1]):
        match = re.fullmatch(r"'([^'$]*)'", item)
        assert match, f"not a plain string literal: {item!r}"
        values.append(match.group(1))
    return values


@dataclass(frozen=True)
class BicepFile:
    path: Path
    text: str  # without comments

    @classmethod
    def load(cls, path: Path) -> BicepFile:
        return cls(path, strip_comments(path.read_text(encoding="utf-8")))

    def _block_after(self, pattern: str) -> str:
        match = re.search(pattern, self.text, re.M)
        assert match, f"{self.path.name}: no match for {pattern}"
        open_at = self.text.index("{", match.end() - 1)
        return self.text[open_at : _close_index(self.text, open_at) + 1]

    def resource(self, symbol: str) -> dict[str, str]:
        return object_entries(
            self._block_after(rf"^resource\s+{symbol}\s+'[^']+'\s*(?:existing\s*)?=[^{{]*\{{")
        )

    def module_params(self, symbol: str) -> dict[str, str]:
        module = object_entries(self._block_after(rf"^module\s+{symbol}\s+'[^']+'\s*=\s*\{{"))
        return object_entries(module["params"])

    def var(self, name: str) -> str:
        match = re.search(rf"^var\s+{name}\s*=\s*", self.text, re.M)
        assert match, f"{self.path.name}: no var {name}"
        rest = self.text[match.end() :]
        if rest[0] in "[{":
            return rest[: _close_index(rest, 0) + 1]
        return rest.split("\n", 1)[0].strip()

    def params(self) -> dict[str, str | None]:
        """Parameter name -> default value text (None when required)."""
        found: dict[str, str | None] = {}
        for match in re.finditer(r"^param\s+(\w+)\s+\w+(\s*=\s*)?", self.text, re.M):
            if not match.group(2):
                found[match.group(1)] = None
                continue
            rest = self.text[match.end() :]
            if rest[0] in "[{":
                found[match.group(1)] = rest[: _close_index(rest, 0) + 1]
            else:
                found[match.group(1)] = rest.split("\n", 1)[0].strip()
        return found


def literal(expr: str) -> str | None:
    """The value of a plain string, int or bool literal; None for anything computed."""
    if re.fullmatch(r"'[^'$]*'", expr):
        return expr[1:-1]
    if re.fullmatch(r"-?\d+|true|false", expr):
        return expr
    return None


@pytest.fixture(scope="module")
def main_bicep() -> BicepFile:
    return BicepFile.load(MAIN)


@pytest.fixture(scope="module")
def app_config() -> BicepFile:
    return BicepFile.load(APP_CONFIG)


@pytest.fixture(scope="module")
def app_settings(app_config: BicepFile) -> dict[str, str]:
    settings = app_config.resource("appSettings")
    assert settings.get("name") == "'appsettings'"
    return object_entries(settings["properties"])


@pytest.fixture(scope="module")
def graph_bicep() -> BicepFile:
    return BicepFile.load(GRAPH)


# ------------------------------------------------------------------------------ tokenizer
def test_tokenizer_reads_nested_objects_interpolation_and_comments() -> None:
    text = strip_comments(
        textwrap.dedent(
            """\
            resource x 'A/b@1' = {
              // name: 'commented out'
              name: 'n' /* inline */
              properties: {
                URL: '@Microsoft.KeyVault(SecretUri=${kv.outputs.uri}secrets/${name})'
                LIST: [
                  'a'
                  'b'
                ]
                'quoted-key': '}{ not a brace'
              }
            }
            """
        )
    )
    entries = object_entries(text[text.index("{") :].rstrip())
    assert entries["name"] == "'n'"
    props = object_entries(entries["properties"])
    assert props["URL"] == "'@Microsoft.KeyVault(SecretUri=${kv.outputs.uri}secrets/${name})'"
    assert string_literals(props["LIST"]) == ["a", "b"]
    assert props["quoted-key"] == "'}{ not a brace'"
    assert "commented out" not in text


# ------------------------------------------------------------------------------ app settings
def test_every_infra_setting_of_config_is_an_app_setting(app_settings: dict[str, str]) -> None:
    expected = {spec.name for spec in config.SETTINGS if spec.infra}
    missing = sorted(expected - app_settings.keys())
    assert not missing, f"shared/config.py settings with infra=True missing from Bicep: {missing}"


def test_bicep_defines_no_setting_the_config_does_not_know(app_settings: dict[str, str]) -> None:
    known = {spec.name for spec in config.SETTINGS}
    unknown = sorted(
        name for name in app_settings if name.startswith("XTAP_") and name not in known
    )
    assert not unknown, f"XTAP_* app settings unknown to shared/config.py: {unknown}"


def test_local_only_settings_are_never_deployed(app_settings: dict[str, str]) -> None:
    local_only = {spec.name for spec in config.SETTINGS if not spec.infra}
    # e.g. the Azurite connection string, client secrets, the simulator's CA bundle.
    assert local_only & app_settings.keys() == set()
    assert "AzureWebJobsStorage" not in app_settings


def test_secret_settings_are_key_vault_references(app_settings: dict[str, str]) -> None:
    secrets = [spec.name for spec in config.SETTINGS if spec.infra and spec.secret]
    assert secrets, "config marks the Teams webhook as a secret"
    for name in secrets:
        assert "'@Microsoft.KeyVault(SecretUri=${" in app_settings[name], name


def test_host_storage_is_identity_based(app_settings: dict[str, str]) -> None:
    assert app_settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert app_settings["AzureWebJobsStorage__clientId"] == "managedIdentityClientId"
    assert app_settings["AZURE_CLIENT_ID"] == "managedIdentityClientId"
    for service in ("blob", "queue", "table"):
        assert app_settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"{service}Endpoint"
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "'ClientId=${managedIdentityClientId};Authorization=AAD'"
    )


def _resolve_setting_value(expr: str, app_config: BicepFile, main_bicep: BicepFile) -> str | None:
    """Follow an app setting's value back to a literal in app-config.bicep or main.bicep."""
    expr = re.sub(r"^string\((.*)\)$", r"\1", expr)
    if (value := literal(expr)) is not None:
        return value
    if expr not in app_config.params():
        return None
    passed = re.sub(r"^string\((.*)\)$", r"\1", main_bicep.module_params("appConfig")[expr])
    if (value := literal(passed)) is not None:
        return value
    main_params = main_bicep.params()
    if passed in main_params:
        default = main_params[passed]
        return literal(default) if default is not None else None
    if re.search(rf"^var\s+{passed}\b", main_bicep.text, re.M):
        return literal(main_bicep.var(passed))
    return None


# Settings whose Azure value is computed from the deployment, not a parameter default.
DERIVED_SETTINGS = {
    "XTAP_AUTHORITY_HOST": "environment().authentication.loginEndpoint",
}


def test_bicep_defaults_equal_config_defaults(
    app_settings: dict[str, str], app_config: BicepFile, main_bicep: BicepFile
) -> None:
    checked = []
    for spec in config.SETTINGS:
        if not (spec.infra and spec.default is not None):
            continue
        expr = app_settings[spec.name]
        if spec.name in DERIVED_SETTINGS:
            assert expr == DERIVED_SETTINGS[spec.name]
            continue
        resolved = _resolve_setting_value(expr, app_config, main_bicep)
        assert resolved == spec.default, (
            f"{spec.name}: Bicep {resolved!r} != config {spec.default!r}"
        )
        checked.append(spec.name)
    assert "XTAP_SWEEP_SCHEDULE" in checked and "XTAP_REMINDER_HOURS" in checked


def test_parameter_file_defaults_equal_config_defaults() -> None:
    parameters = json.loads(PARAMETERS.read_text())["parameters"]
    by_name = {spec.name: spec for spec in config.SETTINGS}
    main_params = BicepFile.load(MAIN).params()
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
        if default is not None and main_params[param] is not None:
            assert default == literal(main_params[param]), f"{param}: {default!r} vs main.bicep"
    # Every parameter can be set with `azd env set NAME value`, not only the required ones.
    assert sorted(main_params.keys() - parameters.keys()) == []


def test_outputs_named_like_settings_are_settings(main_bicep: BicepFile) -> None:
    known = {spec.name for spec in config.SETTINGS}
    outputs = re.findall(r"^output\s+(\w+)\s", main_bicep.text, re.M)
    assert "XTAP_CLIENT_READER_APP_ID" in outputs
    assert [name for name in outputs if name.startswith("XTAP_") and name not in known] == []


def test_support_role_matches_the_api_role_setting(
    main_bicep: BicepFile, graph_bicep: BicepFile
) -> None:
    api_role_default = next(s.default for s in config.SETTINGS if s.name == "XTAP_API_ROLE")
    assert literal(main_bicep.var("supportAppRole")) == api_role_default
    api_app = graph_bicep.resource("apiApp")
    role = object_entries(statements(api_app["appRoles"][1:-1])[0])
    assert role["value"] == "supportAppRole"
    assert string_literals(role["allowedMemberTypes"]) == ["User"]
    script = GRANT_SCRIPT.read_text()
    assert f'SUPPORT_APP_ROLE="{api_role_default}"' in script


# ------------------------------------------------------------------------------ Graph
def _design_section_4_permissions() -> set[str] | None:
    """Read DESIGN §4 when the handbook sits beside the repo (it does in CI)."""
    for candidate in (ROOT.parent / "shared" / "DESIGN.md", ROOT / ".." / "shared" / "DESIGN.md"):
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8")
            line = next(
                (ln for ln in text.splitlines() if "Vendor tenant (application permissions)" in ln),
                None,
            )
            if line is None:
                return None
            start = text.index(line)
            bullet = text[start : text.index("\n*", start + 1)]
            return set(re.findall(r"`([A-Za-z]+(?:\.[A-Za-z]+)+)`", bullet))
    return None


def test_our_copy_of_design_permissions_is_current() -> None:
    from_design = _design_section_4_permissions()
    if from_design is None:
        pytest.skip("DESIGN.md is not beside the repository")
    assert from_design == DESIGN_VENDOR_PERMISSIONS


def test_graph_file_grants_exactly_the_design_permissions(graph_bicep: BicepFile) -> None:
    granted = set(string_literals(graph_bicep.var("managedIdentityGraphAppRoles")))
    reset = string_literals(graph_bicep.var("resetRedemptionGraphAppRoles"))
    assert reset == [RESET_REDEMPTION_PERMISSION]
    # Mail.Send is the one DESIGN permission not granted in Entra: an Entra grant applies to
    # every mailbox and Exchange RBAC for Applications cannot narrow it (they are additive).
    assert granted == DESIGN_VENDOR_PERMISSIONS - {"Mail.Send"}
    assert "'Mail.Send'" not in graph_bicep.text
    assert "'Application Mail.Send'" in GRANT_SCRIPT.read_text()
    granted_expr = graph_bicep.var("grantedGraphAppRoles")
    assert "managedIdentityGraphAppRoles" in granted_expr
    assert "grantResetRedemption ? resetRedemptionGraphAppRoles" in granted_expr


def test_graph_app_roles_are_assigned_to_the_managed_identity(graph_bicep: BicepFile) -> None:
    text = graph_bicep.text
    match = re.search(
        r"resource managedIdentityGraphGrants 'Microsoft\.Graph/appRoleAssignedTo@v1\.0' = \[\s*"
        r"for role in grantedGraphAppRoles:",
        text,
    )
    assert match, "app role assignments must loop over grantedGraphAppRoles"
    body = text[text.index("{", match.end()) :]
    grant = object_entries(body[: _close_index(body, 0) + 1])
    assert grant["principalId"] == "managedIdentityPrincipalId"
    assert grant["resourceId"] == "microsoftGraph.id"
    assert "r.value == role" in grant["appRoleId"]
    assert "'Application'" in grant["appRoleId"]  # application permissions, not scopes
    graph_sp = graph_bicep.resource("microsoftGraph")
    assert graph_sp["appId"] == "microsoftGraphAppId"
    assert literal(graph_bicep.var("microsoftGraphAppId")) == "00000003-0000-0000-c000-000000000000"


def test_grant_script_expects_the_same_roles_as_the_graph_file(graph_bicep: BicepFile) -> None:
    match = re.search(r'^DEFAULT_GRAPH_APP_ROLES="([^"]+)"', GRANT_SCRIPT.read_text(), re.M)
    assert match
    expected = string_literals(graph_bicep.var("managedIdentityGraphAppRoles")) + string_literals(
        graph_bicep.var("resetRedemptionGraphAppRoles")
    )
    assert match.group(1).split(",") == expected


def test_client_reader_app_is_multi_tenant_read_only_with_the_identity_as_credential(
    graph_bicep: BicepFile,
) -> None:
    reader = graph_bicep.resource("clientReaderApp")
    assert reader["signInAudience"] == "'AzureADMultipleOrgs'"
    assert string_literals(graph_bicep.var("clientReaderGraphAppRoles")) == ["Policy.Read.All"]
    access = object_entries(statements(reader["requiredResourceAccess"][1:-1])[0])
    assert access["resourceAppId"] == "microsoftGraphAppId"
    assert "for role in clientReaderGraphAppRoles" in access["resourceAccess"]
    assert "type: 'Role'" in access["resourceAccess"]
    # The admin-consent link returns only to a registered redirect URI.
    assert "adminConsentRedirectUri" in object_entries(reader["web"])["redirectUris"]
    assert "passwordCredentials" not in graph_bicep.text
    assert "keyCredentials" not in graph_bicep.text

    fic = graph_bicep.resource("clientReaderManagedIdentityCredential")
    assert fic["name"].startswith("'${clientReaderApp.uniqueName}/")
    assert (
        fic["issuer"] == "'${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'"
    )
    assert fic["subject"] == "managedIdentityPrincipalId"
    assert string_literals(fic["audiences"]) == ["api://AzureADTokenExchange"]


def test_graph_file_is_referenced_from_main_with_the_extension_configured(
    main_bicep: BicepFile, graph_bicep: BicepFile
) -> None:
    assert re.search(r"^extension microsoftGraphV1$", graph_bicep.text, re.M)
    bicepconfig = json.loads((INFRA / "bicepconfig.json").read_text())
    assert bicepconfig["extensions"]["microsoftGraphV1"].startswith(
        "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:"
    )
    entra = main_bicep.module_params("entra")
    assert entra["managedIdentityPrincipalId"] == "identity.outputs.principalId"
    graph_params = graph_bicep.params()
    assert set(entra) <= graph_params.keys()
    assert [p for p, default in graph_params.items() if default is None and p not in entra] == []
    app_config_params = main_bicep.module_params("appConfig")
    assert app_config_params["clientReaderAppId"] == "entra.outputs.clientReaderAppId"
    assert app_config_params["apiAppId"] == "entra.outputs.apiAppId"


# ------------------------------------------------------------------------------ resources
def test_storage_is_identity_only_and_holds_the_config_queues_and_tables() -> None:
    storage = BicepFile.load(STORAGE)
    props = object_entries(storage.resource("storage")["properties"])
    assert props["allowSharedKeyAccess"] == "false"
    assert props["allowBlobPublicAccess"] == "false"
    assert props["minimumTlsVersion"] == "'TLS1_2'"
    assert props["supportsHttpsTrafficOnly"] == "true"
    assert string_literals(storage.var("queueNames")) == list(config.QUEUES)
    assert storage.var("poisonQueueNames") == "[for name in queueNames: '${name}-poison']"
    assert "concat(queueNames, poisonQueueNames)" in storage.text
    assert string_literals(storage.var("tableNames")) == list(config.TABLES)


def test_function_app_is_flex_consumption_python_with_identity_deployment() -> None:
    app = BicepFile.load(INFRA / "modules" / "function-app.bicep")
    plan = app.resource("plan")
    assert object_entries(plan["sku"]) == {"tier": "'FlexConsumption'", "name": "'FC1'"}
    site = object_entries(app.resource("functionApp")["properties"])
    flex = object_entries(site["functionAppConfig"])
    runtime = object_entries(flex["runtime"])
    assert runtime == {"name": "'python'", "version": "pythonVersion"}
    assert app.params()["pythonVersion"] == "'3.11'"
    storage = object_entries(object_entries(flex["deployment"])["storage"])
    assert storage["type"] == "'blobContainer'"
    auth = object_entries(storage["authentication"])
    assert auth == {
        "type": "'UserAssignedIdentity'",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert site["keyVaultReferenceIdentity"] == "identityId"
    assert site["httpsOnly"] == "true"


def test_key_vault_is_rbac_mode_with_purge_protection() -> None:
    vault = BicepFile.load(INFRA / "modules" / "keyvault.bicep")
    props = object_entries(vault.resource("keyVault")["properties"])
    assert props["enableRbacAuthorization"] == "true"
    assert props["enablePurgeProtection"] == "true"
    assert "accessPolicies" not in props


def test_easy_auth_requires_entra_except_for_health(app_config: BicepFile) -> None:
    auth = app_config.resource("authSettings")
    assert auth["name"] == "'authsettingsV2'"
    props = object_entries(auth["properties"])
    validation = object_entries(props["globalValidation"])
    assert validation["requireAuthentication"] == "true"
    assert validation["unauthenticatedClientAction"] == "'Return401'"
    assert validation["excludedPaths"] == "anonymousPaths"
    assert string_literals(app_config.params()["anonymousPaths"] or "[]") == [
        "/api/v1/health",
        "/api/v1/runbooks",
        "/api/v1/runbooks/*",
    ]
    entra = object_entries(object_entries(props["identityProviders"])["azureActiveDirectory"])
    assert object_entries(entra["registration"])["clientId"] == "apiAppId"
    assert "clientSecretSettingName" not in auth["properties"]


def test_every_role_assignment_says_why() -> None:
    raw = (INFRA / "modules" / "roles.bicep").read_text().splitlines()
    assignments = [
        i for i, line in enumerate(raw) if "'Microsoft.Authorization/roleAssignments@" in line
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
        r"(?i)clientSecret\s*:|client_secret\s*=|passwordCredentials|clientSecretSettingName"
    ),
    "webhook URL": re.compile(r"(?i)logic\.azure\.com|powerplatform\.com|webhook\.office\.com"),
}


def test_no_secret_literal_in_infra() -> None:
    files = sorted(p for p in INFRA.rglob("*") if p.is_file())
    files.append(ROOT / "azure.yaml")
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        for what, pattern in SECRET_SHAPES.items():
            assert not pattern.search(text), f"{path.relative_to(ROOT)} contains a {what}"
    # Nothing secret is passed as a parameter either, so no @secure() is needed anywhere.
    assert "@secure()" not in "".join(p.read_text() for p in INFRA.rglob("*.bicep"))


def test_checkov_skips_say_why() -> None:
    for path in INFRA.rglob("*.bicep"):
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                match = re.search(r"checkov:skip=(CKV2?_[A-Z]+_\d+):(.{20,})", line)
                assert match, f"{path.name}: skip without an id and a reason: {line.strip()}"


def test_no_registry_modules() -> None:
    for path in INFRA.rglob("*.bicep"):
        assert "br/public:" not in path.read_text(), path.name


def test_every_parameter_is_documented(main_bicep: BicepFile) -> None:
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    undocumented = [name for name in main_bicep.params() if f"`{name}`" not in doc]
    assert not undocumented, f"parameters missing from docs/deploy.md: {undocumented}"
    parameters = json.loads(PARAMETERS.read_text())["parameters"]
    for body in parameters.values():
        env_name = re.match(r"\$\{(\w+)", body["value"]).group(1)
        if not env_name.startswith("AZURE_"):
            assert f"`{env_name}`" in doc, f"azd variable {env_name} missing from docs/deploy.md"


def test_azure_yaml_deploys_the_repo_as_a_python_function() -> None:
    text = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^\s+host: function$", text, re.M)
    assert re.search(r"^\s+language: python$", text, re.M)
    assert "'azd-service-name': 'api'" in (INFRA / "modules" / "function-app.bicep").read_text()


# ------------------------------------------------------------------------------ grant script
FAKE_AZ = r'''#!{python}
"""Stands in for the Azure CLI: logs each call, answers the few reads the script makes."""
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
joined = " ".join(args)
state = json.loads(os.environ["FAKE_AZ_STATE"])
if args[:3] == ["ad", "sp", "show"] and "00000003-0000-0000-c000-000000000000" in args:
    if "appRoles" in joined:
        print("\n".join(f"{rid}\t{value}" for value, rid in state["graph_roles"].items()))
    else:
        print("graph-sp-object-id")
elif args[:3] == ["ad", "sp", "show"]:
    print(state["support_role_id"])
elif args[:2] == ["rest", "--method"] and args[2] == "GET" and "appRoleAssignments" in joined:
    print("\n".join(state["granted"]))
elif args[:2] == ["rest", "--method"] and args[2] == "GET":
    print(state.get("diagnostic_setting", ""))
'''

GRAPH_ROLE_IDS = {
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "User.Invite.All": "09850681-111b-4a89-9bed-3f2cae46d706",
    "AccessReview.ReadWrite.All": "ef5f7d5c-338f-44b0-86c3-351f46c8bb5f",
    "CrossTenantInformation.ReadBasic.All": "cac88765-0581-4025-9725-5ebc13f729ee",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Mail.Send": "b633e1c5-b582-4048-a93e-9f11b44c7e96",
}
MI_PRINCIPAL = "11111111-2222-3333-4444-555555555555"
MI_CLIENT = "66666666-7777-8888-9999-000000000000"


@pytest.fixture
def run_script(tmp_path: Path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    az = fake_bin / "az"
    az.write_text(FAKE_AZ.replace("{python}", sys.executable))
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "az.log"

    def run(*args: str, state: dict, **env: str) -> tuple[subprocess.CompletedProcess[str], list]:
        log.write_text("")
        environment = {
            "PATH": f"{fake_bin}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "FAKE_AZ_LOG": str(log),
            "FAKE_AZ_STATE": json.dumps(state),
            "MANAGED_IDENTITY_PRINCIPAL_ID": MI_PRINCIPAL,
            "MANAGED_IDENTITY_CLIENT_ID": MI_CLIENT,
            **env,
        }
        done = subprocess.run(
            ["bash", str(GRANT_SCRIPT), *args],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return done, calls

    return run


def _state(granted_roles: list[str], **extra: object) -> dict:
    return {
        "graph_roles": GRAPH_ROLE_IDS,
        "granted": [GRAPH_ROLE_IDS[r] for r in granted_roles],
        "support_role_id": "abababab-0000-0000-0000-000000000001",
        **extra,
    }


def test_grant_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(GRANT_SCRIPT)], check=True)
    assert os.access(GRANT_SCRIPT, os.X_OK)


def test_check_reports_missing_roles_and_a_tenant_wide_mail_send(run_script) -> None:
    granted = ["Policy.Read.All", "AuditLog.Read.All", "Mail.Send"]
    done, calls = run_script(
        "--check", state=_state(granted), LOG_ANALYTICS_WORKSPACE_RESOURCE_ID="/ws"
    )
    assert done.returncode == 1, done.stderr
    assert "ok   Policy.Read.All" in done.stdout
    assert "User.Invite.All is not granted" in done.stdout
    assert "Mail.Send is granted tenant-wide" in done.stdout
    assert "no Entra diagnostic setting" in done.stdout
    # --check never writes.
    assert all(call[:3] != ["rest", "--method", "POST"] for call in calls)
    assert all(call[:3] != ["rest", "--method", "PUT"] for call in calls)


def test_check_passes_when_everything_is_in_place(run_script) -> None:
    expected = list(GRAPH_ROLE_IDS)[:-1]  # all but Mail.Send
    state = _state(expected, diagnostic_setting="xtap-watch-entra-logs")
    done, _ = run_script("--check", state=state, LOG_ANALYTICS_WORKSPACE_RESOURCE_ID="/ws")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All checks passed." in done.stdout


def test_grant_missing_posts_only_the_missing_roles(run_script) -> None:
    done, calls = run_script("--grant-missing", state=_state(["Policy.Read.All"]))
    assert done.returncode == 0, done.stderr
    posts = [c for c in calls if c[:3] == ["rest", "--method", "POST"]]
    bodies = [json.loads(c[c.index("--body") + 1]) for c in posts]
    assert {b["appRoleId"] for b in bodies} == {
        GRAPH_ROLE_IDS[r] for r in GRAPH_ROLE_IDS if r not in ("Policy.Read.All", "Mail.Send")
    }
    for call, body in zip(posts, bodies, strict=True):
        assert call[call.index("--uri") + 1] == (
            f"https://graph.microsoft.com/v1.0/servicePrincipals/{MI_PRINCIPAL}/appRoleAssignments"
        )
        assert body["principalId"] == MI_PRINCIPAL
        assert body["resourceId"] == "graph-sp-object-id"


def test_entra_diagnostics_puts_audit_and_signin_logs_to_the_workspace(run_script) -> None:
    workspace = (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/log"
    )
    done, calls = run_script(
        "--entra-diagnostics", state=_state([]), LOG_ANALYTICS_WORKSPACE_RESOURCE_ID=workspace
    )
    assert done.returncode == 0, done.stderr
    (put,) = [c for c in calls if c[:3] == ["rest", "--method", "PUT"]]
    uri = put[put.index("--uri") + 1]
    assert uri.startswith(
        "https://management.azure.com/providers/microsoft.aadiam/diagnosticSettings/"
    )
    assert uri.endswith("?api-version=2017-04-01")
    body = json.loads(put[put.index("--body") + 1])
    assert body["properties"]["workspaceId"] == workspace
    assert {(log["category"], log["enabled"]) for log in body["properties"]["logs"]} == {
        ("AuditLogs", True),
        ("SignInLogs", True),
    }


def test_exchange_script_scopes_mail_send_to_the_sender_mailbox(run_script, tmp_path: Path) -> None:
    done, calls = run_script(
        "--exchange-mail-send",
        "--dry-run",
        state=_state([]),
        XTAP_MAIL_SENDER="alerts@vendor.example",
    )
    assert done.returncode == 0, done.stderr
    assert calls == []  # nothing to call in Azure for this step
    ps1 = (tmp_path / "xtap-watch-exchange-mail-send.ps1").read_text()
    assert f"New-ServicePrincipal -AppId '{MI_CLIENT}' -ObjectId '{MI_PRINCIPAL}'" in ps1
    assert "-RecipientRestrictionFilter \"PrimarySmtpAddress -eq 'alerts@vendor.example'\"" in ps1
    assert "-Role 'Application Mail.Send' -CustomResourceScope 'xtap-watch alert sender'" in ps1


def test_exchange_scope_by_object_id(run_script, tmp_path: Path) -> None:
    sender = "0f0f0f0f-1111-2222-3333-444444444444"
    done, _ = run_script(
        "--exchange-mail-send", "--dry-run", state=_state([]), XTAP_MAIL_SENDER=sender
    )
    assert done.returncode == 0, done.stderr
    ps1 = (tmp_path / "xtap-watch-exchange-mail-send.ps1").read_text()
    assert f"ExternalDirectoryObjectId -eq '{sender}'" in ps1


def test_assign_support_role_dry_run(run_script) -> None:
    group = "12121212-3434-5656-7878-909090909090"
    done, calls = run_script(
        "--assign-support-role",
        group,
        "--dry-run",
        state=_state([]),
        API_SERVICE_PRINCIPAL_ID="api-sp",
    )
    assert done.returncode == 0, done.stderr
    assert [c for c in calls if "POST" in c] == []  # dry run: only the role lookup was called
    assert "DRY-RUN: az rest --method POST" in done.stdout
    assert "servicePrincipals/api-sp/appRoleAssignedTo" in done.stdout
    assert "abababab-0000-0000-0000-000000000001" in done.stdout


def test_script_refuses_without_an_action(run_script) -> None:
    done, calls = run_script(state=_state([]))
    assert done.returncode == 2
    assert calls == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_checkov_wrapper_pins_the_version_and_skips_only_the_graph_folder() -> None:
    text = (ROOT / "scripts" / "checkov.sh").read_text()
    assert 'CHECKOV_VERSION="3.3.30"' in text
    assert "--skip-download" in text
    assert "--skip-path infra/graph" in text
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "checkov.sh")], check=True)
