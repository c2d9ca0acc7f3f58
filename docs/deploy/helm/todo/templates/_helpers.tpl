{{/* Names ---------------------------------------------------------------------------------------------- */}}

{{- define "todo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "todo.fullname" -}}
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

{{- define "todo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "todo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "todo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "todo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "todo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "todo.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Secret holding database-url, jwt-secret, kafka-sasl-username, kafka-sasl-password. */}}
{{- define "todo.secretName" -}}
{{- default (include "todo.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/* Kafka ---------------------------------------------------------------------------------------------- */}}

{{- define "todo.kafkaBrokers" -}}
{{- $k := .Values.kafka -}}
{{- if $k.brokers -}}
{{- $k.brokers -}}
{{- else if eq $k.provider "strimzi" -}}
{{- printf "%s-kafka-bootstrap.%s.svc.cluster.local:9092" $k.strimzi.clusterName $k.namespace -}}
{{- else if eq $k.provider "redpanda" -}}
{{- printf "%s.%s.svc.cluster.local:%v" $k.redpanda.name $k.namespace $k.redpanda.port -}}
{{- else -}}
{{- fail "kafka.brokers is required with kafka.provider=external" -}}
{{- end -}}
{{- end -}}

{{- define "todo.kafkaSasl" -}}
{{- if hasPrefix "sasl_" .Values.kafka.securityProtocol -}}true{{- end -}}
{{- end -}}

{{- define "todo.replication" -}}
{{- $r := get .Values.kafka.replication .Values.kafka.profile -}}
{{- if not $r -}}
{{- fail (printf "kafka.profile must be local or cloud, got %q" .Values.kafka.profile) -}}
{{- end -}}
{{- $r -}}
{{- end -}}

{{/* Validation of values that would otherwise fail at run time. */}}
{{- define "todo.validate" -}}
{{- if not (has .Values.kafka.provider (list "strimzi" "redpanda" "external")) -}}
{{- fail (printf "kafka.provider must be strimzi, redpanda or external, got %q" .Values.kafka.provider) -}}
{{- end -}}
{{- if not .Values.existingSecret -}}
{{- if not .Values.database.url -}}
{{- fail "set database.url (or existingSecret with a database-url key)" -}}
{{- end -}}
{{- if and (not .Values.auth.jwtSecret) (not .Values.auth.jwksUrl) -}}
{{- fail "set auth.jwtSecret or auth.jwksUrl (or existingSecret with a jwt-secret key)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.auth.jwtSecret .Values.auth.jwksUrl -}}
{{- fail "auth.jwtSecret and auth.jwksUrl exclude each other" -}}
{{- end -}}
{{- $known := list "relay" "audit" "recurrence" "reminders" "suppression" "scheduler" -}}
{{- range .Values.workers.groups -}}
{{- range $w := splitList "," (.only | default "") -}}
{{- if and (trim $w) (not (has (trim $w) $known)) -}}
{{- fail (printf "workers.groups: unknown worker %q (known: %s)" $w (join ", " $known)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Secret and extra environment shared by every todo container (API, workers, jobs); the non-secret
    settings come from the ConfigMap through envFrom. */}}
{{- define "todo.commonEnv" -}}
- name: TODO_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "todo.secretName" . }}
      key: database-url
{{- if include "todo.kafkaSasl" . }}
- name: TODO_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "todo.secretName" . }}
      key: kafka-sasl-username
- name: TODO_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "todo.secretName" . }}
      key: kafka-sasl-password
{{- end }}
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by the Deployments. */}}
{{- define "todo.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "todo.probes" -}}
{{- $p := .probes -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  initialDelaySeconds: {{ $p.livenessProbe.initialDelaySeconds }}
  periodSeconds: {{ $p.livenessProbe.periodSeconds }}
  failureThreshold: {{ $p.livenessProbe.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  initialDelaySeconds: {{ $p.readinessProbe.initialDelaySeconds }}
  periodSeconds: {{ $p.readinessProbe.periodSeconds }}
  failureThreshold: {{ $p.readinessProbe.failureThreshold }}
{{- end -}}
