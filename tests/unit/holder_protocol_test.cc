// The holder's protocol (holder/protocol.h): what encodes parses back the same,
// and what is malformed is refused with the errno the holder answers with.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "holder/protocol.h"

namespace {

kh_msg withId(uint16_t type, const std::string& id) {
  kh_msg m{};
  m.type = type;
  m.version = KH_VERSION;
  m.seq = 42;
  m.id_len = static_cast<uint16_t>(id.size());
  std::memcpy(m.id, id.data(), id.size());
  return m;
}

std::vector<uint8_t> encode(const kh_msg& m) {
  std::vector<uint8_t> buf(KH_MAX_MSG);
  buf.resize(kh_encode(&m, buf.data(), buf.size()));
  return buf;
}

TEST(HolderProtocol, KeepRoundTrips) {
  kh_msg m = withId(KH_KEEP, std::string(64, 'f'));
  m.pid = 4242;
  m.start_time = 123456789012ULL;
  auto buf = encode(m);
  ASSERT_EQ(buf.size(), KH_HEADER + 4 + 8 + 2 + 64u);
  kh_msg out;
  ASSERT_EQ(kh_parse(buf.data(), buf.size(), &out), 0);
  EXPECT_EQ(out.type, KH_KEEP);
  EXPECT_EQ(out.seq, 42u);
  EXPECT_EQ(out.pid, 4242);
  EXPECT_EQ(out.start_time, 123456789012ULL);
  EXPECT_EQ(std::string(out.id, out.id_len), std::string(64, 'f'));
}

TEST(HolderProtocol, FetchReplyCarriesTheExit) {
  kh_msg m{};
  m.type = KH_FETCH | KH_REPLY;
  m.state = KH_EXITED;
  m.nfds = 3;
  m.wait_status = 7 << 8;
  m.finished_ns = 1764547200123456789LL;
  auto buf = encode(m);
  kh_msg out;
  ASSERT_EQ(kh_parse(buf.data(), buf.size(), &out), 0);
  EXPECT_EQ(out.state, KH_EXITED);
  EXPECT_EQ(out.nfds, 3);
  EXPECT_EQ(out.wait_status, 7 << 8);
  EXPECT_EQ(out.finished_ns, 1764547200123456789LL);
}

TEST(HolderProtocol, ListRepliesCarryTheirIds) {
  uint8_t entries[KH_MAX_MSG];
  size_t len = 0;
  ASSERT_EQ(kh_list_append(entries, sizeof entries, &len, "one", 3), 0);
  ASSERT_EQ(kh_list_append(entries, sizeof entries, &len, "two-2", 5), 0);
  EXPECT_EQ(kh_list_append(entries, sizeof entries, &len, "bad id", 6), -EINVAL);
  EXPECT_EQ(kh_list_append(entries, len + 2, &len, "x", 1), -ENOSPC);
  kh_msg m{};
  m.type = KH_LIST | KH_REPLY;
  m.total = 5;
  m.next = 2;
  m.count = 2;
  m.list = entries;
  m.list_len = len;
  auto buf = encode(m);
  kh_msg out;
  ASSERT_EQ(kh_parse(buf.data(), buf.size(), &out), 0);
  EXPECT_EQ(out.total, 5u);
  EXPECT_EQ(out.next, 2u);
  std::vector<std::string> ids;
  size_t at = 0, n = 0;
  const char* id = nullptr;
  while (kh_list_next(&out, &at, &id, &n) != 0) {
    ids.emplace_back(id, n);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"one", "two-2"}));
  // A count that does not match the entries is malformed.
  buf[KH_HEADER + 8] = 3;
  EXPECT_EQ(kh_parse(buf.data(), buf.size(), &out), -EBADMSG);
}

TEST(HolderProtocol, MalformedMessagesAreRefused) {
  kh_msg out;
  auto fetch = encode(withId(KH_FETCH, "abc"));
  ASSERT_FALSE(fetch.empty());
  EXPECT_EQ(kh_parse(fetch.data(), fetch.size(), &out), 0);
  // Short: a header cut, an id cut.
  EXPECT_EQ(kh_parse(fetch.data(), 5, &out), -EBADMSG);
  EXPECT_EQ(kh_parse(fetch.data(), fetch.size() - 1, &out), -EBADMSG);
  // Trailing bytes.
  auto longer = fetch;
  longer.push_back(0);
  EXPECT_EQ(kh_parse(longer.data(), longer.size(), &out), -EBADMSG);
  // Longer than any message may be.
  std::vector<uint8_t> huge(KH_MAX_MSG + 1, 0);
  std::memcpy(huge.data(), fetch.data(), fetch.size());
  EXPECT_EQ(kh_parse(huge.data(), huge.size(), &out), -EBADMSG);
  // An unknown type; a version this side does not speak.
  auto unknown = fetch;
  unknown[0] = 9;
  EXPECT_EQ(kh_parse(unknown.data(), unknown.size(), &out), -EPROTO);
  auto future = fetch;
  future[2] = 2;
  EXPECT_EQ(kh_parse(future.data(), future.size(), &out), -EPROTONOSUPPORT);
  // Ids: empty, too long, a space, a NUL.
  auto empty = fetch;
  empty[KH_HEADER] = 0;
  EXPECT_EQ(kh_parse(empty.data(), empty.size(), &out), -EBADMSG);
  auto spaced = encode(withId(KH_FETCH, "abc"));
  spaced[KH_HEADER + 3] = ' ';
  EXPECT_EQ(kh_parse(spaced.data(), spaced.size(), &out), -EBADMSG);
  spaced[KH_HEADER + 3] = '\0';
  EXPECT_EQ(kh_parse(spaced.data(), spaced.size(), &out), -EBADMSG);
  EXPECT_TRUE(encode(withId(KH_FETCH, std::string(KH_MAX_ID + 1, 'a'))).empty());
  EXPECT_FALSE(encode(withId(KH_FETCH, std::string(KH_MAX_ID, 'a'))).empty());
}

TEST(HolderProtocol, HelloOfAnyVersionParses) {
  kh_msg m{};
  m.type = KH_HELLO;
  m.min_version = 1;
  m.max_version = 3;
  auto buf = encode(m);
  buf[2] = 3;  // a newer client's header: HELLO is where versions are agreed
  kh_msg out;
  ASSERT_EQ(kh_parse(buf.data(), buf.size(), &out), 0);
  EXPECT_EQ(out.min_version, 1);
  EXPECT_EQ(out.max_version, 3);
}

}  // namespace
