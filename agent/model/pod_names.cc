#include "agent/model/pod_names.h"

#include <algorithm>

namespace kernelet::agent {
namespace {

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9]([-a-z0-9]*[a-z0-9])? without std::regex, whose recursion a long
// name would turn into a stack overflow.
bool label(const std::string& s, size_t from, size_t to) {
  if (from >= to || !alnum(s[from]) || !alnum(s[to - 1])) {
    return false;
  }
  for (size_t i = from; i < to; i++) {
    if (!alnum(s[i]) && s[i] != '-') {
      return false;
    }
  }
  return true;
}

std::string invalid(const std::string& field, const std::string& value, const std::string& why) {
  return field + ": Invalid value: \"" + value + "\": " + why;
}

const char* kLabelRule =
    "must be a DNS label (at most 63 lowercase letters, digits and '-', starting and ending with "
    "a letter or digit)";
const char* kSubdomainRule =
    "must be a DNS subdomain (at most 253 characters: DNS labels joined by '.')";

}  // namespace

bool isDnsLabel(const std::string& s) { return s.size() <= 63 && label(s, 0, s.size()); }

bool isDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  for (size_t at = 0; at <= s.size();) {
    size_t end = std::min(s.find('.', at), s.size());
    if (!label(s, at, end)) {
      return false;
    }
    at = end + 1;
  }
  return true;
}

namespace {

bool sysctlChar(char c) { return alnum(c) || c == '-' || c == '_'; }

// The API's sysctl grammar, hand-written for the reason label() is; with
// `pattern` the last segment is ([a-z0-9][-_a-z0-9]*)?[a-z0-9*] instead.
bool sysctlGrammar(const std::string& s, bool pattern) {
  if (s.empty() || s.size() > 253) {
    return false;
  }
  size_t at = 0;
  while (true) {
    size_t end = std::min(s.find_first_of("./", at), s.size());
    bool last = end == s.size();
    if (pattern && last) {
      if (s.back() == '*') {
        end--;  // "*" alone, or a segment start followed by '*'
        if (at == end) {
          return true;
        }
        if (!alnum(s[at])) {
          return false;
        }
        for (size_t i = at; i < end; i++) {
          if (!sysctlChar(s[i])) {
            return false;
          }
        }
        return true;
      }
    }
    if (at >= end || !alnum(s[at]) || !alnum(s[end - 1])) {
      return false;
    }
    for (size_t i = at; i < end; i++) {
      if (!sysctlChar(s[i])) {
        return false;
      }
    }
    if (last) {
      return true;
    }
    at = end + 1;
  }
}

}  // namespace

bool isSysctlName(const std::string& s) { return sysctlGrammar(s, false); }
bool isSysctlPattern(const std::string& s) { return sysctlGrammar(s, true); }

std::string normalizeSysctlName(const std::string& s) {
  size_t first = s.find_first_of("./");
  if (first == std::string::npos || s[first] == '.') {
    return s;
  }
  std::string out = s;
  for (char& c : out) {
    c = c == '.' ? '/' : c == '/' ? '.' : c;
  }
  return out;
}

PodHostName podHostName(const Pod& pod, const std::string& cluster_domain) {
  PodHostName out;
  out.hostname = pod.hostname.empty() ? pod.name : pod.hostname;
  if (out.hostname.size() > 63) {
    out.hostname.resize(63);
    while (!out.hostname.empty() && (out.hostname.back() == '-' || out.hostname.back() == '.')) {
      out.hostname.pop_back();
    }
  }
  if (!pod.subdomain.empty()) {
    out.domain = pod.subdomain + "." + pod.namespace_ + ".svc." + cluster_domain;
  }
  return out;
}

Result<std::string> podKernelHostname(const Pod& pod, const std::string& cluster_domain) {
  PodHostName h = podHostName(pod, cluster_domain);
  if (!pod.set_hostname_as_fqdn || h.domain.empty()) {
    return h.hostname;
  }
  // The nodename field of struct utsname holds 64 characters and its NUL.
  constexpr size_t kFqdnMaxLen = 64;
  std::string fqdn = h.hostname + "." + h.domain;
  if (fqdn.size() > kFqdnMaxLen) {
    // The whole of the kubelet's error, which its FailedCreatePodSandBox event carries.
    return makeError("failed to construct FQDN from pod hostname and cluster domain, FQDN " + fqdn +
                         " is too long (64 characters is the max, " + std::to_string(fqdn.size()) +
                         " characters requested)",
                     "", "");
  }
  return fqdn;
}

std::optional<std::string> invalidPodName(const Pod& pod) {
  if (!isDnsSubdomain(pod.name)) {
    return pod.name.empty() ? "metadata.name: Required value"
                            : invalid("metadata.name", pod.name, kSubdomainRule);
  }
  if (!isDnsLabel(pod.namespace_)) {
    return invalid("metadata.namespace", pod.namespace_, kLabelRule);
  }
  bool uid_chars = !pod.uid.empty() && pod.uid.size() <= 128 &&
                   pod.uid.find("..") == std::string::npos && pod.uid != ".";
  for (char c : pod.uid) {
    uid_chars =
        uid_chars && (alnum(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.');
  }
  if (!uid_chars) {
    return invalid("metadata.uid", pod.uid,
                   "must be 1 to 128 letters, digits, '-', '_' or '.', without \"..\"");
  }
  if (!pod.hostname.empty() && !isDnsLabel(pod.hostname)) {
    return invalid("spec.hostname", pod.hostname, kLabelRule);
  }
  if (!pod.subdomain.empty() && !isDnsLabel(pod.subdomain)) {
    return invalid("spec.subdomain", pod.subdomain, kLabelRule);
  }
  for (const char* list : {"initContainers", "containers"}) {
    const auto& cs = std::string(list) == "containers" ? pod.containers : pod.init_containers;
    for (size_t i = 0; i < cs.size(); i++) {
      if (!isDnsLabel(cs[i].name)) {
        return invalid(std::string("spec.") + list + "[" + std::to_string(i) + "].name", cs[i].name,
                       kLabelRule);
      }
    }
  }
  return std::nullopt;
}

}  // namespace kernelet::agent
