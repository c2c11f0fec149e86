#include "agent/logs/logs_endpoint.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "agent/logs/log_options.h"
#include "agent/logs/log_stream.h"
#include "agent/logs/log_target.h"

namespace kernelet::agent::logs {
namespace {

using server::Response;

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<const PodSnapshot> findPod(const NodeSnapshot& node, const std::string& ns,
                                           const std::string& name, const std::string& uid) {
  for (const auto& [pod_uid, pod] : node.pods) {
    if (pod->namespace_ == ns && pod->name == name && (uid.empty() || uid == pod_uid)) {
      return pod;
    }
  }
  return nullptr;
}

bool hasContainer(const PodSnapshot& pod, const std::string& name) {
  return std::find(pod.containers.begin(), pod.containers.end(), name) != pod.containers.end() ||
         std::find(pod.init_containers.begin(), pod.init_containers.end(), name) !=
             pod.init_containers.end();
}

Response containerLogs(const server::Request& req, const SnapshotPublisher& pods,
                       const std::string& pod_log_dir) {
  // NS, POD, [UID,] CONTAINER
  if (req.params.size() < 3 || req.params.size() > 4) {
    return Response::error(400, "expected /containerLogs/NAMESPACE/POD/CONTAINER");
  }
  const std::string& ns = req.params[0];
  const std::string& name = req.params[1];
  const std::string& container = req.params.back();
  std::string uid = req.params.size() == 4 ? req.params[2] : "";
  auto options = parseLogOptions(req.query, nowNanos());
  if (!options) {
    return Response::error(400, options.error().message());
  }
  auto pod = findPod(*pods.current(), ns, name, uid);
  if (!pod) {
    return Response::error(404, "pod \"" + name + "\" does not exist");
  }
  if (!hasContainer(*pod, container)) {
    return Response::error(404,
                           "container \"" + container + "\" not found in pod \"" + name + "\"");
  }
  auto run =
      logRun(findContainerStatus(pod->status, container), name, container, options->previous);
  if (!run) {
    return Response::error(400, run.error().message());
  }
  // Asked at each poll of a followed log, on the server's thread: the
  // latest snapshot says whether this run still runs.
  LogStream::Running running = [&pods, uid = pod->uid, container, run = *run,
                                previous = options->previous] {
    if (previous) {
      return false;
    }
    auto now = pods.current();
    auto it = now->pods.find(uid);
    if (it == now->pods.end()) {
      return false;
    }
    const ContainerStatus* s = findContainerStatus(it->second->status, container);
    return s != nullptr && runIsRunning(*s, run);
  };
  auto stream = LogStream::open(containerLogDir(pod_log_dir, ns, name, pod->uid, container), *run,
                                *options, std::move(running));
  if (!stream) {
    return Response::error(500, stream.error().message());
  }
  Response r;
  r.stream = std::move(*stream);
  return r;
}

}  // namespace

void addLogEndpoints(server::Endpoints& endpoints, const SnapshotPublisher& pods,
                     std::string pod_log_dir) {
  endpoints.container_logs = [&pods, dir = std::move(pod_log_dir)](
                                 const server::Request& req, const server::Responder& respond) {
    respond(containerLogs(req, pods, dir));
  };
}

}  // namespace kernelet::agent::logs
