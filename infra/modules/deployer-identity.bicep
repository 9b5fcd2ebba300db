// The pipelines' identity: GitHub Actions (azure/login with OIDC) or an Azure DevOps
// service connection with workload identity federation sign in as it, with no stored
// secret. It may push images (AcrPush, granted in acr.bicep) and fetch cluster credentials
// (AKS Cluster User Role) and read the deployment's outputs (Reader on the resource
// group); what it may do inside the cluster is a Kubernetes role binding
// scoped to the application's namespace (see infra/README.md), which Bicep cannot scope.

param name string
param location string

@description('[{ name, issuer, subject }], e.g. GitHub: issuer https://token.actions.githubusercontent.com, subject repo:ORG/REPO:environment:production.')
param federations array

param clusterName string
param tags object = {}

var clusterUserRoleId = '4abbcc35-e782-43d8-92c5-2d3f1bd2253f'
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

// One identity's federated credentials cannot be written concurrently.
@batchSize(1)
resource federation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = [for f in federations: {
  parent: identity
  name: f.name
  properties: {
    issuer: f.issuer
    subject: f.subject
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}]

resource cluster 'Microsoft.ContainerService/managedClusters@2024-09-01' existing = {
  name: clusterName
}

resource clusterUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, identity.id, clusterUserRoleId)
  scope: cluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', clusterUserRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Reader on the resource group: the pipelines read the deployment's outputs (names, client
// ids) to make the chart values, so no environment keeps a copy of them.
resource outputsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, identity.id, readerRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
