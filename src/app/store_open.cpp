#include "store_open.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>

#include "ta/store/spec.hpp"
#include "ta/store/sqlite.hpp"

namespace ta::app {
namespace {

constexpr const char *kPasswordEnv = "TRAFFIC_ANALYZER_CASSANDRA_PASSWORD";

// The password file's first line if a file is given, else the environment.
Status resolve_password(CassandraArgs &args) {
  if (!args.password.empty()) {
    return {};
  }
  if (!args.password_file.empty()) {
    std::ifstream in(args.password_file);
    if (!in || !std::getline(in, args.password)) {
      return Status::io_error("--cassandra-password-file " + args.password_file +
                              ": cannot read a line");
    }
    if (!args.password.empty() && args.password.back() == '\r') {
      args.password.pop_back();
    }
  } else if (const char *env = std::getenv(kPasswordEnv); env != nullptr) {
    args.password = env;
  }
  return {};
}

Result<std::unique_ptr<store::Store>> open_cassandra(const store::CassandraTarget &target,
                                                     CassandraArgs args) {
  if (!store::is_consistency_level(args.consistency)) {
    return Status::invalid_argument("--consistency '" + args.consistency +
                                    "' is not a CQL consistency level (one, quorum, "
                                    "local_quorum, all, ...)");
  }
  if (!target.user.empty() && args.password.empty()) {
    return Status::unauthenticated("cassandra: user '" + target.user + "' needs a password: set " +
                                   kPasswordEnv + " or --cassandra-password-file");
  }
  args.notice = [](std::string_view line) {
    std::fprintf(stderr, "traffic-analyzer: %.*s\n", static_cast<int>(line.size()), line.data());
  };
  auto opened = store::open_cassandra_store(target, args);
  if (!opened && opened.status().detail() == store::kSpoolOwnedElsewhere) {
    const Status &st = opened.status();
    return Status(st.code(), st.message() + "; use another --spool for this target", st.detail());
  }
  return opened;
}

Result<std::unique_ptr<store::Store>> open_spec(std::string_view text,
                                                const CassandraArgs &cassandra) {
  CassandraArgs args = cassandra;
  // The password first: an unreadable password file is reported before the
  // spec is looked at.
  if (store::is_cassandra_spec(text)) {
    if (Status st = resolve_password(args); !st) {
      return st;
    }
  }
  auto spec = store::parse_store_spec(text);
  if (!spec) {
    const Status &st = spec.status();
    if (st.detail() == store::kSpecHasPassword) {
      return Status(st.code(),
                    std::string("--store: a password does not belong on the command line; set ") +
                        kPasswordEnv + " or use --cassandra-password-file",
                    st.detail());
    }
    if (store::is_cassandra_spec(text)) {
      // "'SPEC': why (expected ...)" -> "--store 'SPEC': why (expected ...)".
      return Status(st.code(), "--store " + st.message(), st.detail());
    }
    return st;
  }
  switch (spec->backend) {
  case store::Backend::none: {
    auto s = store::make_null_store();
    if (!s) {
      return Status::failure("store none: out of memory");
    }
    return s;
  }
  case store::Backend::sqlite:
    // Reading (query) never creates, migrates or writes the file.
    if (args.read_only) {
      if (!args.agent_id.empty()) {
        return Status::invalid_argument(
            "--agent-id selects one agent's rows of a cassandra:// store; a SQLite store "
            "holds one machine's records");
      }
      return store::open_sqlite_store_read_only(spec->sqlite_path);
    }
    return store::open_sqlite_store(spec->sqlite_path);
  case store::Backend::cassandra:
    return open_cassandra(spec->cassandra, std::move(args));
  }
  return Status::failure("store: unknown backend");
}

} // namespace

Result<std::unique_ptr<store::Store>> open_store(std::string_view spec,
                                                 const CassandraArgs &cassandra) {
  try {
    return open_spec(spec, cassandra);
  } catch (const std::bad_alloc &) {
    return Status::failure("store: out of memory");
  }
}

} // namespace ta::app
