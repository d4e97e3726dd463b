// Log Analytics workspace + workspace-based Application Insights.
//
// The workspace holds two kinds of data:
//   * the app's own telemetry (App Insights tables), kept `appLogRetentionDays`;
//   * the vendor tenant's Entra `AuditLogs` and `SigninLogs`, which the Entra diagnostic
//     setting (infra/scripts/grant-graph-permissions.sh --entra-diagnostics) streams here and
//     which xtap-watch queries when XTAP_AUDIT_SOURCE / XTAP_SIGNIN_SOURCE = log_analytics.
//     They are kept `entraLogRetentionDays` (90 by default): longer than the 30 days Entra
//     itself keeps them with P1/P2, so an investigation can still see last quarter's changes.

param location string
param tags object
param logAnalyticsName string
param applicationInsightsName string

@minValue(30)
@maxValue(730)
@description('Retention of the app telemetry tables, in days.')
param appLogRetentionDays int = 30

@minValue(30)
@maxValue(730)
@description('Retention of the Entra AuditLogs and SigninLogs tables, in days.')
param entraLogRetentionDays int = 90

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: appLogRetentionDays
    features: {
      // Readers need a role on the workspace (or the resource), never a shared key.
      enableLogAccessUsingOnlyResourcePermissions: true
      disableLocalAuth: true
    }
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

// Entra tables live in every workspace's schema; only their retention is changed here.
resource auditLogsTable 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: logAnalytics
  name: 'AuditLogs'
  properties: {
    retentionInDays: entraLogRetentionDays
    totalRetentionInDays: entraLogRetentionDays
  }
}

resource signinLogsTable 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: logAnalytics
  name: 'SigninLogs'
  properties: {
    retentionInDays: entraLogRetentionDays
    totalRetentionInDays: entraLogRetentionDays
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    IngestionMode: 'LogAnalytics'
    // Entra-only ingestion: the function identity gets Monitoring Metrics Publisher and the
    // app sets APPLICATIONINSIGHTS_AUTHENTICATION_STRING, so the instrumentation key in the
    // connection string is only an address, not a credential.
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

output logAnalyticsId string = logAnalytics.id
output logAnalyticsName string = logAnalytics.name
@description('The workspace (customer) ID that Log Analytics queries address.')
output logAnalyticsCustomerId string = logAnalytics.properties.customerId
output applicationInsightsId string = applicationInsights.id
output applicationInsightsName string = applicationInsights.name
output applicationInsightsConnectionString string = applicationInsights.properties.ConnectionString
