#include "agent/status/pod_status.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>

#include "apiclient/json_fields.h"
#include "sys/json.h"

namespace kernelet::agent {
namespace {

using Kind = ContainerState::Kind;

const ContainerStatus* find(const std::vector<ContainerStatus>& list, const std::string& name) {
  for (const auto& s : list) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

bool sidecar(const Container& c) { return c.restart_policy == "Always"; }

std::string joinNames(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); i++) {
    out += (i > 0 ? " " : "") + names[i];
  }
  return out + "]";
}

}  // namespace

std::string podPhase(const Pod& pod, const std::vector<ContainerStatus>& init,
                     const std::vector<ContainerStatus>& regular) {
  int pending_init = 0, pending_sidecars = 0, failed_init = 0;
  int unknown = 0, running = 0, waiting = 0, stopped = 0, succeeded = 0;
  for (const auto& c : pod.init_containers) {
    const ContainerStatus* s = find(init, c.name);
    Kind k = s != nullptr ? s->state.kind : Kind::kNone;
    bool ran_before = s != nullptr && s->last_state.kind == Kind::kTerminated;
    if (sidecar(c)) {
      if (k == Kind::kNone && s == nullptr) {
        unknown++;
      } else if (k == Kind::kRunning) {
        pending_sidecars += s->started.value_or(false) ? 0 : 1;
        running++;
      } else if (k == Kind::kWaiting && !ran_before) {
        pending_sidecars++;
      } else if (k == Kind::kNone) {
        pending_sidecars++;
      }
      continue;
    }
    if (k == Kind::kTerminated) {
      failed_init += s->state.exit_code != 0 ? 1 : 0;
    } else if (k == Kind::kWaiting && ran_before) {
      failed_init += s->last_state.exit_code != 0 ? 1 : 0;
    } else {
      pending_init++;
    }
  }
  for (const auto& c : pod.containers) {
    const ContainerStatus* s = find(regular, c.name);
    Kind k = s != nullptr ? s->state.kind : Kind::kNone;
    if (k == Kind::kRunning) {
      running++;
    } else if (k == Kind::kTerminated) {
      stopped++;
      succeeded += s->state.exit_code == 0 ? 1 : 0;
    } else if (k == Kind::kWaiting) {
      (s->last_state.kind == Kind::kTerminated ? stopped : waiting)++;
    } else {
      unknown++;
    }
  }
  if (failed_init > 0 && pod.restart_policy == "Never") {
    return "Failed";
  }
  if (pending_init > 0 || (pending_sidecars > 0 && running + stopped + waiting == 0) ||
      waiting > 0) {
    return "Pending";
  }
  if (running > 0 && unknown == 0) {
    return "Running";
  }
  if (running == 0 && stopped > 0 && unknown == 0) {
    if (pod.restart_policy == "Always") {
      return "Running";  // every container is on its way back
    }
    if (stopped == succeeded) {
      return "Succeeded";
    }
    return pod.restart_policy == "Never" ? "Failed" : "Running";
  }
  return "Pending";
}

void computeConditions(const Pod& pod, PodStatus& status, bool sandbox_ready,
                       const PodStatus* previous, const std::string& now) {
  status.phase = podPhase(pod, status.init_container_statuses, status.container_statuses);
  std::vector<std::string> incomplete, unready;
  for (const auto& c : pod.init_containers) {
    const ContainerStatus* s = find(status.init_container_statuses, c.name);
    bool done = s != nullptr &&
                (sidecar(c) ? s->started.value_or(false)
                            : s->state.kind == Kind::kTerminated && s->state.exit_code == 0);
    if (!done) {
      incomplete.push_back(c.name);
    }
    if (sidecar(c) && (s == nullptr || !s->ready)) {
      unready.push_back(c.name);
    }
  }
  for (const auto& c : pod.containers) {
    const ContainerStatus* s = find(status.container_statuses, c.name);
    if (s == nullptr || !s->ready) {
      unready.push_back(c.name);
    }
  }
  // A pod whose init containers all ran is initialized for good, even once it ended.
  if (status.phase == "Succeeded" || status.phase == "Failed") {
    bool ran = true;
    for (const auto& c : pod.init_containers) {
      const ContainerStatus* s = find(status.init_container_statuses, c.name);
      ran = ran && s != nullptr && s->state.kind == Kind::kTerminated;
    }
    if (ran) {
      incomplete.clear();
    }
  }
  auto make = [&](const std::string& type, bool ok, const std::string& reason,
                  const std::string& message) {
    PodCondition c{type, ok ? "True" : "False", ok ? "" : reason, ok ? "" : message, now};
    if (previous != nullptr) {
      for (const auto& p : previous->conditions) {
        if (p.type == type && p.status == c.status) {
          c.last_transition_time = p.last_transition_time;
        }
      }
    }
    return c;
  };
  std::string ready_reason = status.phase == "Succeeded" ? "PodCompleted" : "ContainersNotReady";
  std::string ready_message =
      status.phase == "Succeeded" ? "" : "containers with unready status: " + joinNames(unready);
  PodCondition ready = make("Ready", unready.empty(), ready_reason, ready_message);
  if (unready.empty()) {
    // With the containers ready, the readiness gates' conditions (set by
    // other controllers) decide, in the kubelet's words
    // (pkg/kubelet/status/generate.go GeneratePodReadyCondition).
    std::string gates;
    for (const auto& type : pod.readiness_gates) {
      auto c = pod.gate_conditions.find(type);
      std::string why;
      if (c == pod.gate_conditions.end()) {
        why = "corresponding condition of pod readiness gate \"" + type + "\" does not exist.";
      } else if (c->second != "True") {
        why = "the status of pod readiness gate \"" + type + "\" is not \"True\", but " + c->second;
      }
      if (!why.empty()) {
        gates += (gates.empty() ? "" : ", ") + why;
      }
    }
    if (!gates.empty()) {
      ready = make("Ready", false, "ReadinessGatesNotReady", gates);
    }
  }
  status.conditions = {
      make("PodReadyToStartContainers", sandbox_ready, "", ""),
      make("Initialized", incomplete.empty(), "ContainersNotInitialized",
           "containers with incomplete status: " + joinNames(incomplete)),
      ready,
      make("ContainersReady", unready.empty(), ready_reason, ready_message),
      make("PodScheduled", true, "", ""),
  };
}

namespace {

using Writer = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

// Every string field of a status is omitempty.
using apiclient::putIfSet;

void writeState(Writer& w, const ContainerState& s) {
  w.StartObject();
  switch (s.kind) {
    case Kind::kNone:
      break;
    case Kind::kWaiting:
      w.Key("waiting");
      w.StartObject();
      putIfSet(w, "reason", s.reason);
      putIfSet(w, "message", s.message);
      w.EndObject();
      break;
    case Kind::kRunning:
      w.Key("running");
      w.StartObject();
      putIfSet(w, "startedAt", s.started_at);
      w.EndObject();
      break;
    case Kind::kTerminated:
      w.Key("terminated");
      w.StartObject();
      w.Key("exitCode");
      w.Int(s.exit_code);
      if (s.signal != 0) {
        w.Key("signal");
        w.Int(s.signal);
      }
      putIfSet(w, "reason", s.reason);
      putIfSet(w, "message", s.message);
      putIfSet(w, "startedAt", s.started_at);
      putIfSet(w, "finishedAt", s.finished_at);
      putIfSet(w, "containerID", s.container_id);
      w.EndObject();
      break;
  }
  w.EndObject();
}

// user.linux and volumeMounts, as the kubelet's convertToAPIContainerStatuses
// writes them (readOnly and recursiveReadOnly only when set).
void writeUserAndMounts(Writer& w, const ContainerStatus& c) {
  if (c.user) {
    w.Key("user");
    w.StartObject();
    w.Key("linux");
    w.StartObject();
    w.Key("uid");
    w.Int64(c.user->uid);
    w.Key("gid");
    w.Int64(c.user->gid);
    w.Key("supplementalGroups");
    w.StartArray();
    for (int64_t g : c.user->supplemental_groups) {
      w.Int64(g);
    }
    w.EndArray();
    w.EndObject();
    w.EndObject();
  }
  if (c.volume_mounts.empty()) {
    return;
  }
  w.Key("volumeMounts");
  w.StartArray();
  for (const VolumeMountStatus& m : c.volume_mounts) {
    w.StartObject();
    putIfSet(w, "name", m.name);
    putIfSet(w, "mountPath", m.mount_path);
    if (m.read_only) {
      w.Key("readOnly");
      w.Bool(true);
    }
    putIfSet(w, "recursiveReadOnly", m.recursive_read_only);
    w.EndObject();
  }
  w.EndArray();
}

void writeContainers(Writer& w, const char* key, const std::vector<ContainerStatus>& list) {
  if (list.empty()) {
    return;
  }
  w.Key(key);
  w.StartArray();
  for (const auto& c : list) {
    w.StartObject();
    putIfSet(w, "name", c.name);
    w.Key("state");
    writeState(w, c.state);
    w.Key("lastState");
    writeState(w, c.last_state);
    w.Key("ready");
    w.Bool(c.ready);
    w.Key("restartCount");
    w.Int(c.restart_count);
    putIfSet(w, "image", c.image);
    w.Key("imageID");  // required by the schema, empty until the image is known
    w.String(c.image_id.c_str());
    putIfSet(w, "containerID", c.container_id);
    if (c.started) {
      w.Key("started");
      w.Bool(*c.started);
    }
    putIfSet(w, "stopSignal", c.stop_signal);
    writeUserAndMounts(w, c);
    auto list = [&w](const char* name, const ResourceList& l) {
      w.Key(name);
      w.StartObject();
      for (const auto& [resource, q] : l) {
        w.Key(resource.c_str());
        w.String(q.str().c_str());
      }
      w.EndObject();
    };
    if (c.allocated_resources) {
      list("allocatedResources", *c.allocated_resources);
    }
    if (c.resources) {
      w.Key("resources");
      w.StartObject();
      if (!c.resources->limits.empty()) {
        list("limits", c.resources->limits);
      }
      if (!c.resources->requests.empty()) {
        list("requests", c.resources->requests);
      }
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();
}

void writeStatus(Writer& w, const PodStatus& s) {
  w.StartObject();
  putIfSet(w, "phase", s.phase);
  w.Key("conditions");
  w.StartArray();
  for (const auto& c : s.conditions) {
    w.StartObject();
    putIfSet(w, "type", c.type);
    putIfSet(w, "status", c.status);
    w.Key("lastProbeTime");
    w.Null();
    putIfSet(w, "lastTransitionTime", c.last_transition_time);
    putIfSet(w, "reason", c.reason);
    putIfSet(w, "message", c.message);
    w.EndObject();
  }
  w.EndArray();
  putIfSet(w, "reason", s.reason);
  putIfSet(w, "message", s.message);
  putIfSet(w, "hostIP", s.host_ip);
  if (!s.host_ip.empty()) {
    w.Key("hostIPs");
    w.StartArray();
    w.StartObject();
    putIfSet(w, "ip", s.host_ip);
    w.EndObject();
    w.EndArray();
  }
  putIfSet(w, "podIP", s.pod_ip);
  if (!s.pod_ip.empty()) {
    w.Key("podIPs");
    w.StartArray();
    w.StartObject();
    putIfSet(w, "ip", s.pod_ip);
    w.EndObject();
    w.EndArray();
  }
  putIfSet(w, "startTime", s.start_time);
  writeContainers(w, "initContainerStatuses", s.init_container_statuses);
  writeContainers(w, "containerStatuses", s.container_statuses);
  writeContainers(w, "ephemeralContainerStatuses", s.ephemeral_container_statuses);
  putIfSet(w, "qosClass", s.qos_class);
  w.EndObject();
}

void writeStringMap(Writer& w, const char* key, const std::map<std::string, std::string>& m) {
  if (m.empty()) {
    return;
  }
  w.Key(key);
  w.StartObject();
  for (const auto& [k, v] : m) {
    w.Key(k.c_str());
    w.String(v.c_str());
  }
  w.EndObject();
}

using apiclient::stringField;

ContainerState readState(const rapidjson::Value& v) {
  ContainerState s;
  if (!v.IsObject()) {
    return s;
  }
  for (auto [name, kind] : {std::pair{"waiting", Kind::kWaiting},
                            {"running", Kind::kRunning},
                            {"terminated", Kind::kTerminated}}) {
    auto it = v.FindMember(name);
    if (it != v.MemberEnd() && it->value.IsObject()) {
      s.kind = kind;
      s.reason = stringField(it->value, "reason");
      s.message = stringField(it->value, "message");
      s.started_at = stringField(it->value, "startedAt");
      s.finished_at = stringField(it->value, "finishedAt");
      s.container_id = stringField(it->value, "containerID");
      if (auto e = it->value.FindMember("exitCode");
          e != it->value.MemberEnd() && e->value.IsInt()) {
        s.exit_code = e->value.GetInt();
      }
    }
  }
  return s;
}

// What writeUserAndMounts wrote; what is not there (or of another type) stays unset.
void readUserAndMounts(const rapidjson::Value& c, ContainerStatus& s) {
  auto user = c.FindMember("user");
  if (user != c.MemberEnd() && user->value.IsObject()) {
    auto lx = user->value.FindMember("linux");
    if (lx != user->value.MemberEnd() && lx->value.IsObject()) {
      const rapidjson::Value& l = lx->value;
      LinuxContainerUser u;
      u.uid = l.HasMember("uid") && l["uid"].IsInt64() ? l["uid"].GetInt64() : 0;
      u.gid = l.HasMember("gid") && l["gid"].IsInt64() ? l["gid"].GetInt64() : 0;
      if (l.HasMember("supplementalGroups") && l["supplementalGroups"].IsArray()) {
        for (const auto& g : l["supplementalGroups"].GetArray()) {
          if (g.IsInt64()) {
            u.supplemental_groups.push_back(g.GetInt64());
          }
        }
      }
      s.user = std::move(u);
    }
  }
  auto mounts = c.FindMember("volumeMounts");
  if (mounts != c.MemberEnd() && mounts->value.IsArray()) {
    for (const auto& m : mounts->value.GetArray()) {
      if (!m.IsObject()) {
        continue;
      }
      s.volume_mounts.push_back({.name = stringField(m, "name"),
                                 .mount_path = stringField(m, "mountPath"),
                                 .read_only = m.HasMember("readOnly") && m["readOnly"].IsBool() &&
                                              m["readOnly"].GetBool(),
                                 .recursive_read_only = stringField(m, "recursiveReadOnly")});
    }
  }
}

std::vector<ContainerStatus> readContainers(const rapidjson::Value& status, const char* key) {
  std::vector<ContainerStatus> out;
  auto it = status.FindMember(key);
  if (it == status.MemberEnd() || !it->value.IsArray()) {
    return out;
  }
  for (const auto& c : it->value.GetArray()) {
    ContainerStatus s;
    s.name = stringField(c, "name");
    s.image = stringField(c, "image");
    s.container_id = stringField(c, "containerID");
    s.stop_signal = stringField(c, "stopSignal");
    readUserAndMounts(c, s);
    if (c.HasMember("state")) {
      s.state = readState(c["state"]);
    }
    if (c.HasMember("lastState")) {
      s.last_state = readState(c["lastState"]);
    }
    s.ready = c.HasMember("ready") && c["ready"].IsBool() && c["ready"].GetBool();
    if (c.HasMember("restartCount") && c["restartCount"].IsInt()) {
      s.restart_count = c["restartCount"].GetInt();
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

std::string podStatusJson(const PodStatus& status) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  writeStatus(w, status);
  return buf.GetString();
}

std::string podJson(const Pod& pod, const PodStatus& status, const std::string& created) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  putIfSet(w, "apiVersion", "v1");
  putIfSet(w, "kind", "Pod");
  w.Key("metadata");
  w.StartObject();
  putIfSet(w, "name", pod.name);
  putIfSet(w, "namespace", pod.namespace_);
  putIfSet(w, "uid", pod.uid);
  putIfSet(w, "creationTimestamp", created);
  writeStringMap(w, "labels", pod.labels);
  writeStringMap(w, "annotations", pod.annotations);
  w.EndObject();
  w.Key("spec");
  w.StartObject();
  putIfSet(w, "nodeName", pod.node_name);
  putIfSet(w, "restartPolicy", pod.restart_policy);
  std::vector<const Container*> ephemeral;
  for (const auto& c : pod.ephemeral_containers) {
    ephemeral.push_back(&c);
  }
  auto pointers = [](const std::vector<Container>& list) {
    std::vector<const Container*> out;
    for (const auto& c : list) {
      out.push_back(&c);
    }
    return out;
  };
  for (const auto& [key, list] : {std::pair{"initContainers", pointers(pod.init_containers)},
                                  {"containers", pointers(pod.containers)},
                                  {"ephemeralContainers", ephemeral}}) {
    if (list.empty()) {
      continue;
    }
    w.Key(key);
    w.StartArray();
    for (const Container* c : list) {
      w.StartObject();
      putIfSet(w, "name", c->name);
      putIfSet(w, "image", c->image);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  w.Key("status");
  writeStatus(w, status);
  w.EndObject();
  return std::string(buf.GetString()) + "\n";
}

Result<PodSummary> parsePodJson(const std::string& json, const std::string& where) {
  // Iterative and depth-limited: a corrupt or hostile file is an error, not a stack overflow.
  auto parsed = json::parse(json, "read pod status", where);
  if (!parsed) {
    return std::unexpected(parsed.error());
  }
  rapidjson::Document& d = *parsed;
  if (!d.IsObject() || !d.HasMember("metadata") || !d["metadata"].IsObject()) {
    return makeError("read pod status", where, "not a v1 Pod object");
  }
  PodSummary p;
  const auto& meta = d["metadata"];
  p.name = stringField(meta, "name");
  p.namespace_ = stringField(meta, "namespace");
  p.uid = stringField(meta, "uid");
  p.created = stringField(meta, "creationTimestamp");
  if (d.HasMember("spec") && d["spec"].IsObject()) {
    p.node_name = stringField(d["spec"], "nodeName");
    if (d["spec"].HasMember("containers") && d["spec"]["containers"].IsArray()) {
      p.containers = d["spec"]["containers"].Size();
    }
  }
  if (d.HasMember("status") && d["status"].IsObject()) {
    const auto& s = d["status"];
    p.status.phase = stringField(s, "phase");
    p.status.reason = stringField(s, "reason");
    p.status.message = stringField(s, "message");
    p.status.pod_ip = stringField(s, "podIP");
    p.status.start_time = stringField(s, "startTime");
    p.status.init_container_statuses = readContainers(s, "initContainerStatuses");
    p.status.container_statuses = readContainers(s, "containerStatuses");
    p.status.ephemeral_container_statuses = readContainers(s, "ephemeralContainerStatuses");
  }
  return p;
}

void capTerminationMessages(PodStatus& status, size_t containers) {
  size_t per_status = kMaxPodTerminationMessageLength / std::max<size_t>(containers, 1);
  for (auto* list : {&status.init_container_statuses, &status.container_statuses,
                     &status.ephemeral_container_statuses}) {
    for (auto& c : *list) {
      for (auto* st : {&c.state, &c.last_state}) {
        if (st->kind == ContainerState::Kind::kTerminated && st->message.size() > per_status) {
          st->message.resize(per_status);
        }
      }
    }
  }
}

}  // namespace kernelet::agent
