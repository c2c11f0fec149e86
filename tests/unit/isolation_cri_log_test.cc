#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "isolation/container_exit.h"
#include "isolation/cri_log.h"

namespace kernelet::isolation {
namespace {

struct Line {
  std::string stream, tag, content;
};

// Writes through a pipe and parses what the kubelet would read back.
class CriLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::pipe(p_), 0);
    writer_.emplace(UniqueFd(p_[1]));
  }
  void TearDown() override { ::close(p_[0]); }
  std::vector<Line> lines() {
    writer_.reset();  // closes the write end
    std::string all;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(p_[0], buf, sizeof buf)) > 0) {
      all.append(buf, static_cast<size_t>(n));
    }
    std::vector<Line> out;
    std::istringstream in(all);
    // Split by hand: std::regex recursion over 16 KiB lines overflows the stack.
    static const std::regex timestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z)");
    for (std::string l; std::getline(in, l);) {
      size_t a = l.find(' '), b = l.find(' ', a + 1), c = l.find(' ', b + 1);
      bool ok = a != std::string::npos && b != std::string::npos && c != std::string::npos &&
                std::regex_match(l.substr(0, a), timestamp);
      EXPECT_TRUE(ok) << "not a CRI log line: " << l.substr(0, 80);
      if (!ok) {
        continue;
      }
      Line line{l.substr(a + 1, b - a - 1), l.substr(b + 1, c - b - 1), l.substr(c + 1)};
      EXPECT_TRUE(line.stream == "stdout" || line.stream == "stderr") << line.stream;
      EXPECT_TRUE(line.tag == "P" || line.tag == "F") << line.tag;
      out.push_back(line);
    }
    return out;
  }
  int p_[2];
  std::optional<CriLogWriter> writer_;
};

TEST_F(CriLogTest, WholeLinesAreFull) {
  ASSERT_TRUE(writer_->feed(Stream::kStdout, "hello\nwor"));
  ASSERT_TRUE(writer_->feed(Stream::kStderr, "oops\r\n"));
  ASSERT_TRUE(writer_->feed(Stream::kStdout, "ld\n\n"));
  auto l = lines();
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[0].content, "hello");
  EXPECT_EQ(l[0].tag, "F");
  EXPECT_EQ(l[1].stream, "stderr");
  EXPECT_EQ(l[1].content, "oops");
  EXPECT_EQ(l[2].content, "world");
  EXPECT_EQ(l[3].content, "");
}

TEST_F(CriLogTest, LongLinesAreSplitIntoPartials) {
  std::string big(CriLogWriter::kMaxLine * 2 + 100, 'x');
  ASSERT_TRUE(writer_->feed(Stream::kStdout, big + "\n"));
  auto l = lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].tag, "P");
  EXPECT_EQ(l[0].content.size(), CriLogWriter::kMaxLine);
  EXPECT_EQ(l[1].tag, "P");
  EXPECT_EQ(l[2].tag, "F");
  EXPECT_EQ(l[2].content.size(), 100u);
}

TEST_F(CriLogTest, UnterminatedOutputIsFullAtClose) {
  ASSERT_TRUE(writer_->feed(Stream::kStdout, "no newline"));
  ASSERT_TRUE(writer_->close(Stream::kStdout));
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].tag, "F");
  EXPECT_EQ(l[0].content, "no newline");
}

TEST(Rfc3339Nano, TrimsTrailingZerosLikeGo) {
  EXPECT_EQ(rfc3339Nano({1475713029, 669794202}), "2016-10-06T00:17:09.669794202Z");
  EXPECT_EQ(rfc3339Nano({1475713029, 500000000}), "2016-10-06T00:17:09.5Z");
  EXPECT_EQ(rfc3339Nano({1475713029, 0}), "2016-10-06T00:17:09Z");
}

TEST(ContainerExit, ReasonsAsTheKubeletReportsThem) {
  EXPECT_EQ((ContainerExit{{0, 0}, false}).reason(), "Completed");
  EXPECT_EQ((ContainerExit{{1, 0}, false}).reason(), "Error");
  EXPECT_EQ((ContainerExit{{0, 9}, false}).reason(), "Error");
  EXPECT_EQ((ContainerExit{{0, 9}, true}).reason(), "OOMKilled");
  EXPECT_EQ((ContainerExit{{0, 9}, false}).status.shellStatus(), 137);
}

}  // namespace
}  // namespace kernelet::isolation

namespace kernelet::isolation {
namespace {

TEST(CriLogRotation, KeepsAtMostMaxFilesAndNeverSplitsALine) {
  char tmpl[] = "/tmp/kernelet-rot-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto w = CriLogWriter::open(dir + "/0.log");
  ASSERT_TRUE(w) << w.error().message();
  w->rotateAt(1000, 3);
  std::string line(100, 'x');
  for (int i = 0; i < 60; i++) {
    ASSERT_TRUE(w->feed(Stream::kStdout, line + "\n"));
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    files.push_back(e.path().filename().string());
    struct stat st {};
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_LE(st.st_size, 1000) << e.path();
    // Every file holds whole CRI lines only.
    std::ifstream in(e.path());
    for (std::string l; std::getline(in, l);) {
      EXPECT_TRUE(l.ends_with(" stdout F " + line)) << l;
    }
  }
  EXPECT_EQ(files.size(), 3u);
  EXPECT_TRUE(std::find(files.begin(), files.end(), "0.log") != files.end());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kernelet::isolation
