// An attach behind a remote command session (remote_command_session.h): the
// output pipes are made here and handed to the agent's AttachStarter, which
// copies the container's output into them from now on; stdin goes to the
// container's stdin (or terminal) the starter gives back, window sizes to its
// terminal. The session is over when the output pipes reach EOF (the
// container's run ended), or, with no output asked for, when the starter says
// the session ended (the run's end, or `stdin_ended`'s); the client's end of
// stdin goes to the agent (`stdin_ended`: a stdinOnce container's stdin
// closes, or the session ends); `detach` runs once whenever the session ends
// or the client goes, as containerd's attach stops copying then.

#include <fcntl.h>

#include "agent/streams/remote_command_session.h"

namespace kernelet::agent::streams {

namespace {

class AttachCommand : public RemoteCommandSession {
 public:
  AttachCommand(std::shared_ptr<Transport> transport, const std::string& protocol,
                RemoteCommandOptions options, AttachStarter starter, RemoteCommandDone done)
      : RemoteCommandSession(std::move(transport), protocol, std::move(options),
                             /*attach=*/true, std::move(done)),
        starter_(std::move(starter)) {}

 private:
  const char* kind() const override { return "Attach"; }

  // Output pipes, non-blocking at both ends: the agent's copier never blocks
  // on a slow client (it cuts the pipe off), and our end is read on the executor.
  Result<void> prepare() override {
    request_ = AttachRequest{
        .pod = opts_.pod, .container = opts_.container, .stdin = opts_.use_stdin, .tty = opts_.tty};
    auto pipe = [this](std::unique_ptr<Descriptor>& read, UniqueFd& write) -> Result<void> {
      UniqueFd ours;
      TRY_VOID(makePipe(ours, write, O_NONBLOCK, "attach output"));
      read = own(std::move(ours));
      return {};
    };
    if (opts_.use_stdout) {
      TRY_VOID(pipe(stdout_r_, request_.stdout_fd));
      out_ = Output{.id = stream("stdout"), .fd = stdout_r_.get()};
    }
    if (opts_.use_stderr) {
      TRY_VOID(pipe(stderr_r_, request_.stderr_fd));
      err_ = Output{.id = stream("stderr"), .fd = stderr_r_.get()};
    }
    return {};
  }

  void launch() override {
    starter_(std::move(request_), AttachHooks{.started = onExecutor(&AttachCommand::onStarted),
                                              .ended = onExecutor(&AttachCommand::onEnded)});
  }

  // With output, its pipes' EOF (checked by the session) is the end; without,
  // only the starter can say the run ended.
  bool over() const override {
    return never_started_ || (attached_ && (opts_.use_stdout || opts_.use_stderr || ended_));
  }
  bool settled() const override { return never_started_ || attached_; }
  Descriptor* input() const override { return stdin_w_.get(); }
  bool inputMayCome() const override { return !attached_ && !never_started_; }
  bool eofClosesInput() const override { return true; }
  int terminalFd() const override { return terminal_.valid() ? terminal_.get() : -1; }
  void inputEnded() override {
    if (auto ended = std::exchange(stdin_ended_, nullptr)) {
      ended();
    }
  }
  void ending() override { detachOnce(); }
  void closeTargetFds() override {
    terminal_.reset();
    detachOnce();
  }

  void onStarted(Result<Attached> r) {
    if (!r) {
      log::error("Error attaching to container", logFields({{"err", r.error().message()}}));
      // Nothing will be written to the output pipes: the session need not
      // wait for the starter to have let their write ends go.
      closeDescriptor(stdout_r_);
      closeDescriptor(stderr_r_);
      out_.fd = err_.fd = nullptr;
      return startFailed(r.error().message());
    }
    attached_ = true;
    detach_ = std::move(r->detach);
    stdin_ended_ = std::move(r->stdin_ended);
    if (conn_closed_ || phase_ != Phase::kRunning) {
      // The client went (or the session ended) while the agent was joining.
      closeTargetFds();
      return maybeComplete();
    }
    log::v(2, "Attached", logFields());
    if (r->stdin_fd.valid()) {
      stdin_w_ = own(std::move(r->stdin_fd));
    }
    terminal_ = std::move(r->terminal_fd);
    applyPendingSize();
    pumpStdin();
    maybeEnd();
  }

  void onEnded() {
    ended_ = true;
    log::v(2, "Attached container ended", logFields());
    maybeEnd();
  }

  void detachOnce() {
    if (auto detach = std::exchange(detach_, nullptr)) {
      detach();
    }
  }

  AttachStarter starter_;
  AttachRequest request_;  // between prepare() and launch()
  UniqueFd terminal_;
  std::function<void()> detach_, stdin_ended_;
  bool attached_ = false, ended_ = false;
};

}  // namespace

void runRemoteAttach(std::shared_ptr<Transport> transport, const std::string& protocol,
                     RemoteCommandOptions options, AttachStarter starter, RemoteCommandDone done) {
  auto rc = std::make_shared<AttachCommand>(std::move(transport), protocol, std::move(options),
                                            std::move(starter), std::move(done));
  rc->start();
}

}  // namespace kernelet::agent::streams
