#include "agent/sources/api_pods.h"

#include <algorithm>

#include "agent/log/log.h"
#include "apiclient/json_fields.h"
#include "apiclient/objects.h"
#include "images/digest.h"

namespace kernelet::agent {
namespace {

// A pod object less what changes without the pod changing (status,
// resourceVersion, managedFields): equal fingerprints decode to the same Pod.
std::string fingerprint(const rapidjson::Document& pod) {
  rapidjson::Document copy;
  copy.CopyFrom(pod, copy.GetAllocator());
  copy.RemoveMember("status");
  if (copy.HasMember("metadata") && copy["metadata"].IsObject()) {
    copy["metadata"].RemoveMember("resourceVersion");
    copy["metadata"].RemoveMember("managedFields");
  }
  return apiclient::serialize(copy);
}

// The hash of a pod's spec less what the API lets change in a bound pod:
// container images (the worker restarts just those containers), containers'
// cpu and memory (an in-place resize, the worker's to apply), tolerations,
// activeDeadlineSeconds and ephemeral containers (added through their
// subresource, started by the worker without touching the others). Edits `d`.
std::string specHash(rapidjson::Document& d) {
  if (!d.HasMember("spec") || !d["spec"].IsObject()) {
    return "";
  }
  rapidjson::Value& spec = d["spec"];
  spec.RemoveMember("tolerations");
  spec.RemoveMember("activeDeadlineSeconds");
  spec.RemoveMember("ephemeralContainers");
  for (const char* list : {"initContainers", "containers"}) {
    if (spec.HasMember(list) && spec[list].IsArray()) {
      for (auto& c : spec[list].GetArray()) {
        if (!c.IsObject()) {
          continue;
        }
        c.RemoveMember("image");
        // In-place resize (pods/resize) changes these in a running pod.
        if (c.HasMember("resources") && c["resources"].IsObject()) {
          for (const char* kind : {"requests", "limits"}) {
            rapidjson::Value& r = c["resources"];
            if (r.HasMember(kind) && r[kind].IsObject()) {
              r[kind].RemoveMember("cpu");
              r[kind].RemoveMember("memory");
            }
          }
        }
      }
    }
  }
  return images::digestHex(images::sha256Of(apiclient::serialize(spec))).substr(0, 32);
}

// The status of the conditions the pod's readiness gates name, as the API has
// them (other controllers set them through the status subresource).
std::map<std::string, std::string> gateConditions(const rapidjson::Document& pod,
                                                  const std::vector<std::string>& gates) {
  std::map<std::string, std::string> out;
  if (gates.empty() || !pod.HasMember("status") || !pod["status"].IsObject()) {
    return out;
  }
  const rapidjson::Value& status = pod["status"];
  if (!status.HasMember("conditions") || !status["conditions"].IsArray()) {
    return out;
  }
  for (const auto& c : status["conditions"].GetArray()) {
    std::string type = apiclient::stringField(c, "type");
    if (std::find(gates.begin(), gates.end(), type) != gates.end()) {
      out[type] = apiclient::stringField(c, "status");
    }
  }
  return out;
}

}  // namespace

ApiPodSource::ApiPodSource(apiclient::ApiClient& client, apiclient::ApiLoop& net,
                           const std::string& node_name, LoopQueue& to_loop, StatusWriter& status,
                           MirrorPods& mirrors, PodsChanged changed, std::function<void()> synced)
    : to_loop_(to_loop),
      status_(status),
      mirrors_(mirrors),
      changed_(std::move(changed)),
      synced_(std::move(synced)) {
  std::function<void()> on_synced;
  if (synced_) {
    // Posted after the list's pods were (the loop queue keeps the order), so
    // the loop has them when it hears the list was complete.
    on_synced = [this] { to_loop_.post([this] { synced_(); }); };
  }
  reflector_ = std::make_unique<apiclient::Reflector>(
      client, net,
      apiclient::ReflectorOptions{.path = "/api/v1/pods",
                                  .field_selector = "spec.nodeName=" + node_name},
      [this](const apiclient::ObjectEvent& e) { onPodEvent(e); }, std::move(on_synced));
  reflector_->start();
}

ApiPodSource::~ApiPodSource() {
  log::v(4, "Stopping the pod watch");
  if (reflector_) {
    reflector_->stop();
  }
}

// A mirror pod: ours to keep and to write the static pod's status to.
void ApiPodSource::onMirrorEvent(const apiclient::ObjectEvent& e, const rapidjson::Value& object,
                                 const apiclient::ObjectMeta& meta) {
  bool deleted = e.type == apiclient::ObjectEvent::Type::kDeleted;
  if (deleted) {
    status_.apiPodGone(e.uid);
  } else {
    status_.apiStatus(e.uid, apiclient::statusOf(object), false);
  }
  if (mirrors_.observed(e.namespace_ + "/" + e.name, e.uid, deleted,
                        !meta.deletion_timestamp.empty())) {
    status_.mirrorsChanged();
  }
}

void ApiPodSource::onPodEvent(const apiclient::ObjectEvent& e) {
  std::string key = e.namespace_ + "/" + e.name;
  auto parsed = apiclient::parseApiJson(e.object, "pod " + key);
  if (!parsed || !parsed->IsObject()) {
    log::error("Cannot read pod",
               {{"pod", key}, {"err", parsed ? "not an object" : parsed.error().message()}});
    return;
  }
  rapidjson::Document& d = *parsed;
  auto meta = apiclient::decodeMeta(e.object, "pod " + key);
  if (!meta) {
    return;
  }
  if (meta->annotations.contains(kMirrorAnnotation)) {
    onMirrorEvent(e, d, *meta);
    return;
  }
  std::unique_lock lock(mu_);
  if (e.type == apiclient::ObjectEvent::Type::kDeleted) {
    pods_.erase(e.uid);
    pod_fingerprint_.erase(e.uid);
    status_.apiPodGone(e.uid);
  } else if (std::string fp = fingerprint(d); pod_fingerprint_[e.uid] == fp) {
    // Only the status (or resourceVersion) moved, as after each of our own
    // patches: the pod as decoded stays, and the loop need not hear of it,
    // unless a readiness gate's condition changed.
    status_.apiStatus(e.uid, apiclient::statusOf(d), false);
    auto it = pods_.find(e.uid);
    if (it == pods_.end()) {
      return;
    }
    auto gates = gateConditions(d, it->second.pod.readiness_gates);
    if (gates == it->second.pod.gate_conditions) {
      return;
    }
    it->second.pod.gate_conditions = std::move(gates);
  } else {
    pod_fingerprint_[e.uid] = std::move(fp);
    // A field kernelet refuses does not stop the decode: admission rejects
    // the pod with it, where the refusal shows in the pod's status.
    auto manifests = parseManifests(e.object, "pod " + key, RefusedFields::kRecord);
    if (!manifests || manifests->size() != 1) {
      lock.unlock();
      log::error("Cannot run pod",
                 {{"pod", key}, {"err", manifests ? "not one pod" : manifests.error().message()}});
      return;
    }
    ApiPod p;
    p.pod = std::move((*manifests)[0].pod);
    // Where the pod came from is the source's to say, as the kubelet's
    // config source sets it: an API pod that writes "file" there is not
    // static (admitted under pressure, not evicted, no API objects).
    p.pod.annotations["kubernetes.io/config.source"] = "api";
    p.pod.gate_conditions = gateConditions(d, p.pod.readiness_gates);
    p.json = std::make_shared<const std::string>(std::move((*manifests)[0].json));
    std::string status = apiclient::statusOf(d);
    p.hash = specHash(d);
    p.deletion_timestamp = meta->deletion_timestamp;
    p.deletion_grace_seconds =
        meta->deletion_grace_period_seconds.value_or(p.pod.termination_grace_period_seconds);
    pods_[e.uid] = std::move(p);
    status_.apiStatus(e.uid, std::move(status), true);
  }
  postToLoop(lock);
}

// One copy per loop wake-up, not per event: a status patch per pod comes
// back as an event, so copying here made a burst cost O(pods^2).
void ApiPodSource::postToLoop(std::unique_lock<std::mutex>& lock) {
  if (posted_) {
    return;
  }
  posted_ = true;
  lock.unlock();
  to_loop_.post([this] {
    std::unique_lock again(mu_);
    posted_ = false;
    auto snapshot = pods_;
    again.unlock();
    changed_(std::move(snapshot));
  });
}

}  // namespace kernelet::agent
