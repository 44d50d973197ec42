// One class per message: request encoders, response decoders (section 4).
#include "ta/cql/messages.hpp"

namespace ta::cql {

namespace {

Bytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte *>(s.data()), s.size()};
}

} // namespace

// ---------------------------------------------------------------- requests

void StartupRequest::encode(std::vector<std::byte> &out) const {
  BodyWriter w(out);
  const std::array<std::pair<std::string_view, std::string_view>, 2> kv{
      {{"CQL_VERSION", "3.0.0"}, {"COMPRESSION", "lz4"}}};
  w.put_string_map(std::span(kv).first(lz4 ? 2 : 1));
}

void OptionsRequest::encode(std::vector<std::byte> & /*out*/) const {}

void AuthResponseRequest::encode(std::vector<std::byte> &out) const {
  BodyWriter(out).put_bytes(token);
}

std::vector<std::byte> AuthResponseRequest::plain_token(std::string_view user,
                                                        std::string_view password) {
  std::vector<std::byte> t;
  t.reserve(user.size() + password.size() + 2);
  t.push_back(std::byte{0});
  const Bytes u = as_bytes(user);
  t.insert(t.end(), u.begin(), u.end());
  t.push_back(std::byte{0});
  const Bytes p = as_bytes(password);
  t.insert(t.end(), p.begin(), p.end());
  return t;
}

void QueryParameters::encode(BodyWriter &w) const {
  std::uint8_t flags = 0;
  if (value_count > 0) {
    flags |= 0x01U;
  }
  if (skip_metadata) {
    flags |= 0x02U;
  }
  if (page_size > 0) {
    flags |= 0x04U;
  }
  if (paging_state) {
    flags |= 0x08U;
  }
  if (serial_consistency) {
    flags |= 0x10U;
  }
  if (timestamp) {
    flags |= 0x20U;
  }
  w.put_short(static_cast<std::uint16_t>(consistency));
  w.put_byte(flags);
  if (value_count > 0) {
    w.put_short(value_count);
    w.put_raw(values);
  }
  if (page_size > 0) {
    w.put_int(page_size);
  }
  if (paging_state) {
    w.put_bytes(*paging_state);
  }
  if (serial_consistency) {
    w.put_short(static_cast<std::uint16_t>(*serial_consistency));
  }
  if (timestamp) {
    w.put_long(*timestamp);
  }
}

void QueryRequest::encode(std::vector<std::byte> &out) const {
  BodyWriter w(out);
  w.put_long_string(query);
  params.encode(w);
}

void PrepareRequest::encode(std::vector<std::byte> &out) const {
  BodyWriter(out).put_long_string(query);
}

void ExecuteRequest::encode(std::vector<std::byte> &out) const {
  BodyWriter w(out);
  w.put_short_bytes(id);
  params.encode(w);
}

void BatchRequest::encode(std::vector<std::byte> &out) const {
  BodyWriter w(out);
  w.put_byte(type);
  w.put_short(static_cast<std::uint16_t>(statements.size()));
  for (const auto &s : statements) {
    w.put_byte(1); // <kind>: prepared id follows
    w.put_short_bytes(s.id);
    w.put_short(s.value_count);
    w.put_raw(s.values);
  }
  std::uint8_t flags = 0;
  if (serial_consistency) {
    flags |= 0x10U;
  }
  if (timestamp) {
    flags |= 0x20U;
  }
  w.put_short(static_cast<std::uint16_t>(consistency));
  w.put_byte(flags);
  if (serial_consistency) {
    w.put_short(static_cast<std::uint16_t>(*serial_consistency));
  }
  if (timestamp) {
    w.put_long(*timestamp);
  }
}

void RegisterRequest::encode(std::vector<std::byte> &out) const {
  BodyWriter(out).put_string_list(events);
}

// --------------------------------------------------------------- responses

CodecError ResponseEnvelope::decode(std::uint8_t flags, Bytes body) {
  BodyReader r(body);
  tracing_id.reset();
  warnings.clear();
  if ((flags & kFlagTracing) != 0) {
    std::array<std::byte, 16> id{};
    if (!r.read_uuid(id)) {
      return r.error();
    }
    tracing_id = id;
  }
  if ((flags & kFlagWarning) != 0 && !r.read_string_list(warnings)) {
    return r.error();
  }
  if ((flags & kFlagCustomPayload) != 0 && !r.skip_bytes_map()) {
    return r.error();
  }
  message = r.rest();
  return CodecError::ok;
}

CodecError ErrorResponse::decode(Bytes body) {
  BodyReader r(body);
  if (!r.read_int(code) || !r.read_string(message)) {
    return r.error();
  }
  std::uint16_t cl = 0;
  std::uint8_t flag = 0;
  switch (static_cast<ServerError>(code)) {
  case ServerError::unavailable: //: <cl><required><alive>
    if (!r.read_short(cl) || !r.read_int(required) || !r.read_int(alive)) {
      return r.error();
    }
    break;
  case ServerError::write_timeout: //: <cl><received><blockfor><writeType>
    if (!r.read_short(cl) || !r.read_int(received) || !r.read_int(block_for) ||
        !r.read_string(write_type)) {
      return r.error();
    }
    break;
  case ServerError::read_timeout: //: <cl><received><blockfor><data_present>
    if (!r.read_short(cl) || !r.read_int(received) || !r.read_int(block_for) ||
        !r.read_byte(flag)) {
      return r.error();
    }
    data_present = flag != 0;
    break;
  case ServerError::read_failure: //: <cl><received><blockfor><numfailures><data_present>
    if (!r.read_short(cl) || !r.read_int(received) || !r.read_int(block_for) ||
        !r.read_int(num_failures) || !r.read_byte(flag)) {
      return r.error();
    }
    data_present = flag != 0;
    break;
  case ServerError::function_failure: //: <keyspace><function><arg_types>
    if (!r.read_string(keyspace) || !r.read_string(table) || !r.read_string_list(arg_types)) {
      return r.error();
    }
    break;
  case ServerError::write_failure: //: <cl><received><blockfor><numfailures><write_type>
    if (!r.read_short(cl) || !r.read_int(received) || !r.read_int(block_for) ||
        !r.read_int(num_failures) || !r.read_string(write_type)) {
      return r.error();
    }
    break;
  case ServerError::already_exists: //: <ks><table>
    if (!r.read_string(keyspace) || !r.read_string(table)) {
      return r.error();
    }
    break;
  case ServerError::unprepared: //: [short bytes] id
    if (!r.read_short_bytes(unprepared_id)) {
      return r.error();
    }
    break;
  default:
    break;
  }
  consistency = static_cast<Consistency>(cl);
  return CodecError::ok;
}

CodecError ReadyResponse::decode(Bytes /*body*/) {
  return CodecError::ok;
}

CodecError AuthenticateResponse::decode(Bytes body) {
  BodyReader r(body);
  return r.read_string(authenticator) ? CodecError::ok : r.error();
}

const std::vector<std::string> *SupportedResponse::find(std::string_view key) const {
  for (const auto &[k, v] : options) {
    if (k == key) {
      return &v;
    }
  }
  return nullptr;
}

CodecError SupportedResponse::decode(Bytes body) {
  // [string multimap]: <n: [short]> then n x <k: [string]><v: [string list]>
  BodyReader r(body);
  std::uint16_t n = 0;
  if (!r.read_short(n)) {
    return r.error();
  }
  options.clear();
  for (std::uint16_t i = 0; i < n; ++i) {
    std::string key;
    std::vector<std::string> values;
    if (!r.read_string(key) || !r.read_string_list(values)) {
      return r.error();
    }
    options.emplace_back(std::move(key), std::move(values));
  }
  return CodecError::ok;
}

CodecError AuthChallengeResponse::decode(Bytes body) {
  BodyReader r(body);
  return r.read_bytes(token) ? CodecError::ok : r.error();
}

CodecError AuthSuccessResponse::decode(Bytes body) {
  BodyReader r(body);
  return r.read_bytes(token) ? CodecError::ok : r.error();
}

namespace {

// [option]: <id: [short]><value>; recursion bounded by kMaxTypeDepth.
bool read_type(BodyReader &r, DataType &t, int depth) {
  if (depth > kMaxTypeDepth) {
    return r.fail(CodecError::too_deep);
  }
  std::uint16_t id = 0;
  if (!r.read_short(id)) {
    return false;
  }
  t.id = id;
  t.custom.clear();
  DataType inner;
  switch (id) {
  case 0x0000: // Custom: [string] class name
    return r.read_string(t.custom);
  case 0x0001:
  case 0x0002:
  case 0x0003:
  case 0x0004:
  case 0x0005:
  case 0x0006:
  case 0x0007:
  case 0x0008:
  case 0x0009:
  case 0x000A: // text: gone from v3+ but still sent by some servers
  case 0x000B:
  case 0x000C:
  case 0x000D:
  case 0x000E:
  case 0x000F:
  case 0x0010:
  case 0x0011:
  case 0x0012:
  case 0x0013:
  case 0x0014:
  case 0x0015: // duration (Cassandra 3.10+)
    return true;
  case 0x0020: // List: [option]
  case 0x0022: // Set: [option]
    return read_type(r, inner, depth + 1);
  case 0x0021: // Map: [option][option]
    return read_type(r, inner, depth + 1) && read_type(r, inner, depth + 1);
  case 0x0030: { // UDT: <ks><udt_name><n><name_1><type_1>...<name_n><type_n>
    std::string_view ks;
    std::string_view name;
    std::uint16_t n = 0;
    if (!r.read_string(ks) || !r.read_string(name) || !r.read_short(n)) {
      return false;
    }
    for (std::uint16_t i = 0; i < n; ++i) {
      std::string_view field;
      if (!r.read_string(field) || !read_type(r, inner, depth + 1)) {
        return false;
      }
    }
    return true;
  }
  case 0x0031: { // Tuple: <n><type_1>...<type_n>
    std::uint16_t n = 0;
    if (!r.read_short(n)) {
      return false;
    }
    for (std::uint16_t i = 0; i < n; ++i) {
      if (!read_type(r, inner, depth + 1)) {
        return false;
      }
    }
    return true;
  }
  default:
    return r.fail(CodecError::bad_type);
  }
}

// <col_spec_1>...<col_spec_n>, each (<ksname><tablename>)?<name><type>.
bool read_columns(BodyReader &r, bool global, std::int32_t count, std::vector<ColumnSpec> &out) {
  // Each spec takes at least 4 bytes (<name> + <type>).
  if (static_cast<std::uint64_t>(count) * 4 > r.remaining()) {
    return r.fail(CodecError::truncated);
  }
  out.resize(static_cast<std::size_t>(count));
  for (auto &col : out) {
    if (!global && (!r.read_string(col.keyspace) || !r.read_string(col.table))) {
      return false;
    }
    if (!r.read_string(col.name) || !read_type(r, col.type, 0)) {
      return false;
    }
  }
  return true;
}

} // namespace

bool RowsMetadata::decode(BodyReader &r) {
  if (!r.read_int(flags) || !r.read_int(column_count)) {
    return false;
  }
  if (column_count < 0) {
    return r.fail(CodecError::bad_length);
  }
  paging_state.reset();
  global_keyspace.clear();
  global_table.clear();
  columns.clear();
  if (has_more_pages() && !r.read_bytes(paging_state)) {
    return false;
  }
  if (no_metadata()) {
    return true;
  }
  const bool global = (flags & kGlobalTablesSpec) != 0;
  if (global && (!r.read_string(global_keyspace) || !r.read_string(global_table))) {
    return false;
  }
  return read_columns(r, global, column_count, columns);
}

bool PreparedMetadata::decode(BodyReader &r) {
  std::int32_t pk_count = 0;
  if (!r.read_int(flags) || !r.read_int(column_count) || !r.read_int(pk_count)) {
    return false;
  }
  if (column_count < 0 || pk_count < 0) {
    return r.fail(CodecError::bad_length);
  }
  if (static_cast<std::uint64_t>(pk_count) * 2 > r.remaining()) {
    return r.fail(CodecError::truncated);
  }
  pk_indices.resize(static_cast<std::size_t>(pk_count));
  for (auto &i : pk_indices) {
    if (!r.read_short(i)) {
      return false;
    }
  }
  global_keyspace.clear();
  global_table.clear();
  const bool global = (flags & RowsMetadata::kGlobalTablesSpec) != 0;
  if (global && (!r.read_string(global_keyspace) || !r.read_string(global_table))) {
    return false;
  }
  return read_columns(r, global, column_count, columns);
}

bool SchemaChange::decode(BodyReader &r) {
  if (!r.read_string(change_type) || !r.read_string(target) || !r.read_string(keyspace)) {
    return false;
  }
  name.clear();
  arg_types.clear();
  if (target == "KEYSPACE") {
    return true;
  }
  if (!r.read_string(name)) {
    return false;
  }
  if (target == "FUNCTION" || target == "AGGREGATE") {
    return r.read_string_list(arg_types);
  }
  return true;
}

CodecError ResultResponse::decode(Bytes body) {
  BodyReader r(body);
  std::int32_t k = 0;
  if (!r.read_int(k)) {
    return r.error();
  }
  if (k < 1 || k > 5) {
    return CodecError::bad_result_kind;
  }
  kind = static_cast<Kind>(k);
  cells.clear();
  row_count = 0;
  switch (kind) {
  case Kind::void_:
    return CodecError::ok;
  case Kind::rows: {
    if (!metadata.decode(r) || !r.read_int(row_count)) {
      return r.error();
    }
    if (row_count < 0) {
      return CodecError::bad_length;
    }
    const auto cols = static_cast<std::uint64_t>(metadata.column_count);
    const std::uint64_t total = cols * static_cast<std::uint64_t>(row_count);
    // Rows without columns cannot be returned by a SELECT; refusing them
    // keeps a hostile count from driving a callback loop with no bytes.
    if (cols == 0 && row_count > 0) {
      return CodecError::bad_length;
    }
    // Each cell is at least its 4-byte [bytes] length.
    if (total * 4 > r.remaining()) {
      return CodecError::truncated;
    }
    cells.resize(static_cast<std::size_t>(total));
    for (auto &cell : cells) {
      if (!r.read_bytes(cell)) {
        cells.clear();
        return r.error();
      }
    }
    return CodecError::ok;
  }
  case Kind::set_keyspace:
    return r.read_string(keyspace) ? CodecError::ok : r.error();
  case Kind::prepared:
    if (!r.read_short_bytes(prepared_id) || !prepared_metadata.decode(r) ||
        !result_metadata.decode(r)) {
      return r.error();
    }
    return CodecError::ok;
  case Kind::schema_change:
    return schema_change.decode(r) ? CodecError::ok : r.error();
  }
  return CodecError::bad_result_kind;
}

CodecError EventResponse::decode(Bytes body) {
  BodyReader r(body);
  if (!r.read_string(type)) {
    return r.error();
  }
  change.clear();
  address = {};
  port = 0;
  if (type == "TOPOLOGY_CHANGE" || type == "STATUS_CHANGE") {
    if (!r.read_string(change) || !r.read_inet(address, port)) {
      return r.error();
    }
  } else if (type == "SCHEMA_CHANGE") {
    if (!schema_change.decode(r)) {
      return r.error();
    }
  }
  return CodecError::ok;
}

} // namespace ta::cql
