// spec.dnsConfig and spec.hostAliases, checked as the API server validates
// them (pkg/apis/core/validation: validatePodDNSConfig, ValidateHostAliases),
// since static pods never pass through it and these values end up in the
// files every container of the pod reads.

#include <arpa/inet.h>

#include "agent/model/decode.h"
#include "agent/model/pod_names.h"

namespace kernelet::agent::decode {

namespace {

// The API's limits, from glibc's resolver.
constexpr size_t kMaxNameservers = 3, kMaxSearchPaths = 32, kMaxSearchListChars = 2048;

bool isIp(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

std::string invalid(const std::string& value, const std::string& why) {
  return "Invalid value: \"" + value + "\": " + why;
}

const char* kIpRule = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const char* kSubdomainRule =
    "must be a DNS subdomain (at most 253 characters: DNS labels joined by '.')";

Result<std::vector<PodDnsOption>> options(const Ctx& c, const YAML::Node& n,
                                          const std::string& field) {
  std::vector<PodDnsOption> out;
  auto entry = [&](const YAML::Node& o, const std::string& f) -> Result<void> {
    PodDnsOption option;
    TRY(option.name, str(c, o, "name", f));
    TRY(option.value, opt<std::string>(c, o, "value", f));
    if (option.name.empty()) {
      return c.error(o, f, "Required value: must not be empty");
    }
    out.push_back(std::move(option));
    return {};
  };
  TRY_VOID(forEachEntry(c, n, field, entry));
  return out;
}

}  // namespace

Result<std::optional<PodDnsConfig>> dnsConfig(const Ctx& c, const YAML::Node& spec,
                                              const std::string& policy) {
  const YAML::Node n = spec["dnsConfig"];
  const std::string f = "spec.dnsConfig";
  if (!n || n.IsNull()) {
    if (policy == "None") {
      return c.error(spec["dnsPolicy"], f,
                     "Required value: must provide `dnsConfig` when `dnsPolicy` is None");
    }
    return std::nullopt;
  }
  if (!n.IsMap()) {
    return c.error(n, f, "must be a mapping");
  }
  PodDnsConfig d;
  TRY(d.nameservers, strings(c, n, "nameservers", f));
  TRY(d.searches, strings(c, n, "searches", f));
  TRY(d.options, options(c, n["options"], f + ".options"));
  if (policy == "None" && d.nameservers.empty()) {
    return c.error(n, f + ".nameservers",
                   "Required value: must provide at least one DNS nameserver when `dnsPolicy` is "
                   "None");
  }
  if (d.nameservers.size() > kMaxNameservers) {
    return c.error(n["nameservers"], f + ".nameservers",
                   "Invalid value: must not have more than 3 nameservers");
  }
  for (size_t i = 0; i < d.nameservers.size(); i++) {
    if (!isIp(d.nameservers[i])) {
      return c.error(n["nameservers"][i], f + ".nameservers[" + std::to_string(i) + "]",
                     invalid(d.nameservers[i], kIpRule));
    }
  }
  if (d.searches.size() > kMaxSearchPaths) {
    return c.error(n["searches"], f + ".searches",
                   "Invalid value: must not have more than 32 search paths");
  }
  size_t chars = d.searches.empty() ? 0 : d.searches.size() - 1;  // the spaces between
  for (size_t i = 0; i < d.searches.size(); i++) {
    chars += d.searches[i].size();
    std::string s = d.searches[i];
    if (s.ends_with('.')) {
      s.pop_back();  // a trailing dot is fine
    }
    if (!isDnsSubdomain(s)) {
      return c.error(n["searches"][i], f + ".searches[" + std::to_string(i) + "]",
                     invalid(d.searches[i], kSubdomainRule));
    }
  }
  if (chars > kMaxSearchListChars) {
    return c.error(n["searches"], f + ".searches",
                   "Invalid value: must not have more than 2048 characters (including spaces) "
                   "in the search list");
  }
  return d;
}

Result<std::vector<HostAlias>> hostAliases(const Ctx& c, const YAML::Node& list) {
  std::vector<HostAlias> out;
  auto entry = [&](const YAML::Node& a, const std::string& at) -> Result<void> {
    HostAlias h;
    TRY(h.ip, str(c, a, "ip", at));
    if (!isIp(h.ip)) {
      return c.error(a, at + ".ip", invalid(h.ip, kIpRule));
    }
    TRY(h.hostnames, strings(c, a, "hostnames", at));
    for (size_t j = 0; j < h.hostnames.size(); j++) {
      if (!isDnsSubdomain(h.hostnames[j])) {
        return c.error(a["hostnames"][j], at + ".hostnames[" + std::to_string(j) + "]",
                       invalid(h.hostnames[j], kSubdomainRule));
      }
    }
    out.push_back(std::move(h));
    return {};
  };
  TRY_VOID(forEachEntry(c, list, "spec.hostAliases", entry));
  return out;
}

}  // namespace kernelet::agent::decode
