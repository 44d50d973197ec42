// store/null_store: `--store none`. Accepts every write, keeps nothing, and
// answers every query empty; begin_source always reports a fresh source with
// id 1, so the whole pipeline runs end to end without a database.
#include "ta/store/store.hpp"

namespace ta::store {
namespace {

class NullStore final : public Store {
public:
  Status begin_source(const SourceInfo & /*info*/, SourceState &state) override {
    state = SourceState{1, 0, false};
    return Status::success();
  }

  Status write(const Batch & /*batch*/) override { return Status::success(); }

  Status load_local_hosts(const std::function<void(const IpAddress &)> & /*fn*/) override {
    return Status::success();
  }
  Status load_addresses(const std::function<void(const IpAddress &, std::string_view, TimeUs,
                                                 TimeUs)> & /*fn*/) override {
    return Status::success();
  }

  Status query_endpoints(const TimeRange & /*range*/, std::vector<EndpointSummary> &out) override {
    out.clear();
    return Status::success();
  }

  Status query_packets(std::string_view /*endpoint*/, std::size_t /*limit*/,
                       std::vector<PacketRow> &out) override {
    out.clear();
    return Status::success();
  }

  Status query_addresses(std::vector<AddressRow> &out) override {
    out.clear();
    return Status::success();
  }

  Status query_flows(const FlowQuery & /*query*/, std::vector<FlowRow> &out) override {
    out.clear();
    return Status::success();
  }
};

} // namespace

std::unique_ptr<Store> make_null_store() {
  try {
    return std::make_unique<NullStore>();
  } catch (...) {
    return nullptr;
  }
}

} // namespace ta::store
