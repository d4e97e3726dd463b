// Microsoft Entra objects and Microsoft Graph permissions, as code (Microsoft Graph Bicep
// extension, types v1.0:1.0.0 pinned in ../bicepconfig.json; needs Bicep >= 0.36.1).
//
// Kept in its own file on purpose: checkov cannot parse the `extension` keyword, so this file
// is checked by tests/unit/test_infra.py instead (exact permission set, no secrets).
//
// The identity running `azd provision` needs, in the vendor tenant: Application Administrator
// (or Cloud Application Administrator) to create the app registrations, and Privileged Role
// Administrator (or Global Administrator) to grant Microsoft Graph application permissions.
//
// What this file cannot do is in ../scripts/grant-graph-permissions.sh (docs/deploy.md):
//   * Mail.Send: granted with Exchange Online RBAC for Applications, scoped to the one sender
//     mailbox. It is deliberately NOT assigned here: an Entra grant of Mail.Send applies to
//     every mailbox and Exchange RBAC scoping is additive, so it could not narrow it again.
//   * the tenant-level Entra diagnostic setting (AuditLogs/SignInLogs to the workspace).

extension microsoftGraphV1

@description('Object (principal) ID of the function\'s user-assigned managed identity.')
param managedIdentityPrincipalId string

@description('Short unique suffix shared with the Azure resources (keeps uniqueName stable per azd environment).')
param resourceToken string

@description('Host name of the Function App (for the sign-in callback of App Service Authentication).')
param functionAppHostName string

@description('Where the admin-consent link returns the client admin; must be a registered redirect URI of the reader app.')
param adminConsentRedirectUri string

@description('Value of the app role support staff need for the re-invite API (XTAP_API_ROLE).')
param supportAppRole string

// The read-only role of the portfolio report (GET /api/v1/report): shared/config.py's default
// for XTAP_REPORT_ROLE. Support staff (supportAppRole) may read the report too.
var reportAppRole = 'Report.Read'

@description('Optional object ID of a user or group to assign the support role to now. Empty: assign it later (docs/deploy.md).')
param supportPrincipalId string = ''

@description('Also grant User.ReadWrite.All, which Microsoft Graph requires to reset a guest\'s redemption status app-only.')
param grantResetRedemption bool = true

@description('Display name of the multi-tenant app that client admins consent to.')
param clientReaderDisplayName string = 'xtap-watch cross-tenant policy reader'

@description('Display name of the support API app registration.')
param apiDisplayName string = 'xtap-watch support API'

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'

// Application permissions the managed identity holds in the vendor tenant (DESIGN §4).
var managedIdentityGraphAppRoles = [
  'Policy.Read.All' // cross-tenant access policy, authorization and B2B management policies
  'AuditLog.Read.All' // directoryAudits, signIns, users' signInActivity
  'Directory.Read.All' // guests, groups, applications named in policy targets
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

// The one permission client tenants grant, by admin consent, to the reader app.
var clientReaderGraphAppRoles = [
  'Policy.Read.All'
]

var grantedGraphAppRoles = concat(managedIdentityGraphAppRoles, grantResetRedemption ? resetRedemptionGraphAppRoles : [])

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

// Role IDs are looked up by name on the Microsoft Graph service principal rather than copied
// as GUIDs, so a typo fails the deployment instead of granting the wrong permission.
resource managedIdentityGraphGrants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for role in grantedGraphAppRoles: {
    appRoleId: filter(microsoftGraph.appRoles, r => r.value == role && contains(r.allowedMemberTypes, 'Application'))[0].id
    principalId: managedIdentityPrincipalId
    resourceId: microsoftGraph.id
  }
]

// ---------------------------------------------------------------------------------------------
// Multi-tenant, read-only app that client admins consent to (Policy.Read.All). It has no
// secret and no certificate: its only credential is the managed identity, trusted as a
// federated identity credential, so the function signs in to each consenting client tenant
// as this app without anything to store or rotate.
// ---------------------------------------------------------------------------------------------
resource clientReaderApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: 'xtap-watch-client-reader-${resourceToken}'
  displayName: clientReaderDisplayName
  description: 'Reads the cross-tenant access settings of a client tenant so the vendor can warn when B2B sign-in to its apps would fail. Read-only.'
  signInAudience: 'AzureADMultipleOrgs'
  web: {
    // The admin-consent endpoint only returns to a registered redirect URI.
    redirectUris: [
      adminConsentRedirectUri
    ]
  }
  requiredResourceAccess: [
    {
      resourceAppId: microsoftGraphAppId
      resourceAccess: [
        for role in clientReaderGraphAppRoles: {
          id: filter(microsoftGraph.appRoles, r => r.value == role && contains(r.allowedMemberTypes, 'Application'))[0].id
          type: 'Role'
        }
      ]
    }
  ]
}

// Entra ID as the issuer and the identity's object ID as the subject: the documented
// "application trusts a managed identity" configuration (works across tenants for a
// multi-tenant app).
resource clientReaderManagedIdentityCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${clientReaderApp.uniqueName}/function-managed-identity'
  description: 'The xtap-watch Function App user-assigned managed identity.'
  issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
  subject: managedIdentityPrincipalId
  audiences: [
    'api://AzureADTokenExchange'
  ]
}

resource clientReaderServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: clientReaderApp.appId
}

// ---------------------------------------------------------------------------------------------
// The support API behind App Service Authentication: single-tenant, one app role for support
// staff, and assignment required so that nobody without the role can even sign in.
// ---------------------------------------------------------------------------------------------
resource apiApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: 'xtap-watch-api-${resourceToken}'
  displayName: apiDisplayName
  description: 'App Service Authentication for the xtap-watch support API (re-invites).'
  signInAudience: 'AzureADMyOrg'
  api: {
    requestedAccessTokenVersion: 2
  }
  appRoles: [
    {
      id: guid(resourceToken, 'xtap-watch-api-role', supportAppRole)
      value: supportAppRole
      displayName: 'Re-invite requester'
      description: 'Support staff who may request guest re-invites and read their status.'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
    {
      id: guid(resourceToken, 'xtap-watch-api-role', reportAppRole)
      value: reportAppRole
      displayName: 'Portfolio report reader'
      description: 'Account managers and admins who may read the client portfolio report, and nothing else.'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
  ]
  web: {
    redirectUris: [
      'https://${functionAppHostName}/.auth/login/aad/callback'
    ]
    implicitGrantSettings: {
      // App Service Authentication without a client secret signs users in with an ID token.
      enableIdTokenIssuance: true
      enableAccessTokenIssuance: false
    }
  }
  requiredResourceAccess: [
    {
      resourceAppId: microsoftGraphAppId
      resourceAccess: [
        {
          // User.Read (delegated, well-known ID): sign in and read the signed-in user's profile.
          id: 'e1fe6dd8-ba31-4d61-89e7-88639da4683d'
          type: 'Scope'
        }
      ]
    }
  ]
}

resource apiServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: apiApp.appId
  appRoleAssignmentRequired: true
}

resource supportRoleAssignment 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (!empty(supportPrincipalId)) {
  appRoleId: guid(resourceToken, 'xtap-watch-api-role', supportAppRole)
  principalId: supportPrincipalId
  resourceId: apiServicePrincipal.id
}

output clientReaderAppId string = clientReaderApp.appId
output clientReaderServicePrincipalId string = clientReaderServicePrincipal.id
output apiAppId string = apiApp.appId
output apiServicePrincipalId string = apiServicePrincipal.id
output grantedGraphAppRoles array = grantedGraphAppRoles
