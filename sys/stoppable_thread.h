#pragma once
// A thread that runs its owner's loop until told to stop, with the mutex and
// condition variable the owner guards its own state with: stop() wakes every
// wait, and each wait ends early once stopped. Declare it as the owner's last
// member: it is then destroyed first, stopping and joining the thread before
// the state that thread uses goes.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace kernelet {

class StoppableThread {
 public:
  StoppableThread() = default;
  ~StoppableThread() { join(); }
  StoppableThread(const StoppableThread&) = delete;
  StoppableThread& operator=(const StoppableThread&) = delete;

  // Runs `body` on the thread (once).
  void start(std::function<void()> body) { thread_ = std::thread(std::move(body)); }
  // Tells the thread to stop (returns at once); stopping several threads
  // this way before joining any lets their last calls overlap.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
  }
  // Stops and waits for the thread.
  void join() {
    stop();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  std::mutex& mutex() { return mu_; }
  // Wakes the thread's waits to look at the owner's state again.
  void notify() { cv_.notify_all(); }
  // With `lock` held on mutex(): waits until `ready()` or stop(), at most
  // `timeout`. False once stopped.
  template <typename Ready>
  bool waitFor(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds timeout, Ready ready) {
    cv_.wait_for(lock, timeout, [&] { return stopping_ || ready(); });
    return !stopping_;
  }
  template <typename Ready>
  bool wait(std::unique_lock<std::mutex>& lock, Ready ready) {
    cv_.wait(lock, [&] { return stopping_ || ready(); });
    return !stopping_;
  }
  // Sleeps `d` unless stopped meanwhile. False once stopped.
  bool sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return waitFor(lock, d, [] { return false; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace kernelet
