#include "apiclient/objects.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>

#include "apiclient/base64.h"
#include "apiclient/json_fields.h"

namespace kernelet::apiclient {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Result<rapidjson::Document> parse(const std::string& json, const std::string& where) {
  TRY(rapidjson::Document d, parseApiJson(json, where));
  if (!d.IsObject()) {
    return makeError("decode", where, "not a JSON object");
  }
  return d;
}

Result<std::map<std::string, std::string>> stringMap(const rapidjson::Value& parent,
                                                     const char* key, const std::string& where) {
  std::map<std::string, std::string> out;
  auto it = parent.FindMember(key);
  if (it == parent.MemberEnd() || it->value.IsNull()) {
    return out;
  }
  if (!it->value.IsObject()) {
    return makeError("decode", where, std::string(key) + ": must be a map of strings");
  }
  for (const auto& kv : it->value.GetObject()) {
    if (!kv.value.IsString()) {
      return makeError("decode", where,
                       std::string(key) + "." + kv.name.GetString() + ": must be a string");
    }
    out[kv.name.GetString()] = kv.value.GetString();
  }
  return out;
}

Result<rapidjson::Value*> walk(rapidjson::Document& d, const std::vector<std::string>& path,
                               const std::string& where) {
  rapidjson::Value* cur = &d;
  for (size_t i = 0; i + 1 < path.size(); i++) {
    auto it = cur->FindMember(path[i].c_str());
    if (it == cur->MemberEnd()) {
      cur->AddMember(rapidjson::Value(path[i].c_str(), d.GetAllocator()),
                     rapidjson::Value(rapidjson::kObjectType), d.GetAllocator());
      it = cur->FindMember(path[i].c_str());
    }
    if (!it->value.IsObject()) {
      return makeError("set field", where, path[i] + ": not an object");
    }
    cur = &it->value;
  }
  return cur;
}

}  // namespace

std::string formatTime(const timespec& t) {
  tm utc{};
  ::gmtime_r(&t.tv_sec, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

std::string formatMicroTime(const timespec& t) {
  tm utc{};
  ::gmtime_r(&t.tv_sec, &utc);
  char buf[48];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%06ldZ", t.tv_nsec / 1000);
  return buf;
}

Result<timespec> parseTime(const std::string& text) {
  tm t{};
  const char* rest = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &t);
  if (rest == nullptr) {
    return makeError("parse time", text, "not RFC 3339");
  }
  timespec out{::timegm(&t), 0};
  if (*rest == '.') {
    long digits = 0, scale = 1000000000;
    for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
      if (scale > 1) {
        scale /= 10;
        digits += (*rest - '0') * scale;
      }
    }
    out.tv_nsec = digits;
  }
  if (*rest == 'Z' && rest[1] == '\0') {
    return out;
  }
  int hh = 0, mm = 0;
  char sign = *rest;
  if ((sign == '+' || sign == '-') && std::sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2 &&
      std::string(rest).size() == 6) {
    long offset = (hh * 3600L + mm * 60L) * (sign == '+' ? 1 : -1);
    out.tv_sec -= offset;
    return out;
  }
  return makeError("parse time", text, "needs Z or a +hh:mm offset");
}

Result<ObjectMeta> decodeMeta(const std::string& object_json, const std::string& where) {
  TRY(rapidjson::Document d, parse(object_json, where));
  auto it = d.FindMember("metadata");
  if (it == d.MemberEnd() || !it->value.IsObject()) {
    return makeError("decode", where, "metadata: required");
  }
  const auto& m = it->value;
  ObjectMeta meta;
  meta.name = stringField(m, "name");
  meta.namespace_ = stringField(m, "namespace");
  meta.uid = stringField(m, "uid");
  meta.resource_version = stringField(m, "resourceVersion");
  meta.creation_timestamp = stringField(m, "creationTimestamp");
  meta.deletion_timestamp = stringField(m, "deletionTimestamp");
  if (auto g = m.FindMember("deletionGracePeriodSeconds"); g != m.MemberEnd()) {
    if (!g->value.IsInt64()) {
      return makeError("decode", where, "metadata.deletionGracePeriodSeconds: must be an integer");
    }
    meta.deletion_grace_period_seconds = g->value.GetInt64();
  }
  TRY(meta.labels, stringMap(m, "labels", where + ": metadata"));
  TRY(meta.annotations, stringMap(m, "annotations", where + ": metadata"));
  if (auto o = m.FindMember("ownerReferences"); o != m.MemberEnd() && o->value.IsArray()) {
    for (const auto& r : o->value.GetArray()) {
      OwnerReference ref{stringField(r, "apiVersion"), stringField(r, "kind"),
                         stringField(r, "name"), stringField(r, "uid")};
      ref.controller = r.IsObject() && r.HasMember("controller") && r["controller"].IsBool() &&
                       r["controller"].GetBool();
      meta.owner_references.push_back(ref);
    }
  }
  return meta;
}

std::string encodeNodeLease(const std::string& node, const std::string& node_uid,
                            int64_t duration_seconds, const std::string& renew_time) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  put(w, "apiVersion", "coordination.k8s.io/v1");
  put(w, "kind", "Lease");
  w.Key("metadata");
  w.StartObject();
  put(w, "name", node);
  put(w, "namespace", "kube-node-lease");
  w.Key("ownerReferences");
  w.StartArray();
  w.StartObject();
  put(w, "apiVersion", "v1");
  put(w, "kind", "Node");
  put(w, "name", node);
  put(w, "uid", node_uid);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.Key("spec");
  w.StartObject();
  put(w, "holderIdentity", node);
  w.Key("leaseDurationSeconds");
  w.Int64(duration_seconds);
  put(w, "renewTime", renew_time);
  w.EndObject();
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

Result<std::map<std::string, std::string>> decodeConfigMapData(const std::string& json,
                                                               const std::string& where) {
  TRY(rapidjson::Document d, parse(json, where));
  TRY(auto data, stringMap(d, "data", where));
  TRY(auto binary, stringMap(d, "binaryData", where));
  for (const auto& [k, v] : binary) {
    auto raw = base64Decode(v);
    if (!raw) {
      return makeError("decode", where, "binaryData." + k + ": not base64");
    }
    data[k] = *raw;
  }
  return data;
}

Result<std::map<std::string, std::string>> decodeSecretData(const std::string& json,
                                                            const std::string& where) {
  TRY(rapidjson::Document d, parse(json, where));
  TRY(auto encoded, stringMap(d, "data", where));
  TRY(auto plain, stringMap(d, "stringData", where));
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : encoded) {
    auto raw = base64Decode(v);
    if (!raw) {
      return makeError("decode", where, "data." + k + ": not base64");
    }
    out[k] = *raw;
  }
  for (const auto& [k, v] : plain) {
    out[k] = v;  // stringData wins, as the API server merges it
  }
  return out;
}

Result<std::string> decodeSecretType(const std::string& json, const std::string& where) {
  TRY(rapidjson::Document d, parse(json, where));
  auto it = d.FindMember("type");
  if (it == d.MemberEnd() || it->value.IsNull()) {
    return std::string("Opaque");
  }
  if (!it->value.IsString()) {
    return makeError("decode", where, "type: must be a string");
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

Result<Service> decodeService(const std::string& json, const std::string& where) {
  TRY(rapidjson::Document d, parse(json, where));
  TRY(ObjectMeta meta, decodeMeta(json, where));
  Service s{.namespace_ = meta.namespace_, .name = meta.name};
  auto spec = d.FindMember("spec");
  if (spec == d.MemberEnd() || spec->value.IsNull()) {
    return s;
  }
  if (!spec->value.IsObject()) {
    return makeError("decode", where, "spec: must be an object");
  }
  const rapidjson::Value& sp = spec->value;
  if (sp.HasMember("clusterIP") && !sp["clusterIP"].IsString() && !sp["clusterIP"].IsNull()) {
    return makeError("decode", where, "spec.clusterIP: must be a string");
  }
  s.cluster_ip = stringField(sp, "clusterIP");
  auto ports = sp.FindMember("ports");
  if (ports == sp.MemberEnd() || ports->value.IsNull()) {
    return s;
  }
  if (!ports->value.IsArray()) {
    return makeError("decode", where, "spec.ports: must be a list");
  }
  for (const auto& p : ports->value.GetArray()) {
    std::string at = "spec.ports[" + std::to_string(s.ports.size()) + "]";
    if (!p.IsObject()) {
      return makeError("decode", where, at + ": must be an object");
    }
    if (!p.HasMember("port") || !p["port"].IsInt() || p["port"].GetInt() < 1 ||
        p["port"].GetInt() > 65535) {
      return makeError("decode", where, at + ".port: must be a number from 1 to 65535");
    }
    ServicePort port{.name = stringField(p, "name"), .port = p["port"].GetInt()};
    if (std::string proto = stringField(p, "protocol"); !proto.empty()) {
      port.protocol = proto;
    }
    s.ports.push_back(std::move(port));
  }
  return s;
}

std::string encodeEvent(const EventSpec& e) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  put(w, "apiVersion", "v1");
  put(w, "kind", "Event");
  w.Key("metadata");
  w.StartObject();
  put(w, "name", e.name);
  put(w, "namespace", e.namespace_);
  w.EndObject();
  w.Key("involvedObject");
  w.StartObject();
  put(w, "kind", e.involved_kind);
  put(w, "name", e.involved_name);
  if (!e.involved_namespace.empty()) {
    put(w, "namespace", e.involved_namespace);
  }
  put(w, "uid", e.involved_uid);
  put(w, "apiVersion", e.involved_api_version);
  if (!e.involved_field_path.empty()) {
    put(w, "fieldPath", e.involved_field_path);
  }
  w.EndObject();
  put(w, "reason", e.reason);
  put(w, "message", e.message);
  put(w, "type", e.type);
  w.Key("source");
  w.StartObject();
  put(w, "component", e.component);
  put(w, "host", e.host);
  w.EndObject();
  w.Key("count");
  w.Int(e.count);
  put(w, "firstTimestamp", e.first_timestamp);
  put(w, "lastTimestamp", e.last_timestamp);
  put(w, "reportingComponent", e.component);
  put(w, "reportingInstance", e.host);
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

Result<std::string> withString(const std::string& json, const std::vector<std::string>& path,
                               const std::string& value) {
  TRY(rapidjson::Document d, parse(json, "object"));
  TRY(rapidjson::Value * parent, walk(d, path, "object"));
  rapidjson::Value v(value.c_str(), static_cast<rapidjson::SizeType>(value.size()),
                     d.GetAllocator());
  if (auto it = parent->FindMember(path.back().c_str()); it != parent->MemberEnd()) {
    it->value = v;
  } else {
    parent->AddMember(rapidjson::Value(path.back().c_str(), d.GetAllocator()), v, d.GetAllocator());
  }
  return serialize(d);
}

Result<std::string> withInt(const std::string& json, const std::vector<std::string>& path,
                            int64_t value) {
  TRY(rapidjson::Document d, parse(json, "object"));
  TRY(rapidjson::Value * parent, walk(d, path, "object"));
  if (auto it = parent->FindMember(path.back().c_str()); it != parent->MemberEnd()) {
    it->value.SetInt64(value);
  } else {
    parent->AddMember(rapidjson::Value(path.back().c_str(), d.GetAllocator()),
                      rapidjson::Value(value), d.GetAllocator());
  }
  return serialize(d);
}

}  // namespace kernelet::apiclient
