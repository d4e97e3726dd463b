// Microsoft Entra objects as code (Microsoft Graph Bicep extension, types v1.0:1.0.0 pinned in
// ../bicepconfig.json; needs Bicep >= 0.36.1, i.e. azd >= 1.17.0 - azure.yaml enforces more).
//
// Kept apart from the Azure resources on purpose: checkov cannot parse the `extension`
// keyword, so the files in this folder are checked by tests/unit/test_infra.py instead.
// The Microsoft Graph *application permissions* of the managed identity are in
// graph-grants.bicep, deployed last and behind GRANT_GRAPH_APP_ROLES, so that a deployer
// without Privileged Role Administrator still gets a configured, authenticated app.
//
// The identity running `azd provision` needs Application Administrator (or Cloud Application
// Administrator) in the vendor tenant for this file.
//
// The Microsoft Graph Bicep extension deploys to the public cloud only (Microsoft Learn,
// "Microsoft Graph Bicep feature limitations"), so this template supports only that cloud.

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

@description('Display name of the multi-tenant app that client admins consent to.')
param clientReaderDisplayName string = 'xtap-watch cross-tenant policy reader'

@description('Display name of the support API app registration.')
param apiDisplayName string = 'xtap-watch support API'

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'

// Microsoft Azure CLI, a first-party public client with the same application ID in every
// tenant. Pre-authorised for user_impersonation so support staff can run
// `az account get-access-token --resource <API identifier URI>` without a consent prompt.
var azureCliAppId = '04b07795-8ddb-461a-bbee-02f9e1bf7b46'

// "api://<tenantId>/<string>" is one of the identifier URI patterns Entra accepts under its
// default restrictions ("Restrictions on identifier URIs of Microsoft Entra applications").
var apiIdentifierUri = 'api://${tenant().tenantId}/xtap-watch-api-${resourceToken}'
var userImpersonationScopeId = guid(resourceToken, 'xtap-watch-api-scope', 'user_impersonation')
var federationIssuer = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'

// The one permission client tenants grant, by admin consent, to the reader app.
var clientReaderGraphAppRoles = [
  'Policy.Read.All'
]

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

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

  // Entra ID as the issuer and the identity's object ID as the subject: the documented
  // "application trusts a managed identity" configuration (works across tenants for a
  // multi-tenant app). Declared inside its parent, the form Microsoft's Graph Bicep known-issues
  // page recommends for child resources.
  resource managedIdentityCredential 'federatedIdentityCredentials@v1.0' = {
    name: '${clientReaderApp.uniqueName}/function-managed-identity'
    description: 'The xtap-watch Function App user-assigned managed identity.'
    issuer: federationIssuer
    subject: managedIdentityPrincipalId
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

resource clientReaderServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: clientReaderApp.appId
}

// ---------------------------------------------------------------------------------------------
// The support API behind App Service Authentication: single-tenant, one app role for support
// staff, assignment required so that nobody without the role can even sign in, an identifier
// URI and a user_impersonation scope so tools (the Azure CLI) can get a token for it.
// ---------------------------------------------------------------------------------------------
resource apiApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: 'xtap-watch-api-${resourceToken}'
  displayName: apiDisplayName
  description: 'App Service Authentication for the xtap-watch support API (re-invites, doctor).'
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    apiIdentifierUri
  ]
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: userImpersonationScopeId
        value: 'user_impersonation'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Call the xtap-watch support API'
        adminConsentDescription: 'Lets the signed-in support engineer call the xtap-watch support API; the API still checks the Reinvite.Request app role.'
        userConsentDisplayName: 'Call the xtap-watch support API'
        userConsentDescription: 'Lets the app call the xtap-watch support API as you.'
      }
    ]
    preAuthorizedApplications: [
      {
        appId: azureCliAppId
        delegatedPermissionIds: [
          userImpersonationScopeId
        ]
      }
    ]
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
      // App Service Authentication signs browsers in with the authorization-code flow, its
      // client credential being the managed identity (federated credential below), so no
      // implicit-flow ID tokens are issued.
      enableIdTokenIssuance: false
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

  // App Service Authentication's client credential: the same managed identity, presented as a
  // federated assertion (app setting OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID in
  // app-config.bicep, the configuration Microsoft documents and its Flex Consumption samples use).
  resource managedIdentityCredential 'federatedIdentityCredentials@v1.0' = {
    name: '${apiApp.uniqueName}/app-service-authentication'
    description: 'App Service Authentication of the xtap-watch Function App signs in with its managed identity.'
    issuer: federationIssuer
    subject: managedIdentityPrincipalId
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
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
output apiIdentifierUri string = apiIdentifierUri
output apiServicePrincipalId string = apiServicePrincipal.id
output azureCliAppId string = azureCliAppId
