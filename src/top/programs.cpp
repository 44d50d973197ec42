// top/programs: per-endpoint programs and per-program counters from sealed
// batches (programs.hpp).
#include "ta/top/programs.hpp"

#include <algorithm>
#include <utility>

namespace ta::top {
namespace {

std::uint32_t bit(store::NameSource s) {
  return 1U << static_cast<unsigned>(s);
}

} // namespace

ProgramTracker::ProgramTracker(ProgramOptions options) : options_(options) {
  options_.max_names = std::max<std::size_t>(options_.max_names, 2);
  options_.max_programs = std::max<std::size_t>(options_.max_programs, 1);
  rest_.flows = 0;
}

Sample &ProgramTracker::program(const std::string &name) {
  auto it = programs_.find(name);
  if (it != programs_.end()) {
    return it->second;
  }
  if (programs_.size() >= options_.max_programs && name != kUnknownProgram) {
    return rest_;
  }
  Sample &s = programs_[name];
  s.name = name;
  s.flows = 0;
  s.programs = {name};
  return s;
}

ProgramTracker::Seen &ProgramTracker::seen(const std::string &name) {
  auto it = names_.find(name);
  if (it != names_.end()) {
    return it->second;
  }
  if (names_.size() >= options_.max_names / 2) {
    old_names_ = std::move(names_);
    names_.clear();
  }
  Seen &s = names_[name];
  if (auto old = old_names_.find(name); old != old_names_.end()) {
    s = std::move(old->second);
    old_names_.erase(old);
  }
  return s;
}

void ProgramTracker::wait_for_program(const FlowId &id) {
  if (waiting_.size() >= std::max<std::size_t>(options_.max_waiting / 2, 1)) {
    old_waiting_ = std::move(waiting_);
    waiting_.clear();
  }
  waiting_.insert(id);
}

bool ProgramTracker::stop_waiting(const FlowId &id) {
  return waiting_.erase(id) + old_waiting_.erase(id) > 0;
}

void ProgramTracker::on_batch(const store::Batch &batch) {
  // A flow is new in this batch when its first packet is one of the batch's
  // records (the analyzer counts a flow in the batch of its first packet).
  first_in_batch_.assign(batch.flows.size(), 0);
  const std::string unknown(kUnknownProgram);
  for (const store::PacketRecord &p : batch.packets) {
    if (p.flow == store::kNoFlow) {
      Sample &s = program(unknown);
      ++s.totals.sent_packets; // per-packet naming counts sent packets only
      s.totals.sent_bytes += p.bytes;
      s.sources |= bit(p.source);
      continue;
    }
    if (p.flow < batch.flows.size() && batch.flows[p.flow].first_frame == p.frame &&
        batch.flows[p.flow].origin_source == batch.source_id) {
      first_in_batch_[p.flow] = 1;
    }
  }
  for (std::size_t i = 0; i < batch.flows.size(); ++i) {
    const store::FlowRecord &f = batch.flows[i];
    const std::string &key = f.program.empty() ? unknown : f.program;
    Sample &s = program(key);
    s.totals += Counters{f.sent_packets, f.sent_bytes, f.received_packets, f.received_bytes};
    s.flows += first_in_batch_[i];
    s.sources |= bit(f.source);
    const FlowId id{f.origin_source, f.first_frame};
    if (f.program.empty()) {
      if (first_in_batch_[i] != 0) {
        wait_for_program(id);
      }
    } else if (first_in_batch_[i] == 0 && stop_waiting(id)) {
      Sample &unknown_flows = program(unknown);
      if (unknown_flows.flows > 0) {
        --unknown_flows.flows; // named late: the flow is the program's
        ++s.flows;
      }
    }
    if (f.program.empty() || f.name >= batch.endpoints.size()) {
      continue;
    }
    Seen &n = seen(batch.endpoints[f.name]);
    if (std::find(n.programs.begin(), n.programs.end(), f.program) != n.programs.end()) {
      continue;
    }
    if (n.programs.size() < kTrackedPrograms) {
      n.programs.push_back(f.program);
    } else {
      n.more = 1; // more than kTrackedPrograms: distinct ones are not counted further
    }
  }
}

void ProgramTracker::programs_of(std::string_view name, Sample &sample) const {
  const std::string key(name);
  auto it = names_.find(key);
  if (it == names_.end()) {
    it = old_names_.find(key);
    if (it == old_names_.end()) {
      return;
    }
  }
  sample.programs = it->second.programs;
  sample.more_programs = it->second.more;
}

std::vector<Sample> ProgramTracker::samples() const {
  std::vector<Sample> out;
  out.reserve(programs_.size());
  for (const auto &[name, s] : programs_) {
    out.push_back(s);
  }
  return out;
}

} // namespace ta::top
