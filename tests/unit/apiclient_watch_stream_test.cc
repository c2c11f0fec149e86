#include <gtest/gtest.h>

#include "apiclient/watch_stream.h"

namespace kernelet::apiclient {
namespace {

const std::string kStream =
    R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"11"},"spec":{"nodeName":"n1"}}})"
    "\n"
    R"({"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"12","deletionTimestamp":"2025-05-01T10:00:00Z"}}})"
    "\n\n"
    R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"15","annotations":{"k8s.io/initial-events-end":"true"}}}})"
    "\n"
    R"({"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"16"}}})"
    "\n"
    R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410,"message":"too old resource version: 123 (456)"}})j"
    "\n";

std::vector<WatchEvent> decodeInPieces(const std::string& stream, size_t split) {
  std::vector<WatchEvent> events;
  WatchStream w([&](WatchEvent e) { events.push_back(std::move(e)); });
  EXPECT_TRUE(w.feed(std::string_view(stream).substr(0, split)));
  EXPECT_TRUE(w.feed(std::string_view(stream).substr(split)));
  EXPECT_TRUE(w.finish());
  return events;
}

TEST(WatchStream, DecodesTheSameEventsWhereverTheStreamIsSplit) {
  for (size_t split = 0; split <= kStream.size(); split++) {
    auto events = decodeInPieces(kStream, split);
    ASSERT_EQ(events.size(), 5u) << "split at " << split;
    EXPECT_EQ(events[0].type, WatchEvent::Type::kAdded);
    EXPECT_EQ(events[0].resource_version, "11");
    EXPECT_NE(events[0].object.find("\"nodeName\":\"n1\""), std::string::npos);
    EXPECT_EQ(events[1].type, WatchEvent::Type::kModified);
    EXPECT_EQ(events[2].type, WatchEvent::Type::kBookmark);
    EXPECT_TRUE(events[2].initial_events_end);
    EXPECT_EQ(events[2].resource_version, "15");
    EXPECT_EQ(events[3].type, WatchEvent::Type::kDeleted);
    EXPECT_EQ(events[4].type, WatchEvent::Type::kError);
    EXPECT_EQ(events[4].code, 410);
    EXPECT_EQ(events[4].reason, "Expired");
  }
}

TEST(WatchStream, TheObjectTextIsExactlyWhatTheServerSentInEitherMemberOrder) {
  std::vector<WatchEvent> events;
  WatchStream w([&](WatchEvent e) { events.push_back(std::move(e)); });
  const std::string inner =
      R"({"kind":"ConfigMap","metadata":{"name":"x","resourceVersion":"7"},"data":{"object":"}{","k":"\"object\": {}"}})";
  ASSERT_TRUE(w.feed("{ \"type\" : \"ADDED\" , \"object\" : " + inner + " }\r\n"));
  ASSERT_TRUE(w.feed("{\"object\":" + inner + ",\"type\":\"MODIFIED\"}\n"));
  ASSERT_TRUE(
      w.feed("{\"type\":\"DELETED\",\"extra\":{\"object\":{}},\"object\":" + inner + "}\n"));
  ASSERT_EQ(events.size(), 3u);
  for (const auto& e : events) {
    EXPECT_EQ(e.object, inner);
    EXPECT_EQ(e.resource_version, "7");
  }
}

TEST(WatchStream, ByteByByte) {
  std::vector<WatchEvent> events;
  WatchStream w([&](WatchEvent e) { events.push_back(std::move(e)); });
  for (char c : kStream) {
    ASSERT_TRUE(w.feed(std::string_view(&c, 1)));
  }
  ASSERT_TRUE(w.finish());
  EXPECT_EQ(events.size(), 5u);
}

TEST(WatchStream, BrokenInputIsAnErrorNamingTheEvent) {
  WatchStream w([](WatchEvent) {});
  ASSERT_TRUE(w.feed(kStream.substr(0, kStream.find('\n') + 1)));
  auto bad = w.feed("{\"type\":\"EXPLODED\",\"object\":{}}\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "decode watch event `event 2`: unknown type \"EXPLODED\"");
  WatchStream cut([](WatchEvent) {});
  ASSERT_TRUE(cut.feed("{\"type\":\"ADDED\",\"obj"));
  auto end = cut.finish();
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().message(),
            "decode watch event `event 1`: the stream ended in the middle of an event");
  WatchStream junk([](WatchEvent) {});
  EXPECT_FALSE(junk.feed("<html>\n"));
}

// A hostile or broken server nests 100k arrays in an event: refused with an
// error, not a stack overflow (the recursive parser crashed here), and the
// stream goes on with the next event.
TEST(WatchStream, ADeeplyNestedEventIsAnErrorNotACrash) {
  constexpr size_t kDepth = 100000;
  std::string deep = R"({"type":"ADDED","object":{"metadata":{"name":"x"},"spec":)" +
                     std::string(kDepth, '[') + std::string(kDepth, ']') + "}}\n";
  std::vector<WatchEvent> events;
  WatchStream w([&](WatchEvent e) { events.push_back(std::move(e)); });
  auto r = w.feed(deep);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "decode watch event `event 1`: not a {\"type\", \"object\"} JSON object");
  EXPECT_TRUE(events.empty());
  WatchStream next([&](WatchEvent e) { events.push_back(std::move(e)); });
  ASSERT_TRUE(next.feed(kStream));
  EXPECT_EQ(events.size(), 5u);
}

}  // namespace
}  // namespace kernelet::apiclient
