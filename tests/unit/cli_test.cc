// The kernelet binary as a user runs it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/temp_dir.h"

namespace {

struct CliRun {
  int status;
  std::string output;  // stdout and stderr together
};

CliRun runKernelet(const std::string& args) {
  std::string cmd = std::string(KERNELET_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  CliRun r{-1, {}};
  if (p == nullptr) {
    return r;
  }
  std::array<char, 512> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) {
    r.output.append(buf.data(), n);
  }
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(Cli, VersionPrintsTheVersion) {
  CliRun r = runKernelet("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output, "kernelet version " KERNELET_VERSION_STRING "\n");
}

TEST(Cli, UnknownFlagIsAUsageErrorWithExitCode2) {
  CliRun r = runKernelet("--no-such-flag");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--no-such-flag"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kernelet --help"), std::string::npos) << r.output;
}

TEST(Cli, HelpListsTheSubcommands) {
  CliRun r = runKernelet("--help");
  EXPECT_EQ(r.status, 0);
  for (const char* sub : {"run", "oci", "images"}) {
    EXPECT_NE(r.output.find(sub), std::string::npos) << sub << " missing from:\n" << r.output;
  }
}

// Checked before anything starts: nothing is set up for a bad flag.
TEST(Cli, ABadReservationOrThresholdFlagIsAUsageErrorNamingIt) {
  CliRun r = runKernelet("run --pod-manifest-path /nonexistent --kube-reserved cpu=1,gpu=1");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.output,
            "kernelet run: parse --kube-reserved `gpu=1`: unknown resource (cpu, memory, "
            "ephemeral-storage or pid)\n");
  r = runKernelet("run --pod-manifest-path /nonexistent --eviction-hard 'memory.available<1x'");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.output,
            "kernelet run: parse --eviction-hard `memory.available<1x`: not a quantity or a "
            "percentage\n");
}

// `kernelet images import` of a hostile layout: exit 1 with the document and
// the JSON path in the message, never a crash (it was SIGSEGV, exit 139).
TEST(ImagesCli, ImportOfAnIndexWithAWrongTypeFailsWithThePath) {
  kernelet::testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/layout/blobs/sha256");
  std::string index = dir.write("layout/index.json", R"({"manifests":[1]})");
  CliRun r =
      runKernelet("images --root-dir " + dir.path() + "/store import " + dir.path() + "/layout");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("decode `" + index + "`: manifests[0]: must be an object"),
            std::string::npos)
      << r.output;
}

TEST(ImagesCli, ImportOfADeeplyNestedIndexFailsCleanly) {
  kernelet::testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/layout/blobs/sha256");
  dir.write("layout/index.json",
            R"({"manifests":)" + std::string(100000, '[') + std::string(100000, ']') + "}");
  CliRun r =
      runKernelet("images --root-dir " + dir.path() + "/store import " + dir.path() + "/layout");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("nested deeper than"), std::string::npos) << r.output;
}

// `kernelet logs` over what an agent leaves: ROOT/pods/UID/status.json and
// the CRI log files, read with kubectl's flags.
class LogsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() + "/root/pods/u1");
    std::filesystem::create_directories(dir_.path() + "/logs/default_web_u1/app");
    setStatus(R"({"running":{"startedAt":"2026-01-01T00:00:00Z"}})");
    dir_.write("logs/default_web_u1/app/0.log", "2026-01-01T00:00:00Z stdout F before\n");
    dir_.write("logs/default_web_u1/app/1.log",
               "2026-01-01T00:00:01Z stdout F one\n"
               "2026-01-01T00:00:02.5Z stderr F two\n"
               "2026-01-01T00:00:03Z stdout F three\n");
  }
  // The app container's state; run 1, after one restart.
  void setStatus(const std::string& state) {
    dir_.write("root/pods/u1/status.json.tmp",
               R"({"metadata":{"name":"web","namespace":"default","uid":"u1"},)"
               R"("spec":{"containers":[{"name":"app"}]},"status":{"phase":"Running",)"
               R"("containerStatuses":[{"name":"app","restartCount":1,"state":)" +
                   state + R"(,"lastState":{"terminated":{"exitCode":1}}}]}})");
    std::filesystem::rename(dir_.path() + "/root/pods/u1/status.json.tmp",
                            dir_.path() + "/root/pods/u1/status.json");
  }
  std::string logs(const std::string& flags) const {
    return "logs --root-dir " + dir_.path() + "/root --pod-log-dir " + dir_.path() + "/logs web " +
           flags;
  }
  kernelet::testing::TempDir dir_;
};

TEST_F(LogsCli, TailTimestampsLimitAndPrevious) {
  CliRun r = runKernelet(logs(""));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "one\ntwo\nthree\n");
  r = runKernelet(logs("--tail 2 --timestamps"));
  EXPECT_EQ(r.output, "2026-01-01T00:00:02.500000000Z two\n2026-01-01T00:00:03.000000000Z three\n");
  r = runKernelet(logs("--tail=0"));
  EXPECT_EQ(r.output, "");
  r = runKernelet(logs("--limit-bytes 6"));
  EXPECT_EQ(r.output, "one\ntw");
  r = runKernelet(logs("--since-time 2026-01-01T00:00:02Z -c app"));
  EXPECT_EQ(r.output, "two\nthree\n");
  // Lines of 2026-01-01: none is from the last second, all are from the last ten years.
  r = runKernelet(logs("--since 1s"));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "");
  r = runKernelet(logs("--since 87600h"));
  EXPECT_EQ(r.output, "one\ntwo\nthree\n");
  r = runKernelet(logs("-p"));
  EXPECT_EQ(r.output, "before\n");
}

TEST_F(LogsCli, BadFlagsAreRefused) {
  CliRun r = runKernelet(logs("--since 1h --since-time 2026-01-01T00:00:02Z"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("at most one of `sinceTime` or `sinceSeconds` may be specified"),
            std::string::npos)
      << r.output;
  r = runKernelet(logs("--since 5 "));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--since"), std::string::npos) << r.output;
  r = runKernelet(logs("--since-time yesterday"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--since-time"), std::string::npos) << r.output;
  r = runKernelet(logs("--tail -2"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--tail"), std::string::npos) << r.output;
  r = runKernelet(logs("--limit-bytes -1"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--limit-bytes"), std::string::npos) << r.output;
}

// -f prints what is there, waits for more, and ends once status.json says the
// container's run stopped.
TEST_F(LogsCli, FollowEndsWhenTheContainerStops) {
  std::string cmd = std::string(KERNELET_BINARY) + " " + logs("-f") + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string got;
  std::array<char, 512> buf{};
  // The first lines come before it waits (it flushes when it waits).
  while (got.size() < std::string("one\ntwo\nthree\n").size() &&
         fgets(buf.data(), buf.size(), p) != nullptr) {
    got += buf.data();
  }
  EXPECT_EQ(got, "one\ntwo\nthree\n");
  std::ofstream(dir_.path() + "/logs/default_web_u1/app/1.log", std::ios::app)
      << "2026-01-01T00:00:04Z stdout F four\n";
  while (got.size() < std::string("one\ntwo\nthree\nfour\n").size() &&
         fgets(buf.data(), buf.size(), p) != nullptr) {
    got += buf.data();
  }
  EXPECT_EQ(got, "one\ntwo\nthree\nfour\n");
  setStatus(R"({"terminated":{"exitCode":0,"reason":"Completed"}})");
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) {
    got.append(buf.data(), n);
  }
  int st = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_EQ(got, "one\ntwo\nthree\nfour\n");
}

}  // namespace
