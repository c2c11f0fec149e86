#pragma once
// A client connection to a D-Bus message bus (the system bus: logind and
// systemd live there): unix socket, SASL EXTERNAL authentication (the kernel
// tells the bus our uid), unix-fd passing (logind's inhibitor lock is an fd),
// Hello, then method calls and the signals we match. Calls are synchronous
// with a deadline: the node-shutdown manager makes a handful at start, to a
// local daemon; signals are read from the agent's loop when the socket is
// readable.

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "agent/node/dbus_wire.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent::dbus {

// The system bus as the specification finds it: DBUS_SYSTEM_BUS_ADDRESS, else
// unix:path=/run/dbus/system_bus_socket.
std::string systemBusAddress();

// The socket address of the first "unix:path=..." or "unix:abstract=..."
// entry of a bus address ("a;b" lists alternatives); "@name" for abstract.
Result<std::string> unixSocketOf(const std::string& address);

// A message with the fds that came with it.
struct Received {
  Message message;
  std::vector<UniqueFd> fds;
};

class Connection {
 public:
  // Connects, authenticates and says Hello, within `timeout`.
  static Result<std::unique_ptr<Connection>> open(const std::string& address,
                                                  std::chrono::milliseconds timeout);
  int fd() const { return fd_.get(); }
  const std::string& uniqueName() const { return unique_name_; }

  // Sends `call` and waits for its reply; an error reply is an Error with the
  // D-Bus error's name and text. Signals that arrive meanwhile are kept for
  // readSignals().
  Result<Received> call(const Call& call, std::chrono::milliseconds timeout);
  // The signals received so far, without blocking. An error once the bus
  // closed the connection or sent what is not a message.
  Result<std::vector<Received>> readSignals();

 private:
  explicit Connection(UniqueFd fd, std::string shown) : fd_(std::move(fd)), shown_(shown) {}
  Result<void> authenticate(std::chrono::steady_clock::time_point deadline);
  Result<void> writeAll(const std::string& bytes, std::chrono::steady_clock::time_point deadline);
  // Reads what is there (waiting until `deadline` for something, if given).
  Result<void> fill(std::optional<std::chrono::steady_clock::time_point> deadline);
  Result<std::string> readLine(std::chrono::steady_clock::time_point deadline);
  // The next whole message in the buffer, if there is one.
  Result<std::optional<Received>> next();

  UniqueFd fd_;
  std::string shown_;  // the socket, for errors
  std::string in_;     // bytes read, not yet a whole message
  std::deque<UniqueFd> in_fds_;
  std::deque<Received> signals_;
  uint32_t serial_ = 0;
  std::string unique_name_;
};

}  // namespace kernelet::agent::dbus
