#pragma once
// Mirror pods: the API's read-only copy of each static pod, so that the
// cluster sees what runs from the manifest directory (the kubelet's
// mirror_client). They live with the pod sources, not with the Node, because
// they are the static pod source seen from the API: which mirrors exist
// follows the manifests, and the pod watch is where they come back to us
// (marked by the kubernetes.io/config.mirror annotation). The Node is only
// their owner reference.
//
// Thread-safe: the loop sets the static pods, the pod watch reports mirrors
// seen, the status writer's thread syncs them with the API.

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "apiclient/api_client.h"

namespace kernelet::agent {

inline constexpr const char* kMirrorAnnotation = "kubernetes.io/config.mirror";

// A static pod whose mirror the agent keeps in the API.
struct MirrorPod {
  std::string namespace_, name, hash;
  std::string object;  // the manifest's pod as JSON, without status
};

class MirrorPods {
 public:
  MirrorPods(apiclient::ApiClient& client, std::string node_name)
      : client_(client), node_(std::move(node_name)) {}

  // The static pods now wanted.
  void setStaticPods(std::vector<MirrorPod> pods);
  // From the pod watch: the mirror `uid` of "ns/name" was seen (`deleted`: it
  // is gone; `being_deleted`: someone asked to delete it). True when a sync is
  // needed (to recreate it).
  bool observed(const std::string& key, const std::string& uid, bool deleted, bool being_deleted);
  // The uid of the mirror of "ns/name", when there is one.
  std::optional<std::string> mirrorUid(const std::string& key) const;

  // A mirror made by sync(): the status writer gives it its pod's status.
  struct Created {
    std::string key, uid;
    std::string status;  // {"status": ...} as the API answered
  };
  // Creates the mirrors that are missing (owned by the Node `node_uid`) and
  // deletes those of static pods that are gone or that someone deleted.
  // False when something is left to do (or the node is not registered yet).
  bool sync(const std::string& node_uid, std::vector<Created>& created);

 private:
  std::optional<std::string> mirrorObject(const MirrorPod& m, const std::string& node_uid) const;

  apiclient::ApiClient& client_;
  std::string node_;
  mutable std::mutex mu_;
  // Guarded by mu_:
  std::vector<MirrorPod> static_pods_;
  std::map<std::string, std::string> mirror_uid_;      // "ns/name" -> uid of the mirror
  std::map<std::string, std::string> mirror_deletes_;  // mirrors someone deleted: "ns/name" -> uid
};

}  // namespace kernelet::agent
