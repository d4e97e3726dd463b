// The user-assigned managed identity: the Function App's only credential. It reaches storage,
// Key Vault and App Insights through Azure RBAC (roles.bicep), Microsoft Graph in the vendor
// tenant through application permissions, and client tenants as the federated credential of
// the client reader app (../graph/entra-apps.bicep). User-assigned rather than
// system-assigned so that its object ID exists before the app and survives re-creating it.

param location string
param tags object
param identityName string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

output identityId string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
