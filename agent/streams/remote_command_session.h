#pragma once
// The part of a remote command session that is the same for an exec and an
// attach (remote_command.h): waiting for the client's streams (and the
// kubelet's stream-creation timeout), stdin pumped to an input descriptor
// with flow control, output descriptors pumped to the client one chunk in
// flight per stream, window sizes from the resize stream, the error stream's
// status at the end, and keeping itself alive until the connection and what
// it ran are both over. What it runs behind its streams (a process started
// through an ExecStarter, a container joined through an AttachStarter) is a
// subclass: exec_command.cc, attach_command.cc.
//
// Threads: everything runs on transport->executor(); subclasses post their
// starters' hooks there.

#include <sys/types.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/log/log.h"
#include "agent/streams/remote_command.h"
#include "agent/streams/terminal_size.h"

namespace kernelet::agent::streams {

class RemoteCommandSession : public std::enable_shared_from_this<RemoteCommandSession> {
 public:
  // `attach`: the session is an attach (its outcome's words), else an exec.
  RemoteCommandSession(std::shared_ptr<Transport> transport, const std::string& protocol,
                       RemoteCommandOptions options, bool attach, RemoteCommandDone done);
  virtual ~RemoteCommandSession() = default;
  RemoteCommandSession(const RemoteCommandSession&) = delete;
  RemoteCommandSession& operator=(const RemoteCommandSession&) = delete;

  // Starts the transport; the session keeps itself alive until done.
  void start();

 protected:
  enum class Phase : uint8_t { kWaiting, kRunning, kEnding, kDone };
  using Descriptor = boost::asio::posix::stream_descriptor;

  // Output on its way to one stream (stdout or stderr).
  struct Output {
    std::optional<StreamId> id;  // none: the client did not ask; read and dropped
    Descriptor* fd = nullptr;    // a pipe's read end, or a terminal's master
    std::vector<char> buf;
    bool in_flight = false;  // a write to the transport waits for `sent`
    bool done = false;       // EOF (EIO for a terminal), or the client went
  };

  // ---- what a subclass provides ----

  // "Exec" or "Attach", for the logs.
  virtual const char* kind() const = 0;
  // All streams are there: the descriptors the session pumps are made (the
  // far ends kept for launch()). An error ends the session with its status.
  virtual Result<void> prepare() = 0;
  // Hands the far ends to the agent's starter, its hooks posted here.
  virtual void launch() = 0;
  // Nothing more will come from what runs: once the output is drained the
  // session ends.
  virtual bool over() const = 0;
  // Nothing is outstanding with the agent (the process reaped, the attach's
  // `started` in): with the connection closed, the session is complete.
  virtual bool settled() const = 0;
  // Where stdin goes (nullptr: not there yet, or gone).
  virtual Descriptor* input() const = 0;
  // Whether input() may still come (stdin is held, not dropped, meanwhile).
  virtual bool inputMayCome() const = 0;
  // Whether the client's end of stdin closes input() (not a terminal an
  // exec owns: its EOF is the user's ^D, which arrives as data).
  virtual bool eofClosesInput() const = 0;
  // The client's stdin ended and input() was closed for it (the client's EOF,
  // or what reads it went): an attach tells the agent (containerd's rule).
  virtual void inputEnded() {}
  // The terminal that takes window sizes (-1: none yet; sizes wait).
  virtual int terminalFd() const = 0;
  // The session is ending (its status about to be written).
  virtual void ending() = 0;
  // Close what the subclass holds: the connection went or all is over.
  virtual void closeTargetFds() = 0;
  // Whether `o` has nothing more to send (a subclass may still wait for its
  // descriptor to come).
  virtual bool outputDone(const Output& o) const { return o.fd == nullptr || o.done; }

  // ---- what a subclass uses ----

  log::Fields logFields(log::Fields extra = {}) const;
  std::optional<StreamId> stream(const std::string& type) const;
  std::unique_ptr<Descriptor> own(UniqueFd fd);
  ExecOutcome failure(std::string why) const;
  // The start failed (`why` is what the user sees): ends with its status.
  void startFailed(const std::string& why);
  void readOutput(Output& o);
  void pumpStdin();
  // Applies the size that came before the terminal did.
  void applyPendingSize();
  void maybeEnd();
  void maybeComplete();
  static void closeDescriptor(std::unique_ptr<Descriptor>& d);
  // A pipe, O_CLOEXEC and `flags`: its read end and its write end.
  static Result<void> makePipe(UniqueFd& read, UniqueFd& write, int flags, const char* what);

  // A starter's hook: callable on any thread, it runs `handler` on the
  // executor, the session kept alive until then.
  template <typename Self, typename... Args>
  std::function<void(Args...)> onExecutor(void (Self::*handler)(Args...)) {
    auto self = std::static_pointer_cast<Self>(shared_from_this());
    auto exec = transport_->executor();
    return [self, exec, handler](Args... args) {
      boost::asio::post(exec, [self, handler, ... args = std::move(args)]() mutable {
        ((*self).*handler)(std::move(args)...);
      });
    };
  }

  std::shared_ptr<Transport> transport_;
  int version_;
  RemoteCommandOptions opts_;
  Phase phase_ = Phase::kWaiting;
  std::unique_ptr<Descriptor> stdin_w_, stdout_r_, stderr_r_;
  Output out_, err_;
  bool conn_closed_ = false, never_started_ = false;
  ExecOutcome outcome_;

 private:
  bool needed(const std::string& type) const;
  bool allStreams() const;
  void onOpened(StreamId id, const StreamHeaders& h);
  void onData(StreamId id, std::string_view bytes);
  void onInputEnd(StreamId id, bool drop);
  void onReset(StreamId id);
  void onClosed(const Error& e);
  void onStreamTimeout();
  void onStreamsReady();
  void announceReady();
  void onResizeBytes(std::string_view bytes);
  void applySize(TerminalSize s);
  void onStdinWritten(boost::system::error_code ec);
  void dropStdin();
  void closeStdin();
  // closeStdin() because the client's stdin ended there: inputEnded() follows.
  void endInput();
  void onOutput(Output& o, boost::system::error_code ec, size_t n);
  void stopOutput(Output& o);
  void endWithStatus();
  void finishAndClose();
  void closeFds();

  std::string protocol_;
  ExecOutcome initial_;
  RemoteCommandDone done_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<RemoteCommandSession> self_;  // alive until the connection and the run are over
  std::map<std::string, StreamId> streams_;     // by type
  std::map<StreamId, std::string> types_;
  std::deque<std::string> stdin_queue_;
  bool stdin_writing_ = false, stdin_eof_ = false, stdin_closed_ = false;
  ResizeDecoder resize_;
  std::optional<TerminalSize> pending_size_;
  bool completed_ = false, error_busy_ = false, status_waits_ = false;
};

}  // namespace kernelet::agent::streams
