#pragma once
// Pod statuses to the API, from one writer thread (the kubelet's status
// manager): each pod's latest status goes as a strategic merge patch against
// what the API has (only what changed, with the pod's uid as a guard), a
// static pod's to its mirror pod; a pod that finished terminating gets its
// final status and then the DELETE that removes it from the API. Mirror pods
// are synced on the same thread, before the statuses that need them. The API
// being away stops none of the pods: writes wait and are retried.

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "agent/sources/mirror_pods.h"
#include "apiclient/api_client.h"
#include "sys/loop_queue.h"
#include "sys/stoppable_thread.h"

namespace kernelet::agent {

class StatusWriter {
 public:
  // Starts the thread. `to_loop` carries the callbacks of finalDelete back
  // to the loop.
  StatusWriter(apiclient::ApiClient& client, MirrorPods& mirrors, LoopQueue& to_loop);
  ~StatusWriter() = default;
  StatusWriter(const StatusWriter&) = delete;
  StatusWriter& operator=(const StatusWriter&) = delete;

  // From the loop: the latest v1.PodStatus of a pod.
  void podStatus(const std::string& uid, const std::string& namespace_, const std::string& name,
                 const std::string& status, bool is_static);
  // From the loop: the pod terminated. Its last status is sent, then the final
  // DELETE (grace 0, uid precondition); `done` runs on the loop afterwards.
  void finalDelete(const std::string& uid, const std::string& namespace_, const std::string& name,
                   std::function<void()> done);
  // The static pods ("ns/name") still wanted: the others' statuses are forgotten.
  void retainStatic(const std::set<std::string>& keys);

  // From the pod watch, what the API has: a pod bound to us (or a mirror,
  // `bound` false) with its {"status": ...}, and a pod gone.
  void apiStatus(const std::string& uid, std::string status, bool bound);
  void apiPodGone(const std::string& uid);
  // The mirror pods need a sync (static pods changed, a mirror was deleted).
  void mirrorsChanged();
  // From the node heartbeat, every 10 s: the Node (the mirrors' owner) is
  // registered with `node_uid`; the mirrors are checked again.
  void nodeBeat(const std::string& node_uid);

  // Lets the thread go soon; the destructor waits for it.
  void stop() { thread_.stop(); }

 private:
  struct Pending {
    std::string namespace_, name, status;
    bool is_static = false;
  };
  struct Deletion {
    std::string uid, namespace_, name;
    std::function<void()> done;
  };
  void run();
  bool writeStatus(const std::string& uid);
  bool deletePod(Deletion& d);
  bool syncMirrors();

  apiclient::ApiClient& client_;
  MirrorPods& mirrors_;
  LoopQueue& to_loop_;

  // Guarded by thread_.mutex():
  bool mirrors_dirty_ = false;
  std::string node_uid_;                           // empty until the Node is registered
  std::map<std::string, Pending> dirty_;           // uid -> latest status to send
  std::map<std::string, std::string> api_status_;  // uid -> the API's {"status":...}
  std::set<std::string> bound_;                    // uids of the API's pods bound to us
  // Static pods: "ns/name" -> (pod uid, latest status), for a mirror made anew.
  std::map<std::string, std::pair<std::string, Pending>> static_status_;
  std::deque<Deletion> deletions_;
  StoppableThread thread_;  // last: stopped and joined first
};

}  // namespace kernelet::agent
