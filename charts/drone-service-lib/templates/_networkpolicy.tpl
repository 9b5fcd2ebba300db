{{/*
This service's own flows. The namespace's default deny (umbrella chart) blocks the rest;
each rule below is one flow the architecture needs, nothing wider.
*/}}
{{- define "drone-service-lib.networkpolicy" -}}
{{- $np := .Values.networkPolicy -}}
{{- if $np.enabled -}}
{{- $release := .Release.Name -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "drone-service-lib.fullname" . }}
  labels:
    {{- include "drone-service-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "drone-service-lib.selectorLabels" . | nindent 6 }}
  policyTypes: ["Ingress", "Egress"]
  {{- $ingress := include "drone-service-lib.networkpolicy.ingress" . | trim }}
  {{- if $ingress }}
  ingress:
    {{- $ingress | nindent 4 }}
  {{- else }}
  ingress: []
  {{- end }}
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $np.dns.namespace }}
          podSelector:
            matchLabels:
              {{- toYaml $np.dns.podLabels | nindent 14 }}
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- range $np.toServices }}
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ . }}
              app.kubernetes.io/instance: {{ $release }}
      ports:
        - port: 8080
          protocol: TCP
    {{- end }}
    {{- with $np.storeEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
{{- end -}}

{{- define "drone-service-lib.networkpolicy.ingress" -}}
{{- $np := .Values.networkPolicy -}}
{{- $release := .Release.Name -}}
{{- if $np.fromGateway }}
- from:
    {{- with $np.gateway.podLabels }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $np.gateway.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
    {{- end }}
    {{- range $np.gateway.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - port: 8081   # the public port: public routes only
      protocol: TCP
{{- end }}
{{- range $np.fromServices }}
- from:
    - podSelector:
        matchLabels:
          app.kubernetes.io/name: {{ . }}
          app.kubernetes.io/instance: {{ $release }}
  ports:
    - port: 8080
      protocol: TCP
{{- end }}
{{- if include "drone-service-lib.serviceMonitorOn" . }}
- from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $np.monitoring.namespace }}
      {{- with $np.monitoring.podLabels }}
      podSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
  ports:
    - port: 8080
      protocol: TCP
{{- end }}
{{- end -}}
