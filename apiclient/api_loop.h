#pragma once
// The agent's network thread: one boost::asio::io_context run by one thread,
// on which every API watch, list and token request of the agent runs as
// callbacks and timers. However many pods, ConfigMaps and Secrets are
// watched, this is one thread (plus asio's own resolver thread, once a name is
// resolved).
//
// Objects that live on the loop (reflectors, timers, calls) are started,
// cancelled and destroyed on its thread: runOnLoop() is how another thread
// does that and waits for it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace boost::asio {
class io_context;
}

namespace kernelet::apiclient {

class ApiLoop {
 public:
  ApiLoop();
  ~ApiLoop();  // stop()
  ApiLoop(const ApiLoop&) = delete;
  ApiLoop& operator=(const ApiLoop&) = delete;

  // Starts the thread. Work posted before start() runs once it does.
  void start();
  // Ends the loop and joins its thread; what is still queued is dropped (its
  // owners must have stopped first). Idempotent.
  void stop();

  boost::asio::io_context& context();
  // Runs `fn` on the loop thread, later.
  void post(std::function<void()> fn);
  // Runs `fn` on the loop thread and returns once it ran: at once when called
  // from the loop thread or when no loop thread runs (nothing else can touch
  // the loop's objects then).
  void runOnLoop(const std::function<void()>& fn);
  bool onLoopThread() const { return std::this_thread::get_id() == loop_thread_id_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::atomic<std::thread::id> loop_thread_id_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;  // guarded by mu_: the thread runs the context
};

// A timer on the loop whose callback never runs once cancel() (or another
// after()) was called, unlike a bare steady_timer's, whose aborted handler
// still runs later. after() and cancel() from the loop thread only; its owner
// cancels it there before it is destroyed (anywhere).
class LoopTimer {
 public:
  explicit LoopTimer(ApiLoop& loop);
  ~LoopTimer();
  LoopTimer(const LoopTimer&) = delete;
  LoopTimer& operator=(const LoopTimer&) = delete;

  void after(std::chrono::steady_clock::duration d, std::function<void()> fn);
  void cancel();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace kernelet::apiclient
