// The kernelet binary as a user runs it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
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

}  // namespace
