// top/programs: which program talks to whom, from the sealed batches' flow
// records (store::FlowRecord::{pid, program}, filled on live capture of this
// machine; README "top"). For the live view it keeps, per endpoint name, the
// programs seen with its flows, and per program (its command name, pid left
// out so that one command's processes make one row) cumulative counters,
// flows and name sources, fed to a Model as samples for GroupBy::process.
//
// A flow's program may come a batch or two after its first (the lookup can
// be deferred): its flow, counted for kUnknownProgram in its first batch,
// moves to the program when a later batch names it (its earlier packets stay
// where they were counted). Flows waiting so are remembered by identity,
// at most max_waiting in two generations.
//
// Packets no flow record describes (per-packet naming: ICMP, later
// fragments) and flows with no known program count for kUnknownProgram, so
// the per-program rows add up to every counted packet, as the per-endpoint
// rows do.
//
// Bounded: per name at most kTrackedPrograms distinct programs (past them
// one more is counted, so "+N" is then a lower bound);
// names in two generations of at most max_names / 2 each (a name not seen
// for a whole generation is forgotten); at most max_programs programs, the
// rest added up into rest(). Never prints; single-threaded (the analyzer's
// thread, where batches are sealed and the view is fed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ta/store/store.hpp"
#include "ta/top/top.hpp"

namespace ta::top {

inline constexpr std::string_view kUnknownProgram = "(unknown)";
inline constexpr std::size_t kTrackedPrograms = 32;

struct ProgramOptions {
  std::size_t max_names = 8192;
  std::size_t max_programs = 1024;     // at least 1; the unknown program is always kept
  std::size_t max_waiting = 1U << 16U; // flows first seen with no program
};

class ProgramTracker {
public:
  explicit ProgramTracker(ProgramOptions options = {});

  // One sealed batch.
  void on_batch(const store::Batch &batch);

  // The programs seen with `name` (raw bytes) so far, in the order first
  // seen; the sample's programs and more_programs are set. Unknown: left as
  // they are.
  void programs_of(std::string_view name, Sample &sample) const;

  // One sample per program (name: the command, or kUnknownProgram), with
  // cumulative counters, flows (first seen in a batch), sources (bit per
  // store::NameSource) and the program itself as its program.
  [[nodiscard]] std::vector<Sample> samples() const;
  // The programs past max_programs, added up.
  [[nodiscard]] const Sample &rest() const noexcept { return rest_; }
  [[nodiscard]] std::size_t names_kept() const noexcept {
    return names_.size() + old_names_.size();
  }

private:
  struct Seen {
    std::vector<std::string> programs;
    std::uint64_t more = 0;
  };
  using FlowId = store::FlowId;
  using FlowIdHash = store::FlowIdHash;
  using FlowSet = std::unordered_set<FlowId, FlowIdHash>;

  Sample &program(const std::string &name);
  Seen &seen(const std::string &name);
  void wait_for_program(const FlowId &id);
  bool stop_waiting(const FlowId &id);

  ProgramOptions options_;
  std::unordered_map<std::string, Seen> names_;     // the newer generation
  std::unordered_map<std::string, Seen> old_names_; // the one before
  std::map<std::string, Sample> programs_;
  Sample rest_;
  std::vector<char> first_in_batch_; // reused per batch: flow's first packet seen
  FlowSet waiting_;                  // newer generation of flows with no program yet
  FlowSet old_waiting_;
};

} // namespace ta::top
