// top/top: the model of the live view (`traffic-analyzer top`, README
// "top"). Fed about once a second with cumulative per-endpoint counters (the
// analyzer's run summary), it keeps per row the deltas of the last 40 s and
// answers rates over the last 2, 10 and 40 s the way iftop does: what was
// counted inside the window divided by the window (or by the time since the
// start while that is shorter). It also keeps totals since start, sorts by
// any column, filters by substring and renders plain text rows (no escape
// codes) for batch output, tests and the full-screen view alike.
//
// Bounded: at most Options::max_rows rows (the busiest by packets, both
// directions); the rest are added up into one "(other)" row, as the run
// summary does. Rows are keyed by a group: the endpoint name itself
// (GroupBy::host), or what Options::group_key maps it to (the registrable
// domain for GroupBy::domain); for GroupBy::process the caller feeds one
// sample per program instead (ProgramTracker, programs.hpp). Endpoints that
// share a row add up their counters and flows, and merge the sources and
// programs they were seen with. Names are shown escaped (ta::escape_name).
// Never prints; single-threaded.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ta::top {

// The rate windows, in seconds (iftop's 2 s, 10 s and 40 s).
inline constexpr std::array<int, 3> kWindows{2, 10, 40};
inline constexpr std::size_t kWindowCount = kWindows.size();

// Name of the row holding what was folded out of the bounded view.
inline constexpr std::string_view kOtherRow = "(other)";
// Name shown for traffic without a name.
inline constexpr std::string_view kUnresolvedRow = "(unresolved)";

struct Counters {
  std::uint64_t sent_packets = 0;
  std::uint64_t sent_bytes = 0;
  std::uint64_t received_packets = 0;
  std::uint64_t received_bytes = 0;

  Counters &operator+=(const Counters &o) noexcept {
    sent_packets += o.sent_packets;
    sent_bytes += o.sent_bytes;
    received_packets += o.received_packets;
    received_bytes += o.received_bytes;
    return *this;
  }
  [[nodiscard]] std::uint64_t packets() const noexcept { return sent_packets + received_packets; }
  friend bool operator==(const Counters &, const Counters &) = default;
};

// One endpoint's cumulative counts as the analyzer has them now. `name` is
// raw bytes ("" unresolved). flows (cumulative like the counters), sources
// and programs are optional (unknown: -1, 0 and none, shown as "-").
struct Sample {
  std::string name;
  Counters totals;
  std::int64_t flows = -1;
  // Bit i set: Options::source_names[i] named some of its packets.
  std::uint32_t sources = 0;
  // The programs seen with it, most relevant first, and how many more were
  // seen but not listed.
  std::vector<std::string> programs;
  std::uint64_t more_programs = 0;
};

enum class GroupBy : std::uint8_t { host, domain, process };
[[nodiscard]] std::string_view group_by_name(GroupBy g) noexcept;

// Sort columns; each has a key in the full-screen view (README "top").
enum class Column : std::uint8_t {
  name,
  sent_rate, // bytes/s over the window chosen by Options::sort_window
  received_rate,
  packet_rate, // packets/s both directions
  sent_total,
  received_total,
  flows,
  count_
};
[[nodiscard]] std::string_view column_name(Column c) noexcept;

struct Options {
  std::size_t max_rows = 1000; // at least 1; one more for "(other)"
  // Rows are groups of endpoints: the key of an endpoint name (raw bytes).
  // Empty: the name itself (grouping by host).
  std::function<std::string(std::string_view name)> group_key;
  // The name of each bit of Sample::sources, shown joined by '+' ("sni+dns").
  std::vector<std::string> source_names;
  // Programs shown per row ("curl,python3+2": two named, two more).
  std::size_t shown_programs = 2;
};

// Programs a row keeps for display when endpoints merge; past it they are
// only counted (the "+N").
inline constexpr std::size_t kKeptPrograms = 8;

// Rates of one direction over the three windows, per second.
struct Rates {
  std::array<double, kWindowCount> bytes{};
  std::array<double, kWindowCount> packets{};
};

struct Row {
  std::string name; // escaped for display; "(unresolved)", "(other)"
  bool other = false;
  Counters totals;
  Rates sent;
  Rates received;
  std::int64_t flows = -1; // since the start; -1 unknown
  std::string source;      // "sni+dns"; "" unknown
  std::string program;     // "curl,python3+2"; "" unknown
};

struct ViewOptions {
  Column sort = Column::sent_rate;
  std::size_t sort_window = 0; // index into kWindows
  bool ascending = false;      // default: largest first (names: a to z)
  std::string filter;          // substring of the shown name, ASCII case-insensitive
  std::size_t limit = 0;       // rows returned, 0 = all
};

class Model {
public:
  explicit Model(Options options = {});

  // The start of the view (rates are over the time since then while it is
  // shorter than a window); without it, the first update() is the start.
  void start(double now_seconds);

  // The counters as of `now_seconds` (any monotonic clock, e.g. a fake one in
  // tests). The first call sets the start: its counters count as what
  // happened since then. A counter that went down (an endpoint folded out
  // of the analyzer's summary and back) restarts from its new value.
  void update(double now_seconds, const std::vector<Sample> &samples, const Counters &rest = {});
  // The same with the caller's rest as a sample (its flows and sources too;
  // its name is ignored).
  void update(double now_seconds, const std::vector<Sample> &samples, const Sample &rest);

  // The rows, filtered, sorted (ties by name) and limited; "(other)" last
  // whatever the sort.
  [[nodiscard]] std::vector<Row> rows(const ViewOptions &view) const;
  // All rows added up (before filtering).
  [[nodiscard]] Counters totals() const;
  [[nodiscard]] Rates total_rates(bool received) const;
  [[nodiscard]] std::size_t row_count() const noexcept {
    return rows_.size() + (has_other_ ? 1 : 0);
  }
  [[nodiscard]] double seconds_since_start() const noexcept;

private:
  // One group as fed: counters, flows and what was merged into it.
  struct Group {
    Counters totals;
    std::int64_t flows = -1;
    std::uint32_t sources = 0;
    std::vector<std::string> programs; // at most kKeptPrograms
    std::uint64_t more_programs = 0;
    void add(const Sample &s);
    void add(const Group &g);
  };
  struct Kept {
    Counters last;               // cumulative as last fed
    Counters totals;             // since start (sum of deltas)
    std::deque<Counters> deltas; // aligned with times_ (newest at the back)
    std::int64_t flows_last = -1;
    std::int64_t flows = -1; // since start (sum of deltas)
    std::uint32_t sources = 0;
    std::vector<std::string> programs;
    std::uint64_t more_programs = 0;
    void take(const Group &g, std::size_t slots);
  };
  [[nodiscard]] Rates rates_of(const std::deque<Counters> &deltas, bool received) const;

  Options options_;
  bool started_ = false;
  double start_ = 0;
  std::deque<double> times_; // update times inside the largest window
  double now_ = 0;
  std::map<std::string, Kept> rows_; // by group key (raw bytes)
  Kept other_;                       // what was folded out, added up
  bool has_other_ = false;
};

// Plain text: a header line and one line per row, columns padded with
// spaces, no escape codes. `width` > 0 cuts each line to that many bytes.
[[nodiscard]] std::string render_header();
[[nodiscard]] std::string render_row(const Row &row);
[[nodiscard]] std::string render_table(const std::vector<Row> &rows, std::size_t width = 0);
// "1.2k", "34.0M": the short human form of a rate (bytes or packets per second).
[[nodiscard]] std::string human(double value);

} // namespace ta::top
