// Azure Cache for Redis for delivery's hot state: TLS only (6380), TLS 1.2. The access key
// is written to Key Vault as a secret (never a deployment output); delivery reads it
// through the Secrets Store CSI driver as REDIS_PASSWORD_FILE.

@description('Cache name: 1-63 letters, digits and hyphens, globally unique.')
param name string

param location string

@description('Basic C0 for dev (no SLA, no replica); Standard C1 or larger for production.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string = 'Basic'

@allowed([
  0
  1
  2
  3
  4
  5
  6
])
param capacity int = 0

@description('Key Vault that receives the access key.')
param keyVaultName string

param secretName string = 'redis-access-key'

param tags object = {}

resource cache 'Microsoft.Cache/redis@2024-03-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: skuName == 'Premium' ? 'P' : 'C'
      capacity: capacity
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    redisVersion: '6'
    redisConfiguration: {
      'maxmemory-policy': 'noeviction'
    }
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource accessKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretName
  properties: {
    value: cache.listKeys().primaryKey
    contentType: 'text/plain'
    attributes: {
      enabled: true
    }
  }
}

output name string = cache.name
output hostName string = cache.properties.hostName
output sslPort int = cache.properties.sslPort
output secretName string = accessKey.name
