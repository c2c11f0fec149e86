#include "netns/dns_files.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "sys/fileio.h"

namespace kernelet::netns {

namespace {

// The kubelet's limits (from glibc's resolver): 3 nameservers, 32 search
// domains of at most 253 characters (longer ones made some glibc abort),
// 2048 characters in the search line.
constexpr size_t kMaxNameservers = 3;
constexpr size_t kMaxSearches = 32;
constexpr size_t kMaxSearchLength = 253;
constexpr size_t kMaxSearchLineChars = 2048;

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    out += (out.empty() ? "" : " ") + s;
  }
  return out;
}

// The kubelet's formDNSSearchFitsLimits: first 32, then without the overlong
// ones, then whole domains off the end until the line fits.
bool fitSearches(std::vector<std::string>& searches) {
  bool exceeded = false;
  if (searches.size() > kMaxSearches) {
    searches.resize(kMaxSearches);
    exceeded = true;
  }
  auto overlong = [](const std::string& s) { return s.size() > kMaxSearchLength; };
  if (std::any_of(searches.begin(), searches.end(), overlong)) {
    std::erase_if(searches, overlong);
    exceeded = true;
  }
  size_t line = joined(searches).size();
  if (line > kMaxSearchLineChars) {
    while (!searches.empty() && line > kMaxSearchLineChars) {
      line -= std::min(line, searches.back().size() + 1);
      searches.pop_back();
    }
    exceeded = true;
  }
  return exceeded;
}

std::vector<std::string> uniqueInOrder(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& s : in) {
    if (std::find(out.begin(), out.end(), s) == out.end()) {
      out.push_back(s);
    }
  }
  return out;
}

struct Resolv {
  std::vector<std::string> nameservers, searches;
  std::vector<DnsOption> options;
};

Resolv parseResolv(const std::string& text) {
  Resolv r;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    line = line.substr(0, line.find_first_of("#;"));
    std::istringstream words(line);
    std::string key;
    if (!(words >> key)) {
      continue;
    }
    std::vector<std::string> rest;
    for (std::string w; words >> w;) {
      rest.push_back(w);
    }
    if (key == "nameserver" && !rest.empty()) {
      r.nameservers.push_back(rest[0]);
    } else if (key == "search" || key == "domain") {
      r.searches = rest;  // the last one wins, as in the resolver
    } else if (key == "options") {
      for (const auto& o : rest) {
        size_t colon = o.find(':');
        r.options.push_back(colon == std::string::npos
                                ? DnsOption{o, std::nullopt}
                                : DnsOption{o.substr(0, colon), o.substr(colon + 1)});
      }
    }
  }
  return r;
}

void mergeOptions(std::vector<DnsOption>& into, const std::vector<DnsOption>& more) {
  for (const auto& o : more) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&](const DnsOption& x) { return x.name == o.name; });
    if (it != into.end()) {
      *it = o;
    } else {
      into.push_back(o);
    }
  }
}

}  // namespace

std::string hostsFile(const HostsInput& in) {
  std::ostringstream out;
  if (in.host_network) {
    out << "# Kubernetes-managed hosts file (host network).\n" << in.node_hosts;
  } else {
    out << "# Kubernetes-managed hosts file.\n"
           "127.0.0.1\tlocalhost\n"
           "::1\tlocalhost ip6-localhost ip6-loopback\n"
           "fe00::0\tip6-localnet\n"
           "fe00::0\tip6-mcastprefix\n"
           "fe00::1\tip6-allnodes\n"
           "fe00::2\tip6-allrouters\n";
    if (!in.pod_ip.empty()) {
      out << in.pod_ip << "\t";
      if (!in.subdomain.empty()) {
        out << in.hostname << "." << in.subdomain << "." << in.pod_namespace << ".svc."
            << in.cluster_domain << "\t";
      }
      out << in.hostname << "\n";
    }
  }
  if (!in.host_aliases.empty()) {
    out << "\n# Entries added by HostAliases.\n";
    for (const auto& a : in.host_aliases) {
      out << a.ip;
      for (const auto& h : a.hostnames) {
        out << "\t" << h;
      }
      out << "\n";
    }
  }
  return out.str();
}

Result<std::string> resolvConf(const DnsInput& in, std::vector<std::string>* warnings) {
  enum { kCluster, kHost, kNone } type;
  if (in.policy == "None") {
    type = kNone;
  } else if (in.policy == "Default") {
    type = kHost;
  } else if (in.policy == "ClusterFirstWithHostNet") {
    type = kCluster;
  } else if (in.policy == "ClusterFirst" || in.policy.empty()) {
    type = in.host_network ? kHost : kCluster;
  } else {
    return makeError("pod DNS", "spec.dnsPolicy", "unknown policy \"" + in.policy + "\"");
  }
  // Without --cluster-dns the kubelet falls back to the node's settings.
  if (type == kCluster && in.cluster_dns.empty()) {
    type = kHost;
  }
  Resolv r;
  if (type == kHost) {
    r = parseResolv(in.node_resolv_conf);
  } else if (type == kCluster) {
    r.nameservers = in.cluster_dns;
    r.searches = {in.pod_namespace + ".svc." + in.cluster_domain, "svc." + in.cluster_domain,
                  in.cluster_domain};
    for (const auto& s : parseResolv(in.node_resolv_conf).searches) {
      r.searches.push_back(s);
    }
    r.options = {{"ndots", "5"}};
  } else if (in.nameservers.empty()) {
    return makeError("pod DNS", "spec.dnsConfig.nameservers",
                     "dnsPolicy None needs at least one nameserver");
  }
  r.nameservers.insert(r.nameservers.end(), in.nameservers.begin(), in.nameservers.end());
  r.nameservers = uniqueInOrder(r.nameservers);
  r.searches.insert(r.searches.end(), in.searches.begin(), in.searches.end());
  r.searches = uniqueInOrder(r.searches);
  mergeOptions(r.options, in.options);
  if (r.nameservers.size() > kMaxNameservers) {
    r.nameservers.resize(kMaxNameservers);
    if (warnings != nullptr) {
      warnings->push_back(
          "Nameserver limits were exceeded, some nameservers have been omitted, the applied "
          "nameserver line is: " +
          joined(r.nameservers));
    }
  }
  if (fitSearches(r.searches) && warnings != nullptr) {
    warnings->push_back(
        "Search Line limits were exceeded, some search paths have been omitted, the applied "
        "search line is: " +
        joined(r.searches));
  }

  std::ostringstream out;
  for (const auto& n : r.nameservers) {
    out << "nameserver " << n << "\n";
  }
  if (!r.searches.empty()) {
    out << "search";
    for (const auto& s : r.searches) {
      out << " " << s;
    }
    out << "\n";
  }
  if (!r.options.empty()) {
    out << "options";
    for (const auto& o : r.options) {
      // An empty value is no value, as the kubelet writes options.
      out << " " << o.name << (o.value && !o.value->empty() ? ":" + *o.value : "");
    }
    out << "\n";
  }
  return out.str();
}

Result<std::string> writePodFile(const std::string& dir, const std::string& name,
                                 const std::string& content) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return makeError("create directory", dir, ec.message());
  }
  std::string path = dir + "/" + name;
  TRY_VOID(writeFileAtomic(path, content, 0644));
  return path;
}

}  // namespace kernelet::netns
