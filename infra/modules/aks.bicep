// The cluster: Entra ID sign-in with Azure RBAC (no local accounts), an OIDC issuer and
// workload identity (each service's pods sign in as its own managed identity), the Key
// Vault Secrets Store CSI driver, Cilium network policy (the charts' NetworkPolicies), the
// managed Gateway API CRDs (standard channel) for the entry point, and two autoscaled node
// pools across zones: system (cluster add-ons only) and user (the app).

param name string
param location string

@description('Free for dev (no SLA); Standard for production (financially backed SLA).')
@allowed([
  'Free'
  'Standard'
])
param tier string = 'Free'

@description('Availability zones for both pools; [] where the region has none.')
param zones array = [
  '1'
  '2'
  '3'
]

param systemVmSize string = 'Standard_D2ds_v5'
@minValue(1)
param systemMinCount int = 1
@minValue(1)
param systemMaxCount int = 3

param userVmSize string = 'Standard_D2ds_v5'
@minValue(1)
param userMinCount int = 1
@minValue(1)
param userMaxCount int = 5

@description('OS disk size in GB; ephemeral disks must fit the VM size\'s cache or temp disk.')
param osDiskSizeGB int = 64

@description('CIDRs allowed to reach the API server ([]: any). Include the pipelines\' egress.')
param apiServerAuthorizedIpRanges array = []

@description('Encryption at host for node disks and caches (needs the EncryptionAtHost feature registered on the subscription).')
param encryptionAtHost bool = false

@description('Log Analytics workspace for Container Insights.')
param workspaceId string

@description('The Gateway API implementation in front of the app: nginxGatewayFabric (the charts\' default, installed with its Helm chart from k8s/gateway) or appRoutingIstio (the application routing add-on in Gateway API mode, managed by AKS; charts/drone-delivery/values-aks-approuting.yaml). No NGINX Ingress add-on either way: it is out of support.')
@allowed([
  'nginxGatewayFabric'
  'appRoutingIstio'
])
param gatewayImplementation string = 'nginxGatewayFabric'

param tags object = {}

// The application routing add-on in Gateway API mode only: no NGINX Ingress controller.
var appRoutingIstio = {
  enabled: true
  gatewayAPIImplementations: {
    appRoutingIstio: {
      mode: 'Enabled'
    }
  }
  nginx: {
    defaultIngressControllerType: 'None'
  }
}

var appRoutingOff = {
  enabled: false
}

// managedClusters 2026-04-01: ingressProfile.gatewayAPI and webAppRouting.gatewayAPIImplementations.
resource cluster 'Microsoft.ContainerService/managedClusters@2026-04-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Base'
    tier: tier
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    dnsPrefix: name
    enableRBAC: true
    disableLocalAccounts: true
    aadProfile: {
      managed: true
      enableAzureRBAC: true
      tenantID: tenant().tenantId
    }
    oidcIssuerProfile: {
      enabled: true
    }
    securityProfile: {
      workloadIdentity: {
        enabled: true
      }
      imageCleaner: {
        enabled: true
        intervalHours: 168
      }
    }
    apiServerAccessProfile: {
      authorizedIPRanges: apiServerAuthorizedIpRanges
    }
    autoUpgradeProfile: {
      upgradeChannel: 'stable'
      nodeOSUpgradeChannel: 'NodeImage'
    }
    networkProfile: {
      networkPlugin: 'azure'
      networkPluginMode: 'overlay'
      networkDataplane: 'cilium'
      networkPolicy: 'cilium'
      loadBalancerSku: 'standard'
      outboundType: 'loadBalancer'
    }
    ingressProfile: {
      // The Gateway API CRDs, standard channel, managed (and upgraded) by AKS.
      gatewayAPI: {
        installation: 'Standard'
      }
      webAppRouting: (gatewayImplementation == 'appRoutingIstio') ? appRoutingIstio : appRoutingOff
    }
    addonProfiles: {
      azureKeyvaultSecretsProvider: {
        enabled: true
        config: {
          enableSecretRotation: 'true'
          rotationPollInterval: '2m'
        }
      }
      azurepolicy: {
        enabled: true
      }
      omsagent: {
        enabled: true
        config: {
          logAnalyticsWorkspaceResourceID: workspaceId
          useAADAuth: 'true'
        }
      }
    }
    agentPoolProfiles: [
      {
        name: 'system'
        mode: 'System'
        type: 'VirtualMachineScaleSets'
        vmSize: systemVmSize
        osType: 'Linux'
        osSKU: 'AzureLinux'
        osDiskType: 'Ephemeral'
        osDiskSizeGB: osDiskSizeGB
        maxPods: 50
        enableAutoScaling: true
        count: systemMinCount
        minCount: systemMinCount
        maxCount: systemMaxCount
        availabilityZones: empty(zones) ? null : zones
        enableEncryptionAtHost: encryptionAtHost
        // Only cluster add-ons here (AKS taints the pool CriticalAddonsOnly=true:NoSchedule);
        // the application runs on the user pool.
        onlyCriticalAddonsEnabled: true
        upgradeSettings: {
          maxSurge: '33%'
        }
      }
      {
        name: 'user'
        mode: 'User'
        type: 'VirtualMachineScaleSets'
        vmSize: userVmSize
        osType: 'Linux'
        osSKU: 'AzureLinux'
        osDiskType: 'Ephemeral'
        osDiskSizeGB: osDiskSizeGB
        maxPods: 50
        enableAutoScaling: true
        count: userMinCount
        minCount: userMinCount
        maxCount: userMaxCount
        availabilityZones: empty(zones) ? null : zones
        enableEncryptionAtHost: encryptionAtHost
        upgradeSettings: {
          maxSurge: '33%'
        }
      }
    ]
  }
}

// Container Insights with Entra ID sign-in (useAADAuth) needs a data collection rule and
// its association with the cluster; the CLI makes them itself, a template must say so.
resource containerInsightsRule 'Microsoft.Insights/dataCollectionRules@2022-06-01' = {
  name: 'MSCI-${location}-${name}'
  location: location
  tags: tags
  kind: 'Linux'
  properties: {
    dataSources: {
      extensions: [
        {
          name: 'ContainerInsightsExtension'
          extensionName: 'ContainerInsights'
          streams: [
            'Microsoft-ContainerInsights-Group-Default'
          ]
          extensionSettings: {
            dataCollectionSettings: {
              interval: '1m'
              namespaceFilteringMode: 'Off'
              enableContainerLogV2: true
            }
          }
        }
      ]
    }
    destinations: {
      logAnalytics: [
        {
          name: 'ciworkspace'
          workspaceResourceId: workspaceId
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          'Microsoft-ContainerInsights-Group-Default'
        ]
        destinations: [
          'ciworkspace'
        ]
      }
    ]
  }
}

resource containerInsightsAssociation 'Microsoft.Insights/dataCollectionRuleAssociations@2022-06-01' = {
  name: 'ContainerInsightsExtension'
  scope: cluster
  properties: {
    dataCollectionRuleId: containerInsightsRule.id
  }
}

output name string = cluster.name
output id string = cluster.id
output oidcIssuerUrl string = cluster.properties.oidcIssuerProfile.issuerURL
output kubeletObjectId string = cluster.properties.identityProfile.kubeletidentity.objectId
