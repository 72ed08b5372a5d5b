{{/* Names, labels and the values other templates derive from the eventpipe config. */}}

{{- define "eventpipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eventpipe.fullname" -}}
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

{{- define "eventpipe.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eventpipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventpipe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "eventpipe.labels" -}}
helm.sh/chart: {{ include "eventpipe.chart" . }}
{{ include "eventpipe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "eventpipe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "eventpipe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "eventpipe.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The HTTP port eventpipe listens on: config.http.port, else eventpipe's default 2112. */}}
{{- define "eventpipe.httpPort" -}}
{{- $http := .Values.config.http | default dict }}
{{- $http.port | default 2112 | int }}
{{- end }}

{{/*
Namespaces to watch, as eventpipe merges them: config.watch.namespaces plus config.namespace,
one per line; empty = all namespaces (ClusterRole mode).
*/}}
{{- define "eventpipe.watchNamespaces" -}}
{{- $watch := .Values.config.watch | default dict }}
{{- $namespaces := list }}
{{- range ($watch.namespaces | default list) }}
{{- $namespaces = append $namespaces . }}
{{- end }}
{{- with .Values.config.namespace }}
{{- $namespaces = append $namespaces . }}
{{- end }}
{{- $namespaces | uniq | join "\n" }}
{{- end }}

{{- define "eventpipe.leaderElection" -}}
{{- $le := .Values.config.leaderElection | default dict }}
{{- if $le.enabled }}true{{ end }}
{{- end }}

{{- define "eventpipe.leaseName" -}}
{{- $le := .Values.config.leaderElection | default dict }}
{{- $le.leaderElectionID | default "eventpipe" }}
{{- end }}

{{/* The events rule of every RBAC object: both Event APIs, read-only. */}}
{{- define "eventpipe.eventsRule" -}}
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["get", "list", "watch"]
{{- if not .Values.config.omitLookup }}
{{ include "eventpipe.enrichRules" . }}
{{- end }}
{{- end }}

{{/* Enrichment (omitLookup: false) keeps list+watch metadata caches of the involved objects
and their owners, and GETs an object its cache cannot answer for: get, list, watch. */}}
{{- define "eventpipe.enrichRules" -}}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apps"]
  resources: ["replicasets", "deployments", "statefulsets", "daemonsets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["batch"]
  resources: ["jobs", "cronjobs"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* "true" when a value is a number or a non-empty string (0 counts as set; "" and null do not). */}}
{{- define "eventpipe.isSet" -}}
{{- if or (and (kindIs "string" .) .) (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) }}true{{ end }}
{{- end }}

{{/* Labels of the `helm test` pod: not the selector labels, or the StatefulSet would adopt it. */}}
{{- define "eventpipe.testLabels" -}}
app.kubernetes.io/name: {{ include "eventpipe.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{/*
replicaCount, after the checks several replicas need: without leader election every replica
would watch and deliver every event, and a literal Lease identity would be shared by all of them
(each would take the other's renewals for its own). Empty identity = $POD_NAME; `${POD_NAME}`
and other references are expanded per pod, so they pass.
*/}}
{{- define "eventpipe.replicas" -}}
{{- $replicas := .Values.replicaCount | int }}
{{- $le := .Values.config.leaderElection | default dict }}
{{- if gt $replicas 1 }}
{{- if not $le.enabled }}
{{- fail (printf "replicaCount=%d needs config.leaderElection.enabled=true: without leader election every replica watches and delivers every event (set replicaCount: 1, or enable config.leaderElection)" $replicas) }}
{{- end }}
{{- with $le.identity }}
{{- if not (contains "${" .) }}
{{- fail (printf "replicaCount=%d: config.leaderElection.identity=%q would be the same in every replica; leave it empty (eventpipe uses $POD_NAME) or reference a per-pod variable such as ${POD_NAME}" $replicas .) }}
{{- end }}
{{- end }}
{{- end }}
{{- $replicas }}
{{- end }}

{{/* The Lease's namespace: config.leaderElection.namespace, else the pod's (the release's). */}}
{{- define "eventpipe.leaseNamespace" -}}
{{- $le := .Values.config.leaderElection | default dict }}
{{- $le.namespace | default .Release.Namespace }}
{{- end }}

{{/* "true" when the PodDisruptionBudget is rendered: pdb.enabled, or when null replicaCount > 1. */}}
{{- define "eventpipe.pdbEnabled" -}}
{{- if kindIs "bool" .Values.pdb.enabled }}
{{- if .Values.pdb.enabled }}true{{ end }}
{{- else if gt (.Values.replicaCount | int) 1 }}true
{{- end }}
{{- end }}
