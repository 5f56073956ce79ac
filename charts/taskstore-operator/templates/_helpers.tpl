{{/* The chart name, or nameOverride. */}}
{{- define "taskstore-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-qualified name of every object: a DNS-1035 label (the strictest rule of the names it is used in: Services). */}}
{{- define "taskstore-operator.fullname" -}}
{{- $fullname := "" }}
{{- if .Values.fullnameOverride }}
{{- $fullname = .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- $fullname = .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $fullname = printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $fullname) }}
{{- fail (printf "the objects' name %q (from the release name %q, nameOverride and fullnameOverride) is not a DNS-1035 label (lower case letters, digits and '-', starting with a letter): set fullnameOverride" $fullname .Release.Name) }}
{{- end }}
{{- $fullname }}
{{- end }}

{{/* The full name with a suffix, the full name cut first so that the suffix stays and the whole fits 63 characters; call with (list . "suffix"). */}}
{{- define "taskstore-operator.suffixedName" -}}
{{- $context := index . 0 }}
{{- $suffix := index . 1 }}
{{- $base := include "taskstore-operator.fullname" $context | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix }}
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

{{/* The kopf peering object's name (peering is always on). */}}
{{- define "taskstore-operator.peeringName" -}}
{{- default (include "taskstore-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{/* The label of every install's peering objects (taskstore_operator.topology.PEERING_LABEL). */}}
{{- define "taskstore-operator.peeringLabel" -}}
tealagents.io/taskstore-operator-peering: "true"
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
