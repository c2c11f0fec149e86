#include "agent/events/event_writer.h"

namespace kernelet::agent {

EventWriter::EventWriter(apiclient::ApiClient& client, const std::string& node_name)
    : recorder_(client, node_name), thread_([this] { run(); }) {}

EventWriter::~EventWriter() {
  stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void EventWriter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

void EventWriter::record(EventRecord e) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      queue_.pop_front();  // the oldest go first when the API is away long
    }
    queue_.push_back(std::move(e));
  }
  cv_.notify_all();
}

bool EventWriter::sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_; });
  return !stopping_;
}

void EventWriter::run() {
  for (;;) {
    std::deque<EventRecord> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        return;
      }
      batch.swap(queue_);
    }
    for (auto it = batch.begin(); it != batch.end(); ++it) {
      if (!recorder_.record(*it)) {
        {
          // This one and the rest are kept, in order, for when the API answers.
          std::lock_guard lock(mu_);
          queue_.insert(queue_.begin(), std::make_move_iterator(it),
                        std::make_move_iterator(batch.end()));
          while (queue_.size() > kMaxQueued) {
            queue_.pop_front();
          }
        }
        if (!sleep(std::chrono::seconds(1))) {
          return;
        }
        break;
      }
    }
  }
}

}  // namespace kernelet::agent
