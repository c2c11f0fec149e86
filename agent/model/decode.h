#pragma once
// Internal to agent/model's pod decoder (pod.cc, decode_container.cc,
// decode_dns.cc, decode_ephemeral.cc, decode_lifecycle.cc, decode_sysctls.cc,
// decode_volumes.cc): the error context and the readers they share. Not for
// use outside agent/model; the public entry point is parseManifests (pod.h).

#include <yaml-cpp/yaml.h>

#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "agent/model/pod.h"

namespace kernelet::agent::decode {

// Where we are in the file, for errors like
//   parse manifest `/etc/pods/web.yaml`: line 12: spec.containers[0].image: required
struct Ctx {
  std::string file;
  std::unexpected<Error> error(const YAML::Node& at, const std::string& field,
                               const std::string& what) const {
    return makeError("parse manifest", file,
                     "line " + std::to_string(at.Mark().line + 1) + ": " + field + ": " + what);
  }
};

template <typename T>
Result<std::optional<T>> opt(const Ctx& c, const YAML::Node& parent, const char* key,
                             const std::string& field) {
  const YAML::Node n = parent[key];
  if (!n || n.IsNull()) {
    return std::optional<T>();
  }
  try {
    if (!n.IsScalar()) {
      throw YAML::Exception(n.Mark(), "not a scalar");
    }
    return std::optional<T>(n.as<T>());
  } catch (const YAML::Exception&) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // A number too large for the field is named as such, not as a crash.
      const std::string s = n.IsScalar() ? n.Scalar() : std::string();
      size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
      if (i < s.size() && s.find_first_not_of("0123456789", i) == std::string::npos) {
        return c.error(n, field + "." + key,
                       "must be an integer between " +
                           std::to_string(std::numeric_limits<T>::min()) + " and " +
                           std::to_string(std::numeric_limits<T>::max()));
      }
    }
    return c.error(n, field + "." + key, "wrong type");
  }
}

inline Result<std::string> str(const Ctx& c, const YAML::Node& parent, const char* key,
                               const std::string& field) {
  TRY(auto v, opt<std::string>(c, parent, key, field));
  return v.value_or("");
}

// What forEachEntry says of a list that is not one, and of an entry that is
// not a map (some fields have words of their own).
struct EntryWords {
  const char* not_list = "must be a list";
  const char* not_map = "must be a mapping";
};

// The walk of a list of objects at `field`: absent or null has no entries;
// each entry, a map, goes to fn(entry, "FIELD[i]") in order, and the first
// error (fn's or the shape's) ends the walk.
template <typename Fn>
Result<void> forEachEntry(const Ctx& c, const YAML::Node& list, const std::string& field, Fn&& fn,
                          EntryWords words = {}) {
  if (!list || list.IsNull()) {
    return {};
  }
  if (!list.IsSequence()) {
    return c.error(list, field, words.not_list);
  }
  for (size_t i = 0; i < list.size(); i++) {
    const YAML::Node entry = list[i];
    const std::string at = field + "[" + std::to_string(i) + "]";
    if (!entry.IsMap()) {
      return c.error(entry, at, words.not_map);
    }
    TRY_VOID(fn(entry, at));
  }
  return {};
}

// decode_container.cc
// A list of strings at parent[key] (exec commands, args); absent: empty.
Result<std::vector<std::string>> strings(const Ctx& c, const YAML::Node& parent, const char* key,
                                         const std::string& field);
// The port of a probe's or hook's httpGet or tcpSocket `action`: a number, or
// the name of one of the container's `ports`.
Result<int> port(const Ctx& c, const YAML::Node& action, const std::string& field,
                 const std::vector<ContainerPort>& ports);
// An httpGet action of a probe or hook, into `p` (port, path, host, scheme, headers).
Result<void> httpGet(const Ctx& c, const YAML::Node& h, const std::string& field,
                     const std::vector<ContainerPort>& ports, Probe& p);
Result<SecurityContext> securityContext(const Ctx& c, const YAML::Node& n,
                                        const std::string& field);
Result<Container> container(const Ctx& c, const YAML::Node& n, const std::string& field);

// decode_lifecycle.cc: a container's lifecycle at `field` (postStart, preStop, stopSignal).
Result<ContainerLifecycle> lifecycle(const Ctx& c, const YAML::Node& n, const std::string& field,
                                     const std::vector<ContainerPort>& ports);
// Every sleep action of the pod's containers fits its grace period, as the
// API validates (spec: the pod's spec node, for the errors' lines).
Result<void> checkSleepHooks(const Ctx& c, const YAML::Node& spec, const Pod& pod);
// Every container's stopSignal is one of `os`'s (spec.os.name, which must be
// set), as the API validates.
Result<void> checkStopSignals(const Ctx& c, const YAML::Node& spec, const Pod& pod,
                              const std::string& os);

// decode_ephemeral.cc: spec.ephemeralContainers[i] at `field`.
Result<EphemeralContainer> ephemeralContainer(const Ctx& c, const YAML::Node& n,
                                              const std::string& field);

// decode_dns.cc: spec.dnsConfig (from the pod's spec node, with its
// dnsPolicy: None requires it) and spec.hostAliases (the list node).
Result<std::optional<PodDnsConfig>> dnsConfig(const Ctx& c, const YAML::Node& spec,
                                              const std::string& policy);
Result<std::vector<HostAlias>> hostAliases(const Ctx& c, const YAML::Node& list);

// decode_sysctls.cc: spec.securityContext.sysctls (the list node).
Result<std::vector<Sysctl>> sysctls(const Ctx& c, const YAML::Node& list);

// decode_volumes.cc: the pod's spec.volumes, a sequence.
Result<std::vector<Volume>> volumes(const Ctx& c, const YAML::Node& list);

}  // namespace kernelet::agent::decode
