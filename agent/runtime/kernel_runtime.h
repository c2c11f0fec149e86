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
#include "agent/runtime/run_keeper.h"
#include "agent/runtime/run_records.h"
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

struct Instance;
struct LeftoverStop;

class KernelRuntime : public PodRuntime {
 public:
  // Everything given must outlive the runtime. `keeper` (may be null: then
  // nothing outlives the agent) keeps each run's pidfd and log pipes for the
  // next agent. The pods a previous agent recorded for this boot (what
  // recovery left, recovery.h) are read now: adopt() and leftovers() answer
  // from them.
  KernelRuntime(const AgentConfig& config, EventLoop& loop, TimerQueue& timers,
                images::ImageStore& images, ImagePuller& puller, SandboxEnv sandbox,
                NodeResources node, RunKeeper* keeper = nullptr);
  // Kills and releases whatever is still running (workers normally stopped
  // it), unless leaveRunning() was called.
  ~KernelRuntime() override;

  Result<SandboxInfo> createSandbox(const Pod& pod, QosClass qos,
                                    const std::string& pod_hash) override;
  Result<void> setUpVolumes(const Pod& pod, const PodRuntimeInfo& info,
                            PodObjects* objects) override;
  Result<bool> refreshVolumes(const Pod& pod, const PodRuntimeInfo& info,
                              PodObjects* objects) override;
  void destroySandbox(const std::string& pod_uid, std::function<void()> done) override;

  void ensureImage(const std::string& ref, const std::string& pull_policy,
                   const Result<std::vector<images::RegistryCredentials>>& creds,
                   std::function<void()> pulling, std::function<void(ImageOutcome)> done) override;

  void startContainer(const ContainerRequest& request,
                      std::function<void(StartResult)> done) override;
  Result<void> watchExit(ContainerHandle h, std::function<void(ContainerExit)> done) override;
  Result<void> signal(ContainerHandle h, int sig) override;
  Result<void> kill(ContainerHandle h) override;
  void remove(ContainerHandle h) override;
  Result<std::unique_ptr<ExecProcess>> exec(ContainerHandle h, const std::vector<std::string>& argv,
                                            const ExecIo& io,
                                            std::chrono::milliseconds setup_timeout) override;
  Result<ContainerStats> stats(ContainerHandle h) override;
  // resize.cc
  Result<void> resizeContainer(ContainerHandle h, const ContainerResources& resources) override;
  Result<void> resizePod(const Pod& pod) override;
  Result<uint64_t> podMemoryUsage(const std::string& pod_uid) override;
  // attach.cc
  Result<AttachedIo> attach(ContainerHandle h, const AttachIo& io,
                            std::function<void()> ended) override;
  void detach(ContainerHandle h, uint64_t session) override;
  void attachStdinEnded(ContainerHandle h, uint64_t session) override;
  // Live restore (issue #16): adopt.cc and leftovers.cc.
  std::optional<AdoptedPod> adopt(const Pod& pod, QosClass qos, const PodRuntimeInfo& info,
                                  PodObjects* objects) override;
  void noteTerminating(const std::string& pod_uid,
                       std::chrono::system_clock::time_point kill_at) override;
  std::vector<LeftoverPod> leftovers() const override;
  void stopLeftover(const std::string& pod_uid, std::function<void()> done) override;
  void leaveRunning() override;

 private:
  struct PodEntry {
    std::optional<PodSandbox> sandbox;
    std::optional<PodVolumes> volumes;
    PodRecord record;  // written to recordPath() whenever it changes
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
  // attach.cc: stdinOnce closed the run's stdin; its record and keeper follow.
  void stdinClosedForGood(Instance& inst);

  // ---- the pod records (run_records.h) ------------------------------------
  void saveRecord(PodEntry& pod);
  // The run started (or ended): the pod's record says so.
  void recordRun(const Instance& inst);
  void loadRecords();
  // ---- adoption (adopt.cc) ------------------------------------------------
  struct AdoptInput;
  AdoptedContainer adoptRun(AdoptInput& in, const std::string& name, const ContainerRecord& c);
  // The spec an exec in `inst` runs under; an adopted run's is built here, once.
  Result<void> specFor(Instance& inst);
  // The exit of an adopted run, which is not our child.
  Result<void> watchAdopted(ContainerHandle h, Instance& inst);
  RunEnd exitOfGone(RunRecord& run, std::optional<KeptRun>& kept, isolation::Process* proc);
  std::unique_ptr<isolation::CriLogWriter> reopenLog(const RunRecord& run,
                                                     std::optional<KeptRun>& kept);
  // Removes what a record names (its runs' rootfs, the sandbox, the volumes,
  // the record itself), blocking while the pod cgroup empties: for a pod
  // whose adoption failed, which its worker may create again at once.
  void removeNow(const PodRecord& r);
  void leftoverStopped(const std::string& uid);
  // The runtime goes while leftovers are being stopped: their runs come off
  // the loop (left as they are, for the next agent's recovery and adoption).
  void abandonStops();

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
  // What previous agents recorded for this boot, not adopted yet: by uid.
  std::map<std::string, PodRecord> found_;
  std::map<std::string, std::unique_ptr<LeftoverStop>> stopping_;
  RunKeeper* keeper_;
  // The keeper must hold every live run, and a holder that died and was
  // replaced holds none: every kKeepCheck the runs it lacks are kept again
  // (keep_check.cc), so that the agent's death, whenever it comes, loses nothing.
  static constexpr std::chrono::seconds kKeepCheck{10};
  void checkKept();
  TimerQueue::Id keep_timer_ = 0;
  std::string boot_id_;
  bool leave_running_ = false;
  uint64_t next_id_ = 1;
  ContainerHandle next_handle_ = 1;
};

}  // namespace kernelet::agent::runtime
