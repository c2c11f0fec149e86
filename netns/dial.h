#pragma once
// A TCP connection to a pod's port: to localhost inside the pod's network
// namespace, as containerd's port-forward makes one. Only the socket is made
// in the namespace (a socket keeps the namespace it was created in); the
// calling thread never joins it: a short-lived thread does, creates the
// socket and exits, so no thread of the agent is ever left in a pod's
// network.
//
// IPv4 first, then IPv6 (localhost may be either; containerd tries them one
// after the other for the same reason: a dual-stack dial from several threads
// would leave the namespace). A refusal reads as containerd's, which is what
// kubectl users see on the error stream (PATH is "host" for no namespace):
//   failed to execute portforward in network namespace "PATH": failed to
//   connect to localhost:8080 inside namespace "ID", IPv4: dial tcp4
//   127.0.0.1:8080: connect: connection refused IPv6 dial tcp6 [::1]:8080:
//   connect: connection refused

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::netns {

struct DialTarget {
  // /proc/PID/ns/net or a bind-mounted namespace file; empty: the agent's
  // own namespace (a hostNetwork pod), no thread is needed then.
  std::string ns_path;
  // How errors name the namespace (containerd names the sandbox's id).
  std::string ns_id;
};

// Blocks the caller up to `timeout` per address family (a loopback connect
// is answered at once unless the listener's backlog is full). The socket is
// returned connected, O_NONBLOCK and O_CLOEXEC.
Result<UniqueFd> dialLocalhost(const DialTarget& target, uint16_t port,
                               std::chrono::milliseconds timeout);

// Dials off the caller's thread (the server's event loop must not wait on a
// connect): one short-lived thread per dial, at most `max_in_flight` at once
// (more fail at once, so a client opening thousands of streams cannot make
// thousands of threads). The destructor joins every thread; each ends within
// its timeouts.
class Dialer {
 public:
  using Done = std::function<void(Result<UniqueFd>)>;
  explicit Dialer(std::chrono::milliseconds timeout = std::chrono::seconds(10),
                  size_t max_in_flight = 64);
  ~Dialer();
  Dialer(const Dialer&) = delete;
  Dialer& operator=(const Dialer&) = delete;

  // `done` runs on the dial's thread (or on the caller's, when refused for
  // too many dials); it must not block.
  void dial(DialTarget target, uint16_t port, Done done);

 private:
  void joinFinishedLocked(std::vector<std::thread>& out);

  std::chrono::milliseconds timeout_;
  size_t max_in_flight_;
  std::mutex mu_;
  std::condition_variable idle_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::thread> running_;  // guarded by mu_
  std::vector<uint64_t> finished_;           // ended, not yet joined; guarded by mu_
};

}  // namespace kernelet::netns
