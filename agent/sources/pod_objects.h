#pragma once
// The API objects a pod refers to: ConfigMaps and Secrets (volumes, env,
// envFrom, imagePullSecrets) and service-account tokens (projected volumes). The agent's loop
// asks; the answers come from caches kept up to date off the loop, so a
// lookup never blocks: what is not known yet is "pending", and the agent is
// told when it arrives or changes (see ObjectCache for the cluster's side).

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/model/pod.h"
#include "apiclient/objects.h"
#include "sys/result.h"

namespace kernelet::agent {

struct ObjectRef {
  enum class Kind { kConfigMap, kSecret } kind = Kind::kConfigMap;
  std::string namespace_, name;
  auto operator<=>(const ObjectRef&) const = default;
  // `configmap "name"`, as the API's NotFound message names it.
  std::string quoted() const;
};

struct ObjectData {
  bool found = false;
  std::map<std::string, std::string> data;  // ConfigMap data+binaryData, Secret data, decoded
  std::string type;                         // a Secret's ("kubernetes.io/dockerconfigjson")
};

struct TokenRef {
  std::string namespace_, service_account, audience;
  int64_t expiration_seconds = 3600;
  std::string pod_name, pod_uid;  // the token is bound to the pod
  auto operator<=>(const TokenRef&) const = default;
};

class PodObjects {
 public:
  virtual ~PodObjects() = default;
  // Nothing while the object is not yet known (its watch has not synced).
  virtual std::optional<ObjectData> object(const ObjectRef& ref) = 0;
  // Nothing while the first token is being requested; an error when the API refused it.
  virtual std::optional<Result<std::string>> token(const TokenRef& ref) = 0;
};

// The cluster's Services, for the containers' service variables (ServiceCache).
class ServiceLister {
 public:
  virtual ~ServiceLister() = default;
  // Every Service of the cluster; nothing until they were listed once.
  virtual std::optional<std::vector<apiclient::Service>> services() const = 0;
};

// Everything `pod` refers to, each once.
struct PodRefs {
  std::vector<ObjectRef> objects;
  std::vector<TokenRef> tokens;
};
PodRefs podRefs(const Pod& pod);
// Whether `pod` refers to anything in `changed`.
bool refersToAny(const PodRefs& pod, const PodRefs& changed);

// What of `pod`'s references `objects` does not know yet ("configmap default/x");
// empty when the pod can be set up. Asking starts the watches and token requests.
std::vector<std::string> pendingRefs(const Pod& pod, PodObjects& objects);

// The data of a ConfigMap or Secret the pod needs, with the kubelet's errors:
// `configmap "x" not found` unless optional (then empty data). `objects` may
// be null (no API server): an error that says so.
Result<std::map<std::string, std::string>> objectData(PodObjects* objects, const ObjectRef& ref,
                                                      bool optional);

}  // namespace kernelet::agent
