{{- define "drone-service-lib.serviceaccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "drone-service-lib.serviceAccountName" . }}
  labels:
    {{- include "drone-service-lib.labels" . | nindent 4 }}
  {{- $wi := .Values.serviceAccount.workloadIdentity }}
  {{- if or $wi.clientId .Values.serviceAccount.annotations }}
  annotations:
    {{- if $wi.clientId }}
    azure.workload.identity/client-id: {{ $wi.clientId | quote }}
    {{- with $wi.tenantId }}
    azure.workload.identity/tenant-id: {{ . | quote }}
    {{- end }}
    {{- end }}
    {{- with .Values.serviceAccount.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}
