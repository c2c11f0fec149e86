#pragma once
// The pod worker driven through the fake runtime, for the lifecycle tests
// (agent_lifecycle_test.cc, agent_adoption_test.cc): no root, no kernel, and
// one of the pod's seconds lasts 10 ms, so back-offs and grace periods run at
// their real values without sleeping through them.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "agent/events/field_path.h"
#include "agent/lifecycle/admission.h"
#include "agent/lifecycle/pod_worker.h"
#include "agent/model/pod.h"
#include "support/fake_runtime.h"

namespace kernelet::agent {

using kernelet::testing::FakeRuntime;
using Kind = ContainerState::Kind;
using Strings = std::vector<std::string>;

class Lifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    loop_ = std::make_unique<EventLoop>(std::move(*loop));
    auto timers = TimerQueue::create(*loop_);
    ASSERT_TRUE(timers);
    timers_ = std::move(*timers);
    runtime_ = std::make_unique<FakeRuntime>(*timers_);
    ctx_.loop = loop_.get();
    ctx_.timers = timers_.get();
    ctx_.runtime = runtime_.get();
    ctx_.node_ip = "192.168.7.2";
    ctx_.node = {.allocatable_milli_cpu = 2000, .allocatable_memory = 4LL << 30, .max_pods = 110};
    ctx_.config.pod_log_dir = "/nonexistent/logs";
    ctx_.second = std::chrono::milliseconds(10);
    ctx_.status_changed = [this](const std::string&) { history_.push_back(worker_->status()); };
    ctx_.event = [this](const Pod& pod, const std::string& container, const std::string& type,
                        const std::string& reason, const std::string& message) {
      events_.push_back(type + " " + reason + " " + container + ": " + message);
      // What the agent makes of it for the API: the event's fieldPath.
      event_paths_.push_back(reason + " " + containerFieldPath(pod, container));
    };
  }
  void TearDown() override {
    worker_.reset();
    runtime_.reset();
  }

  Pod parse(const std::string& spec) {
    auto pods = parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {name: web, uid: u1}\n" + spec,
                               "web.yaml");
    EXPECT_TRUE(pods) << pods.error().message();
    Pod p = (*pods)[0].pod;
    p.uid = "u1";
    return p;
  }
  PodWorker& run(const std::string& spec) {
    worker_ = std::make_shared<PodWorker>(ctx_, parse(spec), "hash");
    worker_->start();
    return *worker_;
  }
  // Runs the loop until `done` holds, at most `limit` of wall-clock time.
  bool until(const std::function<bool()>& done,
             std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > end) {
        return false;
      }
      (void)loop_->runOnce(std::chrono::milliseconds(5));
    }
    return true;
  }
  // Runs the loop for `d` (a settle time, to show that nothing more happens).
  void settle(std::chrono::milliseconds d) {
    until([] { return false; }, d);
  }
  const ContainerStatus& ctr(const std::string& name) {
    const PodStatus& s = worker_->status();
    for (const auto* list :
         {&s.init_container_statuses, &s.container_statuses, &s.ephemeral_container_statuses}) {
      for (const auto& c : *list) {
        if (c.name == name) {
          return c;
        }
      }
    }
    ADD_FAILURE() << "no status for container " << name;
    static ContainerStatus none;
    return none;
  }
  bool running(const std::string& name) { return ctr(name).state.kind == Kind::kRunning; }
  std::string condition(const std::string& type) {
    for (const auto& c : worker_->status().conditions) {
      if (c.type == type) {
        return c.status;
      }
    }
    return "";
  }
  bool sawEvent(const std::string& prefix) {
    return std::any_of(events_.begin(), events_.end(),
                       [&](const std::string& e) { return e.starts_with(prefix); });
  }
  // The waiting reasons container `name` went through, each once in order.
  Strings waitingReasons(const std::string& name) {
    Strings out;
    for (const auto& s : history_) {
      for (const auto* list : {&s.init_container_statuses, &s.container_statuses}) {
        for (const auto& c : *list) {
          if (c.name == name && c.state.kind == Kind::kWaiting &&
              (out.empty() || out.back() != c.state.reason)) {
            out.push_back(c.state.reason);
          }
        }
      }
    }
    return out;
  }
  bool terminate(std::optional<int64_t> grace = {}) {
    bool done = false;
    worker_->terminate([&done] { done = true; }, grace);
    return until([&done] { return done; });
  }

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<FakeRuntime> runtime_;
  NodeContext ctx_;
  std::shared_ptr<PodWorker> worker_;
  std::vector<PodStatus> history_;
  Strings events_;
  Strings event_paths_;  // "REASON FIELDPATH" of each event
};

}  // namespace kernelet::agent
