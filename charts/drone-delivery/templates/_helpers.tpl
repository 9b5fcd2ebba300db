{{- define "drone-delivery.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: drone-delivery
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The public route table (services/contracts/routes.py, copied by scripts/sync-chart-routes.sh). */}}
{{- define "drone-delivery.routes" -}}
{{- .Files.Get "files/routes.json" -}}
{{- end -}}

{{/* The Service a route's subchart creates: its chart name unless overridden. */}}
{{- define "drone-delivery.serviceName" -}}
{{- $sub := index .root.Values .service | default dict -}}
{{- $sub.fullnameOverride | default .service -}}
{{- end -}}

{{- define "drone-delivery.selfSignedIssuer" -}}
{{- printf "%s-selfsigned" .Release.Name -}}
{{- end -}}

{{/* The annotation that has cert-manager issue entryPoint.tls.secretName, if any. */}}
{{- define "drone-delivery.certManagerAnnotation" -}}
{{- $tls := .Values.entryPoint.tls -}}
{{- if eq $tls.mode "selfSigned" -}}
cert-manager.io/issuer: {{ include "drone-delivery.selfSignedIssuer" . }}
{{- else if eq $tls.mode "clusterIssuer" -}}
cert-manager.io/cluster-issuer: {{ required "entryPoint.tls.clusterIssuer is required when entryPoint.tls.mode is clusterIssuer" $tls.clusterIssuer }}
{{- end -}}
{{- end -}}

{{/* The Gateway API routes, read once: files/gateway-routes.json (scripts/sync-chart-routes.sh). */}}
{{- define "drone-delivery.gatewayRoutes" -}}
{{- .Files.Get "files/gateway-routes.json" -}}
{{- end -}}


{{/* Egress to cluster DNS and to the entry point's data plane (80, 443): what the helm test and the load generator need. */}}
{{- define "drone-delivery.entryPointEgress" -}}
{{- $np := .Values.networkPolicy -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $np.dns.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml $np.dns.podLabels | nindent 10 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- to:
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
    - port: 80
      protocol: TCP
    - port: 443
      protocol: TCP
{{- end -}}

{{- /*
The HTTPRoutes that carry the route table (httproute.yaml), by name: an HTTPRoute holds at
most 16 rules (the CRD's limit), so a set with more is split, "<release>[-versioned]" first,
then "-2", "-3", ... A rule per table entry (plain: per route, or per literal prefix when
gateway.pathMatch is PathPrefix; versioned: per prefix) and canary variant. nginx-policies.yaml
targets these same names.
*/ -}}
{{- define "drone-delivery.httpRouteSets" -}}
{{- $table := include "drone-delivery.gatewayRoutes" . | fromJson }}
{{- $variants := ternary 3 1 .Values.gateway.canary.enabled }}
{{- $plain := ternary (len $table.routes) (len $table.versioned) (eq .Values.gateway.pathMatch "RegularExpression") }}
{{- $sets := list }}
{{- range $set := list (dict "suffix" "" "rules" (mul $plain $variants)) (dict "suffix" "-versioned" "rules" (mul (len $table.versioned) $variants)) }}
{{- $names := list }}
{{- range $i := until (int (div (add $set.rules 15) 16)) }}
{{- $names = append $names (printf "%s%s%s" $.Release.Name $set.suffix (ternary "" (printf "-%d" (add1 $i)) (eq $i 0))) }}
{{- end }}
{{- $sets = append $sets (dict "suffix" $set.suffix "names" $names) }}
{{- end }}
{{- toJson (dict "sets" $sets) }}
{{- end -}}
