#include "agent/model/pod_names.h"

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
