#pragma once
// Events on a thread of their own, so a burst of them never holds up a status
// patch (the kubelet's event broadcaster is apart from its status manager
// too). While the API is away they wait, at most kMaxQueued of them, oldest
// dropped first, and go out in order when it answers.

#include <deque>
#include <string>

#include "agent/events.h"
#include "apiclient/api_client.h"
#include "sys/stoppable_thread.h"

namespace kernelet::agent {

class EventWriter {
 public:
  static constexpr size_t kMaxQueued = 1000;

  // Starts the thread.
  EventWriter(apiclient::ApiClient& client, const std::string& node_name);
  // Stops the thread; what is still queued is dropped.
  ~EventWriter() = default;
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // From any thread: an Event to record.
  void record(EventRecord e);
  // Lets the thread go soon (the destructor waits for it): stopping several
  // writers this way first overlaps their last API calls.
  void stop() { thread_.stop(); }

 private:
  void run();

  EventRecorder recorder_;         // the thread's alone
  std::deque<EventRecord> queue_;  // guarded by thread_.mutex()
  StoppableThread thread_;         // last: stopped and joined first
};

}  // namespace kernelet::agent
