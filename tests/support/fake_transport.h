#pragma once
// A Transport for tests of what runs on one (remote_command, port_forward):
// it runs on a test's io_context, records what the code under test wrote,
// finished, reset and consumed, and lets the test play the client.

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <map>
#include <string>
#include <vector>

#include "agent/streams/transport.h"

namespace kernelet::testing {

class FakeTransport : public agent::streams::Transport {
 public:
  using StreamId = agent::streams::StreamId;
  explicit FakeTransport(boost::asio::io_context& ioc) : ioc_(ioc) {}

  boost::asio::any_io_executor executor() override { return ioc_.get_executor(); }
  void start(agent::streams::TransportEvents events) override {
    events_ = std::move(events);
    started = true;
  }
  // Accepted at once (sent(true) posted), unless hold_writes: then the test
  // releases them with releaseWrites(), as a client that reads slowly.
  void write(StreamId id, std::string data, std::function<void(bool)> sent) override {
    written[id] += data;
    writes++;
    if (hold_writes) {
      held_.push_back(std::move(sent));
      return;
    }
    boost::asio::post(ioc_, [sent = std::move(sent), this] { sent(!closed_); });
  }
  void consumed(StreamId id, size_t n) override { consumed_bytes[id] += n; }
  void finish(StreamId id) override { finished[id] = true; }
  void reset(StreamId id) override { resets[id] = true; }
  void close() override {
    close_calls++;
    clientGone("closed by the server");
  }

  // ---- the client's side ----
  void open(StreamId id, agent::streams::StreamHeaders h) { events_.opened(id, h); }
  void send(StreamId id, std::string_view data) { events_.data(id, data); }
  void halfClose(StreamId id) { events_.half_closed(id); }
  void clientReset(StreamId id) { events_.reset(id); }
  void clientGone(const std::string& why) {
    if (closed_) {
      return;
    }
    closed_ = true;
    if (events_.closed) {
      events_.closed(Error{.op = "connection", .detail = why});
    }
  }
  void releaseWrites() {
    auto held = std::move(held_);
    held_.clear();
    for (auto& s : held) {
      s(!closed_);
    }
  }

  bool started = false, hold_writes = false;
  int writes = 0, close_calls = 0;
  std::map<StreamId, std::string> written;
  std::map<StreamId, size_t> consumed_bytes;
  std::map<StreamId, bool> finished, resets;

 private:
  boost::asio::io_context& ioc_;
  agent::streams::TransportEvents events_;
  std::vector<std::function<void(bool)>> held_;
  bool closed_ = false;
};

}  // namespace kernelet::testing
