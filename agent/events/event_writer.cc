#include "agent/events/event_writer.h"

namespace kernelet::agent {

EventWriter::EventWriter(apiclient::ApiClient& client, const std::string& node_name)
    : recorder_(client, node_name) {
  thread_.start([this] { run(); });
}

void EventWriter::record(EventRecord e) {
  {
    std::lock_guard lock(thread_.mutex());
    if (queue_.size() >= kMaxQueued) {
      queue_.pop_front();  // the oldest go first when the API is away long
    }
    queue_.push_back(std::move(e));
  }
  thread_.notify();
}

void EventWriter::run() {
  for (;;) {
    std::deque<EventRecord> batch;
    {
      std::unique_lock lock(thread_.mutex());
      if (!thread_.wait(lock, [this] { return !queue_.empty(); })) {
        return;
      }
      batch.swap(queue_);
    }
    for (auto it = batch.begin(); it != batch.end(); ++it) {
      if (!recorder_.record(*it)) {
        {
          // This one and the rest are kept, in order, for when the API answers.
          std::lock_guard lock(thread_.mutex());
          queue_.insert(queue_.begin(), std::make_move_iterator(it),
                        std::make_move_iterator(batch.end()));
          while (queue_.size() > kMaxQueued) {
            queue_.pop_front();
          }
        }
        if (!thread_.sleep(std::chrono::seconds(1))) {
          return;
        }
        break;
      }
    }
  }
}

}  // namespace kernelet::agent
