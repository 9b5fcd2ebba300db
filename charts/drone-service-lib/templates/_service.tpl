{{- define "drone-service-lib.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "drone-service-lib.fullname" . }}
  labels:
    {{- include "drone-service-lib.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "drone-service-lib.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: 8080
      targetPort: http
      protocol: TCP
    {{- if .Values.networkPolicy.fromGateway }}
    - name: public
      port: 8081
      targetPort: public
      protocol: TCP
    {{- end }}
{{- end -}}
