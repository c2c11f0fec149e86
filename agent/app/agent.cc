#include "agent/app/agent.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "agent/app/build_tag.h"
#include "agent/app/oom_score.h"
#include "agent/events/field_path.h"
#include "agent/log/log.h"
#include "agent/model/pod_names.h"
#include "agent/node/node_allocatable.h"
#include "agent/runtime/holder_keeper.h"
#include "agent/runtime/recovery.h"
#include "agent/stats/instrumentation.h"
#include "agent/version.h"
#include "apiclient/objects.h"
#include "cgroups/cgroups.h"
#include "sys/fileio.h"

namespace kernelet::agent {
namespace {

// --node-ip, else the first IPv4 address of an interface that is up and not
// loopback or one of ours, else loopback (a node without a network).
std::string pickNodeIp(const std::string& flag, const std::string& bridge) {
  if (!flag.empty()) {
    return flag;
  }
  ifaddrs* list = nullptr;
  std::string found;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* a = list; a != nullptr && found.empty(); a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET ||
          (a->ifa_flags & IFF_LOOPBACK) || !(a->ifa_flags & IFF_UP) || bridge == a->ifa_name) {
        continue;
      }
      char buf[INET_ADDRSTRLEN];
      auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
      found = ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    }
    ::freeifaddrs(list);
  }
  return found.empty() ? "127.0.0.1" : found;
}

// Images, labels or annotations differ, or ephemeral containers were added
// (what a running pod takes without a restart).
bool changedInPlace(const Pod& running, const Pod& wanted) {
  // A readiness gate's condition changed: Ready is computed again.
  if (running.labels != wanted.labels || running.annotations != wanted.annotations ||
      running.active_deadline_seconds != wanted.active_deadline_seconds ||
      running.gate_conditions != wanted.gate_conditions) {
    return true;
  }
  auto images = [](const Pod& p) {
    std::vector<std::string> out;
    for (const auto* list : {&p.init_containers, &p.containers}) {
      for (const auto& c : *list) {
        out.push_back(c.image);
      }
    }
    return out;
  };
  auto ephemeral = [](const Pod& p) {
    std::vector<std::string> out;
    for (const auto& c : p.ephemeral_containers) {
      out.push_back(c.name);
    }
    return out;
  };
  return images(running) != images(wanted) || ephemeral(running) != ephemeral(wanted);
}

// The pod's cgroup as the sandbox lays it out, for the snapshot's readers.
std::string podCgroup(const std::string& cgroup_root, const Pod& pod, const PodStatus& status) {
  cgroups::QosClass q = status.qos_class == "Guaranteed"  ? cgroups::QosClass::kGuaranteed
                        : status.qos_class == "Burstable" ? cgroups::QosClass::kBurstable
                                                          : cgroups::QosClass::kBestEffort;
  return cgroups::podCgroupPath(cgroup_root, q, pod.uid);
}

// The holder on RUN_DIR/holder/holder.sock (started if none answers), or null
// with the reason logged: the agent then runs without live restore.
std::unique_ptr<runtime::HolderKeeper> connectHolder(const std::string& run_dir) {
  std::string dir = run_dir + "/holder";
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    log::error("Live restore is off: cannot make the holder's directory",
               {{"path", dir}, {"err", std::strerror(errno)}});
    return nullptr;
  }
  auto keeper = runtime::HolderKeeper::connect(dir + "/holder.sock", runtime::defaultHolderPath());
  if (!keeper) {
    log::error("Live restore is off: no holder keeps the pods' pipes and exits",
               {{"err", keeper.error().message()}});
    return nullptr;
  }
  log::info("Holder connected", {{"pid", std::to_string((*keeper)->holderPid())},
                                 {"seesExits", (*keeper)->seesExits() ? "true" : "false"}});
  return std::move(*keeper);
}

std::string readOr(const std::string& path, const std::string& fallback) {
  auto r = readFile(path);
  return r ? *r : fallback;
}

}  // namespace

Result<std::unique_ptr<Agent>> Agent::create(AgentConfig config) {
  std::unique_ptr<Agent> a(new Agent());
  log::setVerbosity(config.verbosity);
  config.node_name = nodeName(config.node_name);
  if (*buildTag() != '\0') {
    log::info("Starting kernelet",
              {{"version", KERNELET_VERSION}, {"build", buildTag()}, {"node", config.node_name}});
  } else {
    log::info("Starting kernelet", {{"version", KERNELET_VERSION}, {"node", config.node_name}});
  }
  // Before any thread starts: it changes the environment.
  ServiceEnvironment service = takeServiceEnvironment();
  if (auto r = setOomScoreAdj(config.oom_score_adj); !r) {
    log::warning("The agent keeps the OOM score it was given", {{"err", r.error().message()}});
  }

  TRY(cgroups::Hierarchy h, cgroups::detect());
  bool enforce = true;
  if (auto ok = cgroups::requireControllers(h); !ok) {
    if (!config.limits_unenforced) {
      return std::unexpected(withContext(
          ok.error(),
          "kernelet run needs cgroup v2 with cpu, memory and pids to enforce pod resources "
          "(run it in the test VM: scripts/vm-run, or pass --limits-unenforced to run "
          "without limits)"));
    }
    enforce = false;
    log::warning("POD RESOURCE LIMITS ARE NOT ENFORCED: " + ok.error().message() +
                 " (--limits-unenforced)");
    std::fprintf(stderr,
                 "kernelet: WARNING: cpu, memory and pids limits of pods are NOT enforced on this "
                 "host (--limits-unenforced)\n");
  }
  TRY_VOID(addContext(
      cgroups::ensureQosTree(h.mount, config.cgroup_root,
                             enforce ? cgroups::kRequiredControllers : std::vector<std::string>{}),
      "create the QoS cgroups"));
  NodeResources node = readNodeResources(config);
  if (enforce) {
    TRY_VOID(enforceNodeAllocatable(h.mount, config, node));
  }

  TRY(EventLoop loop, EventLoop::create());
  a->loop_ = std::make_unique<EventLoop>(std::move(loop));
  TRY(a->timers_, TimerQueue::create(*a->loop_));
  TRY(SdNotifier notifier, SdNotifier::open(service.notify_socket));
  a->service_ =
      std::make_unique<ServiceNotifier>(std::move(notifier), service.watchdog, *a->timers_);
  a->service_->start();  // a first ping now: what follows until run() may take a while
  a->status_files_ = std::make_unique<StatusFiles>(*a->timers_, config.root_dir + "/pods");

  netns::NetworkConfig net;
  net.pod_cidr = config.pod_cidr;
  net.run_dir = config.run_dir + "/netns";
  net.state_dir = config.root_dir + "/ipam";
  TRY(netns::Network network, addContext(netns::Network::open(net), "set up the pod network"));
  a->network_ = std::make_unique<netns::Network>(std::move(network));

  // Read before anything removes or rewrites them: recovery, the first writes.
  LastStatuses last = readLastStatuses(config.root_dir + "/pods");
  for (const auto& e : last.errors) {
    log::error("Read a previous agent's pod status", {{"err", e}});
  }
  a->last_statuses_ = std::move(last.by_uid);

  // Live restore: the node's one holder keeps each container run's log pipes
  // and exit status across this agent's death (README "Live restore"). Without
  // it nothing can be adopted, and what a previous agent left is removed.
  a->keeper_ = connectHolder(config.run_dir);
  Recovered rec = cleanUpLeftovers(
      {h.mount, config.cgroup_root, config.root_dir, config.run_dir, a->keeper_ != nullptr},
      a->network_.get());
  if (rec.cgroups + rec.mounts + rec.networks > 0) {
    log::info("Removed what a previous agent left", {{"cgroups", std::to_string(rec.cgroups)},
                                                     {"mounts", std::to_string(rec.mounts)},
                                                     {"networks", std::to_string(rec.networks)}});
  }
  for (const auto& e : rec.errors) {
    log::error("Clean up leftovers", {{"err", e}});
  }

  TRY(images::ImageStore store, images::ImageStore::open(config.root_dir + "/images"));
  a->images_ = std::make_unique<images::ImageStore>(std::move(store));
  images::RegistryOptions registry;
  // The node's credentials, used after a pod's imagePullSecrets: the first
  // auth file found where the kubelet looks (its root dir, the working
  // directory being left out here, ~/.docker, /.docker), config.json before
  // the old .dockercfg.
  const char* home = ::getenv("HOME");
  std::string home_dir = home != nullptr ? home : "";
  for (const std::string& path :
       {config.root_dir + "/config.json", home_dir + "/.docker/config.json",
        std::string("/.docker/config.json"), config.root_dir + "/.dockercfg",
        home_dir + "/.dockercfg", std::string("/.dockercfg")}) {
    if (::access(path.c_str(), R_OK) == 0) {
      registry.docker_config = path;
      break;
    }
  }
  TRY(a->puller_, ImagePuller::create(*a->loop_, *a->images_, registry));

  NodeContext& ctx = a->ctx_;
  ctx.config = config;
  ctx.loop = a->loop_.get();
  ctx.timers = a->timers_.get();
  a->runtime_ = std::make_unique<runtime::KernelRuntime>(
      ctx.config, *a->loop_, *a->timers_, *a->images_, *a->puller_,
      SandboxEnv{.config = &ctx.config,
                 .cgroup_mount = h.mount,
                 .enforce_limits = enforce,
                 .network = a->network_.get(),
                 .node_resolv_conf = readOr(config.resolv_conf, ""),
                 .node_hosts = readOr("/etc/hosts", "")},
      node, a->keeper_.get());
  ctx.runtime = a->runtime_.get();
  ctx.node = node;
  ctx.node_ip = pickNodeIp(config.node_ip, net.bridge);
  Agent* self = a.get();
  ctx.status_changed = [self](const std::string& uid) { self->writeStatus(uid); };
  ctx.admitted_pods = [self](const std::string& uid) {
    std::vector<const Pod*> out;
    for (const auto& [other, w] : self->workers_) {
      if (other != uid && w->active()) {
        out.push_back(&w->pod());
      }
    }
    return out;
  };
  ctx.last_status = [self](const std::string& uid) -> std::optional<PodStatus> {
    auto it = self->last_statuses_.find(uid);
    if (it == self->last_statuses_.end()) {
      return std::nullopt;
    }
    PodStatus s = std::move(it->second);
    self->last_statuses_.erase(it);  // one adoption per pod: needed once
    return s;
  };

  // SIGTERM and SIGINT arrive on the loop; SIGPIPE must not kill the agent.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    return sysError("signalfd");
  }
  a->signals_.reset(sfd);
  TRY_VOID(a->loop_->add(sfd, EPOLLIN, [self](uint32_t) { self->onSignal(); }));

  if (!config.kubeconfig.empty()) {
    TRY(apiclient::ClusterAccess access,
        addContext(apiclient::loadKubeconfig(config.kubeconfig), "--kubeconfig"));
    NodeFacts facts = readNodeFacts(ctx.config, ctx.node, ctx.node_ip);
    // One network thread for every watch and token request, however many pods.
    a->net_ = std::make_unique<apiclient::ApiLoop>();
    a->net_->start();
    // rest_client_requests_total on /metrics.
    stats::installApiRequestMetrics();
    // Before the Node is registered: its status says where the server listens.
    TRY_VOID(a->startServer(&access));
    facts.kubelet_port = a->server_port_;
    TRY(a->cluster_, ClusterSync::start(
                         ctx.config, access, *a->loop_, *a->net_, facts,
                         [self](std::map<std::string, ApiPod> pods) {
                           self->api_pods_ = std::move(pods);
                           self->reconcile();
                         },
                         [self] {
                           if (!self->api_synced_) {
                             self->api_synced_ = true;
                             self->reconcile();  // and the leftovers
                             self->api_delivered_ = true;
                             self->notifyReady();  // the API's pods are adopted
                           }
                         }));
    TRY(a->objects_, ObjectCache::create(a->cluster_->client(), *a->net_, *a->loop_,
                                         [self](const PodRefs& changed) {
                                           for (auto& [uid, w] : self->workers_) {
                                             if (refersToAny(podRefs(w->pod()), changed)) {
                                               w->objectsChanged();
                                             }
                                           }
                                         }));
    ctx.objects = a->objects_.get();
    TRY(a->services_, ServiceCache::create(a->cluster_->client(), *a->net_, *a->loop_, [self] {
          // Containers that could not start for want of the Services start now.
          for (auto& [uid, w] : self->workers_) {
            w->objectsChanged();
          }
        }));
    ctx.services = a->services_.get();
    ctx.node_event = [self](const std::string& type, const std::string& reason,
                            const std::string& message) {
      self->cluster_->event({.involved_kind = "Node",
                             .involved_name = self->ctx_.config.node_name,
                             .involved_uid = self->ctx_.config.node_name,
                             .type = type,
                             .reason = reason,
                             .message = message});
    };
    log::info("Joining the cluster", {{"server", access.server}, {"node", config.node_name}});
    ctx.event = [self](const Pod& pod, const std::string& container, const std::string& type,
                       const std::string& reason, const std::string& message) {
      self->cluster_->event({.involved_name = pod.name,
                             .involved_namespace = pod.namespace_,
                             .involved_uid = pod.uid,
                             .field_path = containerFieldPath(pod, container),
                             .type = type,
                             .reason = reason,
                             .message = message});
    };
  }
  if (!config.pod_manifest_path.empty()) {
    TRY(a->manifests_,
        addContext(ManifestSource::open(
                       *a->loop_, config.pod_manifest_path, config.node_name,
                       [self] { self->reconcile(); },
                       [](const Error& e) {
                         log::error("Could not process manifest file", {{"err", e.message()}});
                       }),
                   "--pod-manifest-path"));
  }
  if (config.kubeconfig.empty()) {
    TRY_VOID(a->startServer(nullptr));
  }
  a->startEviction(h.mount);
  a->shutdown_ =
      ShutdownManager::start(*a->loop_, *a->timers_,
                             {.grace_seconds = config.shutdown_grace_seconds,
                              .critical_seconds = config.shutdown_grace_critical_seconds,
                              .bus_address = dbus::systemBusAddress()},
                             [self](bool critical, int64_t grace, std::function<void()> done) {
                               self->shutDownNode(critical, grace, std::move(done));
                             });
  a->startGarbageCollection();
  log::info("Node ready", {{"node", config.node_name},
                           {"nodeIP", ctx.node_ip},
                           {"allocatableCPU", std::to_string(ctx.node.allocatable_milli_cpu) + "m"},
                           {"allocatableMemory", std::to_string(ctx.node.allocatable_memory)},
                           {"limitsEnforced", enforce ? "true" : "false"}});
  return a;
}

Agent::~Agent() {
  gc_.reset();  // its timers and hooks reach the workers, the store and the puller
  // First: its handlers read the snapshots and ask the reviewers.
  server_.reset();
  access_reviewer_.reset();  // their calls live on the network thread
  token_reviewer_.reset();
  shutdown_.reset();       // its callbacks reach the workers
  eviction_.reset();       // so do its
  eviction_disk_.reset();  // joins its thread, which reads the snapshots
  ctx_.objects = nullptr;
  objects_.reset();  // its watches use the cluster's client
  ctx_.services = nullptr;
  services_.reset();
  cluster_.reset();  // its threads may post to the loop: stopped first
  net_.reset();      // joins the network thread, once nothing lives on it
  manifests_.reset();
  // A worker's destructor kills what is still running, or, once the agent
  // leaves its pods running (leavePodsRunning), releases it to the next agent.
  workers_.clear();
  runtime_.reset();  // before the image puller and the network it uses
}

Result<void> Agent::run() {
  reconcile();
  snapshots_.publish();
  notifyReady();
  if (cluster_) {
    // The API server may be away: the unit must not stay "activating" for it.
    timers_->after(kApiReadyWait, [this] {
      if (!service_->isReady()) {
        log::info("Ready without the API server's pods: they start once it answers");
      }
      api_delivered_ = true;
      notifyReady();
    });
  }
  while (!leaving_ && !(stopping_ && workers_.empty() && leftovers_stopping_.empty())) {
    TRY_VOID(loop_->runOnce(std::chrono::milliseconds(-1)));
    snapshots_.publish();  // what this turn changed, once
  }
  log::info(leaving_ ? "Exiting, the pods left running" : "All pods stopped, exiting");
  service_->stopping(leaving_
                         ? "Exiting, leaving " + std::to_string(workers_.size()) + " pods running"
                         : "Exiting");
  return {};
}

// READY=1 once the pods of the first delivery of every source are adopted:
// the static manifests are read in create() and reconciled by run(); the API
// server's pods count once they arrived, or once kApiReadyWait has passed.
void Agent::notifyReady() {
  if (service_->isReady() || (cluster_ && !api_delivered_)) {
    return;
  }
  service_->ready("Running " + std::to_string(workers_.size()) + " pods");
  log::info("Ready", {{"pods", std::to_string(workers_.size())}});
}

void Agent::onSignal() {
  signalfd_siginfo si{};
  while (::read(signals_.get(), &si, sizeof si) == sizeof si) {
  }
  if (stopping_) {
    log::info("Second stop signal: killing every pod now");
    for (auto& [uid, w] : workers_) {
      w->terminate({}, 0);
    }
    return;
  }
  if (!ctx_.config.stop_pods_on_exit) {
    return leavePodsRunning(static_cast<int>(si.ssi_signo));
  }
  stopping_ = true;
  log::info("Stop signal: terminating every pod", {{"signal", std::to_string(si.ssi_signo)}});
  reconcile();
}

void Agent::shutDownNode(bool critical, int64_t grace_seconds, std::function<void()> done) {
  std::vector<std::string> group;
  for (const auto& [uid, w] : workers_) {
    if (w->active() && !terminating_.contains(uid) && isCriticalPod(w->pod()) == critical) {
      group.push_back(uid);
    }
  }
  service_->status("Node shutdown: terminating " + std::to_string(group.size()) +
                   (critical ? " critical pods" : " pods"));
  // `done` runs off the workers' stacks, once the last of the group ended.
  auto left = std::make_shared<size_t>(group.size());
  auto finish = [this, left, done = std::move(done)] {
    if (*left > 0) {
      --*left;
    }
    if (*left == 0) {
      timers_->after(std::chrono::seconds(0), done);
    }
  };
  if (group.empty()) {
    finish();
    return;
  }
  std::string now = runtime::nowRfc3339();
  for (const std::string& uid : group) {
    std::shared_ptr<PodWorker> w = workers_[uid];
    terminating_.insert(uid);
    shut_down_[uid] = now;
    log::v(1, "Shutdown manager killing pod with gracePeriod",
           {{"pod", w->pod().namespace_ + "/" + w->pod().name},
            {"gracePeriod", std::to_string(shutdownGrace(w->pod(), grace_seconds))}});
    writeStatus(uid);
    // Once terminated it is no longer "being stopped": a later reconcile may
    // remove it (manifest gone, agent stopping) or replace it (new spec).
    w->terminate(
        [this, uid, finish] {
          terminating_.erase(uid);
          finish();
        },
        shutdownGrace(w->pod(), grace_seconds));
  }
}

void Agent::reconcile() {
  // What should run: the static pods and the API's pods for this node.
  struct Wanted {
    const Pod* pod;
    std::string hash;
    bool from_api = false, deleting = false;
    int64_t grace = 30;
  };
  std::map<std::string, StaticPod> statics;
  std::map<std::string, Wanted> desired;
  if (!stopping_) {
    if (manifests_) {
      statics = manifests_->pods();
    }
    for (const auto& [uid, sp] : statics) {
      desired[uid] = {&sp.pod, sp.hash};
    }
    for (const auto& [uid, ap] : api_pods_) {
      desired[uid] = {&ap.pod, ap.hash, true, !ap.deletion_timestamp.empty(),
                      ap.deletion_grace_seconds};
    }
  }
  if (!stopping_) {
    // Kept while stopping: the pods being terminated still show their specs.
    std::map<std::string, std::shared_ptr<const std::string>> sources;
    for (const auto& [uid, sp] : statics) {
      auto old = source_json_.find(uid);
      sources[uid] = old != source_json_.end() && old->second && *old->second == sp.json
                         ? old->second
                         : std::make_shared<const std::string>(sp.json);
    }
    for (const auto& [uid, ap] : api_pods_) {
      sources[uid] = ap.json;
    }
    source_json_ = std::move(sources);
  }
  if (cluster_ && !stopping_) {
    publishStaticPods(statics);
  }
  // Pods no longer wanted, wanted with another spec, or being deleted in the
  // API are stopped first.
  for (auto& [uid, w] : workers_) {
    auto it = desired.find(uid);
    bool gone = it == desired.end();
    bool deleting = !gone && it->second.deleting;
    if (!gone && !deleting && !it->second.pod->refused.empty() && w->pod().refused.empty() &&
        !terminating_.contains(uid)) {
      // A running pod changed to set a field kernelet refuses (an ephemeral
      // container added with one, activeDeadlineSeconds set): the change is
      // not applied, and said once, as a warning and a Warning event.
      if (std::string& said = refused_updates_[uid]; said != it->second.pod->refused) {
        said = it->second.pod->refused;
        log::warning("Pod update refused",
                     {{"pod", w->pod().namespace_ + "/" + w->pod().name}, {"message", said}});
        if (ctx_.event) {
          ctx_.event(w->pod(), "", "Warning", std::string(kUnsupportedPodSpec), said);
        }
      }
      continue;
    }
    if (!gone && !deleting && it->second.hash == w->hash() && !terminating_.contains(uid) &&
        (changedInPlace(w->pod(), *it->second.pod) || w->resourcesChanged(*it->second.pod))) {
      log::v(2, "SyncLoop UPDATE (in place)", {{"pod", w->pod().namespace_ + "/" + w->pod().name}});
      w->update(*it->second.pod);
      continue;
    }
    if ((gone || deleting || it->second.hash != w->hash()) && !terminating_.contains(uid)) {
      log::v(2,
             gone       ? "SyncLoop REMOVE"
             : deleting ? "SyncLoop DELETE"
                        : "SyncLoop UPDATE",
             {{"pod", w->pod().namespace_ + "/" + w->pod().name}});
      std::optional<int64_t> grace;
      if (deleting) {
        grace = it->second.grace;
      }
      terminateWorker(uid, *w, grace, deleting && cluster_ != nullptr);
    }
  }
  std::optional<std::set<std::string>> left;  // the previous agent's pods, asked once
  auto leftover = [this, &left](const std::string& uid) {
    if (!left) {
      left.emplace();
      for (const auto& l : runtime_->leftovers()) {
        left->insert(l.uid);
      }
    }
    return left->contains(uid);
  };
  for (auto& [uid, want] : desired) {
    if (workers_.contains(uid)) {
      continue;  // running, or still terminating its previous spec
    }
    if (want.deleting && !leftover(uid)) {
      continue;  // on its way out (one a previous agent left is adopted and stopped below)
    }
    log::v(2, "SyncLoop ADD", {{"pod", want.pod->namespace_ + "/" + want.pod->name}, {"uid", uid}});
    auto w = std::make_shared<PodWorker>(ctx_, *want.pod, want.hash);
    workers_[uid] = w;
    std::vector<const Pod*> active;
    for (const auto& [other, ow] : workers_) {
      if (other != uid && ow->active()) {
        active.push_back(&ow->pod());
      }
    }
    Admission adm = admit(w->pod(), active, ctx_.node);
    if (!adm.admitted) {
      w->reject(adm.reason, adm.message);
      continue;
    }
    if (auto why = pressureRejection(w->pod())) {
      w->reject("Evicted", *why);
      continue;
    }
    w->start();
    if (want.deleting || w->state() == PodState::kTerminating) {
      // Adopted from a previous agent while the API deletes it, or while that
      // agent was terminating it: the termination goes on here.
      std::optional<int64_t> grace;
      if (want.deleting) {
        grace = want.grace;
      }
      terminateWorker(uid, *w, grace, want.deleting && cluster_ != nullptr);
    }
  }
  retainObjects();
  stopLeftovers();
}

void Agent::terminateWorker(const std::string& uid, PodWorker& w, std::optional<int64_t> grace,
                            bool final_delete) {
  terminating_.insert(uid);
  std::string ns = w.pod().namespace_, name = w.pod().name;
  w.terminate(
      [this, uid, ns, name, final_delete] {
        auto finish = [this, uid] {
          // Off the worker's own stack: the worker is destroyed here.
          timers_->after(std::chrono::seconds(0), [this, uid] {
            removePod(uid);
            reconcile();
          });
        };
        if (final_delete) {
          cluster_->finalDelete(uid, ns, name, finish);
        } else {
          finish();
        }
      },
      grace);
}

void Agent::retainObjects() {
  if (!objects_) {
    return;
  }
  std::vector<PodRefs> refs;
  for (const auto& [uid, w] : workers_) {
    refs.push_back(podRefs(w->pod()));
  }
  objects_->retain(refs);
}

// The static pods' mirror pods, as the manifests now are.
void Agent::publishStaticPods(const std::map<std::string, StaticPod>& statics) {
  std::map<std::string, std::string> hashes;
  for (const auto& [uid, sp] : statics) {
    hashes[uid] = sp.hash;
  }
  if (published_statics_ == hashes) {
    return;  // every reconcile comes here; the mirrors change only with the manifests
  }
  published_statics_ = std::move(hashes);
  std::vector<MirrorPod> mirrors;
  for (const auto& [uid, sp] : statics) {
    auto named = apiclient::withString(sp.json, {"metadata", "name"}, sp.pod.name);
    if (named) {
      named = apiclient::withString(*named, {"metadata", "namespace"}, sp.pod.namespace_);
    }
    if (named) {
      named = apiclient::withString(*named, {"spec", "nodeName"}, sp.pod.node_name);
    }
    for (const auto& [k, v] : sp.pod.annotations) {
      if (named) {
        named = apiclient::withString(*named, {"metadata", "annotations", k}, v);
      }
    }
    if (named) {
      mirrors.push_back({sp.pod.namespace_, sp.pod.name, sp.hash, *named});
    }
  }
  cluster_->setStaticPods(std::move(mirrors));
}

void Agent::writeStatus(const std::string& uid) {
  auto it = workers_.find(uid);
  if (it == workers_.end()) {
    return;
  }
  const PodWorker& w = *it->second;
  PodStatus status = w.status();
  markNodeDecisions(uid, status);
  PodSnapshot snap = podSnapshot(w.pod(), status, w.created(),
                                 podCgroup(ctx_.config.cgroup_root, w.pod(), status));
  if (auto src = source_json_.find(uid); src != source_json_.end()) {
    snap.source_json = src->second;
  }
  snapshots_.update(std::move(snap));
  if (invalidPodName(w.pod())) {
    return;  // rejected at admission: its uid is not fit to be a path component
  }
  // Written with the rest of this turn's changes, as the pod is by then.
  status_files_->changed(uid, [this, uid]() -> std::optional<StatusFiles::Content> {
    auto it = workers_.find(uid);
    if (it == workers_.end()) {
      return std::nullopt;
    }
    const PodWorker& w = *it->second;
    PodStatus status = w.status();
    markNodeDecisions(uid, status);
    const std::string& phase = status.phase;
    return StatusFiles::Content{podJson(w.pod(), status, w.created()),
                                phase == "Succeeded" || phase == "Failed"};
  });
  log::v(3, "Pod status",
         {{"pod", w.pod().namespace_ + "/" + w.pod().name}, {"phase", status.phase}});
  if (cluster_) {
    cluster_->podStatus(uid, w.pod().namespace_, w.pod().name, podStatusJson(status),
                        isStaticPod(w.pod()));
  }
}

void Agent::removePod(const std::string& uid) {
  auto it = workers_.find(uid);
  if (it == workers_.end()) {
    return;
  }
  const Pod& pod = it->second->pod();
  status_files_->forget(uid);  // a pending write would bring the file back
  std::error_code ec;
  std::filesystem::remove_all(ctx_.config.root_dir + "/pods/" + uid, ec);
  std::filesystem::remove_all(
      ctx_.config.pod_log_dir + "/" + pod.namespace_ + "_" + pod.name + "_" + uid, ec);
  workers_.erase(it);
  terminating_.erase(uid);
  refused_updates_.erase(uid);
  shut_down_.erase(uid);
  evicted_.erase(uid);
  snapshots_.remove(uid);
  retainObjects();
  // Its resources are free: resizes Deferred for lack of them are tried again.
  for (auto& [other, w] : workers_) {
    w->retryResize();
  }
}

}  // namespace kernelet::agent
