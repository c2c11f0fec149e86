#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "sys/fileio.h"

namespace kernelet {
namespace {

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kernelet-file-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FileTest, AtomicWriteThenReadBack) {
  std::string p = dir_ + "/state.json";
  ASSERT_TRUE(writeFileAtomic(p, "{\"a\":1}"));
  ASSERT_TRUE(writeFileAtomic(p, "{\"a\":2}"));
  EXPECT_EQ(readFile(p).value(), "{\"a\":2}");
  // No temp file is left beside it.
  int entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir_)) {
    entries++;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(FileTest, ErrorsNameThePath) {
  auto r = readFile(dir_ + "/missing");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "open `" + dir_ + "/missing`: No such file or directory");
  auto w = writeFile(dir_ + "/missing", "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().errnum, ENOENT);
}

TEST_F(FileTest, OpenDirRefusesASymlinkAsLastComponent) {
  std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink("/tmp", link.c_str()), 0);
  auto r = openDir(link);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, ENOTDIR);
  EXPECT_TRUE(openDir(link, /*nofollow=*/false));
}

TEST_F(FileTest, ReadAtAndWriteAtUseTheDirectoryHandle) {
  ASSERT_TRUE(writeFileAtomic(dir_ + "/value", "old"));
  auto d = openDir(dir_);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_TRUE(writeFileAt(d->get(), "value", "new", dir_ + "/value"));
  EXPECT_EQ(readFileAt(d->get(), "value", dir_ + "/value").value(), "new");
}

}  // namespace
}  // namespace kernelet
