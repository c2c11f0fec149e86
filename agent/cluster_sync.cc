#include "agent/cluster_sync.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <random>

#include "agent/log.h"
#include "apiclient/merge_patch.h"
#include "apiclient/objects.h"
#include "images/digest.h"

namespace kernelet::agent {
namespace {

using apiclient::ApiError;
using apiclient::PatchType;
using apiclient::resourcePath;
using Clock = std::chrono::steady_clock;

constexpr auto kNodeReport = std::chrono::minutes(5);  // nodeStatusReportFrequency
constexpr const char* kMirrorAnnotation = "kubernetes.io/config.mirror";

std::string nowTime() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return apiclient::formatTime(t);
}

std::string nowMicro() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return apiclient::formatMicroTime(t);
}

std::string serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return {sb.GetString(), sb.GetSize()};
}

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
  return serialize(copy);
}

// {"status": ...} of an object, "{}" when it has none.
std::string statusOf(const rapidjson::Value& obj) {
  if (obj.IsObject() && obj.HasMember("status")) {
    return "{\"status\":" + serialize(obj["status"]) + "}";
  }
  return "{}";
}

std::string uidOf(const std::string& json) {
  auto m = apiclient::decodeMeta(json, "response");
  return m ? m->uid : "";
}

}  // namespace

Result<std::unique_ptr<ClusterSync>> ClusterSync::start(const AgentConfig& config,
                                                        const apiclient::ClusterAccess& access,
                                                        EventLoop& loop, apiclient::ApiLoop& net,
                                                        NodeFacts facts, PodsChanged changed) {
  std::unique_ptr<ClusterSync> s(new ClusterSync(config, std::move(facts)));
  s->changed_ = std::move(changed);
  TRY(s->client_, apiclient::ApiClient::create(
                      access, {.user_agent = std::string("kernelet/") + config.node_name}));
  TRY(s->to_loop_, LoopQueue::create(loop));
  s->recorder_ = std::make_unique<EventRecorder>(*s->client_, config.node_name);
  ClusterSync* self = s.get();
  s->reflector_ = std::make_unique<apiclient::Reflector>(
      *s->client_, net,
      apiclient::ReflectorOptions{.path = "/api/v1/pods",
                                  .field_selector = "spec.nodeName=" + config.node_name},
      [self](const apiclient::ObjectEvent& e) { self->onPodEvent(e); });
  s->reflector_->start();
  s->heartbeat_thread_ = std::thread([self] { self->heartbeat(); });
  s->writer_thread_ = std::thread([self] { self->writer(); });
  s->event_thread_ = std::thread([self] { self->eventWriter(); });
  return s;
}

ClusterSync::~ClusterSync() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  log::v(4, "Stopping the pod watch");
  if (reflector_) {
    reflector_->stop();
  }
  log::v(4, "Stopping the heartbeat and the writer");
  for (auto* t : {&heartbeat_thread_, &writer_thread_, &event_thread_}) {
    if (t->joinable()) {
      t->join();
    }
  }
  log::v(4, "Cluster sync stopped");
}

bool ClusterSync::sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_; });
  return !stopping_;
}

// ---- pods from the API ----------------------------------------------------

void ClusterSync::onPodEvent(const apiclient::ObjectEvent& e) {
  rapidjson::Document d;
  d.Parse(e.object.c_str(), e.object.size());
  if (d.HasParseError() || !d.IsObject()) {
    return;
  }
  auto meta = apiclient::decodeMeta(e.object, "pod " + e.namespace_ + "/" + e.name);
  if (!meta) {
    return;
  }
  bool deleted = e.type == apiclient::ObjectEvent::Type::kDeleted;
  std::string key = e.namespace_ + "/" + e.name;
  std::unique_lock lock(mu_);
  if (meta->annotations.contains(kMirrorAnnotation)) {
    // A mirror pod: ours to keep and to write the static pod's status to.
    if (deleted) {
      if (auto m = mirror_uid_.find(key); m != mirror_uid_.end() && m->second == e.uid) {
        mirror_uid_.erase(m);
      }
      api_status_.erase(e.uid);
      mirrors_dirty_ = true;  // recreate it if its static pod still runs
      cv_.notify_all();
    } else {
      mirror_uid_[key] = e.uid;
      api_status_[e.uid] = statusOf(d);
      if (!meta->deletion_timestamp.empty()) {
        // Someone deleted the mirror: it goes at once and comes back fresh.
        mirror_deletes_[key] = e.uid;
        mirrors_dirty_ = true;
        cv_.notify_all();
      }
    }
    return;
  }
  if (deleted) {
    api_pods_.erase(e.uid);
    api_status_.erase(e.uid);
    pod_fingerprint_.erase(e.uid);
  } else if (std::string fp = fingerprint(d); pod_fingerprint_[e.uid] == fp) {
    // Only the status (or resourceVersion) moved, as after each of our own
    // patches: the pod as decoded stays, and the loop need not hear of it.
    api_status_[e.uid] = statusOf(d);
    return;
  } else {
    pod_fingerprint_[e.uid] = std::move(fp);
    auto parsed = parseManifests(e.object, "pod " + key);
    if (!parsed || parsed->size() != 1) {
      lock.unlock();
      log::error("Cannot run pod",
                 {{"pod", key}, {"err", parsed ? "not one pod" : parsed.error().message()}});
      return;
    }
    ApiPod p;
    p.pod = std::move((*parsed)[0].pod);
    if (d.HasMember("spec") && d["spec"].IsObject()) {
      // What the API lets change in a bound pod does not count: container
      // images (the worker restarts just those containers), tolerations and
      // activeDeadlineSeconds.
      rapidjson::Value& spec = d["spec"];
      spec.RemoveMember("tolerations");
      spec.RemoveMember("activeDeadlineSeconds");
      for (const char* list : {"initContainers", "containers"}) {
        if (spec.HasMember(list) && spec[list].IsArray()) {
          for (auto& c : spec[list].GetArray()) {
            if (c.IsObject()) {
              c.RemoveMember("image");
            }
          }
        }
      }
      p.hash = images::digestHex(images::sha256Of(serialize(spec))).substr(0, 32);
    }
    p.deletion_timestamp = meta->deletion_timestamp;
    p.deletion_grace_seconds =
        meta->deletion_grace_period_seconds.value_or(p.pod.termination_grace_period_seconds);
    api_pods_[e.uid] = std::move(p);
    api_status_[e.uid] = statusOf(d);
  }
  // One copy per loop wake-up, not per event: a status patch per pod comes
  // back as an event, so copying here made a burst cost O(pods^2).
  if (pods_posted_) {
    return;
  }
  pods_posted_ = true;
  lock.unlock();
  to_loop_->post([this] {
    std::unique_lock again(mu_);
    pods_posted_ = false;
    auto snapshot = api_pods_;
    again.unlock();
    changed_(std::move(snapshot));
  });
}

// ---- node, lease ----------------------------------------------------------

EventRecord ClusterSync::startingEvent() const {
  return {.involved_kind = "Node",
          .involved_name = facts_.name,
          .involved_uid = facts_.name,
          .reason = "Starting",
          .message = "Starting kubelet."};
}

bool ClusterSync::registerNode() {
  NodeSignals signals = readNodeSignals(config_);
  auto created = client_->create("/api/v1/nodes", nodeJson(facts_, signals, nowTime()));
  if (created) {
    {
      std::lock_guard lock(mu_);
      node_uid_ = uidOf(*created);
    }
    log::info("Successfully registered node", {{"node", facts_.name}});
    event(startingEvent());
    return true;
  }
  if (created.error().reason != "AlreadyExists") {
    log::error("Unable to register node with API server",
               {{"node", facts_.name}, {"err", created.error().str()}});
    return false;
  }
  // Known already (a restart): take its uid, reconcile the labels, send the status.
  auto existing = client_->get(resourcePath("v1", "nodes", "", facts_.name));
  if (!existing) {
    return false;
  }
  auto labels = client_->patch(
      resourcePath("v1", "nodes", "", facts_.name), PatchType::kMerge,
      R"({"metadata":{"labels":{"kubernetes.io/hostname":")" + facts_.hostname +
          R"(","kubernetes.io/os":"linux","kubernetes.io/arch":")" + facts_.architecture + "\"}}}");
  if (!labels) {
    return false;
  }
  {
    std::lock_guard lock(mu_);
    node_uid_ = uidOf(*existing);
  }
  log::info("Node already registered, reconciled", {{"node", facts_.name}});
  event(startingEvent());
  return true;
}

void ClusterSync::renewLease() {
  std::string path =
      resourcePath("coordination.k8s.io/v1", "leases", "kube-node-lease", facts_.name);
  std::string lease, node_uid;
  {
    std::lock_guard lock(mu_);
    lease = lease_json_;
    node_uid = node_uid_;
  }
  // Steady state: PUT the object the last write returned, with a new renewTime.
  for (int attempt = 0; attempt < 5; attempt++) {
    if (lease.empty()) {
      auto got = client_->get(path);
      if (!got && got.error().code == 404) {
        auto made =
            client_->create(resourcePath("coordination.k8s.io/v1", "leases", "kube-node-lease"),
                            apiclient::encodeNodeLease(facts_.name, node_uid, 40, nowMicro()));
        if (made) {
          std::lock_guard lock(mu_);
          lease_json_ = *made;
          return;
        }
        if (made.error().reason != "AlreadyExists") {
          log::error("Failed to create lease", {{"err", made.error().str()}});
          return;
        }
        continue;
      }
      if (!got) {
        log::error("Failed to get lease", {{"err", got.error().str()}});
        return;
      }
      lease = *got;
    }
    auto renewed = apiclient::withString(lease, {"spec", "renewTime"}, nowMicro());
    if (!renewed) {
      lease.clear();
      continue;
    }
    auto put = client_->update(path, *renewed);
    if (put) {
      std::lock_guard lock(mu_);
      lease_json_ = *put;
      return;
    }
    // Conflict or anything else: read it again and retry.
    lease.clear();
    if (put.error().reason != "Conflict") {
      log::error("Failed to update lease", {{"err", put.error().str()}});
      std::lock_guard lock(mu_);
      lease_json_.clear();
      return;
    }
  }
}

void ClusterSync::reportNodeStatus(bool force) {
  NodeSignals signals = readNodeSignals(config_);
  std::string fingerprint = nodeStatusFingerprint(facts_, signals);
  auto now = Clock::now();
  if (!force && fingerprint == last_node_fingerprint_ && now - last_node_report_ < kNodeReport) {
    return;  // nothing changed and the last report is recent: the lease says we live
  }
  std::string t = nowTime();
  struct Condition {
    const char* type;
    bool status;
    const char* if_true;  // the kubelet's event reasons for the two states
    const char* if_false;
  };
  for (const Condition& c : {Condition{"MemoryPressure", signals.memory_pressure,
                                       "NodeHasInsufficientMemory", "NodeHasSufficientMemory"},
                             Condition{"DiskPressure", signals.disk_pressure, "NodeHasDiskPressure",
                                       "NodeHasNoDiskPressure"},
                             Condition{"PIDPressure", signals.pid_pressure,
                                       "NodeHasInsufficientPID", "NodeHasSufficientPID"},
                             Condition{"Ready", signals.ready, "NodeReady", "NodeNotReady"}}) {
    std::string key = std::string(c.type) + "=" + (c.status ? "True" : "False");
    std::string other = std::string(c.type) + "=" + (c.status ? "False" : "True");
    node_transitions_.erase(other);
    if (node_transitions_.emplace(key, t).second) {
      // A condition seen for the first time or changed: the kubelet's node event.
      std::string reason = c.status ? c.if_true : c.if_false;
      event({.involved_kind = "Node",
             .involved_name = facts_.name,
             .involved_uid = facts_.name,
             .reason = reason,
             .message = "Node " + facts_.name + " status is now: " + reason});
    }
  }
  auto r = client_->patch(resourcePath("v1", "nodes", "", facts_.name, "status"),
                          PatchType::kStrategicMerge,
                          nodeStatusJson(facts_, signals, t, node_transitions_));
  if (!r) {
    log::error("Error updating node status", {{"err", r.error().str()}});
    return;
  }
  last_node_fingerprint_ = fingerprint;
  last_node_report_ = now;
}

void ClusterSync::heartbeat() {
  // Registration: back-off 100 ms doubling to 7 s, as the kubelet.
  auto backoff = std::chrono::milliseconds(100);
  while (!registerNode()) {
    if (!sleep(backoff)) {
      return;
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(7000));
  }
  reportNodeStatus(true);
  std::mt19937 rng(std::random_device{}());
  for (;;) {
    renewLease();
    reportNodeStatus(false);
    {
      std::lock_guard lock(mu_);
      mirrors_dirty_ = true;  // the node uid is known now; keep mirrors checked
    }
    cv_.notify_all();
    // 10 s with the kubelet's 4% jitter.
    auto jitter = std::uniform_int_distribution<int>(0, 400)(rng);
    if (!sleep(std::chrono::milliseconds(10000 - 200 + jitter))) {
      return;
    }
  }
}

// ---- writes ---------------------------------------------------------------

void ClusterSync::podStatus(const std::string& uid, const std::string& namespace_,
                            const std::string& name, const std::string& status, bool is_static) {
  {
    std::lock_guard lock(mu_);
    dirty_[uid] = {namespace_, name, status, is_static};
    if (is_static) {
      static_status_[namespace_ + "/" + name] = {uid, dirty_[uid]};
    }
  }
  cv_.notify_all();
}

void ClusterSync::finalDelete(const std::string& uid, const std::string& namespace_,
                              const std::string& name, std::function<void()> done) {
  {
    std::lock_guard lock(mu_);
    deletions_.push_back({uid, namespace_, name, std::move(done)});
  }
  cv_.notify_all();
}

void ClusterSync::event(EventRecord e) {
  {
    std::lock_guard lock(mu_);
    if (events_.size() >= kMaxQueuedEvents) {
      events_.pop_front();  // the oldest go first when the API is away long
    }
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

void ClusterSync::setStaticPods(std::vector<MirrorPod> pods) {
  {
    std::lock_guard lock(mu_);
    static_pods_ = std::move(pods);
    std::erase_if(static_status_, [&](const auto& kv) {
      return std::none_of(static_pods_.begin(), static_pods_.end(), [&](const MirrorPod& m) {
        return m.namespace_ + "/" + m.name == kv.first;
      });
    });
    mirrors_dirty_ = true;
  }
  cv_.notify_all();
}

// Sends one pod's latest status as a strategic merge patch of the API's
// status against ours; true when nothing is left to send for it.
bool ClusterSync::writeStatus(const std::string& uid) {
  PendingStatus p;
  std::string target_uid, base;
  {
    std::lock_guard lock(mu_);
    auto it = dirty_.find(uid);
    if (it == dirty_.end()) {
      return true;
    }
    p = it->second;
    if (p.is_static) {
      auto m = mirror_uid_.find(p.namespace_ + "/" + p.name);
      if (m == mirror_uid_.end()) {
        log::v(4, "No mirror pod yet", {{"pod", p.namespace_ + "/" + p.name}});
        return false;  // its mirror pod is not there yet
      }
      target_uid = m->second;
    } else {
      target_uid = uid;
      if (!api_pods_.contains(uid)) {
        dirty_.erase(it);  // gone from the API: nobody to tell
        return true;
      }
    }
    auto b = api_status_.find(target_uid);
    base = b != api_status_.end() ? b->second : "{}";
  }
  auto patch = apiclient::twoWayMergePatch(base, "{\"status\":" + p.status + "}",
                                           apiclient::podStatusMergeKeys());
  if (!patch) {
    log::error("Compute status patch",
               {{"pod", p.namespace_ + "/" + p.name}, {"err", patch.error().message()}});
    std::lock_guard lock(mu_);
    dirty_.erase(uid);
    return true;
  }
  log::v(4, "Pod status patch", {{"pod", p.namespace_ + "/" + p.name}, {"patch", *patch}});
  if (*patch != "{}") {
    std::string body = *patch;
    body.insert(1, R"("metadata":{"uid":")" + target_uid + R"("},)");  // the uid guard
    auto r = client_->patch(resourcePath("v1", "pods", p.namespace_, p.name, "status"),
                            PatchType::kStrategicMerge, body);
    if (!r && r.error().code != 404 && r.error().code != 409) {
      log::error("Failed to update status for pod",
                 {{"pod", p.namespace_ + "/" + p.name}, {"err", r.error().str()}});
      return false;  // kept: sent again when the API answers
    }
    if (r) {
      rapidjson::Document d;
      d.Parse(r->c_str(), r->size());
      std::lock_guard lock(mu_);
      api_status_[target_uid] = statusOf(d);
    }
  }
  std::lock_guard lock(mu_);
  auto it = dirty_.find(uid);
  if (it != dirty_.end() && it->second.status == p.status) {
    dirty_.erase(it);  // unless a newer one came meanwhile
  }
  return true;
}

bool ClusterSync::syncMirrors() {
  std::vector<MirrorPod> wanted;
  std::map<std::string, std::string> have;
  std::string node_uid;
  {
    std::lock_guard lock(mu_);
    wanted = static_pods_;
    have = mirror_uid_;
    node_uid = node_uid_;
    mirrors_dirty_ = false;
  }
  if (node_uid.empty()) {
    return false;  // the owner reference needs the node registered
  }
  bool ok = true;
  std::set<std::string> keys;
  for (const auto& m : wanted) {
    std::string key = m.namespace_ + "/" + m.name;
    keys.insert(key);
    if (have.contains(key)) {
      continue;
    }
    // The manifest's pod, marked as a mirror and owned by the node.
    rapidjson::Document d;
    d.Parse(m.object.c_str(), m.object.size());
    if (d.HasParseError() || !d.IsObject()) {
      continue;
    }
    auto& a = d.GetAllocator();
    if (!d.HasMember("metadata") || !d["metadata"].IsObject()) {
      d.AddMember("metadata", rapidjson::Value(rapidjson::kObjectType), a);
    }
    auto& meta = d["metadata"];
    meta.RemoveMember("uid");
    meta.RemoveMember("resourceVersion");
    if (!meta.HasMember("annotations") || !meta["annotations"].IsObject()) {
      meta.RemoveMember("annotations");
      meta.AddMember("annotations", rapidjson::Value(rapidjson::kObjectType), a);
    }
    meta["annotations"].RemoveMember(kMirrorAnnotation);
    meta["annotations"].AddMember(rapidjson::StringRef(kMirrorAnnotation),
                                  rapidjson::Value(m.hash.c_str(), a), a);
    rapidjson::Value owner(rapidjson::kObjectType);
    owner.AddMember("apiVersion", "v1", a);
    owner.AddMember("kind", "Node", a);
    owner.AddMember("name", rapidjson::Value(facts_.name.c_str(), a), a);
    owner.AddMember("uid", rapidjson::Value(node_uid.c_str(), a), a);
    owner.AddMember("controller", true, a);
    meta.RemoveMember("ownerReferences");
    meta.AddMember("ownerReferences", rapidjson::Value(rapidjson::kArrayType), a);
    meta["ownerReferences"].PushBack(owner, a);
    d.RemoveMember("status");
    auto made = client_->create(resourcePath("v1", "pods", m.namespace_), serialize(d));
    if (made) {
      rapidjson::Document r;
      r.Parse(made->c_str(), made->size());
      std::lock_guard lock(mu_);
      mirror_uid_[key] = uidOf(*made);
      api_status_[mirror_uid_[key]] = statusOf(r);
      // A new mirror (maybe after someone deleted the old one) gets the status at once.
      if (auto st = static_status_.find(key); st != static_status_.end()) {
        dirty_[st->second.first] = st->second.second;
      }
      log::v(2, "Created mirror pod", {{"pod", key}});
    } else if (made.error().reason != "AlreadyExists") {
      log::error("Failed creating a mirror pod", {{"pod", key}, {"err", made.error().str()}});
      ok = false;
    }
  }
  // Mirrors of static pods that are gone, and mirrors being deleted.
  std::map<std::string, std::string> deleting;
  {
    std::lock_guard lock(mu_);
    deleting.swap(mirror_deletes_);
  }
  for (const auto& [key, uid] : have) {
    if (keys.contains(key) && !deleting.contains(key)) {
      continue;
    }
    std::string ns = key.substr(0, key.find('/')), name = key.substr(key.find('/') + 1);
    auto r = client_->remove(resourcePath("v1", "pods", ns, name),
                             {.grace_period_seconds = 0, .precondition_uid = uid});
    if (r || r.error().code == 404 || r.error().code == 409) {
      std::lock_guard lock(mu_);
      mirror_uid_.erase(key);
    } else {
      ok = false;
    }
  }
  return ok;
}

void ClusterSync::writer() {
  for (;;) {
    std::vector<std::string> uids;
    bool mirrors = false;
    std::optional<Deletion> deletion;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [this] {
        return stopping_ || !dirty_.empty() || !deletions_.empty() || mirrors_dirty_;
      });
      if (stopping_) {
        return;
      }
      for (const auto& [uid, p] : dirty_) {
        uids.push_back(uid);
      }
      mirrors = mirrors_dirty_;
      if (!deletions_.empty()) {
        deletion = std::move(deletions_.front());
        deletions_.pop_front();
      }
    }
    bool failed = false;
    if (mirrors) {
      failed = !syncMirrors() || failed;
    }
    for (const auto& uid : uids) {
      failed = !writeStatus(uid) || failed;
    }
    if (deletion) {
      // Its final status first, then the DELETE that takes it from the API.
      writeStatus(deletion->uid);
      auto r = client_->remove(resourcePath("v1", "pods", deletion->namespace_, deletion->name),
                               {.grace_period_seconds = 0, .precondition_uid = deletion->uid});
      if (r || r.error().code == 404 || r.error().code == 409) {
        log::v(2, "Pod deleted from the API",
               {{"pod", deletion->namespace_ + "/" + deletion->name}});
        to_loop_->post(std::move(deletion->done));
      } else {
        log::error("Failed to delete pod", {{"err", r.error().str()}});
        std::lock_guard lock(mu_);
        deletions_.push_back(std::move(*deletion));
        failed = true;
      }
    }
    if (failed && !sleep(std::chrono::seconds(1))) {
      return;  // the API is away: try again in a second
    }
  }
}

// Events go on a thread of their own, so a burst of them never holds up a
// status patch (the kubelet's event broadcaster is apart from its status manager too).
void ClusterSync::eventWriter() {
  for (;;) {
    std::deque<EventRecord> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !events_.empty(); });
      if (stopping_) {
        return;
      }
      batch.swap(events_);
    }
    for (auto it = batch.begin(); it != batch.end(); ++it) {
      if (!recorder_->record(*it)) {
        {
          // This one and the rest are kept, in order, for when the API answers.
          std::lock_guard lock(mu_);
          events_.insert(events_.begin(), std::make_move_iterator(it),
                         std::make_move_iterator(batch.end()));
          while (events_.size() > kMaxQueuedEvents) {
            events_.pop_front();
          }
        }
        if (!sleep(std::chrono::seconds(1))) {
          return;
        }
        break;
      }
    }
  }
}

}  // namespace kernelet::agent
