#pragma once
// Events on a thread of their own, so a burst of them never holds up a status
// patch (the kubelet's event broadcaster is apart from its status manager
// too). While the API is away they wait, at most kMaxQueued of them, oldest
// dropped first, and go out in order when it answers.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "agent/events.h"
#include "apiclient/api_client.h"

namespace kernelet::agent {

class EventWriter {
 public:
  static constexpr size_t kMaxQueued = 1000;

  // Starts the thread.
  EventWriter(apiclient::ApiClient& client, const std::string& node_name);
  // Stops the thread; what is still queued is dropped.
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // From any thread: an Event to record.
  void record(EventRecord e);
  // Lets the thread go soon (the destructor waits for it): stopping several
  // writers this way first overlaps their last API calls.
  void stop();

 private:
  void run();
  bool sleep(std::chrono::milliseconds d);

  EventRecorder recorder_;  // the thread's alone
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;          // guarded by mu_
  std::deque<EventRecord> queue_;  // guarded by mu_
  std::thread thread_;             // last: started once the rest is built
};

}  // namespace kernelet::agent
