#include "agent/sources/mirror_pods.h"

#include <set>

#include "agent/log.h"
#include "apiclient/json_fields.h"
#include "apiclient/objects.h"

namespace kernelet::agent {

void MirrorPods::setStaticPods(std::vector<MirrorPod> pods) {
  std::lock_guard lock(mu_);
  static_pods_ = std::move(pods);
}

bool MirrorPods::observed(const std::string& key, const std::string& uid, bool deleted,
                          bool being_deleted) {
  std::lock_guard lock(mu_);
  if (deleted) {
    if (auto m = mirror_uid_.find(key); m != mirror_uid_.end() && m->second == uid) {
      mirror_uid_.erase(m);
    }
    return true;  // recreate it if its static pod still runs
  }
  mirror_uid_[key] = uid;
  if (being_deleted) {
    // Someone deleted the mirror: it goes at once and comes back fresh.
    mirror_deletes_[key] = uid;
    return true;
  }
  return false;
}

std::optional<std::string> MirrorPods::mirrorUid(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto m = mirror_uid_.find(key);
  if (m == mirror_uid_.end()) {
    return std::nullopt;
  }
  return m->second;
}

// The manifest's pod, marked as a mirror and owned by the node.
std::optional<std::string> MirrorPods::mirrorObject(const MirrorPod& m,
                                                    const std::string& node_uid) const {
  auto parsed = apiclient::parseApiJson(m.object, "static pod " + m.namespace_ + "/" + m.name);
  if (!parsed || !parsed->IsObject()) {
    return std::nullopt;
  }
  rapidjson::Document& d = *parsed;
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
  owner.AddMember("name", rapidjson::Value(node_.c_str(), a), a);
  owner.AddMember("uid", rapidjson::Value(node_uid.c_str(), a), a);
  owner.AddMember("controller", true, a);
  meta.RemoveMember("ownerReferences");
  meta.AddMember("ownerReferences", rapidjson::Value(rapidjson::kArrayType), a);
  meta["ownerReferences"].PushBack(owner, a);
  d.RemoveMember("status");
  return apiclient::serialize(d);
}

bool MirrorPods::sync(const std::string& node_uid, std::vector<Created>& created) {
  if (node_uid.empty()) {
    return false;  // the owner reference needs the node registered
  }
  std::vector<MirrorPod> wanted;
  std::map<std::string, std::string> have;
  {
    std::lock_guard lock(mu_);
    wanted = static_pods_;
    have = mirror_uid_;
  }
  bool ok = true;
  std::set<std::string> keys;
  for (const auto& m : wanted) {
    std::string key = m.namespace_ + "/" + m.name;
    keys.insert(key);
    if (have.contains(key)) {
      continue;
    }
    auto object = mirrorObject(m, node_uid);
    if (!object) {
      continue;
    }
    auto made = client_.create(apiclient::resourcePath("v1", "pods", m.namespace_), *object);
    if (made) {
      auto answer = apiclient::parseApiJson(*made, "mirror pod " + key);
      auto meta = apiclient::decodeMeta(*made, "response");
      Created c{key, meta ? meta->uid : "", answer ? apiclient::statusOf(*answer) : "{}"};
      {
        std::lock_guard lock(mu_);
        mirror_uid_[key] = c.uid;
      }
      created.push_back(std::move(c));
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
    auto r = client_.remove(apiclient::resourcePath("v1", "pods", ns, name),
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

}  // namespace kernelet::agent
