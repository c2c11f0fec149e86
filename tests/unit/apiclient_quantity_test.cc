#include <gtest/gtest.h>

#include <limits>

#include "apiclient/quantity.h"

namespace kernelet::apiclient {
namespace {

TEST(Quantity, CanonicalFormsAsApimachineryPrintsThem) {
  struct Case {
    const char* in;
    const char* canonical;
    int64_t milli;
  } cases[] = {
      {"0", "0", 0},
      {"1", "1", 1000},
      {"1.5", "1500m", 1500},
      {"1.", "1", 1000},
      {".5", "500m", 500},
      {"100m", "100m", 100},
      {"0.1", "100m", 100},
      {"1000", "1k", 1000000},
      {"1000m", "1", 1000},
      {"1500000", "1500k", 1500000000},
      {"1M", "1M", 1000000000},
      {"2G", "2G", 2000000000000},
      {"1P", "1P", 1000000000000000000},
      {"1n", "1n", 1},
      {"1u", "1u", 1},
      {"1024Mi", "1Gi", 1073741824000},
      {"1.5Gi", "1536Mi", 1610612736000},
      {"1Ki", "1Ki", 1024000},
      {"0.5Ki", "512", 512000},
      {"1.1Ki", "1126400m", 1126400},
      {"64Mi", "64Mi", 67108864000},
      {"1e3", "1e3", 1000000},
      {"1E3", "1e3", 1000000},
      {"1.5e3", "1500", 1500000},
      {"12e6", "12e6", 12000000000},
      {"5e-3", "5e-3", 5},
      {"+1", "1", 1000},
      {"-1.5", "-1500m", -1500},
      {"-1Gi", "-1Gi", -1073741824000},
      {"0.0000000001", "1n", 1},  // rounded up to nano precision
      {"250m", "250m", 250},
      {"2.5", "2500m", 2500},
  };
  for (const auto& c : cases) {
    auto q = Quantity::parse(c.in);
    ASSERT_TRUE(q) << c.in << ": " << q.error().message();
    EXPECT_EQ(q->str(), c.canonical) << c.in;
    EXPECT_EQ(q->milliValue(), c.milli) << c.in;
  }
}

TEST(Quantity, InvalidFormsAreRefusedWithTheReason) {
  struct Case {
    const char* in;
    const char* why;
  } cases[] = {
      {"", "empty"},
      {" 1", "no number"},
      {"1 ", "unknown suffix \" \""},
      {"1.1.M", "more than one decimal point"},
      {"0.1mi", "unknown suffix \"mi\""},
      {"1i", "unknown suffix \"i\""},
      {"1KiB", "unknown suffix \"KiB\""},
      {"K", "no number"},
      {"1e", "unknown suffix \"e\""},
      {"1e1.5", "unknown suffix \"e1.5\""},
      {"--1", "no number"},
      {"1kk", "unknown suffix \"kk\""},
      // Found by the quantity fuzz target: the mantissa times 2^40 overflowed.
      {"1000000000000000000000000000000Ti", "out of range"},
      {"-171400000000000000000000000000000000Ti", "out of range"},
  };
  for (const auto& c : cases) {
    auto q = Quantity::parse(c.in);
    ASSERT_FALSE(q) << c.in << " parsed as " << q->str();
    std::string expect = std::string("parse quantity") +
                         (std::string(c.in).empty() ? "" : " `" + std::string(c.in) + "`") + ": " +
                         c.why;
    EXPECT_EQ(q.error().message(), expect);
  }
}

TEST(Quantity, ComparesByValueWhateverTheSuffix) {
  EXPECT_EQ(*Quantity::parse("1Gi"), *Quantity::parse("1024Mi"));
  EXPECT_EQ(*Quantity::parse("1"), *Quantity::parse("1000m"));
  EXPECT_LT(*Quantity::parse("999m"), *Quantity::parse("1"));
  EXPECT_EQ(Quantity::fromMilli(1500).str(), "1500m");
  EXPECT_EQ(Quantity::fromInt(2048, Quantity::Format::kBinarySI).str(), "2Ki");
  EXPECT_EQ(Quantity::parse("1.5")->value(), 2);  // rounded up
  EXPECT_EQ(Quantity::parse("1E")->str(), "1E");
  EXPECT_EQ(Quantity::parse("1E")->milliValue(), std::numeric_limits<int64_t>::max());  // saturates
}

}  // namespace
}  // namespace kernelet::apiclient
