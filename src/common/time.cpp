#include "ta/common/time.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace ta {
namespace {

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
// (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool read_fixed(std::string_view s, std::size_t pos, std::size_t n, unsigned &out) {
  if (pos + n > s.size()) {
    return false;
  }
  const auto *b = s.data() + pos;
  auto [p, ec] = std::from_chars(b, b + n, out);
  return ec == std::errc{} && p == b + n;
}

} // namespace

std::string format_rfc3339_us(TimeUs t) {
  std::int64_t secs = t / 1'000'000;
  std::int64_t frac = t % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    secs -= 1;
  }
  const auto tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

std::optional<TimeUs> parse_time(std::string_view s) {
  if (s.empty()) {
    return std::nullopt;
  }
  // Plain number of seconds since the epoch.
  if (s.find('-') == std::string_view::npos || s.front() == '-') {
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) {
      return std::nullopt;
    }
    // Microseconds must fit TimeUs (about ±292,000 years): beyond that, and
    // for "nan" and "inf" (from_chars takes them), the text is no time.
    const double us = v * 1e6;
    if (!(us > -9.2e18 && us < 9.2e18)) {
      return std::nullopt;
    }
    return static_cast<TimeUs>(us);
  }
  unsigned y = 0;
  unsigned mo = 0;
  unsigned d = 0;
  if (!read_fixed(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !read_fixed(s, 5, 2, mo) ||
      s[7] != '-' || !read_fixed(s, 8, 2, d) || mo < 1 || mo > 12 || d < 1 || d > 31) {
    return std::nullopt;
  }
  std::int64_t secs = days_from_civil(y, mo, d) * 86400;
  if (s.size() == 10) {
    return secs * 1'000'000;
  }
  unsigned h = 0;
  unsigned mi = 0;
  unsigned se = 0;
  if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !read_fixed(s, 11, 2, h) || s.size() < 19 ||
      s[13] != ':' || !read_fixed(s, 14, 2, mi) || s[16] != ':' || !read_fixed(s, 17, 2, se) ||
      h > 23 || mi > 59 || se > 60) {
    return std::nullopt;
  }
  secs += h * 3600 + mi * 60 + se;
  std::size_t pos = 19;
  std::int64_t us = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::int64_t scale = 100'000;
    const std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      us += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start || pos - start > 9) {
      return std::nullopt;
    }
  }
  if (pos == s.size()) {
    return std::nullopt; // a zone is required with a time of day
  }
  if (s[pos] == 'Z' || s[pos] == 'z') {
    if (pos + 1 != s.size()) {
      return std::nullopt;
    }
  } else if (s[pos] == '+' || s[pos] == '-') {
    unsigned oh = 0;
    unsigned om = 0;
    if (s.size() != pos + 6 || !read_fixed(s, pos + 1, 2, oh) || s[pos + 3] != ':' ||
        !read_fixed(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    const std::int64_t off = oh * 3600 + om * 60;
    secs += s[pos] == '+' ? -off : off;
  } else {
    return std::nullopt;
  }
  return secs * 1'000'000 + us;
}

} // namespace ta
