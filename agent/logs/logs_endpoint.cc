#include "agent/logs/logs_endpoint.h"

#include <algorithm>
#include <atomic>
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
  for (const auto* list : {&pod.containers, &pod.init_containers, &pod.ephemeral_containers}) {
    if (std::find(list->begin(), list->end(), name) != list->end()) {
      return true;
    }
  }
  return false;
}

// Followed logs at once, at most: each holds an inotify instance, and root
// has 128 of them for the whole node (fs.inotify.max_user_instances).
constexpr int kMaxFollows = 32;

// A followed log counted while it lasts (destroyed on the server's thread).
class CountedStream : public server::BodySource {
 public:
  CountedStream(std::unique_ptr<server::BodySource> inner, std::shared_ptr<std::atomic<int>> count)
      : inner_(std::move(inner)), count_(std::move(count)) {
    ++*count_;
  }
  ~CountedStream() override { --*count_; }
  CountedStream(const CountedStream&) = delete;
  CountedStream& operator=(const CountedStream&) = delete;
  Result<State> read(std::string& out, size_t max) override { return inner_->read(out, max); }
  int waitFd() const override { return inner_->waitFd(); }
  std::chrono::milliseconds pollAfter() const override { return inner_->pollAfter(); }

 private:
  std::unique_ptr<server::BodySource> inner_;
  std::shared_ptr<std::atomic<int>> count_;
};

Response containerLogs(const server::Request& req, const SnapshotPublisher& pods,
                       const std::string& pod_log_dir,
                       const std::shared_ptr<std::atomic<int>>& follows) {
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
    return Response::error(logOptionsStatus(options.error()), options.error().message());
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
  if (options->follow && *follows >= kMaxFollows) {
    return Response::error(429, "too many followed logs on this node (" +
                                    std::to_string(kMaxFollows) + "); try again later");
  }
  auto stream = LogStream::open(containerLogDir(pod_log_dir, ns, name, pod->uid, container), *run,
                                *options, std::move(running));
  if (!stream) {
    return Response::error(500, stream.error().message());
  }
  Response r;
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");  // the pod's text, never HTML
  if (options->follow) {
    r.stream = std::make_unique<CountedStream>(std::move(*stream), follows);
  } else {
    r.stream = std::move(*stream);
  }
  return r;
}

}  // namespace

void addLogEndpoints(server::Endpoints& endpoints, const SnapshotPublisher& pods,
                     std::string pod_log_dir) {
  auto follows = std::make_shared<std::atomic<int>>(0);
  endpoints.container_logs = [&pods, dir = std::move(pod_log_dir), follows](
                                 const server::Request& req, const server::Responder& respond) {
    respond(containerLogs(req, pods, dir, follows));
  };
}

}  // namespace kernelet::agent::logs
