// store/cassandra/schema: the tables (DDL; the layout is described in
// cassandra_store.hpp) and the prepared statements of both sessions.
#include "cassandra_store.hpp"

namespace ta::store::detail::cassandra {
namespace {

// Roll-up columns added by flow naming (NameSource order for names_*).
const std::string kRollupFlowColumns =
    "received_packets bigint, received_bytes bigint, names_none bigint, names_sni bigint, "
    "names_quic bigint, names_http bigint, names_dns bigint";

} // namespace

ta::Status CassandraStore::create_schema(cql::Session &s) {
  std::string table_options;
  if (options_.twcs) {
    table_options += " AND compaction = {'class': 'TimeWindowCompactionStrategy', "
                     "'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}";
  }
  if (options_.ttl_seconds > 0) {
    table_options += " AND default_time_to_live = " + std::to_string(options_.ttl_seconds);
  }
  const std::string ttl_only = options_.ttl_seconds > 0 ? " WITH default_time_to_live = " +
                                                              std::to_string(options_.ttl_seconds)
                                                        : "";
  const std::vector<std::string> ddl = {
      "CREATE KEYSPACE IF NOT EXISTS " + keyspace_ + " WITH replication = " + options_.replication,
      "CREATE TABLE IF NOT EXISTS " + t("packets") +
          " (endpoint text, hour bigint, ts_us bigint, agent text, source bigint, frame bigint, "
          "address inet, port int, protocol int, bytes int, "
          "PRIMARY KEY ((endpoint, hour), ts_us, agent, source, frame)) "
          "WITH CLUSTERING ORDER BY (ts_us DESC, agent DESC, source DESC, frame DESC)" +
          table_options,
      "CREATE TABLE IF NOT EXISTS " + t("rollups") +
          " (endpoint text, hour bigint, second bigint, address inet, agent text, source bigint, "
          "batch_pos bigint, packets bigint, bytes bigint, first_us bigint, last_us bigint, " +
          kRollupFlowColumns +
          ", PRIMARY KEY ((endpoint, hour), second, address, agent, source, batch_pos))" +
          (table_options.empty() ? "" : " WITH" + table_options.substr(4)),
      // A keyspace made before flow naming gains the columns (no-op otherwise).
      "ALTER TABLE " + t("rollups") + " ADD IF NOT EXISTS (" + kRollupFlowColumns + ")",
      "CREATE TABLE IF NOT EXISTS " + t("flows") +
          " (day bigint, endpoint text, agent text, origin_source bigint, first_frame bigint, "
          "batch_source bigint, batch_pos bigint, protocol int, client inet, client_port int, "
          "endpoint_address inet, endpoint_port int, name_source int, sent_packets bigint, "
          "sent_bytes bigint, received_packets bigint, received_bytes bigint, first_us bigint, "
          "last_us bigint, pid int, program blob, PRIMARY KEY ((day), endpoint, agent, "
          "origin_source, first_frame, "
          "batch_source, batch_pos))" +
          (table_options.empty() ? "" : " WITH" + table_options.substr(4)),
      // A keyspace made before programs were kept gains them (no-op otherwise).
      "ALTER TABLE " + t("flows") + " ADD IF NOT EXISTS (pid int, program blob)",
      "CREATE TABLE IF NOT EXISTS " + t("endpoint_hours") +
          " (day bigint, hour bigint, endpoint text, PRIMARY KEY ((day), hour, endpoint))" +
          ttl_only,
      "CREATE TABLE IF NOT EXISTS " + t("days") +
          " (shard int, day bigint, PRIMARY KEY ((shard), day))",
      "CREATE TABLE IF NOT EXISTS " + t("addresses") +
          " (agent text, address inet, name text, last_learnt bigint, "
          "PRIMARY KEY ((agent), address))",
      "CREATE TABLE IF NOT EXISTS " + t("address_names") +
          " (agent text, address inet, name text, first_learnt bigint, "
          "PRIMARY KEY ((agent), address, name))",
      "CREATE TABLE IF NOT EXISTS " + t("local_hosts") +
          " (agent text, address inet, first_learnt bigint, PRIMARY KEY ((agent), address))",
      "CREATE TABLE IF NOT EXISTS " + t("sources") +
          " (agent text, fingerprint text, id bigint, path text, frames_done bigint, "
          "complete boolean, PRIMARY KEY ((agent), fingerprint))",
  };
  for (const std::string &stmt : ddl) {
    if (ta::Status st = s.query(stmt); !st) {
      return st;
    }
  }
  return {};
}

ta::Status CassandraStore::prepare_writes(cql::Session &s) {
  const std::pair<cql::Prepared *, std::string> list[] = {
      {&w_.packet, "INSERT INTO " + t("packets") +
                       " (endpoint, hour, ts_us, agent, source, frame, address, port, protocol, "
                       "bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&w_.rollup,
       "INSERT INTO " + t("rollups") +
           " (endpoint, hour, second, address, agent, source, batch_pos, packets, bytes, "
           "first_us, last_us, received_packets, received_bytes, names_none, names_sni, "
           "names_quic, names_http, names_dns) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&w_.flow, "INSERT INTO " + t("flows") +
                     " (day, endpoint, agent, origin_source, first_frame, batch_source, "
                     "batch_pos, protocol, client, client_port, endpoint_address, endpoint_port, "
                     "name_source, sent_packets, sent_bytes, received_packets, received_bytes, "
                     "first_us, last_us, pid, program) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&w_.endpoint_hour,
       "INSERT INTO " + t("endpoint_hours") + " (day, hour, endpoint) VALUES (?, ?, ?)"},
      {&w_.day, "INSERT INTO " + t("days") + " (shard, day) VALUES (0, ?)"},
      {&w_.addr_last, "UPDATE " + t("addresses") +
                          " USING TIMESTAMP ? SET name = ?, last_learnt = ? "
                          "WHERE agent = ? AND address = ?"},
      {&w_.addr_first, "UPDATE " + t("address_names") +
                           " USING TIMESTAMP ? SET first_learnt = ? "
                           "WHERE agent = ? AND address = ? AND name = ?"},
      {&w_.local_host,
       "UPDATE " + t("local_hosts") +
           " USING TIMESTAMP ? SET first_learnt = ? WHERE agent = ? AND address = ?"},
      {&w_.src_reg,
       "UPDATE " + t("sources") +
           " USING TIMESTAMP 0 SET id = ?, path = ? WHERE agent = ? AND fingerprint = ?"},
      {&w_.src_done,
       "UPDATE " + t("sources") +
           " USING TIMESTAMP ? SET frames_done = ? WHERE agent = ? AND fingerprint = ?"},
      {&w_.src_complete,
       "UPDATE " + t("sources") + " SET complete = true WHERE agent = ? AND fingerprint = ?"},
  };
  for (const auto &[out, text] : list) {
    if (ta::Status st = s.prepare(text, *out); !st) {
      return st;
    }
  }
  return {};
}

ta::Status CassandraStore::prepare_reads(cql::Session &s) {
  const std::pair<cql::Prepared *, std::string> list[] = {
      {&r_.source, "SELECT id, frames_done, complete FROM " + t("sources") +
                       " WHERE agent = ? AND fingerprint = ?"},
      {&r_.sources_of_agent, "SELECT id FROM " + t("sources") + " WHERE agent = ?"},
      {&r_.addresses_of_agent,
       "SELECT address, name, last_learnt FROM " + t("addresses") + " WHERE agent = ?"},
      {&r_.names_of_agent,
       "SELECT address, name, first_learnt FROM " + t("address_names") + " WHERE agent = ?"},
      {&r_.local_hosts_of_agent,
       "SELECT address, first_learnt FROM " + t("local_hosts") + " WHERE agent = ?"},
      {&r_.hours_of_day, "SELECT hour, endpoint FROM " + t("endpoint_hours") + " WHERE day = ?"},
      {&r_.packets_range, "SELECT address, bytes, ts_us FROM " + t("packets") +
                              " WHERE endpoint = ? AND hour = ? AND ts_us >= ? AND ts_us < ?"},
      {&r_.packets_recent, "SELECT ts_us, address, port, protocol, bytes FROM " + t("packets") +
                               " WHERE endpoint = ? AND hour = ? LIMIT ?"},
  };
  for (const auto &[out, text] : list) {
    if (ta::Status st = s.prepare(text, *out); !st) {
      return st;
    }
  }
  // A keyspace made before flow naming, opened for queries only (which
  // changes no schema): its roll-ups lack the flow-naming columns (read as
  // the old rows they are) and it has no flows table (no flows).
  const auto is_old_schema = [](const ta::Status &st) {
    // Invalid (0x2200): an unknown column or table in the prepared text.
    return st.code() == StatusCode::server_error &&
           st.detail() == static_cast<std::int32_t>(cql::ServerError::invalid);
  };
  ta::Status st = s.prepare("SELECT address, packets, bytes, first_us, last_us, second, "
                            "received_packets, received_bytes, names_none, names_sni, names_quic, "
                            "names_http, names_dns FROM " +
                                t("rollups") +
                                " WHERE endpoint = ? AND hour = ? AND second >= ? AND second < ?",
                            r_.rollups);
  if (!st && options_.read_only && is_old_schema(st)) {
    st =
        s.prepare("SELECT address, packets, bytes, first_us, last_us, second FROM " + t("rollups") +
                      " WHERE endpoint = ? AND hour = ? AND second >= ? AND second < ?",
                  r_.rollups);
  }
  if (!st) {
    return st;
  }
  // A keyspace from before programs were kept, opened for queries only: its
  // flows are read without them (no program known).
  const std::string flow_columns =
      "SELECT endpoint, agent, origin_source, first_frame, protocol, client, client_port, "
      "endpoint_address, endpoint_port, name_source, sent_packets, sent_bytes, "
      "received_packets, received_bytes, first_us, last_us";
  const auto prepare_flows = [&](const std::string &columns) {
    ta::Status prepared =
        s.prepare(columns + " FROM " + t("flows") + " WHERE day = ?", r_.flows_of_day);
    if (prepared) {
      prepared = s.prepare(columns + " FROM " + t("flows") + " WHERE day = ? AND endpoint = ?",
                           r_.flows_of_day_endpoint);
    }
    return prepared;
  };
  st = prepare_flows(flow_columns + ", pid, program");
  if (!st && options_.read_only && is_old_schema(st)) {
    st = prepare_flows(flow_columns);
  }
  has_flows_ = static_cast<bool>(st);
  if (!st && !(options_.read_only && is_old_schema(st))) {
    return st;
  }
  return {};
}

} // namespace ta::store::detail::cassandra
