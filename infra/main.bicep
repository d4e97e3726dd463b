// xtap-watch: the whole Azure deployment, provisioned by `azd up` (azure.yaml at the repo root).
//
//   resource group
//   ├─ user-assigned managed identity      the app's only credential, everywhere
//   ├─ storage account (shared keys off)   host storage, deployment package, queues, tables
//   ├─ Log Analytics + Application Insights
//   ├─ Key Vault (RBAC, purge protection)  the Teams webhook URL
//   ├─ Flex Consumption plan + Function App (Python), Easy Auth in front of the HTTP API
//   └─ role assignments (roles.bicep)
//   Microsoft Entra (graph/, Microsoft Graph Bicep extension; public cloud only)
//   ├─ multi-tenant read-only client reader app, the managed identity as its credential
//   ├─ support API app registration: Reinvite.Request role, user_impersonation scope for the
//   │  Azure CLI, the managed identity as App Service Authentication's credential
//   └─ Graph application permissions for the managed identity (graph-grants.bicep, last,
//      behind GRANT_GRAPH_APP_ROLES)
//
// Every parameter is documented in docs/deploy.md. Resources are declared directly (no
// registry modules) so `checkov -d infra --skip-download` sees all of them offline.

targetScope = 'subscription'

// ----------------------------------------------------------------------------- environment
@minLength(1)
@maxLength(64)
@description('Name of the azd environment; also derives the unique suffix of every resource name.')
param environmentName string

// Regions offering the Flex Consumption plan, as listed by Microsoft's own Flex Consumption azd
// templates (Azure-Samples/functions-quickstart-python-http-azd, remote-mcp-functions-python),
// without the eastus2euap canary region. `az functionapp list-flexconsumption-locations` is the
// live list; azd offers only these in its region prompt.
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@description('Azure region for all resources; one that offers the Flex Consumption plan.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object ID of the person running azd (azd sets AZURE_PRINCIPAL_ID). Gets Key Vault Secrets Officer to store the Teams webhook URL. Empty: no assignment.')
param deployerPrincipalId string = ''

// ----------------------------------------------------------------------------- the vendor
@minLength(36)
@description('Comma-separated application (client) IDs of the vendor\'s sign-in apps that client users must be allowed to reach (XTAP_VENDOR_APP_IDS).')
param vendorAppIds string

@description('Vendor name shown in alerts (XTAP_VENDOR_NAME).')
param vendorName string = 'OSTTRA'

@description('The vendor\'s sign-in domain (XTAP_VENDOR_DOMAIN).')
param vendorDomain string = 'sso.osttra.com'

// ----------------------------------------------------------------------------- sources
@allowed([
  'graph'
  'log_analytics'
])
@description('Where audit events come from (XTAP_AUDIT_SOURCE). log_analytics needs the Entra diagnostic setting.')
param auditSource string = 'graph'

@allowed([
  'graph'
  'log_analytics'
  'none'
])
@description('Where sign-in failure evidence comes from (XTAP_SIGNIN_SOURCE).')
param signinSource string = 'graph'

@minValue(30)
@maxValue(730)
@description('Days the workspace keeps Entra AuditLogs and SigninLogs.')
param entraLogRetentionDays int = 90

@minValue(30)
@maxValue(730)
@description('Days the workspace keeps the app\'s own telemetry.')
param appLogRetentionDays int = 30

// ----------------------------------------------------------------------------- alerts
@description('Set to true after storing the Teams Workflows webhook URL in Key Vault (docs/deploy.md), then run azd provision again.')
param teamsWebhookInKeyVault bool = false

@description('Mailbox (UPN or object ID) that sends alert mail (XTAP_MAIL_SENDER). Empty: no mail. Scope Mail.Send to it with the grant script.')
param mailSender string = ''

@description('Comma-separated admin addresses for alert mail (XTAP_ALERT_EMAILS); required when mailSender is set.')
param alertEmails string = ''

@description('Base URL of the Entra admin center used in alert links (XTAP_ENTRA_PORTAL_URL).')
param entraPortalUrl string = 'https://entra.microsoft.com'

@description('Optional: base URL of a published copy of docs/ for alert links (XTAP_DOCS_BASE_URL). Empty: alerts link to the runbooks the app serves itself, /api/v1/runbooks/<CODE>.')
param docsBaseUrl string = ''

@minValue(1)
@description('Hours between reminders while a drift stays open (XTAP_REMINDER_HOURS).')
param reminderHours int = 24

@minValue(1)
@description('More alerts than this from one run collapse into one digest card (XTAP_DIGEST_THRESHOLD).')
param digestThreshold int = 5

// ----------------------------------------------------------------------------- schedules
@description('NCRONTAB of the client posture sweep (XTAP_SWEEP_SCHEDULE).')
param sweepSchedule string = '0 */15 * * * *'

@description('NCRONTAB of the audit scan (XTAP_AUDIT_SCHEDULE).')
param auditSchedule string = '30 * * * * *'

@description('NCRONTAB of the guest hygiene run (XTAP_HYGIENE_SCHEDULE).')
param hygieneSchedule string = '0 30 6 * * *'

@description('NCRONTAB of the access-review ensure run (XTAP_REVIEW_SCHEDULE).')
param reviewSchedule string = '0 0 7 * * 1'

@minValue(1)
@description('Overlap of consecutive audit scans, in minutes (XTAP_AUDIT_OVERLAP_MINUTES).')
param auditOverlapMinutes int = 15

@minValue(1)
@description('Window for counting sign-in failures, in hours (XTAP_SIGNIN_WINDOW_HOURS).')
param signinWindowHours int = 24

@minValue(1)
@description('Failures per client in the window that count as evidence (XTAP_SIGNIN_THRESHOLD).')
param signinThreshold int = 5

// ----------------------------------------------------------------------------- guests
@description('Where a re-invited guest lands after redemption (XTAP_REINVITE_REDIRECT_URL).')
param reinviteRedirectUrl string = 'https://myapps.microsoft.com'

@description('Days in PendingAcceptance before a guest is reported stuck (XTAP_PENDING_GUEST_DAYS).')
@minValue(1)
param pendingGuestDays int = 14

@description('Comma-separated object IDs of the users who review client guests (XTAP_ACCESS_REVIEW_REVIEWERS).')
param accessReviewReviewers string = ''

@description('Grant User.ReadWrite.All to the identity: Microsoft Graph\'s documented minimum for resetting a guest\'s redemption (re-invites).')
param grantResetRedemption bool = true

@description('Comma-separated hosts a re-invite\'s redirectUrl may point at (XTAP_REINVITE_REDIRECT_HOSTS). Empty: the vendor\'s sign-in host and the host of reinviteRedirectUrl.')
param reinviteRedirectHosts string = ''

@description('Grant Group.Create and GroupMember.ReadWrite.All, which guest access reviews need to keep each client\'s guests group. Takes effect only when accessReviewReviewers is set.')
param grantAccessReviewGroups bool = true

@description('Grant Policy.Read.B2BManagementPolicy, which reads the B2B invitation domain allow/deny list (Graph beta). False: that vendor-side check is skipped.')
param grantB2bPolicyRead bool = true

// ----------------------------------------------------------------------------- Graph grants
@description('Grant the identity its Microsoft Graph application permissions (needs Privileged Role Administrator). False: everything else deploys; a Privileged Role Administrator runs the grant script later.')
param grantGraphAppRoles bool = true

@description('The managed identity principal ID azd recorded at the previous provision (MANAGED_IDENTITY_PRINCIPAL_ID, empty the first time); decides whether this run may grant in the template or leaves it to the post-provision hook.')
param previousManagedIdentityPrincipalId string = ''

// ----------------------------------------------------------------------------- identity
@description('Where the client admin-consent link returns (XTAP_ADMIN_CONSENT_REDIRECT_URI); registered on the reader app.')
param adminConsentRedirectUri string = 'https://entra.microsoft.com'

@description('Display name client admins see on the consent prompt.')
param clientReaderDisplayName string = 'xtap-watch cross-tenant policy reader'

@description('Optional object ID of the support staff group (or a user) to assign the Reinvite.Request role to now.')
param supportPrincipalId string = ''

// ----------------------------------------------------------------------------- scale
@minValue(40)
@maxValue(1000)
@description('Maximum Flex Consumption instances (40 is the lowest value Microsoft has documented for the plan).')
param maximumInstanceCount int = 40

@description('Zone-redundant Flex Consumption plan. Off by default: it keeps at least two always-ready instances per scaling group, billed around the clock.')
param zoneRedundant bool = false

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
@description('Storage replication; independent of zoneRedundant.')
param storageSkuName string = 'Standard_LRS'

// ----------------------------------------------------------------------------- names
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'xtap-watch'
}
var functionAppName = 'func-xtap-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
// The app checks the caller's role against XTAP_API_ROLE; the app registration defines it.
// Both come from this one value (shared/config.py's default for XTAP_API_ROLE).
var supportAppRole = 'Reinvite.Request'
var teamsWebhookSecretName = 'teams-webhook-url'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    identityName: 'id-xtap-${resourceToken}'
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-xtap-${resourceToken}'
    applicationInsightsName: 'appi-xtap-${resourceToken}'
    appLogRetentionDays: appLogRetentionDays
    entraLogRetentionDays: entraLogRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    storageAccountName: 'stxtap${resourceToken}'
    deploymentContainerName: deploymentContainerName
    skuName: storageSkuName
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    keyVaultName: 'kv-xtap-${resourceToken}'
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    teamsWebhookSecretName: teamsWebhookSecretName
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.storageAccountName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.keyVaultName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    readsLogAnalytics: auditSource == 'log_analytics' || signinSource == 'log_analytics'
    deployerPrincipalId: deployerPrincipalId
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    location: location
    tags: tags
    planName: 'plan-xtap-${resourceToken}'
    functionAppName: functionAppName
    identityId: identity.outputs.identityId
    blobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    maximumInstanceCount: maximumInstanceCount
    zoneRedundant: zoneRedundant
  }
  // The platform reads the deployment container with the identity as soon as the app exists.
  dependsOn: [
    roles
  ]
}

module entra 'graph/entra-apps.bicep' = {
  name: 'entra'
  scope: rg
  params: {
    managedIdentityPrincipalId: identity.outputs.principalId
    resourceToken: resourceToken
    functionAppHostName: functionApp.outputs.defaultHostName
    adminConsentRedirectUri: adminConsentRedirectUri
    supportAppRole: supportAppRole
    supportPrincipalId: supportPrincipalId
    clientReaderDisplayName: clientReaderDisplayName
  }
}

module appConfig 'modules/app-config.bicep' = {
  name: 'app-config'
  scope: rg
  params: {
    functionAppName: functionApp.outputs.functionAppName
    functionAppHostName: functionApp.outputs.defaultHostName
    managedIdentityClientId: identity.outputs.clientId
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    logAnalyticsCustomerId: monitoring.outputs.logAnalyticsCustomerId
    teamsWebhookSecretUri: keyVault.outputs.teamsWebhookSecretUri
    teamsWebhookInKeyVault: teamsWebhookInKeyVault
    clientReaderAppId: entra.outputs.clientReaderAppId
    apiAppId: entra.outputs.apiAppId
    apiIdentifierUri: entra.outputs.apiIdentifierUri
    preAuthorizedClientAppIds: [
      entra.outputs.azureCliAppId
    ]
    vendorAppIds: vendorAppIds
    vendorName: vendorName
    vendorDomain: vendorDomain
    adminConsentRedirectUri: adminConsentRedirectUri
    auditSource: auditSource
    signinSource: signinSource
    mailSender: mailSender
    alertEmails: alertEmails
    sweepSchedule: sweepSchedule
    auditSchedule: auditSchedule
    hygieneSchedule: hygieneSchedule
    reviewSchedule: reviewSchedule
    reminderHours: reminderHours
    auditOverlapMinutes: auditOverlapMinutes
    signinWindowHours: signinWindowHours
    signinThreshold: signinThreshold
    digestThreshold: digestThreshold
    pendingGuestDays: pendingGuestDays
    supportAppRole: supportAppRole
    reinviteRedirectUrl: reinviteRedirectUrl
    reinviteRedirectHosts: reinviteRedirectHosts
    accessReviewReviewers: accessReviewReviewers
    entraPortalUrl: entraPortalUrl
    docsBaseUrl: docsBaseUrl
  }
}

// Last, so that a refused grant (no Privileged Role Administrator, or a replication delay)
// can no longer cost the app its settings or its authentication.
module graphGrants 'graph/graph-grants.bicep' = {
  name: 'graph-grants'
  scope: rg
  params: {
    managedIdentityPrincipalId: identity.outputs.principalId
    previousManagedIdentityPrincipalId: previousManagedIdentityPrincipalId
    grantGraphAppRoles: grantGraphAppRoles
    grantResetRedemption: grantResetRedemption
    // Access reviews are on only with reviewers: without them the group roles would be unused.
    grantAccessReviewGroups: grantAccessReviewGroups && !empty(accessReviewReviewers)
    grantB2bPolicyRead: grantB2bPolicyRead
  }
  dependsOn: [
    appConfig
  ]
}

// azd stores these in .azure/<env>/.env; infra/scripts/grant-graph-permissions.sh reads them,
// and the XTAP_* / AzureWebJobsStorage__* ones give an operator's `xtap-watch` CLI the same
// configuration as the app (docs/operations.md).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.functionAppName
output AZURE_FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.keyVaultName
output TEAMS_WEBHOOK_SECRET_NAME string = teamsWebhookSecretName
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output LOG_ANALYTICS_WORKSPACE_RESOURCE_ID string = monitoring.outputs.logAnalyticsId
output XTAP_VENDOR_TENANT_ID string = tenant().tenantId
output AzureWebJobsStorage__queueServiceUri string = storage.outputs.queueEndpoint
output AzureWebJobsStorage__tableServiceUri string = storage.outputs.tableEndpoint
output XTAP_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsCustomerId
output XTAP_CLIENT_READER_APP_ID string = entra.outputs.clientReaderAppId
output API_APP_ID string = entra.outputs.apiAppId
@description('Audience for `az account get-access-token --resource` (docs/api.md).')
output API_IDENTIFIER_URI string = entra.outputs.apiIdentifierUri
output API_SERVICE_PRINCIPAL_ID string = entra.outputs.apiServicePrincipalId
output XTAP_ADMIN_CONSENT_REDIRECT_URI string = adminConsentRedirectUri
output XTAP_MAIL_SENDER string = mailSender
output XTAP_PUBLIC_API_URL string = 'https://${functionApp.outputs.defaultHostName}'
output GRANTED_GRAPH_APP_ROLES string = join(graphGrants.outputs.grantedGraphAppRoles, ',')
@description('True on the first provision of the identity: the post-provision hook grants the Graph roles, with retries.')
output GRAPH_GRANTS_DEFERRED_TO_HOOK bool = graphGrants.outputs.grantsDeferredToHook
