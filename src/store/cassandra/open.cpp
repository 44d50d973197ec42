// store/cassandra/open: options -> a connected store, and shutdown.
#include <unistd.h>

#include <algorithm>
#include <exception>

#include "cassandra_store.hpp"

namespace ta::store {
namespace detail::cassandra {
namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') {
    return "agent";
  }
  return buf;
}

} // namespace

Result<std::unique_ptr<Store>> CassandraStore::open(const CassandraTarget &target,
                                                    const CassandraOptions &options) {
  std::unique_ptr<CassandraStore> s(new CassandraStore());
  s->options_ = options;
  s->keyspace_ = target.keyspace;
  s->agent_ = options.agent_id.empty() ? host_name() : options.agent_id;
  if (options.read_only) {
    s->read_agent_ = options.agent_id;
  }

  cql::Options &o = s->cql_options_;
  for (const auto &[host, port] : target.hosts) {
    o.contact_points.push_back({host, port});
  }
  o.username = target.user;
  o.password = options.password;
  o.lz4 = options.lz4;
  o.routing = options.token_aware ? cql::Routing::token_aware : cql::Routing::round_robin;
  o.tls = options.tls;
  o.tls_ca_file = options.tls_ca_file;
  o.connect_timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::max(0.1, options.connect_timeout_seconds) * 1000));
  const auto cl = cql::parse_consistency(options.consistency);
  if (!cl) {
    return Status::invalid_argument("consistency '" + options.consistency +
                                    "' is not a CQL consistency level (one, quorum, "
                                    "local_quorum, all, ...)");
  }
  o.consistency = *cl;
  if (!target.user.empty() && options.password.empty()) {
    return Status::unauthenticated("cassandra: user '" + target.user + "' needs a password");
  }

  ta::Status st;
  if (options.read_only) {
    s->reader_ = cql::Session::connect(o, st);
    if (!s->reader_) {
      return cql_failure(st, "cassandra: " + st.message());
    }
    if (st = s->prepare_reads(*s->reader_); !st) {
      return cql_failure(st, "cassandra: keyspace " + s->keyspace_ + ": " + st.message());
    }
    return std::unique_ptr<Store>(std::move(s));
  }
  // The spool first: it holds what earlier runs could not send, whatever
  // happens next.
  auto spool = Spool::open(options.spool_path, "keyspace " + s->keyspace_ + " agent " + s->agent_);
  if (!spool) {
    return spool.status();
  }
  s->spool_ = std::move(spool).value();

  // A failure from here on leaves no spool behind that this open created
  // and nothing used.
  const auto failed = [&s](const ta::Status &cause, std::string message) {
    Spool::close_discarding_if_new(std::move(s->spool_));
    return cql_failure(cause, std::move(message));
  };
  // No node answering at start is refused (one line), not waited out: a
  // new capture's source id must be checked against the cluster's ledger
  // (else a capture met again after a lost spool would count twice), and
  // the schema and prepared statements need a node. What the spool holds
  // stays there for the next start; once started, the spool covers outages.
  s->drain_ = cql::Session::connect(o, st);
  if (!s->drain_) {
    std::string error = "cassandra: " + st.message();
    const auto depth = s->spool_->depth();
    if (depth.batches > 0) {
      error += " (" + std::to_string(depth.records) + " records in " +
               std::to_string(depth.batches) + " batches stay spooled in " + options.spool_path +
               " and are sent by the next start that reaches a node)";
    }
    return failed(st, std::move(error));
  }
  if (st = s->create_schema(*s->drain_); !st) {
    return failed(st, "cassandra: creating keyspace " + s->keyspace_ + ": " + st.message());
  }
  if (st = s->prepare_writes(*s->drain_); !st) {
    return failed(st, "cassandra: preparing statements: " + st.message());
  }
  cql::Options ro = o;
  ro.keyspace = s->keyspace_;
  s->reader_ = cql::Session::connect(ro, st);
  if (!s->reader_) {
    return failed(st, "cassandra: " + st.message());
  }
  if (st = s->prepare_reads(*s->reader_); !st) {
    return failed(st, "cassandra: preparing queries: " + st.message());
  }
  s->node_stats_ = s->drain_->stats();
  s->thread_ = std::thread([p = s.get()] { p->drain_loop(); });
  return std::unique_ptr<Store>(std::move(s));
}

CassandraStore::~CassandraStore() {
  {
    const std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void CassandraStore::notice(const std::string &line) const {
  if (options_.notice) {
    options_.notice(line);
  }
}

} // namespace detail::cassandra

bool is_consistency_level(std::string_view name) {
  return cql::parse_consistency(name).has_value();
}

Result<std::unique_ptr<Store>> open_cassandra_store(const CassandraTarget &target,
                                                    const CassandraOptions &options) {
  try {
    return detail::cassandra::CassandraStore::open(target, options);
  } catch (const std::exception &e) {
    return Status::failure(std::string("cassandra store: ") + e.what());
  }
}

} // namespace ta::store
