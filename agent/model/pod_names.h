#pragma once
// The names a pod carries, checked as the API server validates them, before
// any path is built from them: the log directory is
// <namespace>_<name>_<uid>/<container>, the volumes live under pods/<uid>.
//   metadata.name       DNS subdomain (at most 253)
//   metadata.namespace  DNS label (at most 63)
//   metadata.uid        at most 128 of [A-Za-z0-9._-], without ".." (UUIDs,
//                       which the API server generates, and the static pods'
//                       hashes fit): it is one path component
//   containers' names, spec.hostname, spec.subdomain: DNS labels

#include <optional>
#include <string>

#include "agent/model/pod.h"

namespace kernelet::agent {

bool isDnsLabel(const std::string& s);
bool isDnsSubdomain(const std::string& s);

// spec.securityContext.sysctls[].name as the API validates it: at most 253
// characters, segments of [a-z0-9]([-_a-z0-9]*[a-z0-9])? joined by '.' or '/'.
bool isSysctlName(const std::string& s);
// A kubelet allowedUnsafeSysctls entry: a name whose last segment may end in
// '*' (a prefix: "kernel.msg*", "net.*").
bool isSysctlPattern(const std::string& s);
// The kubelet's NormalizeName: a name whose first separator is '/'
// ("net/ipv4/ip_local_port_range") has its '.' and '/' swapped, so that it
// reads as the dotted form; a dotted name is returned as it is.
std::string normalizeSysctlName(const std::string& s);

// The kubelet's GeneratePodHostNameAndDomain: the pod's hostname
// (spec.hostname, else its name cut to 63 characters without a trailing '-'
// or '.') and its domain (<subdomain>.<namespace>.svc.<cluster domain> with a
// subdomain, else empty).
struct PodHostName {
  std::string hostname, domain;
};
PodHostName podHostName(const Pod& pod, const std::string& cluster_domain);
// The hostname the pod's UTS namespace gets (the kubelet's
// GetNodenameForKernel): with setHostnameAsFQDN and a domain, the FQDN
// hostname.domain, which must fit the kernel's 64 characters; else the hostname.
Result<std::string> podKernelHostname(const Pod& pod, const std::string& cluster_domain);

// The first name the API server would refuse, as its field error:
// `metadata.namespace: Invalid value: "../x": must be a DNS label (...)`.
std::optional<std::string> invalidPodName(const Pod& pod);

}  // namespace kernelet::agent
