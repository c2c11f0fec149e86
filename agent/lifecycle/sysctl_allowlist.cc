#include "agent/lifecycle/sysctl_allowlist.h"

#include <sys/utsname.h>

#include <array>
#include <charconv>

#include "agent/model/pod_names.h"

namespace kernelet::agent {
namespace {

// Allowed by every kubelet release so far, whatever the kernel (1.35's
// legacySafeSysctls): pods that set them keep running.
constexpr std::array<std::string_view, 9> kLegacySafe = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
};

// Safe only from the kernel version that made them per network namespace.
struct Gated {
  std::string_view name;
  int major, minor;
};
constexpr std::array<Gated, 3> kNewer = {{
    {"net.ipv4.ip_local_reserved_ports", 3, 16},
    {"net.ipv4.tcp_rmem", 4, 15},
    {"net.ipv4.tcp_wmem", 4, 15},
}};

// "6.1.0-18-amd64" -> {6, 1}; nullopt when it does not start with N.N.
std::optional<std::pair<int, int>> kernelVersion(std::string_view release) {
  int major = 0, minor = 0;
  const char* end = release.data() + release.size();
  auto a = std::from_chars(release.data(), end, major);
  if (a.ec != std::errc() || a.ptr == end || *a.ptr != '.') {
    return std::nullopt;
  }
  auto b = std::from_chars(a.ptr + 1, end, minor);
  if (b.ec != std::errc()) {
    return std::nullopt;
  }
  return std::pair{major, minor};
}

// The kubelet's namespaces of sysctls (component-helpers' namespace.go).
constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kPrefixNamespaces = {{
    {"kernel.shm", "ipc"},
    {"kernel.msg", "ipc"},
    {"fs.mqueue.", "ipc"},
    {"net.", "net"},
}};

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

std::vector<std::string> safeSysctls(std::string_view kernel_release) {
  std::vector<std::string> out(kLegacySafe.begin(), kLegacySafe.end());
  auto version = kernelVersion(kernel_release);
  if (!version) {
    return out;
  }
  for (const Gated& g : kNewer) {
    if (*version >= std::pair{g.major, g.minor}) {
      out.emplace_back(g.name);
    }
  }
  return out;
}

std::vector<std::string> safeSysctls() {
  utsname u{};
  return safeSysctls(::uname(&u) == 0 ? u.release : "");
}

std::string sysctlNamespace(const std::string& name) {
  if (name == "kernel.sem") {
    return "ipc";
  }
  for (const auto& [prefix, ns] : kPrefixNamespaces) {
    if (name.starts_with(prefix)) {
      return std::string(ns);
    }
  }
  return "";
}

Result<SysctlAllowlist> SysctlAllowlist::create(const std::vector<std::string>& patterns) {
  SysctlAllowlist w;
  for (const std::string& p : patterns) {
    if (!isSysctlPattern(p)) {
      return makeError(
          "allowed unsafe sysctls", p,
          "sysctl " + quoted(p) +
              " must have at most 253 characters and match regex "
              "([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]");
    }
    std::string s = normalizeSysctlName(p);
    if (s.ends_with('*')) {
      std::string prefix = s.substr(0, s.size() - 1);
      std::string ns = sysctlNamespace(prefix);
      if (ns.empty()) {
        return makeError("allowed unsafe sysctls", p,
                         "the sysctls " + quoted(s) + " are not known to be namespaced");
      }
      w.prefixes_[prefix] = ns;
    } else {
      std::string ns = sysctlNamespace(s);
      if (ns.empty()) {
        return makeError("allowed unsafe sysctls", p,
                         "the sysctl " + quoted(s) + " are not known to be namespaced");
      }
      w.sysctls_[s] = ns;
    }
  }
  return w;
}

Result<SysctlAllowlist> SysctlAllowlist::forNode(const std::vector<std::string>& unsafe) {
  std::vector<std::string> all = safeSysctls();
  all.insert(all.end(), unsafe.begin(), unsafe.end());
  return create(all);
}

std::optional<std::string> SysctlAllowlist::check(const std::string& name, bool host_net,
                                                  bool host_ipc) const {
  std::string s = normalizeSysctlName(name);
  auto shared = [&](const std::string& ns) -> std::optional<std::string> {
    if ((ns == "ipc" && host_ipc) || (ns == "net" && host_net)) {
      return quoted(s) + " not allowed with host " + ns + " enabled";
    }
    return std::nullopt;
  };
  if (auto it = sysctls_.find(s); it != sysctls_.end()) {
    return shared(it->second);
  }
  for (const auto& [prefix, ns] : prefixes_) {
    if (s.starts_with(prefix)) {
      return shared(ns);
    }
  }
  return quoted(s) + " not allowlisted";
}

}  // namespace kernelet::agent
