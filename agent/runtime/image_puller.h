#pragma once
// Registry pulls off the event loop, on a fixed pool of worker threads (a pull
// is network and disk bound and can take minutes); results come back on the
// loop through a LoopQueue, so pod workers never block on a registry.
//
// The kubelet pulls one image at a time by default (serializeImagePulls) or
// at most maxParallelImagePulls at once; here the pool's size is that bound.
// One pull per image reference and set of credentials at a time: every
// waiter for both shares it. Pulls of one image with other credentials (a pod
// with imagePullSecrets, a pod without) are separate pulls, as the kubelet's
// are per pod: a pull that fails for want of credentials does not fail a pod
// that has them, and no pod's credentials are used for another's pull. (What
// one pod pulled is on the node for the next, as with the kubelet.) A pull whose waiters have all
// gone (their pods were deleted) is dropped if it has not started; one that has started runs to its
// end (a pull cannot be stopped midway) and lands in the store for the next pod. No thread outlives
// the puller: the destructor joins the pool.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "images/image_store.h"
#include "images/registry.h"
#include "sys/event_loop.h"
#include "sys/loop_queue.h"
#include "sys/result.h"

namespace kernelet::agent {

class ImagePuller {
 public:
  using Done = std::function<void(Result<images::ImageRecord>)>;
  // With how long the pull itself took (its wait for a worker not counted),
  // for the kubelet's Pulled event.
  using TimedDone = std::function<void(Result<images::ImageRecord>, std::chrono::nanoseconds)>;
  // What a worker runs for one reference (ImageStore::pull, or a fake in tests).
  using Credentials = std::vector<images::RegistryCredentials>;
  using PullFn =
      std::function<Result<images::ImageRecord>(const std::string& ref, const Credentials& creds)>;
  static constexpr int kDefaultWorkers = 3;

  class State;  // shared by the puller, its workers and its tickets
  // One waiter's interest in a pull. Move-only; destroying it (or withdraw())
  // takes the waiter away: its Done never runs. Outliving the puller is fine.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(std::weak_ptr<State> state, std::string key, uint64_t id)
        : state_(std::move(state)), key_(std::move(key)), id_(id) {}
    Ticket(Ticket&& other) noexcept { *this = std::move(other); }
    Ticket& operator=(Ticket&& other) noexcept;
    ~Ticket() { withdraw(); }
    void withdraw();
    // Forgets the waiter without withdrawing it: its Done runs when the pull ends.
    void release() {
      state_.reset();
      id_ = 0;
    }

   private:
    std::weak_ptr<State> state_;
    std::string key_;  // the job's: reference and credentials' digest
    uint64_t id_ = 0;
  };

  static Result<std::unique_ptr<ImagePuller>> create(EventLoop& loop, images::ImageStore& store,
                                                     images::RegistryOptions options,
                                                     int workers = kDefaultWorkers);
  static Result<std::unique_ptr<ImagePuller>> create(EventLoop& loop, PullFn pull, int workers);
  // Drops the queued pulls (their waiters are not called), waits for the
  // running ones and joins every worker.
  ~ImagePuller();
  ImagePuller(const ImagePuller&) = delete;
  ImagePuller& operator=(const ImagePuller&) = delete;

  // `done` runs on the loop, once, unless the ticket is gone by then. Called
  // on the loop's thread only (as are the tickets' destructors).
  // `creds` are the pod's, tried in order (then the node's auth file's).
  [[nodiscard]] Ticket request(const std::string& ref, const Credentials& creds, TimedDone done);
  [[nodiscard]] Ticket request(const std::string& ref, const Credentials& creds, Done done) {
    return request(
        ref, creds,
        TimedDone([done = std::move(done)](Result<images::ImageRecord> r,
                                           std::chrono::nanoseconds) { done(std::move(r)); }));
  }
  [[nodiscard]] Ticket request(const std::string& ref, Done done) {
    return request(ref, {}, std::move(done));
  }
  // As request(), with the waiter kept until the pull ends: callers whose
  // interest may end first pass a callback that checks a weak pointer.
  void pull(const std::string& ref, const Credentials& creds, TimedDone done);
  void pull(const std::string& ref, Done done) { request(ref, std::move(done)).release(); }

  // What the pool is doing, for tests and metrics.
  struct Counts {
    size_t queued = 0;
    size_t running = 0;
  };
  Counts counts() const;
  // The references queued or being pulled: image GC keeps what they name.
  std::vector<std::string> pulling() const;

 private:
  ImagePuller(std::shared_ptr<State> state, std::unique_ptr<LoopQueue> done)
      : state_(std::move(state)), done_(std::move(done)) {}
  void work();

  std::shared_ptr<State> state_;
  std::unique_ptr<LoopQueue> done_;
  std::vector<std::thread> workers_;
};

}  // namespace kernelet::agent
