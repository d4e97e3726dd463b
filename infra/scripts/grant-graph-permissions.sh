#!/usr/bin/env bash
# Post-deployment steps that Bicep cannot (or should not) do, for a vendor-tenant admin.
#
#   --check                   read-only: report which Graph app roles, the Entra diagnostic
#                             setting and the tenant-wide Mail.Send grant look as expected
#                             (exit 1 if something needs doing). azd runs this after provision.
#   --grant-missing           assign Graph application permissions the deployment could not
#                             (e.g. azd ran without Privileged Role Administrator)
#   --entra-diagnostics       stream the tenant's AuditLogs and SignInLogs to the workspace
#                             (tenant-level microsoft.aadiam/diagnosticSettings; needs Security
#                             Administrator or Global Administrator)
#   --exchange-mail-send      scope Mail.Send to the sender mailbox with Exchange Online RBAC
#                             for Applications (writes a PowerShell script; runs it when pwsh
#                             with ExchangeOnlineManagement is installed; needs Exchange admin)
#   --assign-support-role ID  give a user or group (object ID) the Reinvite.Request app role
#   --assign-guest-inviter    give the managed identity the Guest Inviter directory role, so
#                             re-invites work while guest invitations are restricted to admins
#                             (allowInvitesFrom = adminsAndGuestInviters; needs Privileged Role
#                             Administrator)
#   --dry-run                 print the write calls instead of making them
#
# Values come from the azd environment (`azd env get-values`, the outputs of infra/main.bicep)
# unless already set in the process environment.
set -euo pipefail

GRAPH="https://graph.microsoft.com/v1.0"
ARM="https://management.azure.com"
MICROSOFT_GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"
DIAGNOSTIC_SETTING_NAME="xtap-watch-entra-logs"
# Keep in step with managedIdentityGraphAppRoles + resetRedemptionGraphAppRoles in
# infra/graph/graph-permissions.bicep (tests/unit/test_infra.py checks it). Mail.Send is not
# here on purpose: it is granted per mailbox by --exchange-mail-send.
DEFAULT_GRAPH_APP_ROLES="Policy.Read.All,AuditLog.Read.All,Directory.Read.All,User.Invite.All,AccessReview.ReadWrite.All,CrossTenantInformation.ReadBasic.All,User.ReadWrite.All"
SUPPORT_APP_ROLE="Reinvite.Request"
GUEST_INVITER_ROLE_ID="95e79109-95c0-4d8e-aee3-d01accf2d47b"

DRY_RUN=0
DO_CHECK=0
DO_GRANT=0
DO_DIAGNOSTICS=0
DO_EXCHANGE=0
SUPPORT_PRINCIPAL=""
DO_GUEST_INVITER=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --check) DO_CHECK=1 ;;
    --grant-missing) DO_GRANT=1 ;;
    --entra-diagnostics) DO_DIAGNOSTICS=1 ;;
    --exchange-mail-send) DO_EXCHANGE=1 ;;
    --assign-support-role) shift; SUPPORT_PRINCIPAL="${1:?--assign-support-role needs an object ID}" ;;
    --assign-guest-inviter) DO_GUEST_INVITER=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ $((DO_CHECK + DO_GRANT + DO_DIAGNOSTICS + DO_EXCHANGE + DO_GUEST_INVITER)) -eq 0 ] && [ -z "$SUPPORT_PRINCIPAL" ]; then
  usage >&2
  exit 2
fi

# Load azd outputs for any variable the caller did not set.
if command -v azd >/dev/null 2>&1; then
  while IFS='=' read -r key value; do
    [ -n "$key" ] || continue
    value="${value%\"}"
    value="${value#\"}"
    if [ -z "${!key:-}" ]; then
      export "$key=$value"
    fi
  done < <(azd env get-values 2>/dev/null || true)
fi

need() {
  local name="$1"
  if [ -z "${!name:-}" ]; then
    echo "missing $name: run from the azd project after 'azd provision', or export it" >&2
    exit 2
  fi
}

# Write calls go through here so --dry-run can show them.
write_call() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf 'DRY-RUN: az'
    printf ' %q' "$@"
    printf '\n'
  else
    az "$@"
  fi
}

graph_sp_id() {
  az ad sp show --id "$MICROSOFT_GRAPH_APP_ID" --query id -o tsv
}

# Prints "<role id> <role value>" lines for Graph's application permissions.
graph_app_roles() {
  az ad sp show --id "$MICROSOFT_GRAPH_APP_ID" \
    --query "appRoles[?contains(allowedMemberTypes, 'Application')].[id, value]" -o tsv
}

# Prints the appRoleIds the managed identity holds on Microsoft Graph.
granted_role_ids() {
  local graph_id="$1"
  az rest --method GET \
    --uri "$GRAPH/servicePrincipals/$MANAGED_IDENTITY_PRINCIPAL_ID/appRoleAssignments" \
    --query "value[?resourceId=='$graph_id'].appRoleId" -o tsv
}

role_id_for() {
  local wanted="$1" roles="$2"
  printf '%s\n' "$roles" | awk -v v="$wanted" '$2 == v { print $1; exit }'
}

PROBLEMS=0
problem() {
  echo "  TODO: $*"
  PROBLEMS=$((PROBLEMS + 1))
}

check_or_grant_graph_roles() {
  need MANAGED_IDENTITY_PRINCIPAL_ID
  local expected="${GRANTED_GRAPH_APP_ROLES:-$DEFAULT_GRAPH_APP_ROLES}"
  local graph_id roles granted role role_id
  graph_id="$(graph_sp_id)"
  roles="$(graph_app_roles)"
  granted="$(granted_role_ids "$graph_id")"
  echo "Microsoft Graph application permissions of the managed identity:"
  IFS=',' read -r -a wanted_roles <<< "$expected"
  for role in "${wanted_roles[@]}"; do
    role_id="$(role_id_for "$role" "$roles")"
    if [ -z "$role_id" ]; then
      problem "$role is not an application permission of Microsoft Graph"
    elif printf '%s\n' "$granted" | grep -qx "$role_id"; then
      echo "  ok   $role"
    elif [ "$DO_GRANT" -eq 1 ]; then
      echo "  add  $role"
      write_call rest --method POST \
        --uri "$GRAPH/servicePrincipals/$MANAGED_IDENTITY_PRINCIPAL_ID/appRoleAssignments" \
        --headers "Content-Type=application/json" \
        --body "{\"principalId\":\"$MANAGED_IDENTITY_PRINCIPAL_ID\",\"resourceId\":\"$graph_id\",\"appRoleId\":\"$role_id\"}"
    else
      problem "$role is not granted (run with --grant-missing as a Privileged Role Administrator)"
    fi
  done
  # A tenant-wide Mail.Send grant would let the app send as anyone, and Exchange RBAC for
  # Applications cannot narrow it (the two are additive).
  role_id="$(role_id_for "Mail.Send" "$roles")"
  if [ -n "$role_id" ] && printf '%s\n' "$granted" | grep -qx "$role_id"; then
    problem "Mail.Send is granted tenant-wide in Entra ID: remove that grant and use --exchange-mail-send"
  fi
}

entra_diagnostics() {
  need LOG_ANALYTICS_WORKSPACE_RESOURCE_ID
  local uri="$ARM/providers/microsoft.aadiam/diagnosticSettings/$DIAGNOSTIC_SETTING_NAME?api-version=2017-04-01"
  if [ "$DO_DIAGNOSTICS" -eq 1 ]; then
    echo "Entra diagnostic setting $DIAGNOSTIC_SETTING_NAME -> $LOG_ANALYTICS_WORKSPACE_RESOURCE_ID"
    write_call rest --method PUT --uri "$uri" \
      --headers "Content-Type=application/json" \
      --body "{\"properties\":{\"workspaceId\":\"$LOG_ANALYTICS_WORKSPACE_RESOURCE_ID\",\"logs\":[{\"category\":\"AuditLogs\",\"enabled\":true},{\"category\":\"SignInLogs\",\"enabled\":true}]}}"
  else
    echo "Entra diagnostic setting (AuditLogs, SignInLogs -> workspace):"
    local found
    found="$(az rest --method GET --uri "$ARM/providers/microsoft.aadiam/diagnosticSettings?api-version=2017-04-01" \
      --query "value[?properties.workspaceId=='$LOG_ANALYTICS_WORKSPACE_RESOURCE_ID'].name" -o tsv 2>/dev/null || true)"
    if [ -n "$found" ]; then
      echo "  ok   $found"
    else
      problem "no Entra diagnostic setting sends logs to the workspace (run with --entra-diagnostics)"
    fi
  fi
}

exchange_mail_send() {
  need MANAGED_IDENTITY_PRINCIPAL_ID
  need MANAGED_IDENTITY_CLIENT_ID
  if [ -z "${XTAP_MAIL_SENDER:-}" ]; then
    echo "XTAP_MAIL_SENDER is empty: alert mail is off, nothing to scope."
    return 0
  fi
  local filter script
  # An object ID or an address; the management scope filters on the matching property.
  if [[ "$XTAP_MAIL_SENDER" =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]]; then
    filter="ExternalDirectoryObjectId -eq '$XTAP_MAIL_SENDER'"
  else
    filter="PrimarySmtpAddress -eq '$XTAP_MAIL_SENDER'"
  fi
  script="${EXCHANGE_SCRIPT:-./xtap-watch-exchange-mail-send.ps1}"
  # The managed identity's service principal: AppId is its client ID, ObjectId its principal ID.
  cat > "$script" <<EOF
# Generated by infra/scripts/grant-graph-permissions.sh: Exchange Online RBAC for Applications.
# Lets the xtap-watch managed identity send mail as $XTAP_MAIL_SENDER and no other mailbox.
Connect-ExchangeOnline
New-ServicePrincipal -AppId '$MANAGED_IDENTITY_CLIENT_ID' -ObjectId '$MANAGED_IDENTITY_PRINCIPAL_ID' -DisplayName 'xtap-watch function identity'
New-ManagementScope -Name 'xtap-watch alert sender' -RecipientRestrictionFilter "$filter"
New-ManagementRoleAssignment -Name 'xtap-watch Mail.Send' -App '$MANAGED_IDENTITY_CLIENT_ID' -Role 'Application Mail.Send' -CustomResourceScope 'xtap-watch alert sender'
# Expect InScope = True for the sender, False for any other mailbox.
Test-ServicePrincipalAuthorization -Identity '$MANAGED_IDENTITY_CLIENT_ID' -Resource '$XTAP_MAIL_SENDER'
EOF
  echo "Exchange RBAC for Applications script written to $script"
  if [ "$DRY_RUN" -eq 0 ] && command -v pwsh >/dev/null 2>&1; then
    pwsh -NoProfile -File "$script"
  else
    echo "  run it in PowerShell with the ExchangeOnlineManagement module as an Exchange Administrator"
  fi
}

assign_support_role() {
  need API_SERVICE_PRINCIPAL_ID
  local role_id
  role_id="$(az ad sp show --id "$API_SERVICE_PRINCIPAL_ID" \
    --query "appRoles[?value=='$SUPPORT_APP_ROLE'].id | [0]" -o tsv)"
  if [ -z "$role_id" ]; then
    echo "the API app has no $SUPPORT_APP_ROLE role; was infra/graph deployed?" >&2
    exit 1
  fi
  echo "Assigning $SUPPORT_APP_ROLE to $SUPPORT_PRINCIPAL"
  write_call rest --method POST \
    --uri "$GRAPH/servicePrincipals/$API_SERVICE_PRINCIPAL_ID/appRoleAssignedTo" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\":\"$SUPPORT_PRINCIPAL\",\"resourceId\":\"$API_SERVICE_PRINCIPAL_ID\",\"appRoleId\":\"$role_id\"}"
}

# Graph invitation-post: app-only invitations do not work while invitations are restricted
# to administrators; the Guest Inviter role makes the identity one of them (least privilege).
assign_guest_inviter() {
  need MANAGED_IDENTITY_PRINCIPAL_ID
  echo "Assigning the Guest Inviter directory role to $MANAGED_IDENTITY_PRINCIPAL_ID"
  write_call rest --method POST \
    --uri "$GRAPH/roleManagement/directory/roleAssignments" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\":\"$MANAGED_IDENTITY_PRINCIPAL_ID\",\"roleDefinitionId\":\"$GUEST_INVITER_ROLE_ID\",\"directoryScopeId\":\"/\"}"
}

if [ "$DO_CHECK" -eq 1 ] || [ "$DO_GRANT" -eq 1 ]; then
  check_or_grant_graph_roles
fi
if [ "$DO_GUEST_INVITER" -eq 1 ]; then
  assign_guest_inviter
fi
if [ "$DO_CHECK" -eq 1 ] || [ "$DO_DIAGNOSTICS" -eq 1 ]; then
  entra_diagnostics
fi
if [ "$DO_EXCHANGE" -eq 1 ]; then
  exchange_mail_send
fi
if [ -n "$SUPPORT_PRINCIPAL" ]; then
  assign_support_role
fi
if [ "$DO_CHECK" -eq 1 ]; then
  if [ "$PROBLEMS" -gt 0 ]; then
    echo "$PROBLEMS item(s) to do; see docs/deploy.md, 'After azd up'."
    exit 1
  fi
  echo "All checks passed."
fi
