// Checked JSON: every wrong type is an error naming the document and the path.
#include <gtest/gtest.h>

#include "sys/json.h"

namespace kernelet::json {
namespace {

std::string message(const Error& e) { return e.message(); }

TEST(Json, WrongTypesNameTheDocumentAndThePath) {
  auto doc = parse(R"({"manifests":[1], "n": "x", "o": {"a": [true]}})", "decode", "index.json");
  ASSERT_TRUE(doc) << message(doc.error());
  Cursor root(*doc, "decode", "index.json");
  auto manifests = root.array("manifests");
  ASSERT_TRUE(manifests);
  auto r = manifests->each([](const Cursor& m) -> Result<void> {
    TRY(std::string digest, m.str("digest"));
    return {};
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(message(r.error()), "decode `index.json`: manifests[0]: must be an object");
  EXPECT_EQ(message(root.int64("n").error()), "decode `index.json`: n: must be an integer");
  EXPECT_EQ(message(root.array("n").error()), "decode `index.json`: n: must be an array");
  EXPECT_EQ(message(root.object("manifests").error()),
            "decode `index.json`: manifests: must be an object");
  EXPECT_EQ(message(root.str("missing").error()), "decode `index.json`: missing: required");
  auto o = root.object("o");
  ASSERT_TRUE(o);
  EXPECT_EQ(message(o->optStrings("a").error()), "decode `index.json`: o.a[0]: must be a string");
}

TEST(Json, AbsentAndNullAreEmptyForOptionalFields) {
  auto doc = parse(R"({"a": null})", "decode", "x");
  ASSERT_TRUE(doc);
  Cursor root(*doc, "decode", "x");
  EXPECT_EQ(root.optStr("a").value(), "");
  EXPECT_EQ(root.optStr("b").value(), "");
  EXPECT_FALSE(root.optInt64("a").value().has_value());
  EXPECT_FALSE(root.optArray("a").value().has_value());
  EXPECT_TRUE(root.optStrings("a").value().empty());
  EXPECT_TRUE(root.optStringMap("b").value().empty());
  EXPECT_FALSE(root.has("a"));
}

TEST(Json, NumbersAreCheckedForRangeAndSign) {
  auto doc = parse(R"({"big": 4294967296, "neg": -1, "frac": 1.5, "ok": 7})", "decode", "x");
  ASSERT_TRUE(doc);
  Cursor root(*doc, "decode", "x");
  EXPECT_EQ(message(root.number<uint32_t>("big").error()), "decode `x`: big: out of range");
  EXPECT_EQ(message(root.uint64("neg").error()), "decode `x`: neg: must not be negative");
  EXPECT_EQ(message(root.int64("frac").error()), "decode `x`: frac: must be an integer");
  EXPECT_EQ(root.number<int>("ok").value(), 7);
  EXPECT_EQ(root.int64("neg").value(), -1);
}

TEST(Json, OptionalAccessorsOnANonObjectAreErrors) {
  auto doc = parse("[1]", "decode", "x");
  ASSERT_TRUE(doc);
  Cursor root(*doc, "decode", "x");
  auto r = root.each([](const Cursor& item) -> Result<void> {
    TRY(std::string s, item.optStr("digest"));
    return {};
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(message(r.error()), "decode `x`: [0]: must be an object");
}

TEST(Json, StringsKeepTheirNulBytes) {
  auto doc = parse(R"({"s": "a\u0000b"})", "decode", "x");
  ASSERT_TRUE(doc);
  EXPECT_EQ(Cursor(*doc, "decode", "x").str("s").value(), std::string("a\0b", 3));
}

TEST(Json, DeepNestingIsRefusedWithoutExhaustingTheStack) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto doc = parse(deep, "decode", "deep.json");
  ASSERT_FALSE(doc);
  EXPECT_NE(message(doc.error()).find("decode `deep.json`: offset 512: nested deeper than 512"),
            std::string::npos)
      << message(doc.error());
  // Exactly at the limit is fine.
  std::string ok = std::string(512, '[') + std::string(512, ']');
  EXPECT_TRUE(parse(ok, "decode", "ok"));
}

TEST(Json, SyntaxErrorsTrailingTextAndSizeAreRefused) {
  auto bad = parse("{\"a\":", "decode", "x");
  ASSERT_FALSE(bad);
  EXPECT_NE(message(bad.error()).find("decode `x`: offset 5: "), std::string::npos);
  EXPECT_FALSE(parse("{} {}", "decode", "x"));
  auto big = parse(std::string(100, ' ') + "{}", "decode", "x", Limits{.max_bytes = 10});
  ASSERT_FALSE(big);
  EXPECT_EQ(message(big.error()), "decode `x`: larger than the limit of 10 bytes");
}

TEST(Json, OnlyKeysNamesTheUnknownMember) {
  auto doc = parse(R"({"a": {"b": 1, "c": 2}})", "seccomp profile", "p");
  ASSERT_TRUE(doc);
  auto a = Cursor(*doc, "seccomp profile", "p").object("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(message(a->onlyKeys({"b"}).error()), "seccomp profile `p`: a.c: unknown field");
  EXPECT_TRUE(a->onlyKeys({"b", "c"}));
}

}  // namespace
}  // namespace kernelet::json
