// Storage account for the Functions host, the deployment package, the work queues and the
// state tables. Identity-only: shared keys are disabled, so no connection string exists that
// could leak; the function identity reaches it through data-plane RBAC roles (roles.bicep).

param location string
param tags object
param storageAccountName string
param deploymentContainerName string

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
@description('Replication. Queue and table state is re-derivable (sweeps re-check, audit scans overlap), so LRS is the default; pick ZRS where the region has zones and you want zone resilience.')
param skuName string = 'Standard_LRS'

// Queue and table names are fixed in shared/config.py (QUEUES, TABLES) because triggers bind
// to them at import time. tests/unit/test_infra.py keeps these lists identical to that file.
var queueNames = [
  'xtap-check-client'
  'xtap-alerts'
  'xtap-reinvites'
  'xtap-access-reviews'
]
// The Functions host moves a message to `<queue>-poison` after maxDequeueCount failures and
// creates that queue on demand; creating them here lets operators see (and alert on) them from
// day one and keeps the data-plane role the only thing the app needs.
var poisonQueueNames = [for name in queueNames: '${name}-poison']

var tableNames = [
  'xtapClients'
  'xtapPosture'
  'xtapAlertState'
  'xtapCursors'
  'xtapJobs'
  'xtapDeliveries'
  'xtapSeenEvents'
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Flex Consumption without VNet integration reaches storage over its public endpoint; access is Entra-only (shared keys disabled) and RBAC-scoped to one identity.
  // checkov:skip=CKV_AZURE_206:State is re-derivable; replication is the skuName parameter (ZRS available) rather than forced GRS cost.
  // checkov:skip=CKV_AZURE_43:The name is main.bicep's 'stxtap' + uniqueString() (19 lowercase alphanumerics), which checkov cannot resolve across modules.
  // checkov:skip=CKV_AZURE_59:Public network access stays enabled for the same reason as CKV_AZURE_35; public blob access is disabled (allowBlobPublicAccess=false).
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Flex Consumption pulls the app package from this container (functionAppConfig.deployment).
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for name in concat(queueNames, poisonQueueNames): {
    parent: queueService
    name: name
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for name in tableNames: {
    parent: tableService
    name: name
  }
]

output storageAccountName string = storage.name
output storageAccountId string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output queueNames array = queueNames
output tableNames array = tableNames
