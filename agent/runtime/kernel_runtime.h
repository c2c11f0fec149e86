#pragma once
// The real PodRuntime: pod sandboxes (PodSandbox: cgroup, network, IPC/UTS),
// volumes (PodVolumes), images (the store, ImagePuller) and container runs
// (an overlayfs rootfs, a cgroup with its device filter and limits, the spec
// from buildContainerSpec, the CRI log, isolation::start and the exit watch).
// The only part of the agent that includes isolation/, cgroups/, netns/ and
// images/ headers, with the rest of agent/runtime/.

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "agent/config/config.h"
#include "agent/lifecycle/admission.h"
#include "agent/runtime/image_puller.h"
#include "agent/runtime/pod_sandbox.h"
#include "agent/runtime/runtime.h"
#include "agent/runtime/volumes.h"
#include "images/image_store.h"
#include "sys/event_loop.h"
#include "sys/timer_queue.h"

namespace kernelet::isolation {
class CriLogWriter;
class Process;
class StartWatch;
}  // namespace kernelet::isolation

namespace kernelet::agent::runtime {

class KernelRuntime : public PodRuntime {
 public:
  // Everything given must outlive the runtime.
  KernelRuntime(const AgentConfig& config, EventLoop& loop, TimerQueue& timers,
                images::ImageStore& images, ImagePuller& puller, SandboxEnv sandbox,
                NodeResources node);
  // Kills and releases whatever is still running (workers normally stopped it).
  ~KernelRuntime() override;

  Result<SandboxInfo> createSandbox(const Pod& pod, QosClass qos,
                                    const std::string& pod_hash) override;
  Result<void> setUpVolumes(const Pod& pod, const PodRuntimeInfo& info,
                            PodObjects* objects) override;
  Result<bool> refreshVolumes(const Pod& pod, const PodRuntimeInfo& info,
                              PodObjects* objects) override;
  void destroySandbox(const std::string& pod_uid, std::function<void()> done) override;

  void ensureImage(const std::string& ref, const std::string& pull_policy,
                   std::function<void()> pulling, std::function<void(ImageOutcome)> done) override;

  void startContainer(const ContainerRequest& request,
                      std::function<void(StartResult)> done) override;
  Result<void> watchExit(ContainerHandle h, std::function<void(ContainerExit)> done) override;
  Result<void> signal(ContainerHandle h, int sig) override;
  Result<void> kill(ContainerHandle h) override;
  void remove(ContainerHandle h) override;
  Result<std::unique_ptr<ExecProcess>> exec(ContainerHandle h, const std::vector<std::string>& argv,
                                            int out_fd,
                                            std::chrono::milliseconds setup_timeout) override;
  Result<ContainerStats> stats(ContainerHandle h) override;
  // Live restore (issue #16): not built yet; adopt() finds nothing and the
  // agent removes what a dead predecessor left at start (recovery.h).
  std::optional<AdoptedPod> adopt(const Pod& pod, QosClass qos, const PodRuntimeInfo& info,
                                  PodObjects* objects) override;
  void noteTerminating(const std::string& pod_uid,
                       std::chrono::system_clock::time_point kill_at) override;
  std::vector<LeftoverPod> leftovers() const override;
  void stopLeftover(const std::string& pod_uid, std::function<void()> done) override;
  void leaveRunning() override;

 private:
  struct Instance;
  struct PodEntry {
    std::optional<PodSandbox> sandbox;
    std::optional<PodVolumes> volumes;
  };
  // Creates everything of a run but its process; failures are StartFailures.
  std::expected<std::unique_ptr<Instance>, StartFailure> create(const ContainerRequest& r,
                                                                PodEntry& pod);
  Result<std::unique_ptr<isolation::CriLogWriter>> openLog(const ContainerRequest& r);
  // A start whose child is still setting up: the loop waits for its report
  // (isolation::watchStart) with the spec's deadline, never blocking on it.
  struct Starting;
  void started(uint64_t id, Result<isolation::Process> proc);
  void onExited(ContainerHandle h, ContainerExit exit);
  Instance* find(ContainerHandle h) const;

  const AgentConfig& config_;
  EventLoop& loop_;
  TimerQueue& timers_;
  images::ImageStore& images_;
  ImagePuller& puller_;
  SandboxEnv sandbox_env_;
  NodeResources node_;
  std::map<std::string, PodEntry> pods_;  // by uid
  std::map<ContainerHandle, std::unique_ptr<Instance>> containers_;
  // The record of each image last found or pulled, by name: what a start mounts.
  std::map<std::string, images::ImageRecord> records_;
  std::map<uint64_t, std::unique_ptr<Starting>> starting_;
  // Sandboxes being taken down on the loop (PodSandbox::destroyAsync).
  std::map<uint64_t, std::unique_ptr<SandboxTeardown>> teardowns_;
  uint64_t next_id_ = 1;
  ContainerHandle next_handle_ = 1;
};

}  // namespace kernelet::agent::runtime
