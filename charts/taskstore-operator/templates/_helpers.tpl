{{/* The chart name, or nameOverride. */}}
{{- define "taskstore-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-qualified name of every object, at most 63 characters (a DNS label). */}}
{{- define "taskstore-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "taskstore-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object carries. */}}
{{- define "taskstore-operator.labels" -}}
helm.sh/chart: {{ include "taskstore-operator.chart" . }}
{{ include "taskstore-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: teal-agents
{{- end }}

{{/* The labels that select the operator's pods; never change them (Deployment selectors are immutable). */}}
{{- define "taskstore-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taskstore-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "taskstore-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "taskstore-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository, then the digest if set, else the tag (default: appVersion). */}}
{{- define "taskstore-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The kopf peering object's name; peering is on when more than one replica runs. */}}
{{- define "taskstore-operator.peeringName" -}}
{{- default (include "taskstore-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{/* The labels and annotations the chart adds to a CRD's metadata (indented by two spaces). */}}
{{- define "taskstore-operator.crdMetadata" -}}
labels:
  {{- include "taskstore-operator.labels" . | nindent 2 }}
{{- if .Values.crds.keep }}
annotations:
  helm.sh/resource-policy: keep
{{- end }}
{{- end }}
