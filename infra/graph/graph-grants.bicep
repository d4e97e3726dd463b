// Microsoft Graph application permissions of the function's managed identity (app role
// assignments on the Microsoft Graph service principal). Granting them needs Privileged Role
// Administrator or Global Administrator in the vendor tenant.
//
// main.bicep deploys this module last, after app settings and App Service Authentication, and
// only when GRANT_GRAPH_APP_ROLES is true, so a deployer without that role still gets a
// working (if unauthorised) app and a Privileged Role Administrator grants later with
// `infra/scripts/grant-graph-permissions.sh --grant-missing`.
//
// First provision: an app role assignment to a managed identity created minutes earlier in
// the same deployment can fail with "Not a valid reference update" until Entra replicates the
// new service principal (microsoftgraph/msgraph-bicep-types#193; Microsoft documents no
// replication SLA there). So the assignments are declared here only once the identity existed
// before this deployment (its principal ID is already in the azd environment); on the first
// provision the post-provision hook grants them with retries instead (azure.yaml,
// infra/scripts/grant_graph_permissions.py --postprovision). Every later provision declares
// the same assignments here, which leaves existing ones as they are.
//
// Mail.Send is deliberately NOT assigned here: an Entra grant of Mail.Send applies to every
// mailbox and Exchange RBAC scoping is additive, so it could not narrow it again; it is granted
// per mailbox with Exchange RBAC for Applications (grant script --exchange-mail-send).

extension microsoftGraphV1

@description('Object (principal) ID of the function\'s user-assigned managed identity.')
param managedIdentityPrincipalId string

@description('The principal ID the azd environment recorded at the previous provision (MANAGED_IDENTITY_PRINCIPAL_ID); empty on the first one.')
param previousManagedIdentityPrincipalId string = ''

@description('Declare the app role assignments (GRANT_GRAPH_APP_ROLES). False: grant nothing, someone grants later.')
param grantGraphAppRoles bool = true

@description('Also grant User.ReadWrite.All, which Microsoft Graph requires to reset a guest\'s redemption status app-only.')
param grantResetRedemption bool = true

@description('Also grant Group.Create and GroupMember.ReadWrite.All, which guest access reviews need to keep each client\'s guests group (main.bicep: only when reviewers are configured).')
param grantAccessReviewGroups bool = false

@description('Also grant Policy.Read.B2BManagementPolicy, the only permission that reads the B2B invitation domain allow/deny list.')
param grantB2bPolicyRead bool = true

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'

// Application permissions the managed identity holds in the vendor tenant (DESIGN §4). The
// identity's own directory roles (vendor-side check "xtap-watch may invite") are read through
// roleManagement/directory/roleAssignments, which Directory.Read.All covers.
var managedIdentityGraphAppRoles = [
  'Policy.Read.All' // cross-tenant access policy (default, partners, clouds), authorization policy
  'AuditLog.Read.All' // directoryAudits, signIns
  'Directory.Read.All' // guests, groups and members, the identity's own directory roles
  'User.Invite.All' // POST /invitations (re-invites)
  'AccessReview.ReadWrite.All' // ensure access-review definitions for client guests
  'CrossTenantInformation.ReadBasic.All' // tenant ID <-> domain lookups for clients
]

// Resetting redemption (POST /invitations with resetRedemption) app-only: Microsoft Graph
// documents User.ReadWrite.All as the minimum. This is the "role able to reset redemption" of
// DESIGN §4; turn it off to run without re-invites.
var resetRedemptionGraphAppRoles = [
  'User.ReadWrite.All'
]

// Beyond DESIGN §4: features added since then, each with its documented least privilege
// (docs/permissions.md has the per-feature table and the Microsoft pages).
//
// Guest access reviews review a group, so xtap-watch keeps one guests group per client:
// POST /groups needs Group.Create (the app becomes the group's owner), adding and removing
// members needs GroupMember.ReadWrite.All; listing groups and members is covered by
// Directory.Read.All. Granted only while access reviews are configured.
var accessReviewGroupGraphAppRoles = [
  'Group.Create'
  'GroupMember.ReadWrite.All'
]

// The vendor-side check "every client domain may be invited" reads the invitation domain
// allow/deny list from GET /beta/policies/b2bManagementPolicies; Microsoft Graph lists only
// Policy.Read.B2BManagementPolicy (and its ReadWrite form) for it, not Policy.Read.All.
// Without it that one check is skipped and the doctor warns.
var b2bPolicyGraphAppRoles = [
  'Policy.Read.B2BManagementPolicy'
]

var grantedGraphAppRoles = concat(managedIdentityGraphAppRoles, grantResetRedemption ? resetRedemptionGraphAppRoles : [], grantAccessReviewGroups ? accessReviewGroupGraphAppRoles : [], grantB2bPolicyRead ? b2bPolicyGraphAppRoles : [])

var identityExistedBefore = !empty(previousManagedIdentityPrincipalId) && toLower(previousManagedIdentityPrincipalId) == toLower(managedIdentityPrincipalId)
var declareGrants = grantGraphAppRoles && identityExistedBefore

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

// Role IDs are looked up by name on the Microsoft Graph service principal rather than copied
// as GUIDs, so a typo fails the deployment instead of granting the wrong permission.
resource managedIdentityGraphGrants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for role in (declareGrants ? grantedGraphAppRoles : []): {
    appRoleId: filter(microsoftGraph.appRoles, r => r.value == role && contains(r.allowedMemberTypes, 'Application'))[0].id
    principalId: managedIdentityPrincipalId
    resourceId: microsoftGraph.id
  }
]

output grantedGraphAppRoles array = grantedGraphAppRoles
@description('True when the post-provision hook, not this template, must grant the roles (first provision of this identity).')
output grantsDeferredToHook bool = grantGraphAppRoles && !identityExistedBefore
