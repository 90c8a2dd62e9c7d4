{{/* Chart name, possibly overridden. */}}
{{- define "canary-analyzer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources. */}}
{{- define "canary-analyzer.fullname" -}}
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

{{/* Labels every resource carries. */}}
{{- define "canary-analyzer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "canary-analyzer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels selecting the service's Pods. */}}
{{- define "canary-analyzer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "canary-analyzer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* ServiceAccount the Pods run as. */}}
{{- define "canary-analyzer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "canary-analyzer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding the control token ("" when there is none). */}}
{{- define "canary-analyzer.tokenSecret" -}}
{{- if .Values.controlToken.existingSecret }}
{{- .Values.controlToken.existingSecret }}
{{- else if .Values.controlToken.value }}
{{- printf "%s-token" (include "canary-analyzer.fullname" .) }}
{{- end }}
{{- end }}

{{/* Key of the token in that Secret. */}}
{{- define "canary-analyzer.tokenKey" -}}
{{- if .Values.controlToken.existingSecret }}
{{- .Values.controlToken.existingSecretKey }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{/* Where the token is mounted. */}}
{{- define "canary-analyzer.tokenFile" -}}
/var/run/secrets/canary-analyzer/token
{{- end }}

{{/* Names of the tag MutatingWebhookConfigurations the service may update, one a line. */}}
{{- define "canary-analyzer.tagWebhooks" -}}
{{- $tags := uniq (prepend .Values.rbac.extraTags .Values.config.upgrade.tag) }}
{{- $istio := .Values.config.upgrade.istio_namespace | default "istio-system" }}
{{- range $tags }}
{{- if eq $istio "istio-system" }}
{{ printf "istio-revision-tag-%s" . }}
{{- else }}
{{ printf "istio-revision-tag-%s-%s" . $istio }}
{{- end }}
{{- end }}
{{- end }}

{{/* The tag Services istiod-revision-tag-<tag> (Istio 1.28 and later) the service may move. */}}
{{- define "canary-analyzer.tagServices" -}}
{{- $tags := uniq (prepend .Values.rbac.extraTags .Values.config.upgrade.tag) }}
{{- range $tags }}
{{ printf "istiod-revision-tag-%s" . }}
{{- end }}
{{- end }}

{{/* true when the default tag may move: its ValidatingWebhookConfiguration moves with it. */}}
{{- define "canary-analyzer.movesDefaultTag" -}}
{{- if has "default" (prepend .Values.rbac.extraTags .Values.config.upgrade.tag) }}true{{ end }}
{{- end }}

{{/*
Settings the chart sets itself (in-cluster paths, the release namespace, the listen
address): setting them in .Values.config would contradict the mounts and the RBAC.
*/}}
{{- define "canary-analyzer.validate" -}}
{{- $reserved := dict "rules" (list "directory") "kubernetes" (list "kubeconfig" "context") "upgrade" (list "state_namespace") "service" (list "listen" "token_file" "identity" "lease_namespace" "reports_dir") }}
{{- range $group, $keys := $reserved }}
{{- range $keys }}
{{- if hasKey (index $.Values.config $group | default dict) . }}
{{- fail (printf "config.%s.%s is set by the chart; remove it from your values" $group .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not (has .Values.config.upgrade.style (list "tag" "namespace-label")) }}
{{- fail (printf "config.upgrade.style must be tag or namespace-label, not %v" .Values.config.upgrade.style) }}
{{- end }}
{{- if not (has (.Values.config.service.mode | default "act") (list "act" "shadow")) }}
{{- fail (printf "config.service.mode must be act or shadow, not %v" .Values.config.service.mode) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (eq (.Values.config.service.mode | default "act") "shadow") }}
{{- fail "config.service.mode: shadow runs one replica (replicaCount: 1): it takes no Lease, it writes nothing" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.config.service.leader_election) }}
{{- fail "replicaCount > 1 needs config.service.leader_election: true (else several replicas would act)" }}
{{- end }}
{{- end }}

{{/* CANARY_<GROUP>__<FIELD> variables from .Values.config; empty strings are left out. */}}
{{- define "canary-analyzer.configEnv" -}}
{{- range $group, $fields := .Values.config }}
{{- range $key, $value := $fields }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
- name: {{ printf "CANARY_%s__%s" $group $key | upper }}
  {{- if or (kindIs "map" $value) (kindIs "slice" $value) }}
  value: {{ toJson $value | quote }}
  {{- else }}
  value: {{ toString $value | quote }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Labels on every alert of the PrometheusRule: config.notifications.labels, the cluster
(config.notifications.cluster, when set; else Prometheus' external labels usually carry
it), then prometheusRule.alertLabels (which win) — the labels the service puts on its own
alerts.
*/}}
{{- define "canary-analyzer.alertLabels" -}}
{{- $labels := dict }}
{{- range $key, $value := .Values.config.notifications.labels }}
{{- $_ := set $labels $key $value }}
{{- end }}
{{- with .Values.config.notifications.cluster }}
{{- $_ := set $labels "cluster" . }}
{{- end }}
{{- range $key, $value := .Values.prometheusRule.alertLabels }}
{{- $_ := set $labels $key $value }}
{{- end }}
{{- if $labels }}
{{- toYaml $labels }}
{{- end }}
{{- end }}

{{/*
runbook_url of an alert: config.notifications.runbook_base_url (default docs/oncall.md,
as the service does) + "#" + the alert name lower-cased, the anchor of its section.
Called with (list $ "AlertName").
*/}}
{{- define "canary-analyzer.runbookUrl" -}}
{{- $root := index . 0 }}
{{- $base := $root.Values.config.notifications.runbook_base_url | default "docs/oncall.md" }}
{{- printf "%s#%s" (trimSuffix "#" $base) (lower (index . 1)) | quote }}
{{- end }}

{{/*
Names Istio's istio-discovery chart gives a revision's objects, per resource
(manifests/charts/istio-control/istio-discovery/templates): one "resource name" per line,
for every revision in prune.revisions.
*/}}
{{- define "canary-analyzer.pruneNames" -}}
{{- $ns := .Values.config.upgrade.istio_namespace | default "istio-system" }}
{{- range .Values.prune.revisions }}
deployments istiod-{{ . }}
services istiod-{{ . }}
horizontalpodautoscalers istiod-{{ . }}
poddisruptionbudgets istiod-{{ . }}
configmaps istio-{{ . }}
configmaps istio-sidecar-injector-{{ . }}
configmaps values-{{ . }}
serviceaccounts istiod-{{ . }}
roles istiod-{{ . }}
rolebindings istiod-{{ . }}
mutatingwebhookconfigurations istio-sidecar-injector-{{ . }}
validatingwebhookconfigurations istio-validator-{{ . }}-{{ $ns }}
clusterroles istiod-clusterrole-{{ . }}-{{ $ns }}
clusterroles istiod-gateway-controller-{{ . }}-{{ $ns }}
clusterroles istio-reader-clusterrole-{{ . }}-{{ $ns }}
clusterrolebindings istiod-clusterrole-{{ . }}-{{ $ns }}
clusterrolebindings istiod-gateway-controller-{{ . }}-{{ $ns }}
clusterrolebindings istio-reader-clusterrole-{{ . }}-{{ $ns }}
{{- end }}
{{- end }}
