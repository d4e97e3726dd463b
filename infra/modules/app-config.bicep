// App settings and App Service Authentication for the Function App.
//
// The `appsettings` block below is the single place where the deployment defines the app's
// environment. tests/unit/test_infra.py compares its keys with shared/config.py SETTINGS
// (every setting marked infra=True must be here; no unknown XTAP_* setting may be) and checks
// that secret settings are Key Vault references. Add a setting there and here together.

param functionAppName string
param functionAppHostName string
param managedIdentityClientId string
param applicationInsightsConnectionString string
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string
param logAnalyticsCustomerId string
param teamsWebhookSecretUri string
param clientReaderAppId string
param apiAppId string

@description('Identifier URI of the support API app registration (a token audience App Service Authentication accepts).')
param apiIdentifierUri string

@description('Client applications whose tokens App Service Authentication accepts besides the API app itself (the Azure CLI).')
param preAuthorizedClientAppIds array = []

@description('True once the Teams webhook URL is stored in Key Vault; until then the setting is empty and alerts go by mail only.')
param teamsWebhookInKeyVault bool

param vendorAppIds string
param vendorName string
param vendorDomain string
param adminConsentRedirectUri string
param auditSource string
param signinSource string
param mailSender string
param alertEmails string
param sweepSchedule string
param auditSchedule string
param hygieneSchedule string
param reviewSchedule string
param reminderHours int
param auditOverlapMinutes int
param signinWindowHours int
param signinThreshold int
param digestThreshold int
param pendingGuestDays int
param supportAppRole string
param reinviteRedirectUrl string
param reinviteRedirectHosts string
param accessReviewReviewers string
param entraPortalUrl string
param docsBaseUrl string

@description('Paths App Service Authentication lets through without a token: the health probe, and the runbooks every alert links to (read by admins without the API role; no tenant data).')
param anonymousPaths array = [
  '/api/v1/health'
  // A trailing /* covers the pages below a path (Microsoft's answer in MicrosoftDocs/azure-docs#86514).
  '/api/v1/runbooks'
  '/api/v1/runbooks/*'
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov runs its whole-site checks on every Microsoft.Web/sites/config child. The site's
  // own settings are in function-app.bicep; authentication is the authsettingsV2 resource below.
  // checkov:skip=CKV_AZURE_13:site-level check misapplied to the appsettings child (see above)
  // checkov:skip=CKV_AZURE_63:site-level check misapplied to the appsettings child (see above)
  // checkov:skip=CKV_AZURE_65:site-level check misapplied to the appsettings child (see above)
  // checkov:skip=CKV_AZURE_66:site-level check misapplied to the appsettings child (see above)
  // checkov:skip=CKV_AZURE_80:site-level check misapplied to the appsettings child (see above)
  // checkov:skip=CKV_AZURE_88:site-level check misapplied to the appsettings child (see above)
  // checkov:skip=CKV_AZURE_222:site-level check misapplied to the appsettings child (see above)
  parent: functionApp
  name: 'appsettings'
  properties: {
    // Functions host storage, identity-based: no connection string exists anywhere.
    AzureWebJobsStorage__blobServiceUri: blobEndpoint
    AzureWebJobsStorage__queueServiceUri: queueEndpoint
    AzureWebJobsStorage__tableServiceUri: tableEndpoint
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: managedIdentityClientId
    // azure-identity's ManagedIdentityCredential/DefaultAzureCredential pick this identity.
    AZURE_CLIENT_ID: managedIdentityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    // Entra-authenticated telemetry (App Insights local auth is disabled); read by the host and
    // by the azure-monitor-opentelemetry exporter.
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${managedIdentityClientId};Authorization=AAD'

    XTAP_VENDOR_TENANT_ID: tenant().tenantId
    XTAP_VENDOR_APP_IDS: vendorAppIds
    XTAP_VENDOR_NAME: vendorName
    XTAP_VENDOR_DOMAIN: vendorDomain
    // Public cloud only: the Graph Bicep extension this template needs deploys nowhere else.
    XTAP_GRAPH_BASE_URL: 'https://graph.microsoft.com/v1.0'
    XTAP_AUTHORITY_HOST: environment().authentication.loginEndpoint
    XTAP_VENDOR_CREDENTIAL: 'managed_identity'
    XTAP_CLIENT_READER_APP_ID: clientReaderAppId
    XTAP_CLIENT_READER_CREDENTIAL: 'federated_managed_identity'
    XTAP_ADMIN_CONSENT_REDIRECT_URI: adminConsentRedirectUri
    XTAP_AUDIT_SOURCE: auditSource
    XTAP_SIGNIN_SOURCE: signinSource
    XTAP_LOG_ANALYTICS_WORKSPACE_ID: logAnalyticsCustomerId
    XTAP_LOG_ANALYTICS_ENDPOINT: 'https://api.loganalytics.io'
    // A Key Vault reference, never the URL itself: the `sig=` in it is the credential.
    XTAP_TEAMS_WEBHOOK_URL: teamsWebhookInKeyVault ? '@Microsoft.KeyVault(SecretUri=${teamsWebhookSecretUri})' : ''
    XTAP_MAIL_SENDER: mailSender
    XTAP_ALERT_EMAILS: alertEmails
    XTAP_SWEEP_SCHEDULE: sweepSchedule
    XTAP_AUDIT_SCHEDULE: auditSchedule
    XTAP_HYGIENE_SCHEDULE: hygieneSchedule
    XTAP_REVIEW_SCHEDULE: reviewSchedule
    XTAP_REMINDER_HOURS: string(reminderHours)
    XTAP_UNKNOWN_ALERT_HOURS: '24'
    XTAP_AUDIT_OVERLAP_MINUTES: string(auditOverlapMinutes)
    XTAP_SIGNIN_WINDOW_HOURS: string(signinWindowHours)
    XTAP_SIGNIN_THRESHOLD: string(signinThreshold)
    XTAP_DIGEST_THRESHOLD: string(digestThreshold)
    XTAP_PENDING_GUEST_DAYS: string(pendingGuestDays)
    // Retention purge (shared/services/retention.py); change here or in the portal.
    XTAP_PURGE_SCHEDULE: '0 17 * * * *'
    XTAP_JOB_RETENTION_DAYS: '90'
    XTAP_DELIVERY_RETENTION_DAYS: '90'
    XTAP_SEEN_EVENTS_MARGIN_MINUTES: '60'
    XTAP_PURGE_MAX_ROWS: '5000'
    // xtap-watch watching itself (shared/services/heartbeat.py, watchdog.py); UTC schedules.
    XTAP_HEARTBEAT_SCHEDULE: '0 0 8 * * *'
    XTAP_WATCHDOG_SCHEDULE: '45 */5 * * * *'
    XTAP_SWEEP_EXPECTED_MINUTES: '10'
    XTAP_API_ROLE: supportAppRole
    XTAP_REINVITE_REDIRECT_URL: reinviteRedirectUrl
    XTAP_REINVITE_REDIRECT_HOSTS: reinviteRedirectHosts
    XTAP_ACCESS_REVIEW_REVIEWERS: accessReviewReviewers
    XTAP_ENTRA_PORTAL_URL: entraPortalUrl
    XTAP_PUBLIC_API_URL: 'https://${functionAppHostName}'
    XTAP_DOCS_BASE_URL: docsBaseUrl
    // App Service Authentication's client credential is the managed identity (a federated
    // credential on the API app, ../graph/entra-apps.bicep), not a secret; the setting holds
    // the identity's client ID and authsettingsV2 names it as clientSecretSettingName.
    OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: managedIdentityClientId
    WEBSITE_AUTH_AAD_ALLOWED_TENANTS: tenant().tenantId
  }
}

// App Service Authentication ("Easy Auth") in front of the support API. Every route needs an
// Entra token or session for the API app registration except the anonymous health probe; the
// function code still checks the `roles` claim (XTAP_API_ROLE) in X-MS-CLIENT-PRINCIPAL.
// No client secret: browsers sign in with the authorization-code flow, the client credential
// being the managed identity's federated assertion (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID, as
// Microsoft documents for "use a managed identity instead of a secret"); tools send bearer
// tokens whose audience is the API app ID or its identifier URI.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov runs its whole-site checks on every Microsoft.Web/sites/config child. The site's
  // own settings are in function-app.bicep; this resource is the App Service Authentication CKV_AZURE_13 asks for.
  // checkov:skip=CKV_AZURE_13:site-level check misapplied to the authsettingsV2 child (see above)
  // checkov:skip=CKV_AZURE_63:site-level check misapplied to the authsettingsV2 child (see above)
  // checkov:skip=CKV_AZURE_65:site-level check misapplied to the authsettingsV2 child (see above)
  // checkov:skip=CKV_AZURE_66:site-level check misapplied to the authsettingsV2 child (see above)
  // checkov:skip=CKV_AZURE_80:site-level check misapplied to the authsettingsV2 child (see above)
  // checkov:skip=CKV_AZURE_88:site-level check misapplied to the authsettingsV2 child (see above)
  // checkov:skip=CKV_AZURE_222:site-level check misapplied to the authsettingsV2 child (see above)
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: anonymousPaths
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          clientId: apiAppId
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
        }
        validation: {
          // v2 access tokens carry the app ID as `aud`; v1 tokens (az account get-access-token
          // --resource) carry the identifier URI.
          allowedAudiences: [
            apiAppId
            apiIdentifierUri
          ]
          defaultAuthorizationPolicy: {
            // Browser sign-in (the API app itself) and the pre-authorised Azure CLI.
            allowedApplications: union([apiAppId], preAuthorizedClientAppIds)
          }
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
  dependsOn: [
    appSettings
  ]
}
