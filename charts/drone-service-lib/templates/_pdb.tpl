{{- define "drone-service-lib.pdb" -}}
{{- if .Values.podDisruptionBudget.enabled -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "drone-service-lib.fullname" . }}
  labels:
    {{- include "drone-service-lib.labels" . | nindent 4 }}
spec:
  # maxUnavailable (not minAvailable) so a single-replica dev install never blocks a drain.
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "drone-service-lib.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}
