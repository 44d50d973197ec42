// ingest/process_annotator: fills in the program (pid, command name) of the
// flows of each sealed batch whose client or endpoint is an address of this
// machine, through a process::Mapper (README "Which program"). Meant for live
// capture of this machine only: a capture file's flows belong to no process
// here.
//
// Which end is this machine: the client first (a flow this machine opened),
// else the endpoint (this machine is the server). Only TCP and UDP flows are
// looked up; others are left alone and not counted.
//
// Per flow (its identity is origin_source and first_frame), the first batch
// that carries it asks the mapper once, telling it that a snapshot taken
// after the batch was sealed is the truth for the flow, so at most one rescan
// per batch is made for all its unknown flows and the mapper's rescan budget
// bounds the rest. The answer is remembered: a mapped flow's later batches
// carry its program without asking again, even after its process exited; an
// unmapped flow is not asked again. A flow the mapper deferred (its budget was
// spent by a rescan of an earlier batch) is asked again at the next batch,
// whether or not that batch carries it.
//
// Counting: each flow counts once, under its final outcome (mapped,
// no_socket, other_namespace, no_permission); deferred is never final.
// Remembered flows are bounded by `max_remembered`, in two generations (the
// older half dropped when the newer fills); a flow dropped and seen again
// is asked and counted again.
//
// Not thread-safe: the analyzer's thread calls annotate() (as the engine's
// batch observer).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ta/common/status.hpp"
#include "ta/process/mapper.hpp"
#include "ta/store/store.hpp"

namespace ta::ingest {

// The final outcomes a flow is counted under, in process::Outcome order.
inline constexpr std::array<process::Outcome, 4> kProcessFlowOutcomes = {
    process::Outcome::mapped, process::Outcome::no_socket, process::Outcome::other_namespace,
    process::Outcome::no_permission};

class ProcessAnnotator {
public:
  explicit ProcessAnnotator(process::Options mapper = {}, std::size_t max_remembered = 1U << 17U);

  // Sets pid and program of the batch's flows that are mapped (now or before).
  void annotate(store::Batch &batch);

  // Flows counted under `outcome` (one of kProcessFlowOutcomes; 0 for deferred).
  [[nodiscard]] std::uint64_t flows(process::Outcome outcome) const noexcept;
  // Flows waiting for their next lookup (deferred).
  [[nodiscard]] std::size_t pending() const noexcept { return pending_.size(); }
  // The mapper's one-time warning that some processes' open files cannot be
  // read (see process::Mapper::take_permission_warning).
  [[nodiscard]] std::optional<Status> take_permission_warning() {
    return mapper_.take_permission_warning();
  }
  [[nodiscard]] const process::Counters &mapper_counters() const noexcept {
    return mapper_.counters();
  }

private:
  using FlowId = store::FlowId;
  using FlowIdHash = store::FlowIdHash;
  enum class State : std::uint8_t { deferred, done };
  struct Entry {
    State state = State::deferred;
    process::Outcome outcome = process::Outcome::deferred;
    std::int32_t pid = 0;
    std::string program;
    // While deferred: the flow's ends, to ask again without its record.
    std::uint8_t protocol = 0;
    IpAddress client;
    std::uint16_t client_port = 0;
    IpAddress endpoint;
    std::uint16_t endpoint_port = 0;
    std::uint64_t round = 0; // the last annotate() round that asked
  };
  using Table = std::unordered_map<FlowId, Entry, FlowIdHash>;

  Entry *find(const FlowId &id);
  Entry &insert(const FlowId &id);
  // Asks the mapper for `e` (client side first, then endpoint side) and
  // counts it when the answer is final.
  void resolve(Entry &e, std::chrono::steady_clock::time_point settled_by);
  [[nodiscard]] std::chrono::steady_clock::time_point now() const;

  process::Mapper mapper_;
  std::function<std::chrono::steady_clock::time_point()> clock_;
  std::size_t max_remembered_;
  Table new_;
  Table old_;
  std::vector<FlowId> pending_;
  std::array<std::uint64_t, process::outcome_count> counts_{};
  std::uint64_t round_ = 0;
};

} // namespace ta::ingest
