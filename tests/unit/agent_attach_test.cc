// Containers with stdin, stdinOnce and tty, and attach sessions: the decode,
// the pod worker's checks and sessions through the fake runtime, the kernel
// runtime's session tap (ContainerStdio) and the run record's stdio.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "agent/runtime/container_stdio.h"
#include "agent/runtime/run_records.h"
#include "lifecycle_fixture.h"

namespace kernelet::agent {
namespace {

namespace rt = runtime;

struct Pipe {
  UniqueFd r, w;
  static Pipe make() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    return {UniqueFd(p[0]), UniqueFd(p[1])};
  }
};

// Everything in `fd` now, without waiting; `eof` says whether it ended.
std::string drain(int fd, bool* eof = nullptr) {
  (void)::fcntl(fd, F_SETFL, O_NONBLOCK);  // a test pipe: its flags are ours
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (eof != nullptr) {
      *eof = n == 0;
    }
    return out;
  }
}

Result<std::vector<ManifestPod>> decode(const std::string& container) {
  return parseManifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - " + container,
      "web.yaml");
}

TEST(AttachDecode, StdinStdinOnceAndTtyAreRead) {
  auto pods = decode("{name: sh, image: busybox, stdin: true, stdinOnce: true, tty: true}");
  ASSERT_TRUE(pods) << pods.error().message();
  const Container& c = (*pods)[0].pod.containers[0];
  EXPECT_TRUE(c.stdin);
  EXPECT_TRUE(c.stdin_once);
  EXPECT_TRUE(c.tty);
  auto plain = decode("{name: app, image: busybox}");
  ASSERT_TRUE(plain);
  const Container& p = (*plain)[0].pod.containers[0];
  EXPECT_FALSE(p.stdin || p.stdin_once || p.tty);
}

TEST(AttachDecode, AWrongTypeNamesTheField) {
  for (std::string field : {"stdin", "stdinOnce", "tty"}) {
    auto pods = decode("{name: sh, image: busybox, " + field + ": [yes]}");
    ASSERT_FALSE(pods) << field;
    EXPECT_NE(pods.error().message().find("containers[0]." + field), std::string::npos)
        << pods.error().message();
  }
}

TEST(AttachRecord, TheRunsStdioSurvivesTheRecord) {
  rt::PodRecord r;
  r.boot_id = "0f2b5c1e-1111-2222-3333-444455556666";
  r.uid = "u1";
  r.namespace_ = "default";
  r.name = r.hostname = "web";
  r.pod_hash = "abc";
  r.run_dir = "/run/kernelet/pods/u1";
  r.cgroup = "/sys/fs/cgroup/kubepods/pod";
  rt::RunRecord run;
  run.id = std::string(64, 'a');
  run.pid = 42;
  run.image_name = "busybox";
  run.log_path = "/var/log/pods/0.log";
  run.rootfs_dir = "/var/lib/kernelet/containers/a";
  run.cgroup = "/sys/fs/cgroup/kubepods/pod/a";
  run.stdin = run.stdin_once = run.stdin_closed = true;
  r.containers["sh"].latest = run;
  r.containers["tty"].latest = run;
  r.containers["tty"].latest->tty = true;
  r.containers["tty"].latest->stdin_closed = false;
  r.containers["plain"].latest = run;
  r.containers["plain"].latest->stdin = r.containers["plain"].latest->stdin_once = false;
  r.containers["plain"].latest->stdin_closed = false;
  std::string json = rt::toJson(r);
  auto back = rt::parsePodRecord(json, "runtime.json");
  ASSERT_TRUE(back) << back.error().message();
  const rt::RunRecord& sh = *back->containers["sh"].latest;
  EXPECT_TRUE(sh.stdin && sh.stdin_once && sh.stdin_closed && !sh.tty);
  const rt::RunRecord& tty = *back->containers["tty"].latest;
  EXPECT_TRUE(tty.tty && !tty.stdin_closed);
  const rt::RunRecord& plain = *back->containers["plain"].latest;
  EXPECT_FALSE(plain.stdin || plain.tty);
  // A plain run's record reads as before this field existed.
  size_t written = 0;
  for (size_t at = json.find("\"stdio\""); at != std::string::npos;
       at = json.find("\"stdio\"", at + 1)) {
    written++;
  }
  EXPECT_EQ(written, 2u) << "not for the plain run: " << json;
}

// ---- the kernel runtime's tap (ContainerStdio), on plain pipes ----

TEST(AttachTap, EachSessionGetsTheOutputOfItsStreamsFromNowOn) {
  rt::ContainerStdio stdio;
  Pipe out = Pipe::make(), err = Pipe::make(), only_out = Pipe::make();
  int ended = 0;
  stdio.tap(isolation::Stream::kStdout, "before\n");  // no replay
  auto a =
      stdio.attach("app", {.stdout_fd = out.w.get(), .stderr_fd = err.w.get()}, [&] { ended++; });
  ASSERT_TRUE(a) << a.error().message();
  auto b = stdio.attach("app", {.stdout_fd = only_out.w.get()}, [&] { ended++; });
  ASSERT_TRUE(b);
  out.w.reset();  // the runtime holds its own copies
  err.w.reset();
  only_out.w.reset();
  stdio.tap(isolation::Stream::kStdout, "one\n");
  stdio.tap(isolation::Stream::kStderr, "two\n");
  EXPECT_EQ(drain(out.r.get()), "one\n");
  EXPECT_EQ(drain(err.r.get()), "two\n");
  EXPECT_EQ(drain(only_out.r.get()), "one\n");
  stdio.detach(b->session);
  bool eof = false;
  EXPECT_EQ(drain(only_out.r.get(), &eof), "");
  EXPECT_TRUE(eof) << "a detached session's pipes close";
  EXPECT_EQ(ended, 0) << "ended is not called after detach";
  stdio.tap(isolation::Stream::kStdout, "three\n");
  stdio.endSessions();
  EXPECT_EQ(drain(out.r.get(), &eof), "three\n");
  EXPECT_TRUE(eof) << "the run's end closes the pipes after its last output";
  EXPECT_EQ(ended, 1);
}

TEST(AttachTap, ASessionThatFallsAPipeBehindIsCutOffTheOthersGoOn) {
  rt::ContainerStdio stdio;
  Pipe slow = Pipe::make(), fast = Pipe::make();
  auto s = stdio.attach("app", {.stdout_fd = slow.w.get()}, [] {});
  auto f = stdio.attach("app", {.stdout_fd = fast.w.get()}, [] {});
  ASSERT_TRUE(s && f);
  slow.w.reset();
  fast.w.reset();
  int size = ::fcntl(slow.r.get(), F_GETPIPE_SZ);
  ASSERT_GT(size, 0);
  std::string chunk(64 * 1024, 'x');
  size_t fast_got = 0;
  // Never read, the slow pipe fills; each tap returns at once regardless.
  for (int i = 0; i * chunk.size() <= static_cast<size_t>(size) + chunk.size(); i++) {
    stdio.tap(isolation::Stream::kStdout, chunk);
    fast_got += drain(fast.r.get()).size();
  }
  EXPECT_EQ(fast_got % chunk.size(), 0u);
  EXPECT_GT(fast_got, static_cast<size_t>(size)) << "the reader that keeps up gets it all";
  bool eof = false;
  std::string got = drain(slow.r.get(), &eof);
  EXPECT_TRUE(eof) << "the full session's pipe was closed";
  EXPECT_LE(got.size(), static_cast<size_t>(size));
}

TEST(AttachTap, StdinOnceClosesStdinWhenTheSessionThatSentItEnds) {
  rt::ContainerStdio stdio;
  Container c{.name = "sh", .stdin = true, .stdin_once = true};
  isolation::ContainerSpec spec;
  auto start = stdio.prepare(c, spec, -1);
  ASSERT_TRUE(start) << start.error().message();
  ASSERT_EQ(spec.stdin_fd, start->stdin_r.get());
  auto watcher = stdio.attach("sh", {}, [] {});  // sends no stdin
  auto typist = stdio.attach("sh", {.stdin = true}, [] {});
  ASSERT_TRUE(watcher && typist);
  ASSERT_TRUE(typist->stdin_fd);
  ASSERT_EQ(::write(typist->stdin_fd.get(), "ls\n", 3), 3);
  typist->stdin_fd.reset();
  EXPECT_FALSE(stdio.detach(watcher->session)) << "it sent no stdin";
  EXPECT_TRUE(stdio.detach(typist->session));
  bool eof = false;
  EXPECT_EQ(drain(start->stdin_r.get(), &eof), "ls\n");
  EXPECT_TRUE(eof) << "the container reads the end of its stdin";
  // containerd's: a later session asking for stdin joins, without it.
  auto again = stdio.attach("sh", {.stdin = true}, [] {});
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_FALSE(again->stdin_fd);
}

// `echo hi | kubectl run -i --rm -- cat`: stdinOnce without a terminal. The
// client's end of stdin closes the container's stdin for good at once (not
// at the session's end, which waits for the output to end: cat would never
// end), and the session keeps the output until the run ends.
TEST(AttachTap, StdinOnceTheClientsEofClosesStdinAndTheOutputGoesOn) {
  rt::ContainerStdio stdio;
  Container c{.name = "cat", .stdin = true, .stdin_once = true};
  isolation::ContainerSpec spec;
  auto start = stdio.prepare(c, spec, -1);
  ASSERT_TRUE(start) << start.error().message();
  Pipe out = Pipe::make();
  int ended = 0;
  auto a = stdio.attach("cat", {.stdout_fd = out.w.get(), .stdin = true}, [&] { ended++; });
  ASSERT_TRUE(a) << a.error().message();
  out.w.reset();
  auto watcher = stdio.attach("cat", {}, [] {});  // sends no stdin: its end is nothing
  ASSERT_TRUE(watcher);
  EXPECT_FALSE(stdio.stdinEnded(watcher->session));
  ASSERT_EQ(::write(a->stdin_fd.get(), "hi\n", 3), 3);
  a->stdin_fd.reset();  // the endpoint's copy, at the client's EOF
  bool eof = false;
  EXPECT_EQ(drain(start->stdin_r.get(), &eof), "hi\n");
  EXPECT_FALSE(eof) << "the runtime still holds the write end";
  EXPECT_TRUE(stdio.stdinEnded(a->session)) << "closed for good now";
  EXPECT_EQ(drain(start->stdin_r.get(), &eof), "");
  EXPECT_TRUE(eof) << "cat reads the end of its stdin";
  EXPECT_TRUE(stdio.stdin_closed);
  stdio.tap(isolation::Stream::kStdout, "hi\n");
  EXPECT_EQ(drain(out.r.get(), &eof), "hi\n");
  EXPECT_FALSE(eof) << "the session keeps its output until the run ends";
  EXPECT_EQ(ended, 0);
  EXPECT_FALSE(stdio.detach(a->session)) << "closed once";
  // A later session asking for stdin gets output but no stdin.
  Pipe out2 = Pipe::make();
  auto b = stdio.attach("cat", {.stdout_fd = out2.w.get(), .stdin = true}, [&] { ended++; });
  ASSERT_TRUE(b) << b.error().message();
  out2.w.reset();
  EXPECT_FALSE(b->stdin_fd);
  EXPECT_FALSE(stdio.stdinEnded(b->session)) << "it got no stdin";
  stdio.tap(isolation::Stream::kStdout, "later\n");
  EXPECT_EQ(drain(out2.r.get()), "later\n");
  stdio.endSessions();
  EXPECT_EQ(drain(out2.r.get(), &eof), "");
  EXPECT_TRUE(eof);
  EXPECT_EQ(ended, 1);
}

// stdinOnce, and no output asked for: containerd's attach is over when its
// stdin copy ends, so the session ends then too.
TEST(AttachTap, StdinOnceASessionWithoutOutputEndsWithItsStdin) {
  rt::ContainerStdio stdio;
  Container c{.name = "cat", .stdin = true, .stdin_once = true};
  isolation::ContainerSpec spec;
  auto start = stdio.prepare(c, spec, -1);
  ASSERT_TRUE(start);
  int ended = 0;
  auto a = stdio.attach("cat", {.stdin = true}, [&] { ended++; });
  ASSERT_TRUE(a);
  a->stdin_fd.reset();
  EXPECT_TRUE(stdio.stdinEnded(a->session));
  EXPECT_EQ(ended, 1);
  bool eof = false;
  EXPECT_EQ(drain(start->stdin_r.get(), &eof), "");
  EXPECT_TRUE(eof);
  stdio.endSessions();
  EXPECT_EQ(ended, 1) << "ended once";
}

// Without stdinOnce, or with a terminal, containerd stops copying output to
// a session whose client ended its stdin: the session ends; the container's
// stdin (or terminal) stays open for the next one, so a terminal gets no
// hangup from it.
TEST(AttachTap, OtherwiseTheClientsEofEndsTheSessionAndStdinStaysOpen) {
  for (bool tty : {false, true}) {
    SCOPED_TRACE(tty ? "stdinOnce and a terminal" : "stdin without stdinOnce");
    rt::ContainerStdio stdio;
    UniqueFd stdin_r;
    if (tty) {
      // As prepare() and takeTerminal() leave it; a pipe stands for the master.
      Pipe master = Pipe::make();
      stdio.stdin = stdio.stdin_once = stdio.tty = true;
      stdio.master = std::move(master.w);
      stdin_r = std::move(master.r);
    } else {
      Container c{.name = "sh", .stdin = true};
      isolation::ContainerSpec spec;
      auto start = stdio.prepare(c, spec, -1);
      ASSERT_TRUE(start);
      stdin_r = std::move(start->stdin_r);
    }
    Pipe out = Pipe::make();
    int ended = 0;
    auto a = stdio.attach("sh", {.stdout_fd = out.w.get(), .stdin = true}, [&] { ended++; });
    ASSERT_TRUE(a) << a.error().message();
    out.w.reset();
    ASSERT_TRUE(a->stdin_fd);
    a->stdin_fd.reset();
    EXPECT_FALSE(stdio.stdinEnded(a->session));
    bool eof = false;
    EXPECT_EQ(drain(out.r.get(), &eof), "");
    EXPECT_TRUE(eof) << "the session's output ends";
    EXPECT_EQ(ended, 1);
    EXPECT_FALSE(stdio.stdin_closed);
    EXPECT_EQ(drain(stdin_r.get(), &eof), "");
    EXPECT_FALSE(eof) << "the container's stdin stays open";
    auto next = stdio.attach("sh", {.stdin = true}, [] {});
    ASSERT_TRUE(next);
    EXPECT_TRUE(next->stdin_fd) << "the next session gets it";
    stdio.endSessions();
    EXPECT_EQ(ended, 1);
  }
}

TEST(AttachTap, WithoutStdinOnceStdinStaysOpenForTheNextSession) {
  rt::ContainerStdio stdio;
  Container c{.name = "sh", .stdin = true};
  isolation::ContainerSpec spec;
  auto start = stdio.prepare(c, spec, -1);
  ASSERT_TRUE(start);
  auto a = stdio.attach("sh", {.stdin = true}, [] {});
  ASSERT_TRUE(a);
  EXPECT_FALSE(stdio.detach(a->session));
  a->stdin_fd.reset();
  bool eof = true;
  EXPECT_EQ(drain(start->stdin_r.get(), &eof), "");
  EXPECT_FALSE(eof);
  EXPECT_TRUE(stdio.attach("sh", {.stdin = true}, [] {}));
}

TEST(AttachTap, AContainerWithoutStdinRefusesAStdinSession) {
  rt::ContainerStdio stdio;
  Container c{.name = "app"};
  isolation::ContainerSpec spec;
  auto start = stdio.prepare(c, spec, 7);
  ASSERT_TRUE(start);
  EXPECT_EQ(spec.stdin_fd, 7) << "/dev/null as before";
  auto a = stdio.attach("app", {.stdin = true}, [] {});
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message().find("container app did not start with stdin"), std::string::npos)
      << a.error().message();
}

// ---- the pod worker's sessions, through the fake runtime ----

class Attach : public Lifecycle {
 protected:
  Result<PodWorker::Attachment> attach(const std::string& name, int out_fd, bool stdin, bool tty,
                                       bool* ended) {
    return worker_->attach(name, {.stdout_fd = out_fd, .stdin = stdin}, tty,
                           [ended] { *ended = true; });
  }
};

TEST_F(Attach, TheUserSeesWhyAnAttachCannotJoin) {
  run(R"(spec:
  restartPolicy: Never
  containers:
  - {name: app, image: busybox}
  - {name: sh, image: busybox, stdin: true}
)");
  ASSERT_TRUE(until([&] { return running("app") && running("sh"); }));
  bool ended = false;
  auto none = attach("nope", -1, false, false, &ended);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().detail, "container \"nope\" not found in pod \"web\"");
  auto tty = attach("sh", -1, true, true, &ended);
  ASSERT_FALSE(tty);
  EXPECT_EQ(tty.error().detail, "Unable to use a TTY - container sh did not allocate one");
  auto in = attach("app", -1, true, false, &ended);
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().detail, "container app did not start with stdin");
  ASSERT_TRUE(runtime_->exit("app", 0));
  ASSERT_TRUE(until([&] { return !running("app"); }));
  auto gone = attach("app", -1, false, false, &ended);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().detail, "container \"app\" in pod \"web\" is not running");
  EXPECT_TRUE(runtime_->calls("attach ").empty()) << "refused before the runtime";
}

TEST_F(Attach, StdinReachesTheContainerItsOutputTheSessionUntilItEnds) {
  run(R"(spec:
  restartPolicy: Never
  containers:
  - {name: sh, image: busybox, stdin: true, stdinOnce: true}
)");
  ASSERT_TRUE(until([&] { return running("sh"); }));
  Pipe out = Pipe::make();
  bool ended = false;
  auto a = attach("sh", out.w.get(), true, false, &ended);
  ASSERT_TRUE(a) << a.error().message();
  out.w.reset();
  ASSERT_TRUE(a->io.stdin_fd);
  ASSERT_EQ(::write(a->io.stdin_fd.get(), "echo hi\n", 8), 8);
  EXPECT_EQ(runtime_->readStdin("sh"), "echo hi\n");
  ASSERT_TRUE(runtime_->output("sh", 0, "hi\n"));
  EXPECT_EQ(drain(out.r.get()), "hi\n");
  // stdinOnce: the session's end closes the container's stdin.
  a->io.stdin_fd.reset();
  runtime_->detach(a->handle, a->io.session);
  bool eof = false;
  EXPECT_EQ(runtime_->readStdin("sh", &eof), "");
  EXPECT_TRUE(eof);
  EXPECT_FALSE(ended);
  // A second session (without stdin) sees the run end.
  Pipe out2 = Pipe::make();
  auto b = attach("sh", out2.w.get(), false, false, &ended);
  ASSERT_TRUE(b);
  out2.w.reset();
  ASSERT_TRUE(runtime_->exit("sh", 0));
  ASSERT_TRUE(until([&] { return ended; }));
  EXPECT_EQ(drain(out2.r.get(), &eof), "");
  EXPECT_TRUE(eof) << "the output pipes close when the run ended";
}

TEST_F(Attach, TheWorkersEndEndsTheSessions) {
  run(R"(spec:
  containers:
  - {name: sh, image: busybox, stdin: true, tty: true}
)");
  ASSERT_TRUE(until([&] { return running("sh"); }));
  bool ended = false;
  auto a = attach("sh", -1, true, true, &ended);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_TRUE(a->io.terminal_fd) << "a terminal container gives its master";
  EXPECT_EQ(runtime_->sessions("sh"), 1u);
  ASSERT_TRUE(terminate());
  EXPECT_TRUE(ended);
}

// A session whose client never reads keeps its pipes full for as long as its
// connection lives (kernel memory charged to the agent): each stream's pipe
// holds at most 512 KiB, and a container has at most 16 sessions, so one
// that floods its output pins at most 16 MiB however many clients attach.
TEST(AttachTap, SessionsThatNeverReadPinABoundedAmount) {
  rt::ContainerStdio stdio;
  constexpr int kSessions = 16;
  std::vector<Pipe> pipes;
  for (int i = 0; i < 2 * kSessions; i++) {
    pipes.push_back(Pipe::make());
  }
  for (int i = 0; i < kSessions; i++) {
    ASSERT_TRUE(stdio.attach(
        "app", {.stdout_fd = pipes[2 * i].w.get(), .stderr_fd = pipes[2 * i + 1].w.get()}, [] {}));
  }
  Pipe one_more = Pipe::make();
  auto refused = stdio.attach("app", {.stdout_fd = one_more.w.get()}, [] {});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("container app has 16 attach sessions already"),
            std::string::npos)
      << refused.error().message();
  for (auto& p : pipes) {
    p.w.reset();
  }
  std::string chunk(256 * 1024, 'y');
  for (int i = 0; i < 5; i++) {
    stdio.tap(isolation::Stream::kStdout, chunk);
    stdio.tap(isolation::Stream::kStderr, chunk);
  }
  size_t pinned = 0;
  for (auto& p : pipes) {
    int n = 0;
    ASSERT_EQ(::ioctl(p.r.get(), FIONREAD, &n), 0);
    pinned += static_cast<size_t>(n);
  }
  EXPECT_LE(pinned, size_t{16} << 20)
      << "16 sessions that never read pin " << (pinned >> 10) << " KiB";
}

}  // namespace
}  // namespace kernelet::agent
