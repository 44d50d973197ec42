// `query endpoints|packets|addresses|flows`: read what the store holds.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "ta/common/escape.hpp"
#include "ta/common/time.hpp"
#include "ta/domain/registrable.hpp"

#include "commands.hpp"
#include "store_open.hpp"

namespace ta::app {

void add_query(CLI::App &app, QueryArgs &args, CLI::App *&endpoints, CLI::App *&packets,
               CLI::App *&addresses, CLI::App *&flows) {
  auto *q = app.add_subcommand("query", "Read what the store holds");
  q->require_subcommand(1);
  auto fmt_check = CLI::IsMember({"table", "json", "csv"});

  // Every query subcommand reads a store and prints in one of three formats.
  auto add_subquery = [&](const char *name, const char *what) {
    CLI::App *sub = q->add_subcommand(name, what);
    sub->add_option("--store", args.store, "sqlite:PATH, a bare PATH, or cassandra://...")
        ->capture_default_str();
    add_cassandra_options(sub, args.cassandra, false);
    return sub;
  };
  auto add_format = [&](CLI::App *sub) {
    sub->add_option("--format", args.format, "table, json or csv")
        ->check(fmt_check)
        ->capture_default_str();
  };

  endpoints =
      add_subquery("endpoints", "Per-endpoint sent and received packets and bytes, name sources, "
                                "first/last seen");
  endpoints->add_option("--since", args.since, "From this time (RFC 3339, date, or epoch seconds)");
  endpoints->add_option("--until", args.until, "Before this time (exclusive)");
  endpoints
      ->add_option("--group-by", args.group_by,
                   "host (one row per endpoint) or domain (one row per registrable domain, "
                   "summed)")
      ->check(CLI::IsMember({"host", "domain"}))
      ->capture_default_str();
  add_format(endpoints);

  packets = add_subquery("packets", "Packet records of one endpoint, most recent first");
  packets->add_option("--endpoint", args.endpoint, "Endpoint name (\"\" for unresolved)")
      ->required();
  packets->add_option("--limit", args.limit, "At most this many rows (0: all)")
      ->capture_default_str();
  add_format(packets);

  addresses = add_subquery("addresses", "The learnt address -> hostname table");
  add_format(addresses);

  flows = add_subquery("flows", "Flows: their ends, name and its source, traffic each way");
  flows->add_option("--endpoint", args.endpoint, "Only flows named this (\"\" for unresolved)")
      ->each([&args](const std::string & /*value*/) { args.endpoint_given = true; });
  flows->add_option("--since", args.since, "Flows seen at or after this time");
  flows->add_option("--until", args.until, "Flows first seen before this time");
  add_format(flows);
}

namespace {

std::unique_ptr<store::Store> open_for_query(const QueryArgs &args) {
  CassandraArgs cassandra = args.cassandra;
  cassandra.read_only = true;
  auto s = open_store(args.store, cassandra);
  if (!s) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", s.status().message().c_str());
    return nullptr;
  }
  return std::move(s).value();
}

// RFC 4180: quote every field that needs it. Names are escaped first
// (ta/common/escape.hpp), as in the table and JSON: no control byte, and
// only valid UTF-8, reaches the output.
std::string csv(std::string_view s) {
  std::string text = escape_name(s);
  if (text.find_first_of(",\"") == std::string::npos) {
    return text;
  }
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') {
      out += '"';
    }
    out += c;
  }
  out += '"';
  return out;
}

// A name given on the command line, in the escaped form the output shows
// ("a\xfeb"); text that is no valid escaped form is taken as it is.
std::string name_argument(const std::string &text) {
  auto bytes = unescape_name(text);
  return bytes ? *std::move(bytes) : text;
}

// An empty bound is no bound; anything else must be a time.
bool parse_bound(const char *flag, const std::string &text, std::optional<TimeUs> &out) {
  if (text.empty()) {
    return true;
  }
  out = parse_time(text);
  if (!out) {
    std::fprintf(stderr,
                 "traffic-analyzer: %s '%s' is not a time (RFC 3339, YYYY-MM-DD or epoch "
                 "seconds)\n",
                 flag, text.c_str());
  }
  return out.has_value();
}

// The JSON text of `j`, indented by 2: every JSON output goes through here.
std::string json_text(const nlohmann::json &j) {
  // Invalid UTF-8 in names is replaced, never an exception.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Writes a JSON array one element at a time, byte for byte json_text() of
// the whole array and a newline, so output starts at once and memory does not
// grow with the row count.
class JsonArrayWriter {
public:
  void add(const nlohmann::json &element) {
    std::string text = json_text(element);
    // Nest it one level: formatting newlines only (strings escape theirs).
    std::string nested = "  ";
    nested.reserve(text.size() + text.size() / 8);
    for (const char c : text) {
      nested += c;
      if (c == '\n') {
        nested += "  ";
      }
    }
    std::cout << (first_ ? "[\n" : ",\n") << nested;
    first_ = false;
  }
  void finish() { std::cout << (first_ ? "[]\n" : "\n]\n"); }

private:
  bool first_ = true;
};

// The end of a streamed query: the JSON array is closed after the last row;
// a failure part-way is one line on stderr after the rows written so far.
int finish_rows(const Status &st, const std::string &format, JsonArrayWriter &json) {
  if (!st) {
    std::cout.flush();
    std::fflush(stdout);
    std::fprintf(stderr, "traffic-analyzer: %s\n", st.message().c_str());
    return kExitFailure;
  }
  if (format == "json") {
    json.finish();
  }
  return kExitOk;
}

} // namespace

int run_query_endpoints(const QueryArgs &args) {
  store::TimeRange range;
  if (!parse_bound("--since", args.since, range.since) ||
      !parse_bound("--until", args.until, range.until)) {
    return kExitBadInput;
  }
  auto s = open_for_query(args);
  if (!s) {
    return kExitBadInput;
  }
  // Each row is written as the store yields it (table: fixed column widths,
  // as always, so nothing needs a first pass).
  const auto addresses_text = [](const store::EndpointSummary &r) {
    std::string addrs;
    for (const auto &a : r.addresses) {
      addrs += (addrs.empty() ? "" : " ") + a;
    }
    return addrs;
  };
  store::Store::EndpointSink row;
  JsonArrayWriter json;
  if (args.format == "json") {
    row = [&json](const store::EndpointSummary &r) {
      auto names = nlohmann::json::object();
      for (std::size_t i = 0; i < r.names.size(); ++i) {
        names[std::string(store::name_source_name(static_cast<store::NameSource>(i)))] = r.names[i];
      }
      json.add({{"endpoint", escape_name(r.endpoint)},
                {"packets", r.packets},
                {"bytes", r.bytes},
                {"first_seen", format_rfc3339_us(r.first_seen)},
                {"last_seen", format_rfc3339_us(r.last_seen)},
                {"addresses", r.addresses},
                {"received_packets", r.received_packets},
                {"received_bytes", r.received_bytes},
                {"names", names}});
      return Status::success();
    };
  } else if (args.format == "csv") {
    std::cout << "endpoint,packets,bytes,first_seen,last_seen,addresses,received_packets,"
                 "received_bytes\n";
    row = [&](const store::EndpointSummary &r) {
      std::cout << csv(r.endpoint) << ',' << r.packets << ',' << r.bytes << ','
                << format_rfc3339_us(r.first_seen) << ',' << format_rfc3339_us(r.last_seen) << ','
                << csv(addresses_text(r)) << ',' << r.received_packets << ',' << r.received_bytes
                << '\n';
      return Status::success();
    };
  } else {
    // PACKETS and BYTES are sent traffic (the columns as they always were).
    std::printf("%-40s %12s %14s  %-27s  %-27s  %s  %16s %16s\n", "ENDPOINT", "PACKETS", "BYTES",
                "FIRST SEEN", "LAST SEEN", "ADDRESSES", "RECEIVED PACKETS", "RECEIVED BYTES");
    row = [&](const store::EndpointSummary &r) {
      std::printf("%-40s %12llu %14llu  %-27s  %-27s  %s  %16llu %16llu\n",
                  r.endpoint.empty() ? "(unresolved)" : escape_name(r.endpoint).c_str(),
                  static_cast<unsigned long long>(r.packets),
                  static_cast<unsigned long long>(r.bytes), format_rfc3339_us(r.first_seen).c_str(),
                  format_rfc3339_us(r.last_seen).c_str(), addresses_text(r).c_str(),
                  static_cast<unsigned long long>(r.received_packets),
                  static_cast<unsigned long long>(r.received_bytes));
      return Status::success();
    };
  }
  if (args.group_by != "domain") {
    return finish_rows(s->for_each_endpoint(range, row), args.format, json);
  }
  // One row per registrable domain: the store's rows are summed per domain
  // first (memory grows with the domains, not the rows), then written in
  // domain order.
  auto grouper = domain::Grouper::create();
  if (!grouper) {
    std::fprintf(stderr, "traffic-analyzer: %s\n", grouper.status().message().c_str());
    return kExitFailure;
  }
  std::map<std::string, store::EndpointSummary> groups;
  Status st = s->for_each_endpoint(range, [&](const store::EndpointSummary &r) {
    std::string key = grouper->group(r.endpoint).key;
    auto [it, fresh] = groups.try_emplace(key);
    store::EndpointSummary &g = it->second;
    if (fresh) {
      g.endpoint = std::move(key);
      g.first_seen = r.first_seen;
      g.last_seen = r.last_seen;
    }
    g.packets += r.packets;
    g.bytes += r.bytes;
    g.received_packets += r.received_packets;
    g.received_bytes += r.received_bytes;
    for (std::size_t i = 0; i < g.names.size(); ++i) {
      g.names[i] += r.names[i];
    }
    g.first_seen = std::min(g.first_seen, r.first_seen);
    g.last_seen = std::max(g.last_seen, r.last_seen);
    std::vector<std::string> merged;
    std::set_union(g.addresses.begin(), g.addresses.end(), r.addresses.begin(), r.addresses.end(),
                   std::back_inserter(merged));
    g.addresses = std::move(merged);
    return Status::success();
  });
  for (auto it = groups.begin(); st && it != groups.end(); ++it) {
    st = row(it->second);
  }
  return finish_rows(st, args.format, json);
}

int run_query_packets(const QueryArgs &args) {
  auto s = open_for_query(args);
  if (!s) {
    return kExitBadInput;
  }
  // Each row is written as the store yields it.
  JsonArrayWriter json;
  store::Store::RowSink<store::PacketRow> row;
  if (args.format == "json") {
    row = [&json](const store::PacketRow &r) {
      json.add({{"endpoint", escape_name(r.endpoint)},
                {"timestamp", format_rfc3339_us(r.ts_us)},
                {"address", r.address},
                {"port", r.port},
                {"protocol", r.protocol},
                {"bytes", r.bytes}});
      return Status::success();
    };
  } else if (args.format == "csv") {
    std::cout << "endpoint,timestamp,address,port,protocol,bytes\n";
    row = [](const store::PacketRow &r) {
      std::cout << csv(r.endpoint) << ',' << format_rfc3339_us(r.ts_us) << ',' << r.address << ','
                << r.port << ',' << int{r.protocol} << ',' << r.bytes << '\n';
      return Status::success();
    };
  } else {
    std::printf("%-27s  %-39s %5s %5s %8s\n", "TIMESTAMP", "ADDRESS", "PORT", "PROTO", "BYTES");
    row = [](const store::PacketRow &r) {
      std::printf("%-27s  %-39s %5u %5u %8u\n", format_rfc3339_us(r.ts_us).c_str(),
                  r.address.c_str(), unsigned{r.port}, unsigned{r.protocol}, r.bytes);
      return Status::success();
    };
  }
  return finish_rows(s->for_each_packet(name_argument(args.endpoint), args.limit, row), args.format,
                     json);
}

int run_query_addresses(const QueryArgs &args) {
  auto s = open_for_query(args);
  if (!s) {
    return kExitBadInput;
  }
  JsonArrayWriter json;
  store::Store::RowSink<store::AddressRow> row;
  if (args.format == "json") {
    row = [&json](const store::AddressRow &r) {
      json.add({{"address", r.address},
                {"name", escape_name(r.name)},
                {"first_learnt", format_rfc3339_us(r.first_learnt)},
                {"last_learnt", format_rfc3339_us(r.last_learnt)}});
      return Status::success();
    };
  } else if (args.format == "csv") {
    std::cout << "address,name,first_learnt,last_learnt\n";
    row = [](const store::AddressRow &r) {
      std::cout << r.address << ',' << csv(r.name) << ',' << format_rfc3339_us(r.first_learnt)
                << ',' << format_rfc3339_us(r.last_learnt) << '\n';
      return Status::success();
    };
  } else {
    std::printf("%-39s  %-40s  %-27s  %-27s\n", "ADDRESS", "NAME", "FIRST LEARNT", "LAST LEARNT");
    row = [](const store::AddressRow &r) {
      std::printf("%-39s  %-40s  %-27s  %-27s\n", r.address.c_str(), escape_name(r.name).c_str(),
                  format_rfc3339_us(r.first_learnt).c_str(),
                  format_rfc3339_us(r.last_learnt).c_str());
      return Status::success();
    };
  }
  return finish_rows(s->for_each_address(row), args.format, json);
}

int run_query_flows(const QueryArgs &args) {
  store::FlowQuery query;
  if (!parse_bound("--since", args.since, query.range.since) ||
      !parse_bound("--until", args.until, query.range.until)) {
    return kExitBadInput;
  }
  if (args.endpoint_given) {
    query.endpoint = name_argument(args.endpoint);
  }
  auto s = open_for_query(args);
  if (!s) {
    return kExitBadInput;
  }
  JsonArrayWriter json;
  store::Store::RowSink<store::FlowRow> row;
  if (args.format == "json") {
    row = [&json](const store::FlowRow &r) {
      json.add({{"client", r.client},
                {"client_port", r.client_port},
                {"endpoint_address", r.endpoint_address},
                {"endpoint_port", r.endpoint_port},
                {"protocol", r.protocol},
                {"name", escape_name(r.endpoint)},
                {"name_source", store::name_source_name(r.source)},
                {"sent_packets", r.sent_packets},
                {"sent_bytes", r.sent_bytes},
                {"received_packets", r.received_packets},
                {"received_bytes", r.received_bytes},
                {"first_seen", format_rfc3339_us(r.first_seen)},
                {"last_seen", format_rfc3339_us(r.last_seen)},
                {"pid", r.program.empty() ? nlohmann::json() : nlohmann::json(r.pid)},
                {"process",
                 r.program.empty() ? nlohmann::json() : nlohmann::json(escape_name(r.program))}});
      return Status::success();
    };
  } else if (args.format == "csv") {
    std::cout << "client,client_port,endpoint_address,endpoint_port,protocol,name,name_source,"
                 "sent_packets,sent_bytes,received_packets,received_bytes,first_seen,last_seen,"
                 "pid,process\n";
    row = [](const store::FlowRow &r) {
      std::cout << r.client << ',' << r.client_port << ',' << r.endpoint_address << ','
                << r.endpoint_port << ',' << int{r.protocol} << ',' << csv(r.endpoint) << ','
                << store::name_source_name(r.source) << ',' << r.sent_packets << ',' << r.sent_bytes
                << ',' << r.received_packets << ',' << r.received_bytes << ','
                << format_rfc3339_us(r.first_seen) << ',' << format_rfc3339_us(r.last_seen) << ','
                << (r.program.empty() ? std::string() : std::to_string(r.pid)) << ','
                << csv(r.program) << '\n';
      return Status::success();
    };
  } else {
    std::printf("%-39s %5s  %-39s %5s %5s  %-40s %-6s %10s %12s %10s %12s  %-27s  %-27s  %7s  "
                "%s\n",
                "CLIENT", "PORT", "ENDPOINT ADDRESS", "PORT", "PROTO", "NAME", "SOURCE",
                "SENT PKTS", "SENT BYTES", "RECV PKTS", "RECV BYTES", "FIRST SEEN", "LAST SEEN",
                "PID", "PROCESS");
    row = [](const store::FlowRow &r) {
      const bool known = !r.program.empty();
      std::printf(
          "%-39s %5u  %-39s %5u %5u  %-40s %-6s %10llu %12llu %10llu %12llu  %-27s  %-27s  %7s  "
          "%s\n",
          r.client.c_str(), unsigned{r.client_port}, r.endpoint_address.c_str(),
          unsigned{r.endpoint_port}, unsigned{r.protocol},
          r.endpoint.empty() ? "(unresolved)" : escape_name(r.endpoint).c_str(),
          std::string(store::name_source_name(r.source)).c_str(),
          static_cast<unsigned long long>(r.sent_packets),
          static_cast<unsigned long long>(r.sent_bytes),
          static_cast<unsigned long long>(r.received_packets),
          static_cast<unsigned long long>(r.received_bytes),
          format_rfc3339_us(r.first_seen).c_str(), format_rfc3339_us(r.last_seen).c_str(),
          known ? std::to_string(r.pid).c_str() : "", known ? escape_name(r.program).c_str() : "");
      return Status::success();
    };
  }
  return finish_rows(s->for_each_flow(query, row), args.format, json);
}

} // namespace ta::app
