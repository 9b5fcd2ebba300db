// Service Bus: the deliveryrequests queue with what the data plane cannot set
// (services/chassis/queue/servicebus.py): lock duration, max delivery count, dead-lettering
// on expiry, duplicate detection on the message id. Entra ID only (no SAS keys); the
// senders and receivers get their role on this queue alone.

@description('Namespace name: 6-50 letters, digits and hyphens, globally unique.')
@minLength(6)
@maxLength(50)
param name string

param location string

@description('Standard is the least that has duplicate detection; Premium adds zones and private endpoints.')
@allowed([
  'Standard'
  'Premium'
])
param sku string = 'Standard'

param queueName string = 'deliveryrequests'

@description('Equal to workflow\'s QUEUE_MAX_DELIVERY_COUNT (chassis QueueOptions.max_delivery_count).')
@minValue(1)
param maxDeliveryCount int = 10

@description('Equal to workflow\'s QUEUE_LOCK_SECONDS (30): workflow renews the lock as it works.')
param lockDuration string = 'PT30S'

@description('Resends of one message id within this window are dropped.')
param duplicateDetectionWindow string = 'PT10M'

param messageTimeToLive string = 'P14D'

@description('Principal ids given Azure Service Bus Data Sender on the queue (ingestion).')
param senderPrincipalIds array = []

@description('Principal ids given Azure Service Bus Data Receiver on the queue (workflow).')
param receiverPrincipalIds array = []

param tags object = {}

var senderRoleId = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var receiverRoleId = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    tier: sku
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: queueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    defaultMessageTimeToLive: messageTimeToLive
    requiresSession: false
    enablePartitioning: false
    maxSizeInMegabytes: 1024
  }
}

resource senders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in senderPrincipalIds: {
  name: guid(queue.id, principalId, senderRoleId)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', senderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource receivers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in receiverPrincipalIds: {
  name: guid(queue.id, principalId, receiverRoleId)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', receiverRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

output name string = namespace.name
// host name without scheme and port, e.g. myns.servicebus.windows.net
output fullyQualifiedName string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
output queueName string = queue.name
