#include "agent/model/service_env.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace kernelet::agent {
namespace {

// The services the kubelet turns into variables: "kubernetes" is the only
// master service (its masterServices set).
constexpr const char* kMasterService = "kubernetes";

bool hasClusterIp(const apiclient::Service& s) {
  return !s.cluster_ip.empty() && s.cluster_ip != "None";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

// net.JoinHostPort: an IPv6 address in brackets.
std::string hostPort(const std::string& ip, int32_t port) {
  std::string host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
  return host + ":" + std::to_string(port);
}

void fromService(const apiclient::Service& s, EnvList& out) {
  if (!hasClusterIp(s) || s.ports.empty()) {
    return;  // validation gives every service with a cluster IP a port
  }
  std::string prefix = serviceVarName(s.name);
  out.emplace_back(prefix + "_SERVICE_HOST", s.cluster_ip);
  // The first port keeps the backwards-compatible name; named ports add theirs.
  std::string port_var = prefix + "_SERVICE_PORT";
  out.emplace_back(port_var, std::to_string(s.ports[0].port));
  for (const auto& p : s.ports) {
    if (!p.name.empty()) {
      out.emplace_back(port_var + "_" + serviceVarName(p.name), std::to_string(p.port));
    }
  }
  // Docker links, the first port special-cased as Docker does.
  for (size_t i = 0; i < s.ports.size(); i++) {
    const auto& p = s.ports[i];
    std::string protocol = p.protocol.empty() ? "TCP" : p.protocol;
    std::string url = lower(protocol) + "://" + hostPort(s.cluster_ip, p.port);
    if (i == 0) {
      out.emplace_back(prefix + "_PORT", url);
    }
    std::string pp = prefix + "_PORT_" + std::to_string(p.port) + "_" + upper(protocol);
    out.emplace_back(pp, url);
    out.emplace_back(pp + "_PROTO", lower(protocol));
    out.emplace_back(pp + "_PORT", std::to_string(p.port));
    out.emplace_back(pp + "_ADDR", s.cluster_ip);
  }
}

}  // namespace

std::string serviceVarName(const std::string& name) {
  std::string out = upper(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

EnvList serviceEnv(const std::vector<apiclient::Service>& services, const std::string& namespace_,
                   bool enable_service_links) {
  std::map<std::string, const apiclient::Service*> chosen;  // by name
  for (const auto& s : services) {
    if (!hasClusterIp(s)) {
      continue;
    }
    if (s.namespace_ == "default" && s.name == kMasterService) {
      chosen.try_emplace(s.name, &s);  // the pod's own "kubernetes" wins
    } else if (s.namespace_ == namespace_ && enable_service_links) {
      chosen[s.name] = &s;
    }
  }
  EnvList out;
  for (const auto& [name, s] : chosen) {
    fromService(*s, out);
  }
  return out;
}

}  // namespace kernelet::agent
