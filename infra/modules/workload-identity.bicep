// One service's user-assigned managed identity, federated with its Kubernetes service
// accounts (system:serviceaccount:<namespace>:<name>) through the cluster's OIDC issuer:
// pods of those service accounts, and nothing else, sign in as it. Two accounts: the
// release's (<service>) and the side-by-side release's (<service>-next,
// infra/deploy/next-release.yaml), so a new version runs with the same rights.

param name string
param location string
param oidcIssuerUrl string
param namespace string
@description('Service account names, e.g. [\'ingestion\', \'ingestion-next\'].')
param serviceAccounts array
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

// One identity's federated credentials cannot be written concurrently.
@batchSize(1)
resource federation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = [for account in serviceAccounts: {
  parent: identity
  name: 'aks-${namespace}-${account}'
  properties: {
    issuer: oidcIssuerUrl
    subject: 'system:serviceaccount:${namespace}:${account}'
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}]

output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
