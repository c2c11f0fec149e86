#include "agent/model/pod_fields.h"

#include <algorithm>
#include <array>
#include <functional>

namespace kernelet::agent {

namespace {

constexpr FieldUse kImplemented = FieldUse::kImplemented;
constexpr FieldUse kRefused = FieldUse::kRefused;
constexpr FieldUse kNoEffect = FieldUse::kNoEffect;

// Every field of a v1 Pod (tests/apiserver/openapi/api__v1_openapi.json).
// To implement a field, flip its entry (or replace a subtree's entry with its
// leaves) in the change that implements it; README.md's list of refused
// fields follows (the unit test says what it must read).
constexpr auto kFields = std::to_array<PodField>({
    {"apiVersion", kImplemented},
    {"kind", kImplemented},
    {"metadata.annotations", kImplemented},
    {"metadata.creationTimestamp", kNoEffect},
    {"metadata.deletionGracePeriodSeconds", kImplemented},
    {"metadata.deletionTimestamp", kImplemented},
    {"metadata.finalizers", kNoEffect},
    {"metadata.generateName", kNoEffect},
    {"metadata.generation", kNoEffect},
    {"metadata.labels", kImplemented},
    {"metadata.managedFields", kNoEffect},
    {"metadata.name", kImplemented},
    {"metadata.namespace", kImplemented},
    {"metadata.ownerReferences", kNoEffect},
    {"metadata.resourceVersion", kNoEffect},
    {"metadata.selfLink", kNoEffect},
    {"metadata.uid", kImplemented},
    {"spec.activeDeadlineSeconds", kImplemented},
    {"spec.affinity", kNoEffect},
    // the API server mounts the token
    {"spec.automountServiceAccountToken", kNoEffect},
    {"spec.containers[].args", kImplemented},
    {"spec.containers[].command", kImplemented},
    {"spec.containers[].envFrom[].configMapRef.name", kImplemented},
    {"spec.containers[].envFrom[].configMapRef.optional", kImplemented},
    {"spec.containers[].envFrom[].prefix", kImplemented},
    {"spec.containers[].envFrom[].secretRef.name", kImplemented},
    {"spec.containers[].envFrom[].secretRef.optional", kImplemented},
    {"spec.containers[].env[].name", kImplemented},
    {"spec.containers[].env[].value", kImplemented},
    {"spec.containers[].env[].valueFrom.configMapKeyRef.key", kImplemented},
    {"spec.containers[].env[].valueFrom.configMapKeyRef.name", kImplemented},
    {"spec.containers[].env[].valueFrom.configMapKeyRef.optional", kImplemented},
    // v1 is the only version of the paths
    {"spec.containers[].env[].valueFrom.fieldRef.apiVersion", kNoEffect},
    {"spec.containers[].env[].valueFrom.fieldRef.fieldPath", kImplemented},
    {"spec.containers[].env[].valueFrom.fileKeyRef", kRefused},
    {"spec.containers[].env[].valueFrom.resourceFieldRef.containerName", kImplemented},
    // the API writes "0" (unset); 1 is what kernelet does
    {"spec.containers[].env[].valueFrom.resourceFieldRef.divisor", kRefused, "0|1"},
    {"spec.containers[].env[].valueFrom.resourceFieldRef.resource", kImplemented},
    {"spec.containers[].env[].valueFrom.secretKeyRef.key", kImplemented},
    {"spec.containers[].env[].valueFrom.secretKeyRef.name", kImplemented},
    {"spec.containers[].env[].valueFrom.secretKeyRef.optional", kImplemented},
    {"spec.containers[].image", kImplemented},
    {"spec.containers[].imagePullPolicy", kImplemented},
    {"spec.containers[].lifecycle.postStart.exec.command", kImplemented},
    {"spec.containers[].lifecycle.postStart.httpGet.host", kImplemented},
    {"spec.containers[].lifecycle.postStart.httpGet.httpHeaders[].name", kImplemented},
    {"spec.containers[].lifecycle.postStart.httpGet.httpHeaders[].value", kImplemented},
    {"spec.containers[].lifecycle.postStart.httpGet.path", kImplemented},
    {"spec.containers[].lifecycle.postStart.httpGet.port", kImplemented},
    {"spec.containers[].lifecycle.postStart.httpGet.scheme", kImplemented},
    {"spec.containers[].lifecycle.postStart.sleep.seconds", kImplemented},
    {"spec.containers[].lifecycle.postStart.tcpSocket.host", kImplemented},
    {"spec.containers[].lifecycle.postStart.tcpSocket.port", kImplemented},
    {"spec.containers[].lifecycle.preStop.exec.command", kImplemented},
    {"spec.containers[].lifecycle.preStop.httpGet.host", kImplemented},
    {"spec.containers[].lifecycle.preStop.httpGet.httpHeaders[].name", kImplemented},
    {"spec.containers[].lifecycle.preStop.httpGet.httpHeaders[].value", kImplemented},
    {"spec.containers[].lifecycle.preStop.httpGet.path", kImplemented},
    {"spec.containers[].lifecycle.preStop.httpGet.port", kImplemented},
    {"spec.containers[].lifecycle.preStop.httpGet.scheme", kImplemented},
    {"spec.containers[].lifecycle.preStop.sleep.seconds", kImplemented},
    {"spec.containers[].lifecycle.preStop.tcpSocket.host", kImplemented},
    {"spec.containers[].lifecycle.preStop.tcpSocket.port", kImplemented},
    {"spec.containers[].lifecycle.stopSignal", kImplemented},
    {"spec.containers[].livenessProbe.exec.command", kImplemented},
    {"spec.containers[].livenessProbe.failureThreshold", kImplemented},
    {"spec.containers[].livenessProbe.grpc.port", kImplemented},
    {"spec.containers[].livenessProbe.grpc.service", kImplemented},
    {"spec.containers[].livenessProbe.httpGet.host", kImplemented},
    {"spec.containers[].livenessProbe.httpGet.httpHeaders[].name", kImplemented},
    {"spec.containers[].livenessProbe.httpGet.httpHeaders[].value", kImplemented},
    {"spec.containers[].livenessProbe.httpGet.path", kImplemented},
    {"spec.containers[].livenessProbe.httpGet.port", kImplemented},
    {"spec.containers[].livenessProbe.httpGet.scheme", kImplemented},
    {"spec.containers[].livenessProbe.initialDelaySeconds", kImplemented},
    {"spec.containers[].livenessProbe.periodSeconds", kImplemented},
    {"spec.containers[].livenessProbe.successThreshold", kImplemented},
    {"spec.containers[].livenessProbe.tcpSocket.host", kRefused},
    {"spec.containers[].livenessProbe.tcpSocket.port", kImplemented},
    {"spec.containers[].livenessProbe.terminationGracePeriodSeconds", kRefused},
    {"spec.containers[].livenessProbe.timeoutSeconds", kImplemented},
    {"spec.containers[].name", kImplemented},
    {"spec.containers[].ports[].containerPort", kImplemented},
    {"spec.containers[].ports[].hostIP", kRefused},
    {"spec.containers[].ports[].hostPort", kRefused},
    {"spec.containers[].ports[].name", kImplemented},
    // informational, as containerPort: nothing is published without hostPort
    {"spec.containers[].ports[].protocol", kNoEffect},
    {"spec.containers[].readinessProbe.exec.command", kImplemented},
    {"spec.containers[].readinessProbe.failureThreshold", kImplemented},
    {"spec.containers[].readinessProbe.grpc.port", kImplemented},
    {"spec.containers[].readinessProbe.grpc.service", kImplemented},
    {"spec.containers[].readinessProbe.httpGet.host", kImplemented},
    {"spec.containers[].readinessProbe.httpGet.httpHeaders[].name", kImplemented},
    {"spec.containers[].readinessProbe.httpGet.httpHeaders[].value", kImplemented},
    {"spec.containers[].readinessProbe.httpGet.path", kImplemented},
    {"spec.containers[].readinessProbe.httpGet.port", kImplemented},
    {"spec.containers[].readinessProbe.httpGet.scheme", kImplemented},
    {"spec.containers[].readinessProbe.initialDelaySeconds", kImplemented},
    {"spec.containers[].readinessProbe.periodSeconds", kImplemented},
    {"spec.containers[].readinessProbe.successThreshold", kImplemented},
    {"spec.containers[].readinessProbe.tcpSocket.host", kRefused},
    {"spec.containers[].readinessProbe.tcpSocket.port", kImplemented},
    {"spec.containers[].readinessProbe.terminationGracePeriodSeconds", kRefused},
    {"spec.containers[].readinessProbe.timeoutSeconds", kImplemented},
    {"spec.containers[].resizePolicy[].resourceName", kImplemented},
    {"spec.containers[].resizePolicy[].restartPolicy", kImplemented},
    {"spec.containers[].resources.claims", kRefused},
    {"spec.containers[].resources.limits", kImplemented},
    {"spec.containers[].resources.requests", kImplemented},
    {"spec.containers[].restartPolicy", kImplemented},
    {"spec.containers[].restartPolicyRules", kRefused},
    {"spec.containers[].securityContext.allowPrivilegeEscalation", kImplemented},
    {"spec.containers[].securityContext.appArmorProfile.localhostProfile", kRefused},
    // kernelet loads no AppArmor profile
    {"spec.containers[].securityContext.appArmorProfile.type", kRefused, "Unconfined"},
    {"spec.containers[].securityContext.capabilities.add", kImplemented},
    {"spec.containers[].securityContext.capabilities.drop", kImplemented},
    {"spec.containers[].securityContext.privileged", kImplemented},
    // the masked and read-only /proc paths kernelet sets
    {"spec.containers[].securityContext.procMount", kRefused, "Default"},
    {"spec.containers[].securityContext.readOnlyRootFilesystem", kImplemented},
    {"spec.containers[].securityContext.runAsGroup", kImplemented},
    {"spec.containers[].securityContext.runAsNonRoot", kImplemented},
    {"spec.containers[].securityContext.runAsUser", kImplemented},
    {"spec.containers[].securityContext.seLinuxOptions", kRefused},
    {"spec.containers[].securityContext.seccompProfile.localhostProfile", kImplemented},
    {"spec.containers[].securityContext.seccompProfile.type", kImplemented},
    // Windows nodes only
    {"spec.containers[].securityContext.windowsOptions", kNoEffect},
    {"spec.containers[].startupProbe.exec.command", kImplemented},
    {"spec.containers[].startupProbe.failureThreshold", kImplemented},
    {"spec.containers[].startupProbe.grpc.port", kImplemented},
    {"spec.containers[].startupProbe.grpc.service", kImplemented},
    {"spec.containers[].startupProbe.httpGet.host", kImplemented},
    {"spec.containers[].startupProbe.httpGet.httpHeaders[].name", kImplemented},
    {"spec.containers[].startupProbe.httpGet.httpHeaders[].value", kImplemented},
    {"spec.containers[].startupProbe.httpGet.path", kImplemented},
    {"spec.containers[].startupProbe.httpGet.port", kImplemented},
    {"spec.containers[].startupProbe.httpGet.scheme", kImplemented},
    {"spec.containers[].startupProbe.initialDelaySeconds", kImplemented},
    {"spec.containers[].startupProbe.periodSeconds", kImplemented},
    {"spec.containers[].startupProbe.successThreshold", kImplemented},
    {"spec.containers[].startupProbe.tcpSocket.host", kRefused},
    {"spec.containers[].startupProbe.tcpSocket.port", kImplemented},
    {"spec.containers[].startupProbe.terminationGracePeriodSeconds", kRefused},
    {"spec.containers[].startupProbe.timeoutSeconds", kImplemented},
    {"spec.containers[].stdin", kImplemented},
    {"spec.containers[].stdinOnce", kImplemented},
    {"spec.containers[].terminationMessagePath", kImplemented},
    {"spec.containers[].terminationMessagePolicy", kImplemented},
    {"spec.containers[].tty", kImplemented},
    {"spec.containers[].volumeDevices", kRefused},
    {"spec.containers[].volumeMounts[].mountPath", kImplemented},
    // kernelet's mounts are private
    // Bidirectional: the container's root is a slave before pivot_root, so its
    // mounts would not reach the node (runc keeps it shared and makes the
    // rootfs parent private); refused until that is done.
    {"spec.containers[].volumeMounts[].mountPropagation", kRefused, "None|HostToContainer"},
    {"spec.containers[].volumeMounts[].name", kImplemented},
    {"spec.containers[].volumeMounts[].readOnly", kImplemented},
    // the default
    {"spec.containers[].volumeMounts[].recursiveReadOnly", kImplemented},
    {"spec.containers[].volumeMounts[].subPath", kImplemented},
    {"spec.containers[].volumeMounts[].subPathExpr", kImplemented},
    {"spec.containers[].workingDir", kImplemented},
    {"spec.dnsConfig.nameservers", kImplemented},
    {"spec.dnsConfig.options[].name", kImplemented},
    {"spec.dnsConfig.options[].value", kImplemented},
    {"spec.dnsConfig.searches", kImplemented},
    {"spec.dnsPolicy", kImplemented},
    {"spec.enableServiceLinks", kImplemented},
    {"spec.ephemeralContainers[].args", kImplemented},
    {"spec.ephemeralContainers[].command", kImplemented},
    {"spec.ephemeralContainers[].envFrom[].configMapRef.name", kImplemented},
    {"spec.ephemeralContainers[].envFrom[].configMapRef.optional", kImplemented},
    {"spec.ephemeralContainers[].envFrom[].prefix", kImplemented},
    {"spec.ephemeralContainers[].envFrom[].secretRef.name", kImplemented},
    {"spec.ephemeralContainers[].envFrom[].secretRef.optional", kImplemented},
    {"spec.ephemeralContainers[].env[].name", kImplemented},
    {"spec.ephemeralContainers[].env[].value", kImplemented},
    {"spec.ephemeralContainers[].env[].valueFrom.configMapKeyRef.key", kImplemented},
    {"spec.ephemeralContainers[].env[].valueFrom.configMapKeyRef.name", kImplemented},
    {"spec.ephemeralContainers[].env[].valueFrom.configMapKeyRef.optional", kImplemented},
    // v1 is the only version of the paths
    {"spec.ephemeralContainers[].env[].valueFrom.fieldRef.apiVersion", kNoEffect},
    {"spec.ephemeralContainers[].env[].valueFrom.fieldRef.fieldPath", kImplemented},
    {"spec.ephemeralContainers[].env[].valueFrom.fileKeyRef", kRefused},
    {"spec.ephemeralContainers[].env[].valueFrom.resourceFieldRef.containerName", kImplemented},
    // the API writes "0" (unset); 1 is what kernelet does
    {"spec.ephemeralContainers[].env[].valueFrom.resourceFieldRef.divisor", kRefused, "0|1"},
    {"spec.ephemeralContainers[].env[].valueFrom.resourceFieldRef.resource", kImplemented},
    {"spec.ephemeralContainers[].env[].valueFrom.secretKeyRef.key", kImplemented},
    {"spec.ephemeralContainers[].env[].valueFrom.secretKeyRef.name", kImplemented},
    {"spec.ephemeralContainers[].env[].valueFrom.secretKeyRef.optional", kImplemented},
    {"spec.ephemeralContainers[].image", kImplemented},
    {"spec.ephemeralContainers[].imagePullPolicy", kImplemented},
    {"spec.ephemeralContainers[].lifecycle", kRefused},
    // the API forbids it in an ephemeral container; the decoder says so first
    {"spec.ephemeralContainers[].livenessProbe", kRefused},
    {"spec.ephemeralContainers[].name", kImplemented},
    // the API forbids it in an ephemeral container; the decoder says so first
    {"spec.ephemeralContainers[].ports", kRefused},
    // the API forbids it in an ephemeral container; the decoder says so first
    {"spec.ephemeralContainers[].readinessProbe", kRefused},
    {"spec.ephemeralContainers[].resizePolicy", kRefused},
    // the API forbids it in an ephemeral container; the decoder says so first
    {"spec.ephemeralContainers[].resources", kRefused},
    // the API forbids it in an ephemeral container; the decoder says so first
    {"spec.ephemeralContainers[].restartPolicy", kRefused},
    {"spec.ephemeralContainers[].restartPolicyRules", kRefused},
    {"spec.ephemeralContainers[].securityContext.allowPrivilegeEscalation", kImplemented},
    {"spec.ephemeralContainers[].securityContext.appArmorProfile.localhostProfile", kRefused},
    // kernelet loads no AppArmor profile
    {"spec.ephemeralContainers[].securityContext.appArmorProfile.type", kRefused, "Unconfined"},
    {"spec.ephemeralContainers[].securityContext.capabilities.add", kImplemented},
    {"spec.ephemeralContainers[].securityContext.capabilities.drop", kImplemented},
    {"spec.ephemeralContainers[].securityContext.privileged", kImplemented},
    // the masked and read-only /proc paths kernelet sets
    {"spec.ephemeralContainers[].securityContext.procMount", kRefused, "Default"},
    {"spec.ephemeralContainers[].securityContext.readOnlyRootFilesystem", kImplemented},
    {"spec.ephemeralContainers[].securityContext.runAsGroup", kImplemented},
    {"spec.ephemeralContainers[].securityContext.runAsNonRoot", kImplemented},
    {"spec.ephemeralContainers[].securityContext.runAsUser", kImplemented},
    {"spec.ephemeralContainers[].securityContext.seLinuxOptions", kRefused},
    {"spec.ephemeralContainers[].securityContext.seccompProfile.localhostProfile", kImplemented},
    {"spec.ephemeralContainers[].securityContext.seccompProfile.type", kImplemented},
    // Windows nodes only
    {"spec.ephemeralContainers[].securityContext.windowsOptions", kNoEffect},
    // the API forbids it in an ephemeral container; the decoder says so first
    {"spec.ephemeralContainers[].startupProbe", kRefused},
    {"spec.ephemeralContainers[].stdin", kImplemented},
    {"spec.ephemeralContainers[].stdinOnce", kImplemented},
    {"spec.ephemeralContainers[].targetContainerName", kImplemented},
    {"spec.ephemeralContainers[].terminationMessagePath", kImplemented},
    {"spec.ephemeralContainers[].terminationMessagePolicy", kImplemented},
    {"spec.ephemeralContainers[].tty", kImplemented},
    {"spec.ephemeralContainers[].volumeDevices", kRefused},
    {"spec.ephemeralContainers[].volumeMounts[].mountPath", kImplemented},
    // kernelet's mounts are private
    {"spec.ephemeralContainers[].volumeMounts[].mountPropagation", kRefused, "None"},
    {"spec.ephemeralContainers[].volumeMounts[].name", kImplemented},
    {"spec.ephemeralContainers[].volumeMounts[].readOnly", kImplemented},
    // the default
    {"spec.ephemeralContainers[].volumeMounts[].recursiveReadOnly", kRefused, "Disabled"},
    // the API forbids it in an ephemeral container; the decoder says so first
    {"spec.ephemeralContainers[].volumeMounts[].subPath", kRefused},
    // the API forbids it in an ephemeral container; the decoder says so first
    {"spec.ephemeralContainers[].volumeMounts[].subPathExpr", kRefused},
    {"spec.ephemeralContainers[].workingDir", kImplemented},
    {"spec.hostAliases[].hostnames", kImplemented},
    {"spec.hostAliases[].ip", kImplemented},
    {"spec.hostIPC", kImplemented},
    {"spec.hostNetwork", kImplemented},
    {"spec.hostPID", kImplemented},
    // no user namespaces: the host's users
    {"spec.hostUsers", kRefused, "true"},
    {"spec.hostname", kImplemented},
    {"spec.hostnameOverride", kRefused},
    {"spec.imagePullSecrets[].name", kImplemented},
    {"spec.initContainers[].args", kImplemented},
    {"spec.initContainers[].command", kImplemented},
    {"spec.initContainers[].envFrom[].configMapRef.name", kImplemented},
    {"spec.initContainers[].envFrom[].configMapRef.optional", kImplemented},
    {"spec.initContainers[].envFrom[].prefix", kImplemented},
    {"spec.initContainers[].envFrom[].secretRef.name", kImplemented},
    {"spec.initContainers[].envFrom[].secretRef.optional", kImplemented},
    {"spec.initContainers[].env[].name", kImplemented},
    {"spec.initContainers[].env[].value", kImplemented},
    {"spec.initContainers[].env[].valueFrom.configMapKeyRef.key", kImplemented},
    {"spec.initContainers[].env[].valueFrom.configMapKeyRef.name", kImplemented},
    {"spec.initContainers[].env[].valueFrom.configMapKeyRef.optional", kImplemented},
    // v1 is the only version of the paths
    {"spec.initContainers[].env[].valueFrom.fieldRef.apiVersion", kNoEffect},
    {"spec.initContainers[].env[].valueFrom.fieldRef.fieldPath", kImplemented},
    {"spec.initContainers[].env[].valueFrom.fileKeyRef", kRefused},
    {"spec.initContainers[].env[].valueFrom.resourceFieldRef.containerName", kImplemented},
    // the API writes "0" (unset); 1 is what kernelet does
    {"spec.initContainers[].env[].valueFrom.resourceFieldRef.divisor", kRefused, "0|1"},
    {"spec.initContainers[].env[].valueFrom.resourceFieldRef.resource", kImplemented},
    {"spec.initContainers[].env[].valueFrom.secretKeyRef.key", kImplemented},
    {"spec.initContainers[].env[].valueFrom.secretKeyRef.name", kImplemented},
    {"spec.initContainers[].env[].valueFrom.secretKeyRef.optional", kImplemented},
    {"spec.initContainers[].image", kImplemented},
    {"spec.initContainers[].imagePullPolicy", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.exec.command", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.httpGet.host", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.httpGet.httpHeaders[].name", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.httpGet.httpHeaders[].value", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.httpGet.path", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.httpGet.port", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.httpGet.scheme", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.sleep.seconds", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.tcpSocket.host", kImplemented},
    {"spec.initContainers[].lifecycle.postStart.tcpSocket.port", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.exec.command", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.httpGet.host", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.httpGet.httpHeaders[].name", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.httpGet.httpHeaders[].value", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.httpGet.path", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.httpGet.port", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.httpGet.scheme", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.sleep.seconds", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.tcpSocket.host", kImplemented},
    {"spec.initContainers[].lifecycle.preStop.tcpSocket.port", kImplemented},
    {"spec.initContainers[].lifecycle.stopSignal", kRefused},
    {"spec.initContainers[].livenessProbe.exec.command", kImplemented},
    {"spec.initContainers[].livenessProbe.failureThreshold", kImplemented},
    {"spec.initContainers[].livenessProbe.grpc.port", kImplemented},
    {"spec.initContainers[].livenessProbe.grpc.service", kImplemented},
    {"spec.initContainers[].livenessProbe.httpGet.host", kImplemented},
    {"spec.initContainers[].livenessProbe.httpGet.httpHeaders[].name", kImplemented},
    {"spec.initContainers[].livenessProbe.httpGet.httpHeaders[].value", kImplemented},
    {"spec.initContainers[].livenessProbe.httpGet.path", kImplemented},
    {"spec.initContainers[].livenessProbe.httpGet.port", kImplemented},
    {"spec.initContainers[].livenessProbe.httpGet.scheme", kImplemented},
    {"spec.initContainers[].livenessProbe.initialDelaySeconds", kImplemented},
    {"spec.initContainers[].livenessProbe.periodSeconds", kImplemented},
    {"spec.initContainers[].livenessProbe.successThreshold", kImplemented},
    {"spec.initContainers[].livenessProbe.tcpSocket.host", kRefused},
    {"spec.initContainers[].livenessProbe.tcpSocket.port", kImplemented},
    {"spec.initContainers[].livenessProbe.terminationGracePeriodSeconds", kRefused},
    {"spec.initContainers[].livenessProbe.timeoutSeconds", kImplemented},
    {"spec.initContainers[].name", kImplemented},
    {"spec.initContainers[].ports[].containerPort", kImplemented},
    {"spec.initContainers[].ports[].hostIP", kRefused},
    {"spec.initContainers[].ports[].hostPort", kRefused},
    {"spec.initContainers[].ports[].name", kImplemented},
    // informational, as containerPort: nothing is published without hostPort
    {"spec.initContainers[].ports[].protocol", kNoEffect},
    {"spec.initContainers[].readinessProbe.exec.command", kImplemented},
    {"spec.initContainers[].readinessProbe.failureThreshold", kImplemented},
    {"spec.initContainers[].readinessProbe.grpc.port", kImplemented},
    {"spec.initContainers[].readinessProbe.grpc.service", kImplemented},
    {"spec.initContainers[].readinessProbe.httpGet.host", kImplemented},
    {"spec.initContainers[].readinessProbe.httpGet.httpHeaders[].name", kImplemented},
    {"spec.initContainers[].readinessProbe.httpGet.httpHeaders[].value", kImplemented},
    {"spec.initContainers[].readinessProbe.httpGet.path", kImplemented},
    {"spec.initContainers[].readinessProbe.httpGet.port", kImplemented},
    {"spec.initContainers[].readinessProbe.httpGet.scheme", kImplemented},
    {"spec.initContainers[].readinessProbe.initialDelaySeconds", kImplemented},
    {"spec.initContainers[].readinessProbe.periodSeconds", kImplemented},
    {"spec.initContainers[].readinessProbe.successThreshold", kImplemented},
    {"spec.initContainers[].readinessProbe.tcpSocket.host", kRefused},
    {"spec.initContainers[].readinessProbe.tcpSocket.port", kImplemented},
    {"spec.initContainers[].readinessProbe.terminationGracePeriodSeconds", kRefused},
    {"spec.initContainers[].readinessProbe.timeoutSeconds", kImplemented},
    {"spec.initContainers[].resizePolicy[].resourceName", kImplemented},
    {"spec.initContainers[].resizePolicy[].restartPolicy", kImplemented},
    {"spec.initContainers[].resources.claims", kRefused},
    {"spec.initContainers[].resources.limits", kImplemented},
    {"spec.initContainers[].resources.requests", kImplemented},
    {"spec.initContainers[].restartPolicy", kImplemented},
    {"spec.initContainers[].restartPolicyRules", kRefused},
    {"spec.initContainers[].securityContext.allowPrivilegeEscalation", kImplemented},
    {"spec.initContainers[].securityContext.appArmorProfile.localhostProfile", kRefused},
    // kernelet loads no AppArmor profile
    {"spec.initContainers[].securityContext.appArmorProfile.type", kRefused, "Unconfined"},
    {"spec.initContainers[].securityContext.capabilities.add", kImplemented},
    {"spec.initContainers[].securityContext.capabilities.drop", kImplemented},
    {"spec.initContainers[].securityContext.privileged", kImplemented},
    // the masked and read-only /proc paths kernelet sets
    {"spec.initContainers[].securityContext.procMount", kRefused, "Default"},
    {"spec.initContainers[].securityContext.readOnlyRootFilesystem", kImplemented},
    {"spec.initContainers[].securityContext.runAsGroup", kImplemented},
    {"spec.initContainers[].securityContext.runAsNonRoot", kImplemented},
    {"spec.initContainers[].securityContext.runAsUser", kImplemented},
    {"spec.initContainers[].securityContext.seLinuxOptions", kRefused},
    {"spec.initContainers[].securityContext.seccompProfile.localhostProfile", kImplemented},
    {"spec.initContainers[].securityContext.seccompProfile.type", kImplemented},
    // Windows nodes only
    {"spec.initContainers[].securityContext.windowsOptions", kNoEffect},
    {"spec.initContainers[].startupProbe.exec.command", kImplemented},
    {"spec.initContainers[].startupProbe.failureThreshold", kImplemented},
    {"spec.initContainers[].startupProbe.grpc.port", kImplemented},
    {"spec.initContainers[].startupProbe.grpc.service", kImplemented},
    {"spec.initContainers[].startupProbe.httpGet.host", kImplemented},
    {"spec.initContainers[].startupProbe.httpGet.httpHeaders[].name", kImplemented},
    {"spec.initContainers[].startupProbe.httpGet.httpHeaders[].value", kImplemented},
    {"spec.initContainers[].startupProbe.httpGet.path", kImplemented},
    {"spec.initContainers[].startupProbe.httpGet.port", kImplemented},
    {"spec.initContainers[].startupProbe.httpGet.scheme", kImplemented},
    {"spec.initContainers[].startupProbe.initialDelaySeconds", kImplemented},
    {"spec.initContainers[].startupProbe.periodSeconds", kImplemented},
    {"spec.initContainers[].startupProbe.successThreshold", kImplemented},
    {"spec.initContainers[].startupProbe.tcpSocket.host", kRefused},
    {"spec.initContainers[].startupProbe.tcpSocket.port", kImplemented},
    {"spec.initContainers[].startupProbe.terminationGracePeriodSeconds", kRefused},
    {"spec.initContainers[].startupProbe.timeoutSeconds", kImplemented},
    {"spec.initContainers[].stdin", kImplemented},
    {"spec.initContainers[].stdinOnce", kImplemented},
    {"spec.initContainers[].terminationMessagePath", kImplemented},
    {"spec.initContainers[].terminationMessagePolicy", kImplemented},
    {"spec.initContainers[].tty", kImplemented},
    {"spec.initContainers[].volumeDevices", kRefused},
    {"spec.initContainers[].volumeMounts[].mountPath", kImplemented},
    // kernelet's mounts are private
    {"spec.initContainers[].volumeMounts[].mountPropagation", kRefused, "None|HostToContainer"},
    {"spec.initContainers[].volumeMounts[].name", kImplemented},
    {"spec.initContainers[].volumeMounts[].readOnly", kImplemented},
    // the default
    {"spec.initContainers[].volumeMounts[].recursiveReadOnly", kImplemented},
    {"spec.initContainers[].volumeMounts[].subPath", kImplemented},
    {"spec.initContainers[].volumeMounts[].subPathExpr", kImplemented},
    {"spec.initContainers[].workingDir", kImplemented},
    {"spec.nodeName", kImplemented},
    {"spec.nodeSelector", kNoEffect},
    // kernelet runs Linux containers only
    {"spec.os.name", kRefused, "linux"},
    {"spec.overhead", kRefused},
    {"spec.preemptionPolicy", kNoEffect},
    {"spec.priority", kImplemented},
    {"spec.priorityClassName", kImplemented},
    {"spec.readinessGates[].conditionType", kImplemented},
    {"spec.resourceClaims", kRefused},
    {"spec.resources", kRefused},
    {"spec.restartPolicy", kImplemented},
    {"spec.runtimeClassName", kRefused},
    {"spec.schedulerName", kNoEffect},
    {"spec.schedulingGates", kNoEffect},
    {"spec.securityContext.appArmorProfile.localhostProfile", kRefused},
    // kernelet loads no AppArmor profile
    {"spec.securityContext.appArmorProfile.type", kRefused, "Unconfined"},
    {"spec.securityContext.fsGroup", kImplemented},
    // fsGroup is applied to volumes kernelet creates empty, where both policies do the same
    {"spec.securityContext.fsGroupChangePolicy", kNoEffect},
    {"spec.securityContext.runAsGroup", kImplemented},
    {"spec.securityContext.runAsNonRoot", kImplemented},
    {"spec.securityContext.runAsUser", kImplemented},
    // no SELinux labels are applied
    {"spec.securityContext.seLinuxChangePolicy", kNoEffect},
    {"spec.securityContext.seLinuxOptions", kRefused},
    {"spec.securityContext.seccompProfile.localhostProfile", kImplemented},
    {"spec.securityContext.seccompProfile.type", kImplemented},
    {"spec.securityContext.supplementalGroups", kImplemented},
    // the default
    {"spec.securityContext.supplementalGroupsPolicy", kRefused, "Merge"},
    {"spec.securityContext.sysctls[].name", kImplemented},
    {"spec.securityContext.sysctls[].value", kImplemented},
    // Windows nodes only
    {"spec.securityContext.windowsOptions", kNoEffect},
    {"spec.serviceAccount", kImplemented},
    {"spec.serviceAccountName", kImplemented},
    {"spec.setHostnameAsFQDN", kImplemented},
    {"spec.shareProcessNamespace", kImplemented},
    {"spec.subdomain", kImplemented},
    {"spec.terminationGracePeriodSeconds", kImplemented},
    {"spec.tolerations", kNoEffect},
    {"spec.topologySpreadConstraints", kNoEffect},
    {"spec.volumes[].awsElasticBlockStore", kRefused},
    {"spec.volumes[].azureDisk", kRefused},
    {"spec.volumes[].azureFile", kRefused},
    {"spec.volumes[].cephfs", kRefused},
    {"spec.volumes[].cinder", kRefused},
    {"spec.volumes[].configMap.defaultMode", kImplemented},
    {"spec.volumes[].configMap.items[].key", kImplemented},
    {"spec.volumes[].configMap.items[].mode", kImplemented},
    {"spec.volumes[].configMap.items[].path", kImplemented},
    {"spec.volumes[].configMap.name", kImplemented},
    {"spec.volumes[].configMap.optional", kImplemented},
    {"spec.volumes[].csi", kRefused},
    {"spec.volumes[].downwardAPI.defaultMode", kImplemented},
    // v1 is the only version of the paths
    {"spec.volumes[].downwardAPI.items[].fieldRef.apiVersion", kNoEffect},
    {"spec.volumes[].downwardAPI.items[].fieldRef.fieldPath", kImplemented},
    {"spec.volumes[].downwardAPI.items[].mode", kImplemented},
    {"spec.volumes[].downwardAPI.items[].path", kImplemented},
    {"spec.volumes[].downwardAPI.items[].resourceFieldRef.containerName", kImplemented},
    // the API writes "0" (unset); 1 is what kernelet does
    {"spec.volumes[].downwardAPI.items[].resourceFieldRef.divisor", kRefused, "0|1"},
    {"spec.volumes[].downwardAPI.items[].resourceFieldRef.resource", kImplemented},
    {"spec.volumes[].emptyDir.medium", kImplemented},
    {"spec.volumes[].emptyDir.sizeLimit", kImplemented},
    {"spec.volumes[].ephemeral", kRefused},
    {"spec.volumes[].fc", kRefused},
    {"spec.volumes[].flexVolume", kRefused},
    {"spec.volumes[].flocker", kRefused},
    {"spec.volumes[].gcePersistentDisk", kRefused},
    {"spec.volumes[].gitRepo", kRefused},
    {"spec.volumes[].glusterfs", kRefused},
    {"spec.volumes[].hostPath.path", kImplemented},
    {"spec.volumes[].hostPath.type", kImplemented},
    {"spec.volumes[].image", kRefused},
    {"spec.volumes[].iscsi", kRefused},
    {"spec.volumes[].name", kImplemented},
    {"spec.volumes[].nfs", kRefused},
    {"spec.volumes[].persistentVolumeClaim", kRefused},
    {"spec.volumes[].photonPersistentDisk", kRefused},
    {"spec.volumes[].portworxVolume", kRefused},
    {"spec.volumes[].projected.defaultMode", kImplemented},
    {"spec.volumes[].projected.sources[].clusterTrustBundle", kRefused},
    {"spec.volumes[].projected.sources[].configMap.items[].key", kImplemented},
    {"spec.volumes[].projected.sources[].configMap.items[].mode", kImplemented},
    {"spec.volumes[].projected.sources[].configMap.items[].path", kImplemented},
    {"spec.volumes[].projected.sources[].configMap.name", kImplemented},
    {"spec.volumes[].projected.sources[].configMap.optional", kImplemented},
    // v1 is the only version of the paths
    {"spec.volumes[].projected.sources[].downwardAPI.items[].fieldRef.apiVersion", kNoEffect},
    {"spec.volumes[].projected.sources[].downwardAPI.items[].fieldRef.fieldPath", kImplemented},
    {"spec.volumes[].projected.sources[].downwardAPI.items[].mode", kImplemented},
    {"spec.volumes[].projected.sources[].downwardAPI.items[].path", kImplemented},
    {"spec.volumes[].projected.sources[].downwardAPI.items[].resourceFieldRef.containerName",
     kImplemented},
    // the API writes "0" (unset); 1 is what kernelet does
    {"spec.volumes[].projected.sources[].downwardAPI.items[].resourceFieldRef.divisor", kRefused,
     "0|1"},
    {"spec.volumes[].projected.sources[].downwardAPI.items[].resourceFieldRef.resource",
     kImplemented},
    {"spec.volumes[].projected.sources[].podCertificate", kRefused},
    {"spec.volumes[].projected.sources[].secret.items[].key", kImplemented},
    {"spec.volumes[].projected.sources[].secret.items[].mode", kImplemented},
    {"spec.volumes[].projected.sources[].secret.items[].path", kImplemented},
    {"spec.volumes[].projected.sources[].secret.name", kImplemented},
    {"spec.volumes[].projected.sources[].secret.optional", kImplemented},
    {"spec.volumes[].projected.sources[].serviceAccountToken.audience", kImplemented},
    {"spec.volumes[].projected.sources[].serviceAccountToken.expirationSeconds", kImplemented},
    {"spec.volumes[].projected.sources[].serviceAccountToken.path", kImplemented},
    {"spec.volumes[].quobyte", kRefused},
    {"spec.volumes[].rbd", kRefused},
    {"spec.volumes[].scaleIO", kRefused},
    {"spec.volumes[].secret.defaultMode", kImplemented},
    {"spec.volumes[].secret.items[].key", kImplemented},
    {"spec.volumes[].secret.items[].mode", kImplemented},
    {"spec.volumes[].secret.items[].path", kImplemented},
    {"spec.volumes[].secret.optional", kImplemented},
    {"spec.volumes[].secret.secretName", kImplemented},
    {"spec.volumes[].storageos", kRefused},
    {"spec.volumes[].vsphereVolume", kRefused},
    {"spec.workloadRef", kNoEffect},
    // the kubelet writes it
    {"status", kNoEffect},
});

static_assert(std::ranges::adjacent_find(kFields, std::ranges::greater_equal(), &PodField::path) ==
                  kFields.end(),
              "kFields must be sorted by path, each path once");

}  // namespace

std::span<const PodField> podFields() { return kFields; }

const PodField* podField(std::string_view path) {
  // The entry itself, or the nearest kRefused/kNoEffect ancestor: the last
  // entry not after `path` that is a prefix of it ending at a '.' or '['.
  for (std::string_view p = path;;) {
    auto it = std::ranges::lower_bound(kFields, p, {}, &PodField::path);
    if (it != kFields.end() && it->path == p && (p == path || it->use != FieldUse::kImplemented)) {
      return &*it;
    }
    size_t cut = p.find_last_of(".[");
    if (cut == std::string_view::npos) {
      return nullptr;
    }
    p = p.substr(0, cut);
  }
}

bool podFieldParent(std::string_view path) {
  for (char sep : {'.', '['}) {
    std::string prefix = std::string(path) + sep;
    auto it = std::ranges::lower_bound(kFields, std::string_view(prefix), {}, &PodField::path);
    if (it != kFields.end() && it->path.starts_with(prefix)) {
      return true;
    }
  }
  return false;
}

namespace {

// Set, in the API's sense: present and not null, "", [] or {}.
bool isSet(const YAML::Node& n) {
  if (!n || n.IsNull()) {
    return false;
  }
  if (n.IsScalar()) {
    return !n.Scalar().empty();
  }
  return n.size() != 0;
}

// One of the values a refused field may have, compared as the API would
// (YAML's `True` is the boolean true).
bool accepted(const PodField& f, const YAML::Node& n) {
  if (!n.IsScalar() || f.accepted.empty()) {
    return false;
  }
  std::string value = n.Scalar();
  if (bool b = false; n.Tag() != "!" && YAML::convert<bool>::decode(n, b)) {
    value = b ? "true" : "false";
  }
  for (std::string_view rest = f.accepted;;) {
    size_t bar = rest.find('|');
    if (rest.substr(0, bar) == value) {
      return true;
    }
    if (bar == std::string_view::npos) {
      return false;
    }
    rest.remove_prefix(bar + 1);
  }
}

// Depth first, in document order: the first refused field is the one named.
// `schema` is the path in the table's notation, `at` with concrete indices.
// A pod on the host's network publishes every port as it is: the API server
// sets hostPort to containerPort on such pods, so that pair is no request at all.
bool hostNetworkPort(const YAML::Node& port, const std::string& path, bool host_network) {
  static const std::string kSuffix = "].ports[].hostPort";
  if (!host_network || path.size() < kSuffix.size() ||
      path.compare(path.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return false;
  }
  const YAML::Node host = port["hostPort"];
  const YAML::Node container = port["containerPort"];
  return host.IsScalar() && container && container.IsScalar() &&
         host.Scalar() == container.Scalar();
}

std::optional<RefusedField> walk(const YAML::Node& map, const std::string& schema,
                                 const std::string& at, bool host_network) {
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      continue;  // not a field name: the decoder names what is wrong with it
    }
    const std::string& key = kv.first.Scalar();
    std::string path = schema.empty() ? key : schema + "." + key;
    std::string here = at.empty() ? key : at + "." + key;
    const YAML::Node& value = kv.second;
    if (const PodField* f = podField(path)) {
      if (f->use == FieldUse::kRefused && isSet(value) && !accepted(*f, value) &&
          !hostNetworkPort(map, path, host_network)) {
        return RefusedField{here, kv.first.Mark()};
      }
      continue;  // implemented, of no effect here, or refused but unset
    }
    if (!podFieldParent(path)) {
      continue;  // not a Pod field
    }
    if (value.IsMap()) {
      if (auto found = walk(value, path, here, host_network)) {
        return found;
      }
    } else if (value.IsSequence()) {
      size_t i = 0;
      for (const auto& item : value) {
        std::string indexed = here + "[" + std::to_string(i++) + "]";
        if (item.IsMap()) {
          if (auto found = walk(item, path + "[]", indexed, host_network)) {
            return found;
          }
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<RefusedField> firstRefusedField(const YAML::Node& doc) {
  if (!doc.IsMap()) {
    return std::nullopt;
  }
  const YAML::Node spec = doc["spec"];
  bool host_network = false;
  if (spec && spec.IsMap() && spec["hostNetwork"] && spec["hostNetwork"].IsScalar()) {
    YAML::convert<bool>::decode(spec["hostNetwork"], host_network);
  }
  return walk(doc, "", "", host_network);
}

std::string refusedMessage(const RefusedField& f) { return f.path + ": not supported by kernelet"; }

}  // namespace kernelet::agent
