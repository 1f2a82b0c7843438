{{/* Names, labels and the one template every service renders from. */}}

{{- define "engagiert.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "engagiert.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "engagiert.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every resource carries. */}}
{{- define "engagiert.labels" -}}
helm.sh/chart: {{ include "engagiert.chart" . }}
app.kubernetes.io/name: {{ include "engagiert.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: engagiert
{{- end -}}

{{/* Selector labels of all pods of this release. */}}
{{- define "engagiert.selectorLabels" -}}
app.kubernetes.io/name: {{ include "engagiert.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "engagiert.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "engagiert.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference of a service block: repository:tag or repository@sha256:... */}}
{{- define "engagiert.image" -}}
{{- $tag := default .root.Chart.AppVersion .svc.image.tag -}}
{{- if hasPrefix "sha256:" $tag -}}
{{- printf "%s@%s" .svc.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .svc.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
Kafka connection variables (bootstrap, SASL/TLS); used by the services and the topics Job.
Call with (dict "root" $ "secret" NAME): NAME is the Secret with the SASL user and password
(a service's own, or empty for the operator's kafka.sasl.existingSecret).
*/}}
{{- define "engagiert.kafkaEnv" -}}
{{- $k := .root.Values.kafka -}}
{{- $secret := .secret | default $k.sasl.existingSecret -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ $k.bootstrapServers | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $k.securityProtocol | quote }}
{{- if hasPrefix "SASL_" $k.securityProtocol }}
{{- if not $k.sasl.existingSecret }}
{{- fail "kafka.sasl.existingSecret is required when kafka.securityProtocol is SASL_PLAINTEXT or SASL_SSL" }}
{{- end }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $k.saslMechanism | quote }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $k.sasl.usernameKey }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $k.sasl.passwordKey }}
{{- end }}
{{- if and $k.tls.caSecret (or (eq $k.securityProtocol "SSL") (eq $k.securityProtocol "SASL_SSL")) }}
- name: KAFKA_SSL_CAFILE
  value: /etc/engagiert/kafka-ca/{{ $k.tls.caKey }}
{{- end }}
{{- end -}}

{{/* Volume and mount of the Kafka CA certificate, when one is configured. */}}
{{- define "engagiert.kafkaCaEnabled" -}}
{{- $k := .Values.kafka -}}
{{- if and $k.tls.caSecret (or (eq $k.securityProtocol "SSL") (eq $k.securityProtocol "SASL_SSL")) }}true{{ end -}}
{{- end -}}

{{/*
The Deployment, Service, PodDisruptionBudget and HorizontalPodAutoscaler of one service.
Call with (dict "root" $ "name" "registry").
*/}}
{{- define "engagiert.service" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $svc := index $root.Values $name -}}
{{- if $svc.enabled -}}
{{- $full := printf "%s-%s" (include "engagiert.fullname" $root) $name | trunc 63 | trimSuffix "-" -}}
{{- $prefix := upper $name -}}
{{- $minGrace := add $svc.gracefulTimeoutSeconds $svc.preStopSeconds 5 -}}
{{- if le (int $svc.terminationGracePeriodSeconds) (int $minGrace) -}}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) must exceed gracefulTimeoutSeconds + preStopSeconds + 5 (%v)" $name $svc.terminationGracePeriodSeconds $minGrace) -}}
{{- end -}}
{{- if and (eq $root.Values.environment "production") (not $root.Values.auth.jwksUrl) -}}
{{- fail "auth.jwksUrl is required in production" -}}
{{- end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $full }}
  labels:
    {{- include "engagiert.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $name }}
spec:
  {{- if not $svc.autoscaling.enabled }}
  replicas: {{ $svc.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      {{- include "engagiert.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ $name }}
  template:
    metadata:
      labels:
        {{- include "engagiert.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ $name }}
        app.kubernetes.io/part-of: engagiert
      {{- with $svc.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "engagiert.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      # Longer than the consumers' graceful timeout plus the preStop pause (checked at render time).
      terminationGracePeriodSeconds: {{ $svc.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ $name }}
          image: {{ include "engagiert.image" (dict "root" $root "svc" $svc) | quote }}
          imagePullPolicy: {{ $svc.image.pullPolicy }}
          ports:
            - name: http
              containerPort: 8000
              protocol: TCP
          env:
            - name: ENVIRONMENT
              value: {{ $root.Values.environment | quote }}
            - name: LOG_LEVEL
              value: {{ $root.Values.logLevel | quote }}
            - name: PUBLIC_BASE_URL
              value: {{ $root.Values.publicBaseUrl | quote }}
            - name: TOPIC_PARTITIONS
              value: {{ $root.Values.topics.partitions | quote }}
            {{- include "engagiert.kafkaEnv" (dict "root" $root "secret" $svc.kafka.existingSecret) | nindent 12 }}
            - name: MONGODB_URL
              valueFrom:
                secretKeyRef:
                  name: {{ $root.Values.mongodb.existingSecret }}
                  key: {{ $root.Values.mongodb.urlKey }}
            - name: AUTH_JWKS_URL
              value: {{ $root.Values.auth.jwksUrl | quote }}
            - name: AUTH_ISSUER
              value: {{ $root.Values.auth.issuer | quote }}
            - name: AUTH_AUDIENCE
              value: {{ $root.Values.auth.audience | quote }}
            - name: AUTH_JWKS_LIFESPAN_SECONDS
              value: {{ $root.Values.auth.jwksLifespanSeconds | quote }}
            - name: AUTH_JWKS_COOLDOWN_SECONDS
              value: {{ $root.Values.auth.jwksCooldownSeconds | quote }}
            # The local development token key is always off in a cluster.
            - name: AUTH_LOCAL_KEY
              value: ""
            - name: LINK_SECRET
              valueFrom:
                secretKeyRef:
                  name: {{ $root.Values.linkSecret.existingSecret }}
                  key: {{ $root.Values.linkSecret.key }}
            # Crypto-shredding: the registry hands members' data keys to events and notifications.
            - name: MEMBER_KEYS_URL
              value: {{ printf "http://%s-registry" (include "engagiert.fullname" $root) | trunc 70 | quote }}
            - name: MEMBER_KEYS_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ $root.Values.memberKeys.existingSecret }}
                  key: {{ $root.Values.memberKeys.key }}
            - name: TRUSTED_PROXIES
              value: {{ $root.Values.trustedProxies | quote }}
            - name: {{ $prefix }}_GRACEFUL_TIMEOUT_SECONDS
              value: {{ $svc.gracefulTimeoutSeconds | quote }}
            {{- if eq $name "events" }}
            - name: EVENTS_CARD_SIGNING_KEYS
              valueFrom:
                secretKeyRef:
                  name: {{ $root.Values.cardSigningKeys.existingSecret }}
                  key: {{ $root.Values.cardSigningKeys.key }}
            {{- end }}
            {{- if eq $name "notifications" }}
            {{- $m := $root.Values.mail }}
            - name: NOTIFICATIONS_SMTP_HOST
              value: {{ $m.host | quote }}
            - name: NOTIFICATIONS_SMTP_PORT
              value: {{ $m.port | quote }}
            - name: NOTIFICATIONS_SMTP_STARTTLS
              value: {{ $m.starttls | quote }}
            - name: NOTIFICATIONS_SMTP_TLS
              value: {{ $m.tls | quote }}
            - name: NOTIFICATIONS_MAIL_FROM
              value: {{ $m.from | quote }}
            {{- if $m.existingSecret }}
            - name: NOTIFICATIONS_SMTP_USERNAME
              valueFrom:
                secretKeyRef:
                  name: {{ $m.existingSecret }}
                  key: {{ $m.usernameKey }}
            - name: NOTIFICATIONS_SMTP_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $m.existingSecret }}
                  key: {{ $m.passwordKey }}
            {{- end }}
            {{- end }}
            {{- range $key, $value := $svc.env }}
            - name: {{ $key }}
              value: {{ $value | quote }}
            {{- end }}
          {{- with $svc.envFromSecrets }}
          envFrom:
            {{- range . }}
            - secretRef:
                name: {{ . }}
            {{- end }}
          {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 3
          lifecycle:
            preStop:
              exec:
                command: ["sleep", {{ $svc.preStopSeconds | quote }}]
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if include "engagiert.kafkaCaEnabled" $root }}
            - name: kafka-ca
              mountPath: /etc/engagiert/kafka-ca
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if include "engagiert.kafkaCaEnabled" $root }}
        - name: kafka-ca
          secret:
            secretName: {{ $root.Values.kafka.tls.caSecret }}
        {{- end }}
      {{- with $svc.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      affinity:
        {{- if $svc.affinity }}
        {{- toYaml $svc.affinity | nindent 8 }}
        {{- else }}
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "engagiert.selectorLabels" $root | nindent 20 }}
                    app.kubernetes.io/component: {{ $name }}
        {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $full }}
  labels:
    {{- include "engagiert.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $name }}
spec:
  type: ClusterIP
  selector:
    {{- include "engagiert.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $name }}
  ports:
    - name: http
      port: 80
      targetPort: http
      protocol: TCP
{{- if $svc.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $full }}
  labels:
    {{- include "engagiert.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $name }}
spec:
  minAvailable: {{ $svc.podDisruptionBudget.minAvailable }}
  selector:
    matchLabels:
      {{- include "engagiert.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ $name }}
{{- end }}
{{- if $svc.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $full }}
  labels:
    {{- include "engagiert.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $name }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $full }}
  minReplicas: {{ $svc.autoscaling.minReplicas }}
  maxReplicas: {{ $svc.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $svc.autoscaling.targetCPUUtilizationPercentage }}
  behavior:
    scaleDown:
      # Every scale-down rebalances the consumer group: do it slowly.
      stabilizationWindowSeconds: 300
{{- end }}
{{- end -}}
{{- end -}}
