// Termination messages (terminationMessagePath / terminationMessagePolicy)
// and spec.activeDeadlineSeconds: the file a container writes, read safely
// and bounded, the log fallback, the kubelet's 4 KiB / 12 KiB caps, and the
// deadline that fails the pod with DeadlineExceeded. Through the pod worker
// with the fake runtime, which makes and reads the files with the runtime's
// own functions (agent/runtime/termination_message.h).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/runtime/termination_message.h"
#include "support/temp_dir.h"
#include "unit/lifecycle_fixture.h"

namespace kernelet::agent {
namespace {

using kernelet::testing::TempDir;
namespace rt = runtime;

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc | std::ios::binary) << text;
}

// A run's log as the CRI writer leaves it.
void writeLog(const std::string& path, const std::vector<std::string>& lines) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::trunc);
  for (const auto& l : lines) {
    out << "2026-01-02T03:04:05.000000001Z stderr F " << l << "\n";
  }
}

TEST(TerminationFile, IsMadeEmptyAndWritableByAnyoneWhateverTheUmask) {
  TempDir dir;
  mode_t old = ::umask(077);
  auto a = rt::createTerminationFile(dir.path() + "/containers/app");
  auto b = rt::createTerminationFile(dir.path() + "/containers/app");
  ::umask(old);
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_NE(*a, *b) << "a new file per run";
  struct stat st {};
  ASSERT_EQ(::stat(a->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(std::filesystem::path(*a).filename().string().size(), 8u);
}

TEST(TerminationFile, ReadsTheLastFourKiBOfARegularFile) {
  TempDir dir;
  std::string big = std::string(1000, 'a') + std::string(4096, 'b');
  auto r = rt::readTerminationFile(dir.write("big", big));
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(*r);
  EXPECT_EQ(**r, std::string(4096, 'b')) << "tail.ReadAtMost keeps the end";
  auto small = rt::readTerminationFile(dir.write("small", "Sleep expired\n"));
  ASSERT_TRUE(small && *small);
  EXPECT_EQ(**small, "Sleep expired\n");
  auto missing = rt::readTerminationFile(dir.path() + "/gone");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing) << "no file is no message, not an error";
}

TEST(TerminationFile, AFileTheContainerSwappedForALinkOrAFifoIsNotFollowedNorWaitedOn) {
  TempDir dir;
  std::string secret = dir.write("secret", "host secret");
  std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(secret.c_str(), link.c_str()), 0);
  auto l = rt::readTerminationFile(link);
  ASSERT_FALSE(l) << "followed a symlink";
  EXPECT_NE(l.error().message().find(link), std::string::npos) << l.error().message();

  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = rt::readTerminationFile(fifo);  // would block forever without O_NONBLOCK
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find("not a regular file"), std::string::npos)
      << f.error().message();
  EXPECT_FALSE(rt::readTerminationFile(dir.path()));  // a directory

  // What the status says of it: the kubelet's words, never the target's data.
  std::string message = rt::terminationMessage({.exit_code = 1, .reason = "Error", .file = link});
  EXPECT_TRUE(message.starts_with("Error on reading termination log " + link + ": ")) << message;
  EXPECT_EQ(message.find("host secret"), std::string::npos);
}

TEST(TerminationFile, TheLogTailIsTheLastEightyLinesCutToTwoKiB) {
  TempDir dir;
  std::vector<std::string> lines;
  for (int i = 0; i < 100; i++) {
    lines.push_back("line " + std::to_string(i));
  }
  writeLog(dir.path() + "/0.log", lines);
  auto tail = rt::readLogTail(dir.path() + "/0.log");
  ASSERT_TRUE(tail) << tail.error().message();
  EXPECT_TRUE(tail->starts_with("line 20\n")) << *tail;
  EXPECT_TRUE(tail->ends_with("line 99\n")) << *tail;

  writeLog(dir.path() + "/1.log", {std::string(3000, 'x'), "last words"});
  auto cut = rt::readLogTail(dir.path() + "/1.log");
  ASSERT_TRUE(cut) << cut.error().message();
  EXPECT_EQ(cut->size(), 2048u);
  EXPECT_TRUE(cut->ends_with("x\nlast words\n")) << "the end of the log is kept";
}

class Termination : public Lifecycle {
 protected:
  void SetUp() override {
    Lifecycle::SetUp();
    runtime_->setTerminationDir(files_.path() + "/pods");
    ctx_.config.pod_log_dir = files_.path() + "/logs";
  }
  std::string logOf(const std::string& container, int run) {
    return files_.path() + "/logs/default_web_u1/" + container + "/" + std::to_string(run) + ".log";
  }
  bool terminated(const std::string& name) { return ctr(name).state.kind == Kind::kTerminated; }
  TempDir files_;
};

TEST_F(Termination, WhatTheContainerWroteIsItsTerminatedMessage) {
  // The Kubernetes docs' termination-demo.
  run(R"(spec:
  restartPolicy: Never
  containers:
  - name: termination-demo-container
    image: busybox
    command: ["/bin/sh"]
    args: ["-c", "sleep 10 && echo Sleep expired > /dev/termination-log"]
)");
  ASSERT_TRUE(until([&] { return runtime_->running("termination-demo-container"); }));
  std::string file = runtime_->terminationFile("termination-demo-container");
  ASSERT_FALSE(file.empty());
  writeFile(file, "Sleep expired\n");
  ASSERT_TRUE(runtime_->exit("termination-demo-container", 0));
  ASSERT_TRUE(until([&] { return terminated("termination-demo-container"); }));
  EXPECT_EQ(ctr("termination-demo-container").state.message, "Sleep expired\n");
  EXPECT_EQ(ctr("termination-demo-container").state.reason, "Completed");
  std::string json = podStatusJson(worker_->status());
  EXPECT_NE(json.find("Sleep expired\\n"), std::string::npos) << json;
}

TEST_F(Termination, FallbackToLogsOnErrorTakesTheLogOnlyForAFailureWithAnEmptyFile) {
  run(R"(spec:
  restartPolicy: Never
  containers:
  - {name: failing, image: busybox, terminationMessagePolicy: FallbackToLogsOnError}
  - {name: fine, image: busybox, terminationMessagePolicy: FallbackToLogsOnError}
  - {name: wrote, image: busybox, terminationMessagePolicy: FallbackToLogsOnError}
  - {name: plain, image: busybox}
)");
  ASSERT_TRUE(until([&] { return runtime_->running("plain"); }));
  for (const char* name : {"failing", "fine", "wrote", "plain"}) {
    writeLog(logOf(name, 0), {"starting", std::string("panic: ") + name + " failed"});
  }
  writeFile(runtime_->terminationFile("wrote"), "my own words");
  ASSERT_TRUE(runtime_->exit("failing", 2));
  ASSERT_TRUE(runtime_->exit("fine", 0));
  ASSERT_TRUE(runtime_->exit("wrote", 1));
  ASSERT_TRUE(runtime_->exit("plain", 1));
  ASSERT_TRUE(until([&] { return terminated("failing") && terminated("plain"); }));
  ASSERT_TRUE(until([&] { return terminated("fine") && terminated("wrote"); }));
  EXPECT_EQ(ctr("failing").state.message, "starting\npanic: failing failed\n");
  EXPECT_EQ(ctr("fine").state.message, "") << "exit 0: no fallback";
  EXPECT_EQ(ctr("wrote").state.message, "my own words") << "the file wins";
  EXPECT_EQ(ctr("plain").state.message, "") << "policy File: no fallback";
}

TEST_F(Termination, AContainerHasFourKiBAndThePodTwelveSharedEvenly) {
  std::string spec = "spec:\n  restartPolicy: Never\n  containers:\n";
  for (int i = 0; i < 4; i++) {
    spec += "  - {name: c" + std::to_string(i) + ", image: busybox}\n";
  }
  run(spec);
  ASSERT_TRUE(until([&] { return runtime_->running("c3"); }));
  writeFile(runtime_->terminationFile("c0"), std::string(100, 'h') + std::string(4096, 't'));
  for (int i = 1; i < 4; i++) {
    writeFile(runtime_->terminationFile("c" + std::to_string(i)), std::string(4096, 'm'));
  }
  for (int i = 0; i < 4; i++) {
    ASSERT_TRUE(runtime_->exit("c" + std::to_string(i), 0));
  }
  ASSERT_TRUE(until([&] { return terminated("c0") && terminated("c3"); }));
  ASSERT_TRUE(until([&] { return terminated("c1") && terminated("c2"); }));
  // 4 KiB read from the file's end, then the pod's 12 KiB over 4 containers:
  // the first 3 KiB of each.
  EXPECT_EQ(ctr("c0").state.message, std::string(3072, 't'));
  size_t total = 0;
  for (const auto& c : worker_->status().container_statuses) {
    EXPECT_EQ(c.state.message.size(), 3072u) << c.name;
    total += c.state.message.size();
  }
  EXPECT_LE(total, rt::kMaxContainerTerminationMessageLength * 3);

  // One container alone keeps its whole 4 KiB.
  worker_.reset();
  run("spec:\n  restartPolicy: Never\n  containers:\n  - {name: solo, image: busybox}\n");
  ASSERT_TRUE(until([&] { return runtime_->running("solo"); }));
  writeFile(runtime_->terminationFile("solo"), std::string(5000, 's'));
  ASSERT_TRUE(runtime_->exit("solo", 0));
  ASSERT_TRUE(until([&] { return terminated("solo"); }));
  EXPECT_EQ(ctr("solo").state.message.size(), 4096u);
}

TEST_F(Termination, ARestartGetsAFreshFileSoTheOldMessageIsOnlyInLastState) {
  run(R"(spec:
  restartPolicy: OnFailure
  containers:
  - {name: app, image: busybox}
)");
  ASSERT_TRUE(until([&] { return runtime_->running("app"); }));
  std::string first = runtime_->terminationFile("app");
  writeFile(first, "first run failed");
  ASSERT_TRUE(runtime_->exit("app", 1));
  ASSERT_TRUE(until([&] { return runtime_->starts("app") == 2 && runtime_->running("app"); }));
  std::string second = runtime_->terminationFile("app");
  EXPECT_NE(second, first);
  auto fresh = rt::readTerminationFile(second);
  ASSERT_TRUE(fresh && *fresh);
  EXPECT_EQ(**fresh, "") << "the new run's file starts empty";
  ASSERT_TRUE(runtime_->exit("app", 3));
  ASSERT_TRUE(until([&] { return ctr("app").last_state.exit_code == 3; }));
  EXPECT_EQ(ctr("app").last_state.message, "") << "the second run wrote nothing";
  ASSERT_TRUE(until([&] { return ctr("app").restart_count == 2; }));
  // Before the second exit, lastState held the first run's message.
  bool seen = false;
  for (const auto& s : history_) {
    for (const auto& c : s.container_statuses) {
      seen = seen || (c.last_state.message == "first run failed" && c.restart_count == 1);
    }
  }
  EXPECT_TRUE(seen);
}

TEST_F(Lifecycle, APodPastItsActiveDeadlineFailsWithDeadlineExceeded) {
  run(R"(spec:
  activeDeadlineSeconds: 2
  containers:
  - {name: app, image: busybox}
  - {name: side, image: busybox}
)");
  ASSERT_TRUE(until([&] { return runtime_->running("app") && runtime_->running("side"); }));
  ASSERT_TRUE(until([&] { return worker_->status().phase == "Failed"; }));
  EXPECT_EQ(worker_->status().reason, "DeadlineExceeded");
  EXPECT_EQ(worker_->status().message,
            "Pod was active on the node longer than the specified deadline");
  EXPECT_TRUE(sawEvent(
      "Normal DeadlineExceeded : Pod was active on the node longer than the specified deadline"));
  ASSERT_TRUE(until([&] { return !runtime_->running("app") && !runtime_->running("side"); }));
  EXPECT_EQ(runtime_->calls("signal app 15").size(), 1u);
  EXPECT_TRUE(until([&] { return runtime_->calls("destroySandbox").size() == 1; }));
  settle(std::chrono::milliseconds(100));
  EXPECT_EQ(runtime_->starts("app"), 1) << "restartPolicy Always does not bring it back";
  EXPECT_EQ(worker_->status().phase, "Failed");
  EXPECT_EQ(ctr("app").state.kind, Kind::kTerminated);
}

TEST_F(Lifecycle, ShorteningTheActiveDeadlineRearmsIt) {
  run(R"(spec:
  activeDeadlineSeconds: 600
  containers:
  - {name: app, image: busybox}
)");
  ASSERT_TRUE(until([&] { return runtime_->running("app"); }));
  settle(std::chrono::milliseconds(100));
  EXPECT_EQ(worker_->status().phase, "Running");
  Pod shorter = worker_->pod();
  shorter.active_deadline_seconds = 3;
  worker_->update(shorter);
  ASSERT_TRUE(until([&] { return worker_->status().reason == "DeadlineExceeded"; },
                    std::chrono::milliseconds(2000)))
      << "the update's deadline is the one that counts, from the pod's start";
  EXPECT_EQ(worker_->status().phase, "Failed");
  ASSERT_TRUE(until([&] { return !runtime_->running("app"); }));
}

TEST_F(Lifecycle, APodThatCompletedBeforeItsDeadlineKeepsItsPhase) {
  run(R"(spec:
  activeDeadlineSeconds: 5
  restartPolicy: Never
  containers:
  - {name: job, image: busybox}
)");
  ASSERT_TRUE(until([&] { return runtime_->running("job"); }));
  ASSERT_TRUE(runtime_->exit("job", 0));
  ASSERT_TRUE(until([&] { return worker_->status().phase == "Succeeded"; }));
  settle(std::chrono::milliseconds(150));
  EXPECT_EQ(worker_->status().phase, "Succeeded");
  EXPECT_EQ(worker_->status().reason, "");
  EXPECT_FALSE(sawEvent("Normal DeadlineExceeded"));
}

}  // namespace
}  // namespace kernelet::agent
