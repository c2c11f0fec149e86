#pragma once
// What an endpoint of the node's own server (:10250) sees and gives back,
// independent of HTTP, TLS and Beast: the server (agent/server/server.h) parses,
// authenticates and authorizes a request, routes it to one Handler, and writes
// its Response. Endpoints live beside what they serve (logs in agent/logs,
// stats and metrics in agent/stats) and know nothing of connections.
//
// Threads: a handler is called on the server's thread and must not block it
// for long (no waiting on a process, no walking a big tree); it may answer
// later, from any thread, through its Responder. A streamed body (a followed
// log) is a BodySource the server pulls from on its thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/server/query.h"
#include "sys/result.h"

namespace kernelet::agent::server {

struct Request {
  std::string method;  // GET, POST, ...
  std::string path;    // decoded; every segment checked (no "..", no "/" inside one)
  // The path's parameters, in order: NS, POD, [UID,] CONTAINER for
  // /containerLogs, /run, /exec, /attach; NS, POD for /portForward.
  std::vector<std::string> params;
  Query query;
  // Who asked (authenticated): the user and groups the authorizer judged.
  std::string user;
  std::vector<std::string> groups;
};

// A body produced as it comes (a followed log). The server calls read()
// until kEnd or an error, and waits between kWait answers for waitFd() to
// become readable or pollAfter() to pass, whichever is first. It is
// destroyed on the server's thread when the response ends or the client goes.
class BodySource {
 public:
  virtual ~BodySource() = default;
  enum class State { kData, kWait, kEnd };
  // Appends at most `max` bytes to `out`. kData: something was appended
  // (call again); kWait: nothing now; kEnd: the body is complete. An error
  // ends the response (the client sees the body cut short, as with the
  // kubelet once headers were sent).
  virtual Result<State> read(std::string& out, size_t max) = 0;
  // A file descriptor that becomes readable when read() may have more
  // (an inotify fd), or -1 to rely on pollAfter() alone. Owned by the source.
  virtual int waitFd() const { return -1; }
  virtual std::chrono::milliseconds pollAfter() const { return std::chrono::milliseconds(1000); }
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
  std::string body;                                          // the whole body, or its start
  std::unique_ptr<BodySource> stream;  // set: `body` then this, chunked, until kEnd

  static Response text(int status, std::string body);
  static Response json(int status, std::string body);
  // The kubelet's error form: the message as plain text, e.g. 404 "pod not found".
  static Response error(int status, std::string message);
};

// Called once with the answer; from any thread.
using Responder = std::function<void(Response)>;
using Handler = std::function<void(Request, Responder)>;

}  // namespace kernelet::agent::server
