// Cosmos DB data-plane role assignments scoped to one database (/dbs/<name>): a service's
// identity reads and writes its own database and no other.

param accountName string
param databaseName string
param roleDefinitionId string
param principalIds array

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' existing = {
  name: accountName
}

resource assignments 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = [for principalId in principalIds: {
  parent: account
  name: guid(account.id, databaseName, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    scope: '${account.id}/dbs/${databaseName}'
  }
}]
