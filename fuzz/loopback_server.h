#pragma once
// A tiny HTTP server on 127.0.0.1 (a port the kernel picks) for the targets
// that fuzz what a client makes of a server's answers: every connection gets
// one request read up to its blank line, and whatever `Respond` returns for it,
// then the connection is closed.

#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace kernelet::fuzz {

class LoopbackServer {
 public:
  // The request's head (request line and headers) -> the raw bytes to send.
  using Respond = std::function<std::string(const std::string& head)>;

  LoopbackServer();  // aborts if it cannot listen
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  int port() const { return port_; }
  // How the connections of the next requests are answered.
  void respondWith(Respond respond);

 private:
  void serve();
  int listen_fd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  Respond respond_;
  std::thread thread_;
};

}  // namespace kernelet::fuzz
