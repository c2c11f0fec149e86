// An exec behind a remote command session (remote_command_session.h): the
// process's stdio are pipes made here, or a terminal made in the container
// whose master comes back over a console socket; the session is over when
// the process exited (or never started) and its output is drained.

#include <sys/socket.h>

#include "agent/streams/console_socket.h"
#include "agent/streams/remote_command_session.h"

namespace kernelet::agent::streams {

namespace {

class ExecCommand : public RemoteCommandSession {
 public:
  ExecCommand(std::shared_ptr<Transport> transport, const std::string& protocol,
              RemoteCommandOptions options, ExecStarter starter, RemoteCommandDone done)
      : RemoteCommandSession(std::move(transport), protocol, std::move(options),
                             /*attach=*/false, std::move(done)),
        starter_(std::move(starter)) {}

 private:
  const char* kind() const override { return "Exec"; }

  // The child's ends go to the request; ours become descriptors on the executor.
  Result<void> prepare() override {
    request_ = ExecRequest{
        .pod = opts_.pod, .container = opts_.container, .command = opts_.command, .tty = opts_.tty};
    ExecRequest& r = request_;
    if (opts_.tty) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        return sysError("socketpair", "console socket");
      }
      console_ = own(UniqueFd(sv[0]));
      r.console_socket = UniqueFd(sv[1]);
      out_.id = stream("stdout");
      waitTerminal();
      return {};
    }
    auto pipe = [](UniqueFd& read, UniqueFd& write) {
      return makePipe(read, write, 0, "exec stdio");
    };
    UniqueFd ours;
    if (opts_.use_stdin) {
      TRY_VOID(pipe(r.stdin_fd, ours));
      stdin_w_ = own(std::move(ours));
    }
    if (opts_.use_stdout) {
      TRY_VOID(pipe(ours, r.stdout_fd));
      stdout_r_ = own(std::move(ours));
      out_ = Output{.id = stream("stdout"), .fd = stdout_r_.get()};
    }
    if (opts_.use_stderr) {
      TRY_VOID(pipe(ours, r.stderr_fd));
      stderr_r_ = own(std::move(ours));
      err_ = Output{.id = stream("stderr"), .fd = stderr_r_.get()};
    }
    return {};
  }

  void launch() override {
    starter_(std::move(request_), ExecHooks{.started = onExecutor(&ExecCommand::onStarted),
                                            .exited = onExecutor(&ExecCommand::onExited)});
  }

  bool over() const override { return exited_ || never_started_; }
  bool settled() const override { return exited_ || never_started_; }
  Descriptor* input() const override { return opts_.tty ? master_.get() : stdin_w_.get(); }
  bool inputMayCome() const override { return opts_.tty && !never_started_ && !exited_; }
  bool eofClosesInput() const override { return !opts_.tty; }
  int terminalFd() const override { return master_ ? master_->native_handle() : -1; }
  void ending() override { closeTerminalSocket(); }
  void closeTargetFds() override {
    closeDescriptor(master_);
    closeTerminalSocket();
  }
  bool outputDone(const Output& o) const override {
    if (opts_.tty && &o == &out_ && !master_) {
      return exited_ || never_started_;  // no terminal came, none will
    }
    return RemoteCommandSession::outputDone(o);
  }

  void onStarted(Result<void> r) {
    if (r) {
      log::v(2, "Exec started", logFields());
      return;
    }
    log::error("Error executing command in container", logFields({{"err", r.error().message()}}));
    closeTerminalSocket();
    startFailed(r.error().message());
  }

  void onExited(Result<int> r) {
    exited_ = true;
    if (r) {
      outcome_.kind = ExecOutcome::Kind::kExited;
      outcome_.exit_code = *r;
      log::v(2, "Exec finished", logFields({{"exitCode", std::to_string(*r)}}));
    } else {
      outcome_ = failure(r.error().message());
      log::error("Error executing command in container", logFields({{"err", r.error().message()}}));
    }
    if (opts_.tty && !master_) {
      tryTerminal();  // it may sit in the socket still
    }
    closeTerminalSocket();
    maybeEnd();
    maybeComplete();
  }

  // ---- the terminal ----

  void waitTerminal() {
    auto self = std::static_pointer_cast<ExecCommand>(shared_from_this());
    console_->async_wait(Descriptor::wait_read, [self](boost::system::error_code ec) {
      if (ec || !self->console_) {
        return;
      }
      if (!self->tryTerminal() && self->console_) {
        self->waitTerminal();
      }
    });
  }

  // Takes the master if it came; true when the socket is done with.
  bool tryTerminal() {
    if (!console_) {
      return true;
    }
    auto got = receiveTerminal(console_->native_handle());
    if (!got) {
      log::error("Error receiving the exec's terminal",
                 logFields({{"err", got.error().message()}}));
      closeTerminalSocket();
      return true;
    }
    std::optional<UniqueFd>& master = *got;
    if (!master) {
      return false;
    }
    master_ = own(std::move(*master));
    closeTerminalSocket();
    out_.fd = master_.get();
    applyPendingSize();
    readOutput(out_);
    pumpStdin();
    return true;
  }

  void closeTerminalSocket() { closeDescriptor(console_); }

  ExecStarter starter_;
  ExecRequest request_;  // between prepare() and launch()
  std::unique_ptr<Descriptor> master_, console_;
  bool exited_ = false;
};

}  // namespace

void runRemoteCommand(std::shared_ptr<Transport> transport, const std::string& protocol,
                      RemoteCommandOptions options, ExecStarter starter, RemoteCommandDone done) {
  auto rc = std::make_shared<ExecCommand>(std::move(transport), protocol, std::move(options),
                                          std::move(starter), std::move(done));
  rc->start();
}

}  // namespace kernelet::agent::streams
