// ingest/process_annotator: see ta/ingest/process_annotator.hpp.
#include "ta/ingest/process_annotator.hpp"

#include <algorithm>
#include <utility>

namespace ta::ingest {

namespace {

constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;

} // namespace

ProcessAnnotator::ProcessAnnotator(process::Options mapper, std::size_t max_remembered)
    : clock_(mapper.clock), max_remembered_(std::max<std::size_t>(max_remembered, 2)) {
  mapper_ = process::Mapper(std::move(mapper));
}

std::chrono::steady_clock::time_point ProcessAnnotator::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

std::uint64_t ProcessAnnotator::flows(process::Outcome outcome) const noexcept {
  return outcome == process::Outcome::deferred ? 0 : counts_[static_cast<std::size_t>(outcome)];
}

ProcessAnnotator::Entry *ProcessAnnotator::find(const FlowId &id) {
  if (auto it = new_.find(id); it != new_.end()) {
    return &it->second;
  }
  if (auto it = old_.find(id); it != old_.end()) {
    Entry e = std::move(it->second);
    old_.erase(it);
    Entry &moved = insert(id);
    moved = std::move(e);
    return &moved;
  }
  return nullptr;
}

ProcessAnnotator::Entry &ProcessAnnotator::insert(const FlowId &id) {
  if (new_.size() >= max_remembered_ / 2) {
    old_ = std::move(new_);
    new_ = {};
  }
  return new_[id];
}

void ProcessAnnotator::resolve(Entry &e, std::chrono::steady_clock::time_point settled_by) {
  e.round = round_;
  const process::Protocol protocol =
      e.protocol == kTcp ? process::Protocol::tcp : process::Protocol::udp;
  // This machine as the client: the program that opened the flow.
  process::Lookup l = mapper_.lookup(
      process::FlowKey{protocol, e.client, e.client_port, e.endpoint, e.endpoint_port}, settled_by);
  if (l.outcome == process::Outcome::other_namespace) {
    // The client is not here: this machine may be the server.
    process::Lookup server = mapper_.lookup(
        process::FlowKey{protocol, e.endpoint, e.endpoint_port, e.client, e.client_port},
        settled_by);
    if (server.outcome != process::Outcome::other_namespace) {
      l = std::move(server);
    }
  }
  if (l.outcome == process::Outcome::deferred) {
    return;
  }
  e.state = State::done;
  e.outcome = l.outcome;
  ++counts_[static_cast<std::size_t>(l.outcome)];
  if (l.outcome == process::Outcome::mapped) {
    e.pid = l.process.pid;
    e.program = std::move(l.process.comm);
  }
}

void ProcessAnnotator::annotate(store::Batch &batch) {
  ++round_;
  // The batch is sealed: every packet of its flows was seen before now.
  const auto settled_by = now();
  std::vector<FlowId> still_pending;
  for (store::FlowRecord &f : batch.flows) {
    if (f.protocol != kTcp && f.protocol != kUdp) {
      continue;
    }
    const FlowId id{f.origin_source, f.first_frame};
    Entry *e = find(id);
    if (e == nullptr) {
      e = &insert(id);
      e->protocol = f.protocol;
      e->client = f.client;
      e->client_port = f.client_port;
      e->endpoint = f.endpoint_address;
      e->endpoint_port = f.endpoint_port;
    }
    if (e->state == State::deferred && e->round != round_) {
      resolve(*e, settled_by);
      if (e->state == State::deferred) {
        still_pending.push_back(id);
      }
    }
    if (e->state == State::done && e->outcome == process::Outcome::mapped) {
      f.pid = e->pid;
      f.program = e->program;
    }
  }
  // Deferred flows this batch did not carry (they may have ended): asked now,
  // so that each is counted once whatever became of it.
  for (const FlowId &id : pending_) {
    Entry *e = find(id);
    if (e == nullptr || e->state != State::deferred || e->round == round_) {
      continue; // dropped from memory, or asked above
    }
    resolve(*e, settled_by);
    if (e->state == State::deferred) {
      still_pending.push_back(id);
    }
  }
  pending_ = std::move(still_pending);
}

} // namespace ta::ingest
