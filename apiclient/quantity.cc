#include "apiclient/quantity.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace kernelet::apiclient {

namespace {

using i128 = __int128;
constexpr i128 kNano = 1000000000;
// Large enough for every quantity a node deals with (about 1.7e29 units).
constexpr i128 kLimit = static_cast<i128>(1) << 126;

i128 pow10(int e) {
  i128 v = 1;
  while (e-- > 0) {
    v *= 10;
  }
  return v;
}

std::string toString(i128 v) {
  if (v == 0) {
    return "0";
  }
  bool neg = v < 0;
  if (neg) {
    v = -v;
  }
  std::string s;
  while (v > 0) {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  }
  return neg ? "-" + s : s;
}

std::unexpected<Error> invalid(const std::string& text, const std::string& why) {
  return makeError("parse quantity", text, why);
}

// Rounds a/b up (away from zero for positive values, toward zero for negative,
// as apimachinery's Ceil does on the absolute value... it rounds toward +inf).
i128 ceilDiv(i128 a, i128 b) {
  i128 q = a / b;
  if ((a % b != 0) && ((a > 0) == (b > 0))) {
    q++;
  }
  return q;
}

}  // namespace

Result<Quantity> Quantity::parse(const std::string& text) {
  if (text.empty()) {
    return invalid(text, "empty");
  }
  size_t i = 0;
  bool neg = false;
  if (text[i] == '+' || text[i] == '-') {
    neg = text[i] == '-';
    i++;
  }
  i128 mantissa = 0;
  int scale = 0;  // digits after the point
  bool dot = false, digits = false;
  for (; i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.');
       i++) {
    if (text[i] == '.') {
      if (dot) {
        return invalid(text, "more than one decimal point");
      }
      dot = true;
      continue;
    }
    digits = true;
    if (mantissa > kLimit / 10) {
      return invalid(text, "too many digits");
    }
    mantissa = mantissa * 10 + (text[i] - '0');
    scale += dot ? 1 : 0;
  }
  if (!digits) {
    return invalid(text, "no number");
  }
  std::string suffix = text.substr(i);
  Format format = Format::kDecimalSI;
  i128 mul = 1;   // multiply by this...
  int exp10 = 0;  // ...and by 10^exp10
  struct Binary {
    const char* s;
    int shift;
  };
  static const Binary binary[] = {{"Ki", 10}, {"Mi", 20}, {"Gi", 30},
                                  {"Ti", 40}, {"Pi", 50}, {"Ei", 60}};
  struct Decimal {
    const char* s;
    int exp;
  };
  static const Decimal decimal[] = {{"n", -9}, {"u", -6}, {"m", -3}, {"", 0},   {"k", 3},
                                    {"M", 6},  {"G", 9},  {"T", 12}, {"P", 15}, {"E", 18}};
  bool known = false;
  for (const auto& b : binary) {
    if (suffix == b.s) {
      format = Format::kBinarySI;
      mul = static_cast<i128>(1) << b.shift;
      known = true;
    }
  }
  for (const auto& d : decimal) {
    if (suffix == d.s) {
      exp10 = d.exp;
      known = true;
    }
  }
  if (!known && (suffix[0] == 'e' || suffix[0] == 'E') && suffix.size() > 1) {
    size_t j = 1;
    bool eneg = false;
    if (suffix[j] == '+' || suffix[j] == '-') {
      eneg = suffix[j] == '-';
      j++;
    }
    if (j < suffix.size() && suffix.size() - j <= 3 &&
        std::all_of(suffix.begin() + static_cast<long>(j), suffix.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      exp10 = std::stoi(suffix.substr(j)) * (eneg ? -1 : 1);
      format = Format::kDecimalExponent;
      known = true;
    }
  }
  if (!known) {
    return invalid(text, "unknown suffix \"" + suffix + "\"");
  }
  // nanos = mantissa * mul * 10^(exp10 + 9 - scale), rounded up.
  int e = exp10 + 9 - scale;
  if (mantissa > kLimit / mul) {
    return invalid(text, "out of range");  // "9...9Ti": the product would overflow
  }
  i128 nanos = mantissa * mul;
  if (e >= 0) {
    if (e > 38 || nanos > kLimit / pow10(std::min(e, 38))) {
      return invalid(text, "out of range");
    }
    nanos *= pow10(e);
  } else {
    nanos = -e > 38 ? (nanos > 0 ? 1 : 0) : ceilDiv(nanos, pow10(-e));
  }
  return Quantity(neg ? -nanos : nanos, format);
}

Quantity Quantity::fromMilli(int64_t milli, Format f) {
  return Quantity(static_cast<i128>(milli) * 1000000, f);
}

Quantity Quantity::fromInt(int64_t value, Format f) {
  return Quantity(static_cast<i128>(value) * kNano, f);
}

namespace {
// Values beyond int64 saturate rather than wrap.
int64_t clamp64(i128 v) {
  constexpr i128 hi = std::numeric_limits<int64_t>::max(), lo = std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v > hi ? hi : v < lo ? lo : v);
}
}  // namespace

int64_t Quantity::milliValue() const { return clamp64(ceilDiv(nanos_, 1000000)); }
int64_t Quantity::value() const { return clamp64(ceilDiv(nanos_, kNano)); }

std::string Quantity::str() const {
  i128 v = nanos_;
  bool neg = v < 0;
  i128 a = neg ? -v : v;
  std::string sign = neg ? "-" : "";
  if (a == 0) {
    return "0";
  }
  Format f = format_;
  // Binary quantities print in binary only when they are whole and not tiny.
  if (f == Format::kBinarySI && (a % kNano != 0 || a < 1024 * kNano)) {
    f = Format::kDecimalSI;
  }
  if (f == Format::kBinarySI) {
    i128 units = a / kNano;
    static const char* suffixes[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    int k = 0;
    while (k < 6 && units % 1024 == 0) {
      units /= 1024;
      k++;
    }
    return sign + toString(units) + suffixes[k];
  }
  // Decimal: the largest power of 1000 (or of 10^3 in exponent form) that keeps
  // the number whole.
  int exp = -9;
  i128 m = a;
  while (exp < 18 && m % 1000 == 0) {
    m /= 1000;
    exp += 3;
  }
  if (f == Format::kDecimalExponent) {
    return sign + toString(m) + (exp == 0 ? "" : "e" + std::to_string(exp));
  }
  static const char* dec[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
  return sign + toString(m) + dec[(exp + 9) / 3];
}

}  // namespace kernelet::apiclient
