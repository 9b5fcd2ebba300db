// Cosmos DB for NoSQL: one database per owning service, the containers and partition keys
// the code expects (services/chassis/documents/cosmos.py), and data-plane access for each
// service to its own database only. With Entra ID the data plane cannot create databases
// or containers, so they are made here; keys are off (disableLocalAuth).

@description('Account name: 3-44 lower-case letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(44)
param name string

param location string

@description('Serverless (pay per request; dev) or provisioned autoscale throughput (prod).')
param serverless bool = true

@description('Autoscale maximum RU/s per database when not serverless.')
@minValue(1000)
param autoscaleMaxThroughput int = 1000

@description('Zone redundancy for the account\'s region (not with serverless).')
param zoneRedundant bool = false

@description('Databases, their containers (name and partition key path) and the principal ids given Cosmos DB Built-in Data Contributor on that database alone.')
param databases array
// e.g. [{ name: 'package', containers: [{ name: 'packages', partitionKey: '/id' }], contributors: [principalId] }]

param tags object = {}

// Cosmos DB Built-in Data Contributor (a data-plane role of the account, not Azure RBAC).
var dataContributorRoleId = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: serverless ? false : zoneRedundant
      }
    ]
    capabilities: serverless ? [
      {
        name: 'EnableServerless'
      }
    ] : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
    backupPolicy: {
      type: 'Continuous'
      continuousModeProperties: {
        tier: 'Continuous7Days'
      }
    }
  }
}

resource sqlDatabases 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = [for db in databases: {
  parent: account
  name: db.name
  properties: {
    resource: {
      id: db.name
    }
    options: serverless ? {} : {
      autoscaleSettings: {
        maxThroughput: autoscaleMaxThroughput
      }
    }
  }
}]

module containers 'cosmos-containers.bicep' = [for (db, i) in databases: {
  name: 'cosmos-containers-${db.name}'
  params: {
    accountName: account.name
    databaseName: sqlDatabases[i].name
    containers: db.containers
  }
}]

module access 'cosmos-access.bicep' = [for (db, i) in databases: {
  name: 'cosmos-access-${db.name}'
  params: {
    accountName: account.name
    databaseName: sqlDatabases[i].name
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalIds: db.contributors
  }
}]

output name string = account.name
output endpoint string = account.properties.documentEndpoint
