// Key Vault for the one secret xtap-watch has: the Teams Workflows webhook URL (its `sig=`
// query parameter is the credential). RBAC mode, purge protection, audit logs to the workspace.
// Nothing here writes a secret value: an admin stores it after deployment (docs/deploy.md).

param location string
param tags object
param keyVaultName string
param logAnalyticsId string

@description('Name of the secret that holds the Teams Workflows webhook URL.')
param teamsWebhookSecretName string

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:App Service resolves Key Vault references from outside a VNet and is not a trusted service for the vault firewall; access is Entra RBAC on one secret reader.
  // checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: without VNet integration the app reaches the vault over its public endpoint.
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Access is Azure RBAC only (Key Vault Secrets User for the app, Secrets Officer for the
    // deploying admin); no access policies to drift.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Purge protection: a deleted vault (and the webhook secret) can be recovered for 90 days
    // and cannot be purged early. Consequence: `azd down` then `azd up` with the same
    // environment name needs the vault recovered first (docs/deploy.md, "Tearing down").
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // App Service resolves Key Vault references from outside any VNet and is not a "trusted
      // Microsoft service" for the vault firewall, so the firewall cannot default to Deny here.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource keyVaultAudit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: keyVault
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output keyVaultName string = keyVault.name
output keyVaultId string = keyVault.id
output keyVaultUri string = keyVault.properties.vaultUri
@description('Versionless secret URI: the Key Vault reference always resolves the latest version.')
output teamsWebhookSecretUri string = '${keyVault.properties.vaultUri}secrets/${teamsWebhookSecretName}'
