// Drone delivery on Azure: everything the Helm charts need, in one resource group.
//   az deployment group create -g RG -f infra/main.bicep -p infra/main.dev.parameters.json
// The outputs are what the charts take (scripts/azure-values.py turns them into a values
// file); tests/infra checks that every value the charts need has its output here.

@description('Short name for the environment\'s resources: lower-case letters, digits, hyphens.')
@minLength(3)
@maxLength(20)
param baseName string

@description('dev: the smallest sizes that run the app; prod: zone-redundant, autoscaled, SLA-backed.')
@allowed([
  'dev'
  'prod'
])
param environmentName string = 'dev'

param location string = resourceGroup().location

@description('Availability zones for the node pools; [] in regions without zones.')
param zones array = [
  '1'
  '2'
  '3'
]

@description('Kubernetes namespace of the Helm release (the federated credentials name it).')
param namespace string = 'drone-delivery'

@description('CIDRs allowed to reach the AKS API server ([]: any).')
param apiServerAuthorizedIpRanges array = []

@description('Federated credentials for the pipelines\' identity ([]: no pipeline identity), e.g. [{ name: \'github-production\', issuer: \'https://token.actions.githubusercontent.com\', subject: \'repo:ORG/REPO:environment:production\' }].')
param deployerFederations array = []

@description('The Gateway API implementation: nginxGatewayFabric (Helm, k8s/gateway) or appRoutingIstio (the AKS application routing add-on in Gateway API mode).')
@allowed([
  'nginxGatewayFabric'
  'appRoutingIstio'
])
param gatewayImplementation string = 'nginxGatewayFabric'

param tags object = {
  application: 'drone-delivery'
  environment: environmentName
}

// Sizing per environment; infra/README.md prices the dev column.
var sizes = {
  dev: {
    aksTier: 'Free'
    systemVmSize: 'Standard_D2ds_v5'
    systemMin: 1
    systemMax: 2
    userVmSize: 'Standard_D2ds_v5'
    userMin: 1
    userMax: 3
    acrSku: 'Basic'
    cosmosServerless: true
    cosmosZoneRedundant: false
    serviceBusSku: 'Standard'
    redisSku: 'Basic'
    redisCapacity: 0
    logRetentionDays: 30
    logDailyQuotaGb: 1
    keyVaultRetentionDays: 7
  }
  prod: {
    aksTier: 'Standard'
    systemVmSize: 'Standard_D4ds_v5'
    systemMin: 3
    systemMax: 5
    userVmSize: 'Standard_D4ds_v5'
    userMin: 3
    userMax: 12
    acrSku: 'Standard'
    cosmosServerless: false
    cosmosZoneRedundant: true
    serviceBusSku: 'Standard'
    redisSku: 'Standard'
    redisCapacity: 1
    logRetentionDays: 30
    logDailyQuotaGb: -1
    keyVaultRetentionDays: 90
  }
}
var size = sizes[environmentName]

// Globally unique names: the base name plus a stable hash of the resource group.
var suffix = take(uniqueString(resourceGroup().id), 6)
var compactName = replace(baseName, '-', '')

// The application's services: each has its own identity and Kubernetes service account
// (the charts name the account after the service).
var queueName = 'deliveryrequests'
var ingestionDatabase = 'ingestion'
var packageDatabase = 'package'
var droneschedulerDatabase = 'dronescheduler'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    baseName: baseName
    location: location
    retentionInDays: size.logRetentionDays
    dailyQuotaGb: size.logDailyQuotaGb
    tags: tags
  }
}

module aks 'modules/aks.bicep' = {
  name: 'aks'
  params: {
    name: 'aks-${baseName}'
    location: location
    tier: size.aksTier
    zones: zones
    systemVmSize: size.systemVmSize
    systemMinCount: size.systemMin
    systemMaxCount: size.systemMax
    userVmSize: size.userVmSize
    userMinCount: size.userMin
    userMaxCount: size.userMax
    apiServerAuthorizedIpRanges: apiServerAuthorizedIpRanges
    gatewayImplementation: gatewayImplementation
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
}

// ---------------------------------------------------------------- identities
module ingestionIdentity 'modules/workload-identity.bicep' = {
  name: 'identity-ingestion'
  params: {
    name: 'id-${baseName}-ingestion'
    location: location
    oidcIssuerUrl: aks.outputs.oidcIssuerUrl
    namespace: namespace
    serviceAccounts: [
      'ingestion'
      'ingestion-next'
    ]
    tags: tags
  }
}

module workflowIdentity 'modules/workload-identity.bicep' = {
  name: 'identity-workflow'
  params: {
    name: 'id-${baseName}-workflow'
    location: location
    oidcIssuerUrl: aks.outputs.oidcIssuerUrl
    namespace: namespace
    serviceAccounts: [
      'workflow'
      'workflow-next'
    ]
    tags: tags
  }
}

module packageIdentity 'modules/workload-identity.bicep' = {
  name: 'identity-package'
  params: {
    name: 'id-${baseName}-package'
    location: location
    oidcIssuerUrl: aks.outputs.oidcIssuerUrl
    namespace: namespace
    serviceAccounts: [
      'package'
      'package-next'
    ]
    tags: tags
  }
}

module droneschedulerIdentity 'modules/workload-identity.bicep' = {
  name: 'identity-dronescheduler'
  params: {
    name: 'id-${baseName}-dronescheduler'
    location: location
    oidcIssuerUrl: aks.outputs.oidcIssuerUrl
    namespace: namespace
    serviceAccounts: [
      'dronescheduler'
      'dronescheduler-next'
    ]
    tags: tags
  }
}

module deliveryIdentity 'modules/workload-identity.bicep' = {
  name: 'identity-delivery'
  params: {
    name: 'id-${baseName}-delivery'
    location: location
    oidcIssuerUrl: aks.outputs.oidcIssuerUrl
    namespace: namespace
    serviceAccounts: [
      'delivery'
      'delivery-next'
    ]
    tags: tags
  }
}

module deployer 'modules/deployer-identity.bicep' = if (!empty(deployerFederations)) {
  name: 'identity-deployer'
  params: {
    name: 'id-${baseName}-deployer'
    location: location
    federations: deployerFederations
    clusterName: aks.outputs.name
    tags: tags
  }
}

// ---------------------------------------------------------------- registry
module acr 'modules/acr.bicep' = {
  name: 'acr'
  params: {
    name: 'acr${take(compactName, 20)}${suffix}'
    location: location
    sku: size.acrSku
    kubeletObjectId: aks.outputs.kubeletObjectId
    pushPrincipalIds: empty(deployerFederations) ? [] : [
      deployer.outputs.principalId
    ]
    tags: tags
  }
}

// ---------------------------------------------------------------- queue: ingestion sends, workflow receives
module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    name: 'sb-${baseName}-${suffix}'
    location: location
    sku: size.serviceBusSku
    queueName: queueName
    maxDeliveryCount: 10
    lockDuration: 'PT30S'
    duplicateDetectionWindow: 'PT10M'
    senderPrincipalIds: [
      ingestionIdentity.outputs.principalId
    ]
    // Receive covers complete, abandon, dead-letter and lock renewal; workflow never sends.
    receiverPrincipalIds: [
      workflowIdentity.outputs.principalId
    ]
    tags: tags
  }
}

// ---------------------------------------------------------------- documents: each service its own database
module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  params: {
    name: 'cosmos-${baseName}-${suffix}'
    location: location
    serverless: size.cosmosServerless
    zoneRedundant: size.cosmosZoneRedundant
    databases: [
      {
        // Ingestion's record of accepted requests (idempotency keys, known ids).
        name: ingestionDatabase
        containers: [
          {
            name: 'deliveryrequests'
            partitionKey: '/id'
          }
        ]
        contributors: [
          ingestionIdentity.outputs.principalId
        ]
      }
      {
        name: packageDatabase
        containers: [
          {
            name: 'packages'
            partitionKey: '/id'
          }
        ]
        contributors: [
          packageIdentity.outputs.principalId
        ]
      }
      {
        name: droneschedulerDatabase
        containers: [
          {
            name: 'drones'
            partitionKey: '/id'
          }
          {
            name: 'assignments'
            partitionKey: '/id'
          }
          {
            name: 'drone_pages'
            partitionKey: '/id'
          }
        ]
        contributors: [
          droneschedulerIdentity.outputs.principalId
        ]
      }
    ]
    tags: tags
  }
}

// ---------------------------------------------------------------- delivery's cache and its key
module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: 'kv-${take(baseName, 12)}-${suffix}'
    location: location
    softDeleteRetentionInDays: size.keyVaultRetentionDays
    tags: tags
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  params: {
    name: 'redis-${baseName}-${suffix}'
    location: location
    skuName: size.redisSku
    capacity: size.redisCapacity
    keyVaultName: keyVault.outputs.name
    secretName: 'redis-access-key'
    tags: tags
  }
}

module redisKeyAccess 'modules/keyvault-access.bicep' = {
  name: 'keyvault-access-delivery'
  params: {
    keyVaultName: keyVault.outputs.name
    secretName: redis.outputs.secretName
    principalIds: [
      deliveryIdentity.outputs.principalId
    ]
  }
}

// ---------------------------------------------------------------- outputs: the chart values
var cosmosHost = split(replace(cosmos.outputs.endpoint, 'https://', ''), ':')[0]

output tenantId string = tenant().tenantId
output namespace string = namespace
output aksName string = aks.outputs.name
output aksOidcIssuerUrl string = aks.outputs.oidcIssuerUrl
output acrLoginServer string = acr.outputs.loginServer
output ingestionClientId string = ingestionIdentity.outputs.clientId
output workflowClientId string = workflowIdentity.outputs.clientId
output packageClientId string = packageIdentity.outputs.clientId
output droneschedulerClientId string = droneschedulerIdentity.outputs.clientId
output deliveryClientId string = deliveryIdentity.outputs.clientId
output deployerClientId string = empty(deployerFederations) ? '' : deployer.outputs.clientId
output serviceBusNamespaceFqdn string = serviceBus.outputs.fullyQualifiedName
output serviceBusQueueName string = serviceBus.outputs.queueName
output queueUrl string = 'servicebus://${serviceBus.outputs.fullyQualifiedName}/${serviceBus.outputs.queueName}'
output cosmosAccountName string = cosmos.outputs.name
output cosmosEndpoint string = cosmos.outputs.endpoint
output ingestionStoreUrl string = 'cosmos://${cosmosHost}/${ingestionDatabase}'
output packageStoreUrl string = 'cosmos://${cosmosHost}/${packageDatabase}'
output droneschedulerStoreUrl string = 'cosmos://${cosmosHost}/${droneschedulerDatabase}'
output redisHostName string = redis.outputs.hostName
output redisSslPort int = redis.outputs.sslPort
output deliveryStoreUrl string = 'rediss://${redis.outputs.hostName}:${redis.outputs.sslPort}/0'
output keyVaultName string = keyVault.outputs.name
output redisSecretName string = redis.outputs.secretName
output appInsightsConnectionString string = monitoring.outputs.appInsightsConnectionString
