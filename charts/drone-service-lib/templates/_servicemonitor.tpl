{{/* "true" when a ServiceMonitor is wanted: enabled: true, or "auto" and the cluster
serves the Prometheus Operator's ServiceMonitor kind. */}}
{{- define "drone-service-lib.serviceMonitorOn" -}}
{{- $mode := toString .Values.serviceMonitor.enabled -}}
{{- if or (eq $mode "true") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor")) -}}
true
{{- end -}}
{{- end -}}

{{- define "drone-service-lib.servicemonitor" -}}
{{- if include "drone-service-lib.serviceMonitorOn" . -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "drone-service-lib.fullname" . }}
  labels:
    {{- include "drone-service-lib.labels" . | nindent 4 }}
    {{- with .Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "drone-service-lib.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ .Values.serviceMonitor.interval }}
      scrapeTimeout: {{ .Values.serviceMonitor.scrapeTimeout }}
{{- end -}}
{{- end -}}
