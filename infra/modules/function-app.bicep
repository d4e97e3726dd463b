// The Function App on a Flex Consumption plan (Linux, Python), running as the user-assigned
// identity. App settings and App Service Authentication are applied afterwards by
// app-config.bicep, because they need the app registrations that ../graph creates from this
// app's host name.

param location string
param tags object
param planName string
param functionAppName string
param identityId string
param blobEndpoint string
param deploymentContainerName string

@allowed([
  '3.11'
  '3.12'
])
@description('Python version of the Flex Consumption runtime.')
param pythonVersion string = '3.11'

// 40 is the lowest value Microsoft has documented for Flex Consumption (event-driven scaling,
// "Limit scale-out"; newer revisions of that page say 1, which 40 also satisfies).
@minValue(40)
@maxValue(1000)
@description('Upper bound on instances. Each instance drains queue messages concurrently; the Graph throttling budget per tenant, not CPU, is the real limit.')
param maximumInstanceCount int = 40

// Off by default and deliberately not tied to the storage SKU: with zone redundancy on, Flex
// Consumption keeps at least two always-ready instances per per-function scaling group (this
// app has about ten: HTTP, each queue trigger, each timer), billed continuously even when idle
// (Microsoft Learn, "Reliability in Azure Functions").
@description('Spread instances across availability zones. Costs always-ready instances around the clock; needs a region with zones.')
param zoneRedundant bool = false

@allowed([
  512
  2048
  4096
])
@description('Memory per instance, in MB.')
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy is the zoneRedundant parameter, off by default: on Flex Consumption it bills at least two always-ready instances per scaling group continuously.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
    zoneRedundant: zoneRedundant
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:The support API is a public HTTPS endpoint behind App Service Authentication (Entra); Flex Consumption without VNet integration has no private ingress.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero per trigger; a minimum instance count would be always-ready capacity this event-driven app does not need.
  // checkov:skip=CKV_AZURE_213:No App Service health check on a scale-to-zero plan; /api/v1/health is anonymous for external probes instead.
  // checkov:skip=CKV_AZURE_78:Flex Consumption has no FTP endpoint (packages deploy only to the blob container below), so the ftpsState setting this check wants is one Flex ignores.
  // checkov:skip=CKV_AZURE_17:Callers authenticate with Entra ID through App Service Authentication (authsettingsV2 in app-config.bicep), not client certificates.
  name: functionAppName
  location: location
  // azd finds the deploy target by this tag (services.api in azure.yaml).
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity (there is no system one).
    keyVaultReferenceIdentity: identityId
    // Flex Consumption has no FTP endpoint and no Kudu/SCM build: ftpsState and the FTP
    // publishing-credentials policy are settings it ignores, so they are not set here.
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No publishing passwords on the deployment endpoint: azd deploys with the signed-in Entra identity.
resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output functionAppName string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
