// Query strings as Go's url.ParseQuery reads them, and the typed accessors
// that bound what endpoints accept.
#include <gtest/gtest.h>

#include "agent/server/query.h"

namespace kernelet::agent::server {
namespace {

TEST(ServerQuery, DecodesPairsAsGoDoes) {
  auto q = Query::parse("command=ls&command=-l+a&x=%41%2f&flag&=empty&&follow=true");
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(q->all("command"), (std::vector<std::string>{"ls", "-l a"}));
  EXPECT_EQ(*q->get("x"), "A/");
  EXPECT_TRUE(q->has("flag"));
  EXPECT_EQ(*q->get("flag"), "");
  EXPECT_FALSE(q->has("missing"));
  EXPECT_EQ(*q->get(""), "empty");
  EXPECT_TRUE(*q->boolean("follow"));
}

TEST(ServerQuery, BadEscapesNameTheParameter) {
  auto q = Query::parse("tailLines=%2");
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message().find("tailLines"), std::string::npos) << q.error().message();
  EXPECT_FALSE(Query::parse("%zz=1"));
  EXPECT_FALSE(percentDecode("%", false));
  EXPECT_EQ(*percentDecode("a+b", false), "a+b");
  EXPECT_EQ(*percentDecode("a+b", true), "a b");
}

TEST(ServerQuery, PairsAreBounded) {
  std::string raw;
  for (size_t i = 0; i < Query::kMaxPairs; i++) {
    raw += "a=1&";
  }
  EXPECT_TRUE(Query::parse(raw));
  EXPECT_FALSE(Query::parse(raw + "b=2"));
}

TEST(ServerQuery, BooleansTakeGosFormsOnly) {
  auto q = *Query::parse("a=T&b=0&c=yes&d=FALSE");
  EXPECT_TRUE(*q.boolean("a"));
  EXPECT_FALSE(*q.boolean("b", true));
  EXPECT_FALSE(*q.boolean("d", true));
  EXPECT_TRUE(*q.boolean("absent", true));
  auto c = q.boolean("c");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("c"), std::string::npos);
}

TEST(ServerQuery, IntegersHugeNegativeAndJunkAreRefusedByName) {
  auto q = *Query::parse(
      "tailLines=-1&limitBytes=99999999999999999999999&sinceSeconds=10s&ok=42&neg=-7&e=");
  auto tail = q.integer("tailLines", 0, INT64_MAX);
  ASSERT_FALSE(tail);
  EXPECT_NE(tail.error().message().find("tailLines"), std::string::npos);
  EXPECT_NE(tail.error().message().find("out of range"), std::string::npos);
  auto limit = q.integer("limitBytes", 1, INT64_MAX);
  ASSERT_FALSE(limit);
  EXPECT_NE(limit.error().message().find("limitBytes"), std::string::npos);
  EXPECT_FALSE(q.integer("sinceSeconds", 1, INT64_MAX));
  EXPECT_FALSE(q.integer("e", 0, 10));
  EXPECT_EQ(**q.integer("ok", 0, 100), 42);
  EXPECT_EQ(**q.integer("neg", -10, 0), -7);
  EXPECT_FALSE(q.integer("ok", 0, 41));
  EXPECT_FALSE(q.integer("absent", 0, 1)->has_value());
}

}  // namespace
}  // namespace kernelet::agent::server
