#include "apiclient/api_loop.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>

namespace kernelet::apiclient {

namespace net = boost::asio;

struct ApiLoop::Impl {
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work{ioc.get_executor()};
};

ApiLoop::ApiLoop() : impl_(std::make_unique<Impl>()) {}

ApiLoop::~ApiLoop() { stop(); }

net::io_context& ApiLoop::context() { return impl_->ioc; }

void ApiLoop::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) {
    return;
  }
  running_ = true;
  thread_ = std::thread([this] {
    loop_thread_id_ = std::this_thread::get_id();
    impl_->ioc.run();
    std::lock_guard lock(mu_);
    running_ = false;
    cv_.notify_all();
  });
}

void ApiLoop::stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) {
      return;
    }
  }
  impl_->work.reset();
  impl_->ioc.stop();
  thread_.join();
  loop_thread_id_ = std::thread::id();
}

void ApiLoop::post(std::function<void()> fn) { net::post(impl_->ioc, std::move(fn)); }

void ApiLoop::runOnLoop(const std::function<void()>& fn) {
  if (onLoopThread()) {
    fn();
    return;
  }
  // Whoever claims `state->claimed` first runs fn: the loop, or this thread
  // once the loop has ended without getting to it.
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool claimed = false, done = false;
  };
  auto state = std::make_shared<State>();
  bool loop_runs = false;
  {
    std::lock_guard lock(mu_);
    loop_runs = running_;
  }
  if (loop_runs) {
    net::post(impl_->ioc, [state, &fn] {
      {
        std::lock_guard lock(state->mu);
        if (state->claimed) {
          return;
        }
        state->claimed = true;
      }
      fn();
      std::lock_guard lock(state->mu);
      state->done = true;
      state->cv.notify_all();
    });
    for (;;) {
      {
        std::unique_lock lock(state->mu);
        if (state->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return state->done; })) {
          return;
        }
        if (state->claimed) {
          continue;  // running on the loop right now
        }
      }
      std::lock_guard lock(mu_);
      if (!running_) {
        break;  // the loop ended before it got there
      }
    }
  }
  {
    std::lock_guard lock(state->mu);
    if (state->claimed) {
      return;  // cannot happen once the loop ended, but never run fn twice
    }
    state->claimed = true;
  }
  fn();
}

struct LoopTimer::Impl {
  explicit Impl(net::io_context& ioc) : timer(ioc) {}
  net::steady_timer timer;
  uint64_t generation = 0;
};

LoopTimer::LoopTimer(ApiLoop& loop) : impl_(std::make_shared<Impl>(loop.context())) {}

// A wait still pending holds impl_ until it ran (cancelled) on the loop.
LoopTimer::~LoopTimer() = default;

void LoopTimer::after(std::chrono::steady_clock::duration d, std::function<void()> fn) {
  uint64_t generation = ++impl_->generation;
  impl_->timer.expires_after(d);
  impl_->timer.async_wait(
      [impl = impl_, generation, fn = std::move(fn)](const boost::system::error_code& ec) {
        if (ec || impl->generation != generation) {
          return;
        }
        fn();
      });
}

void LoopTimer::cancel() {
  ++impl_->generation;
  impl_->timer.cancel();
}

}  // namespace kernelet::apiclient
