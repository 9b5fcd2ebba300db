{{- define "drone-service-lib.deployment" -}}
{{- $fullname := include "drone-service-lib.fullname" . -}}
{{- $secretFiles := .Values.secretFiles -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "drone-service-lib.labels" . | nindent 4 }}
spec:
  {{- if not (or .Values.autoscaling.enabled (and .Values.keda .Values.keda.enabled)) }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "drone-service-lib.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "drone-service-lib.labels" . | nindent 8 }}
        {{- if eq (include "drone-service-lib.workloadIdentity" .) "true" }}
        azure.workload.identity/use: "true"
        {{- end }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "drone-service-lib.serviceAccountName" . }}
      # No service talks to the Kubernetes API; the workload-identity webhook projects its
      # own token volume, so the default API token is not mounted.
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ include "drone-service-lib.terminationGracePeriodSeconds" . }}
      securityContext:
        runAsNonRoot: true
        runAsUser: {{ .Values.securityContext.uid }}
        runAsGroup: {{ .Values.securityContext.uid }}
        fsGroup: {{ .Values.securityContext.uid }}
        seccompProfile:
          type: RuntimeDefault
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .Chart.Name }}
          image: {{ include "drone-service-lib.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
            {{- if .Values.networkPolicy.fromGateway }}
            # Only the public routes are served here: the entry point targets this port.
            - name: public
              containerPort: 8081
              protocol: TCP
            {{- end }}
          env:
            - name: HOST
              value: "0.0.0.0"
            - name: PORT
              value: "8080"
            {{- if .Values.networkPolicy.fromGateway }}
            - name: PUBLIC_PORT
              value: "8081"
            {{- end }}
            - name: LOG_LEVEL
              value: {{ .Values.logLevel | quote }}
            - name: DRAIN_SECONDS
              value: {{ .Values.shutdown.drainSeconds | quote }}
            - name: SHUTDOWN_GRACE_SECONDS
              value: {{ .Values.shutdown.graceSeconds | quote }}
            {{- if or .Values.faultSwitches (dig "faultSwitches" false (.Values.global | default dict)) }}
            # /internal/faults on the internal port: faults switched at run time (chassis/faults).
            - name: FAULT_SWITCHES
              value: "true"
            {{- end }}
            {{- range $name, $value := .Values.env }}
            - name: {{ $name }}
              value: {{ tpl (toString $value) $ | quote }}
            {{- end }}
            {{- range $name, $object := $secretFiles.files }}
            - name: {{ $name }}
              value: {{ printf "%s/%s" $secretFiles.mountPath $object | quote }}
            {{- end }}
            {{- with .Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet:
              path: /health/live
              port: http
            periodSeconds: {{ .Values.probes.startup.periodSeconds }}
            timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
            failureThreshold: {{ .Values.probes.startup.failureThreshold }}
          readinessProbe:
            httpGet:
              path: /health/ready
              port: http
            periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
          livenessProbe:
            httpGet:
              path: /health/live
              port: http
            periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
          lifecycle:
            preStop:
              # Keeps serving while endpoints and ingress-nginx drop this pod; the sleep
              # action needs no shell or sleep binary in the image (Kubernetes >= 1.30).
              sleep:
                seconds: {{ .Values.shutdown.preStopSleepSeconds }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            runAsUser: {{ .Values.securityContext.uid }}
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $secretFiles.secretProviderClass }}
            - name: secrets
              mountPath: {{ $secretFiles.mountPath }}
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ .Values.tmpSizeLimit }}
        {{- if $secretFiles.secretProviderClass }}
        - name: secrets
          csi:
            driver: secrets-store.csi.k8s.io
            readOnly: true
            volumeAttributes:
              secretProviderClass: {{ $secretFiles.secretProviderClass }}
        {{- end }}
      {{- if .Values.topologySpread.enabled }}
      topologySpreadConstraints:
        - maxSkew: {{ .Values.topologySpread.maxSkew }}
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: {{ .Values.topologySpread.hostname }}
          nodeTaintsPolicy: Honor
          labelSelector:
            matchLabels:
              {{- include "drone-service-lib.selectorLabels" . | nindent 14 }}
          matchLabelKeys: ["pod-template-hash"]
        - maxSkew: {{ .Values.topologySpread.maxSkew }}
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: {{ .Values.topologySpread.zone }}
          nodeTaintsPolicy: Honor
          labelSelector:
            matchLabels:
              {{- include "drone-service-lib.selectorLabels" . | nindent 14 }}
          matchLabelKeys: ["pod-template-hash"]
      {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
