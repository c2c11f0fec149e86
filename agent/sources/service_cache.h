#pragma once
// The cluster's Services, for the containers' environment variables: one
// list+watch of /api/v1/services on the network thread (the kubelet's
// serviceLister; the Node authorizer lets a node list and watch them all),
// read by the pod loop through ServiceLister (pod_objects.h). Until the first list arrived
// the lister says so, and the kubelet's answer to a pod then is an error
// (agent/model/service_env.h kServicesNotSynced): a container started
// without KUBERNETES_SERVICE_HOST would not find its API server.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "agent/sources/pod_objects.h"
#include "apiclient/api_client.h"
#include "apiclient/api_loop.h"
#include "apiclient/objects.h"
#include "apiclient/reflector.h"
#include "sys/event_loop.h"
#include "sys/loop_queue.h"

namespace kernelet::agent {

class ServiceCache : public ServiceLister {
 public:
  // Starts the watch. `synced` runs on `loop` once the first list is in, so
  // that containers that failed for want of it are tried again at once.
  // `net` must outlive the cache.
  static Result<std::unique_ptr<ServiceCache>> create(apiclient::ApiClient& client,
                                                      apiclient::ApiLoop& net, EventLoop& loop,
                                                      std::function<void()> synced);
  ~ServiceCache() override;  // stops the watch: nothing is called afterwards

  std::optional<std::vector<apiclient::Service>> services() const override;

 private:
  explicit ServiceCache(std::function<void()> synced) : synced_(std::move(synced)) {}
  void onEvent(const apiclient::ObjectEvent& e);
  void onSynced();

  std::function<void()> synced_;
  std::unique_ptr<LoopQueue> to_loop_;
  std::unique_ptr<apiclient::Reflector> reflector_;
  mutable std::mutex mu_;
  bool listed_ = false;  // guarded by mu_, like services_
  std::map<std::pair<std::string, std::string>, apiclient::Service> services_;  // (ns, name)
};

}  // namespace kernelet::agent
