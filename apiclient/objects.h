#pragma once
// The parts of API objects the agent reads (metadata, ConfigMap,
// Secret, Service), objects it writes (Lease, Event), and the API's time formats.
// Objects read are kept as JSON text: a write-back edits fields in that text
// (withString, withInt), so fields this code does not know survive.

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sys/result.h"

namespace kernelet::apiclient {

// metav1.Time: RFC 3339, seconds, UTC ("2026-01-01T10:00:00Z").
std::string formatTime(const timespec& t);
// metav1.MicroTime: exactly six fractional digits ("2026-01-01T10:00:00.123456Z").
std::string formatMicroTime(const timespec& t);
// RFC 3339 with or without a fraction, "Z" or a "+hh:mm" offset.
Result<timespec> parseTime(const std::string& text);

struct OwnerReference {
  std::string api_version, kind, name, uid;
  bool controller = false;
};

struct ObjectMeta {
  std::string name, namespace_, uid, resource_version, creation_timestamp;
  std::string deletion_timestamp;  // empty: not being deleted
  std::optional<int64_t> deletion_grace_period_seconds;
  std::map<std::string, std::string> labels, annotations;
  std::vector<OwnerReference> owner_references;
};

// Errors name `where` and the field.
Result<ObjectMeta> decodeMeta(const std::string& object_json, const std::string& where);

// A new node Lease in kube-node-lease, owned by the Node (K8S-PROTOCOL.md).
std::string encodeNodeLease(const std::string& node, const std::string& node_uid,
                            int64_t duration_seconds, const std::string& renew_time);

// ConfigMap data and binaryData (decoded), Secret data (decoded) and stringData.
Result<std::map<std::string, std::string>> decodeConfigMapData(const std::string& json,
                                                               const std::string& where);
Result<std::map<std::string, std::string>> decodeSecretData(const std::string& json,
                                                            const std::string& where);
// A Secret's type ("Opaque" when not set, as the API defaults it).
Result<std::string> decodeSecretType(const std::string& json, const std::string& where);

// What the kubelet reads of a v1.Service for the containers' environment
// (pkg/kubelet/envvars): its name, clusterIP ("None" or "" for a headless
// one) and ports, the protocol defaulted to TCP as the API server does.
struct ServicePort {
  std::string name, protocol = "TCP";
  int32_t port = 0;
};
struct Service {
  std::string namespace_, name, cluster_ip;
  std::vector<ServicePort> ports;
};
Result<Service> decodeService(const std::string& json, const std::string& where);

struct EventSpec {
  std::string namespace_, name;  // the Event's own (name: <object>.<unique suffix>)
  std::string involved_kind, involved_name, involved_namespace, involved_uid, involved_api_version,
      involved_field_path;
  std::string reason, message, type = "Normal";  // Normal or Warning
  std::string component = "kubelet", host;
  int32_t count = 1;
  std::string first_timestamp, last_timestamp;  // formatTime
};
std::string encodeEvent(const EventSpec& e);

// `json` with the string (or integer) at `path` set, every other field as it was.
Result<std::string> withString(const std::string& json, const std::vector<std::string>& path,
                               const std::string& value);
Result<std::string> withInt(const std::string& json, const std::vector<std::string>& path,
                            int64_t value);

}  // namespace kernelet::apiclient
