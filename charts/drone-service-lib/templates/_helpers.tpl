{{/*
Names. The Service name is the chart name (not release-prefixed) so that in-cluster URLs are
stable: http://package.<namespace>.svc.cluster.local:8080. One release per namespace.
*/}}
{{- define "drone-service-lib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "drone-service-lib.fullname" -}}
{{- default .Chart.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "drone-service-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "drone-service-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "drone-service-lib.labels" -}}
{{ include "drone-service-lib.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .Values.component | default "service" }}
app.kubernetes.io/part-of: drone-delivery
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "drone-service-lib.serviceAccountName" -}}
{{- default (include "drone-service-lib.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* <registry>/drone-delivery/<service>:<tag>, or @digest when one is given. global wins over the chart's own registry and tag. None of those set (nor the service's own repository, tag, digest or a registry other than localhost), and a release pinned in global.image.published (the umbrella chart's default after a release): <published.registry>/drone-delivery-<service>:<tag>@<digest>. */}}
{{- define "drone-service-lib.image" -}}
{{- $g := (.Values.global | default dict).image | default dict -}}
{{- $pub := $g.published | default dict -}}
{{- $pinned := index ($pub.digests | default dict) .Chart.Name | default "" -}}
{{- $own := or $g.registry $g.tag .Values.image.repository .Values.image.tag .Values.image.digest (ne .Values.image.registry "localhost") -}}
{{- if and $pub.registry $pub.tag $pinned (not $own) -}}
{{- printf "%s/drone-delivery-%s:%s@%s" $pub.registry .Chart.Name $pub.tag $pinned -}}
{{- else -}}
{{- $registry := $g.registry | default .Values.image.registry -}}
{{- $repository := .Values.image.repository | default (printf "drone-delivery/%s" .Chart.Name) -}}
{{- $ref := printf "%s/%s" $registry $repository | trimPrefix "/" -}}
{{- $digest := .Values.image.digest | default "" -}}
{{- if $digest -}}
{{- printf "%s@%s" $ref $digest -}}
{{- else -}}
{{- printf "%s:%s" $ref ($g.tag | default .Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "drone-service-lib.workloadIdentity" -}}
{{- ne (.Values.serviceAccount.workloadIdentity.clientId | default "") "" -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: the preStop sleep, the in-app drain and shutdown grace, plus a margin, so the kubelet never kills a pod that is still finishing work. */}}
{{- define "drone-service-lib.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown -}}
{{- add $s.preStopSleepSeconds $s.drainSeconds $s.graceSeconds $s.marginSeconds -}}
{{- end -}}
