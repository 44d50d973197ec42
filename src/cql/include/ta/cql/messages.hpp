// cql/messages: one class per v4 message (spec section 4). Requests encode
// their body by appending to a byte vector; responses decode a body (after
// the frame envelope, see ResponseEnvelope) into plain fields.
//
// Contract: decode() never throws and never reads out of bounds; it returns
// CodecError::ok or the first problem found. Bytes past what the spec
// defines are ignored ("it will however always be safe to ignore the
// remainder of the frame body", section 1). Decoded Cells and Bytes views
// point into the decoded body, which must outlive them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"
#include "ta/cql/frame.hpp"
#include "ta/cql/types.hpp"

namespace ta::cql {

// ---------------------------------------------------------------- notation
// Appends the section 3 notations, big-endian.
class BodyWriter {
public:
  explicit BodyWriter(std::vector<std::byte> &out) : out_(out) {}
  void put_byte(std::uint8_t v) { out_.push_back(std::byte{v}); }
  void put_short(std::uint16_t v);                               // [short]
  void put_int(std::int32_t v);                                  // [int]
  void put_long(std::int64_t v);                                 // [long]
  void put_string(std::string_view s);                           // [string]
  void put_long_string(std::string_view s);                      // [long string]
  void put_bytes(Bytes b);                                       // [bytes]
  void put_null_bytes() { put_int(-1); }                         // [bytes] null
  void put_short_bytes(Bytes b);                                 // [short bytes]
  void put_string_list(std::span<const std::string_view> items); // [string list]
  void put_string_map(std::span<const std::pair<std::string_view, std::string_view>> kv);
  void put_raw(Bytes b) { out_.insert(out_.end(), b.begin(), b.end()); }
  [[nodiscard]] std::size_t size() const noexcept { return out_.size(); }

private:
  std::vector<std::byte> &out_;
};

// Reads the section 3 notations. Reads return false on failure and the
// first failure sticks in error(); the cursor does not move past it.
class BodyReader {
public:
  explicit BodyReader(Bytes body) : c_(body) {}
  bool read_byte(std::uint8_t &v);
  bool read_short(std::uint16_t &v);
  bool read_int(std::int32_t &v);
  bool read_long(std::int64_t &v);
  bool read_string(std::string_view &v);
  bool read_string(std::string &v);
  bool read_long_string(std::string_view &v);
  // [bytes]: n < 0 is null. We accept -1 (null) and -2 ("not set", also
  // read as null); anything below -2 is bad_length.
  bool read_bytes(Cell &v);
  bool read_bytes(std::optional<std::vector<std::byte>> &v);
  bool read_short_bytes(Bytes &v);
  bool read_short_bytes(std::vector<std::byte> &v);
  bool read_string_list(std::vector<std::string> &v);
  bool read_uuid(std::array<std::byte, 16> &v);
  bool read_inet(IpAddress &addr, std::int32_t &port); // [inet]
  bool skip_bytes_map();                               // [bytes map]
  bool fail(CodecError e);
  [[nodiscard]] CodecError error() const noexcept { return error_; }
  [[nodiscard]] std::size_t remaining() const noexcept { return c_.remaining(); }
  [[nodiscard]] Bytes rest() const noexcept { return c_.rest(); }

private:
  ByteCursor c_;
  CodecError error_ = CodecError::ok;
};

// ---------------------------------------------------------------- requests

// STARTUP: [string map] {"CQL_VERSION": "3.0.0"[, "COMPRESSION": "lz4"]}.
// Never compressed (section 5).
struct StartupRequest {
  static constexpr Opcode kOpcode = Opcode::startup;
  bool lz4 = false;
  void encode(std::vector<std::byte> &out) const;
};

// OPTIONS: empty body.
struct OptionsRequest {
  static constexpr Opcode kOpcode = Opcode::options;
  void encode(std::vector<std::byte> &out) const;
};

// AUTH_RESPONSE: a single [bytes] token.
struct AuthResponseRequest {
  static constexpr Opcode kOpcode = Opcode::auth_response;
  Bytes token;
  void encode(std::vector<std::byte> &out) const;
  // SASL PLAIN (RFC 4616) as PasswordAuthenticator wants: "\0user\0password".
  static std::vector<std::byte> plain_token(std::string_view user, std::string_view password);
};

// <query_parameters> shared by QUERY and EXECUTE:
//   <consistency><flags>[<n>[name_1]<value_1>...][<result_page_size>]
//   [<paging_state>][<serial_consistency>][<timestamp>]
// Flags are derived from which fields are set.
struct QueryParameters {
  Consistency consistency = Consistency::one;
  std::uint16_t value_count = 0;                 // 0x01 Values when > 0
  Bytes values;                                  // value_count x [value], already encoded
  bool skip_metadata = false;                    // 0x02
  std::int32_t page_size = 0;                    // 0x04 when > 0
  std::optional<Bytes> paging_state;             // 0x08
  std::optional<Consistency> serial_consistency; // 0x10
  std::optional<std::int64_t> timestamp;         // 0x20, microseconds
  void encode(BodyWriter &w) const;
};

// QUERY: <query: [long string]><query_parameters>.
struct QueryRequest {
  static constexpr Opcode kOpcode = Opcode::query;
  std::string_view query;
  QueryParameters params;
  void encode(std::vector<std::byte> &out) const;
};

// PREPARE: <query: [long string]>.
struct PrepareRequest {
  static constexpr Opcode kOpcode = Opcode::prepare;
  std::string_view query;
  void encode(std::vector<std::byte> &out) const;
};

// EXECUTE: <id: [short bytes]><query_parameters>.
struct ExecuteRequest {
  static constexpr Opcode kOpcode = Opcode::execute;
  Bytes id;
  QueryParameters params;
  void encode(std::vector<std::byte> &out) const;
};

// One <query_i> of a BATCH, always kind 1 (prepared):
//   <kind: 1><id: [short bytes]><n: [short]><value_1>...<value_n>
struct BatchStatement {
  Bytes id;
  std::uint16_t value_count = 0;
  Bytes values; // value_count x [value]
};

// BATCH: <type><n><query_1>...<query_n><consistency><flags>
//        [<serial_consistency>][<timestamp>]
struct BatchRequest {
  static constexpr Opcode kOpcode = Opcode::batch;
  enum Type : std::uint8_t { logged = 0, unlogged = 1, counter = 2 };
  Type type = unlogged;
  std::span<const BatchStatement> statements;
  Consistency consistency = Consistency::one;
  std::optional<Consistency> serial_consistency; // 0x10
  std::optional<std::int64_t> timestamp;         // 0x20
  void encode(std::vector<std::byte> &out) const;
};

// REGISTER: [string list] of event types.
struct RegisterRequest {
  static constexpr Opcode kOpcode = Opcode::register_;
  std::span<const std::string_view> events;
  void encode(std::vector<std::byte> &out) const;
};

// Appends a whole uncompressed request frame: header (length patched after
// the body is written) then body, in one buffer.
template <class Request>
void encode_frame(const Request &req, std::int16_t stream, std::vector<std::byte> &out) {
  const std::size_t at = out.size();
  FrameHeader h;
  h.stream = stream;
  h.opcode = Request::kOpcode;
  encode_header(h, out);
  req.encode(out);
  h.length = static_cast<std::uint32_t>(out.size() - at - kHeaderSize);
  encode_header(h, std::span<std::byte, kHeaderSize>(out.data() + at, kHeaderSize));
}

// --------------------------------------------------------------- responses

// What the header flags put in front of every response body: a tracing
// [uuid] (0x02), then a [string list] of warnings (0x08), then a custom
// [bytes map] (0x04, skipped). `message` is the rest: the opcode's body.
struct ResponseEnvelope {
  std::optional<std::array<std::byte, 16>> tracing_id;
  std::vector<std::string> warnings;
  Bytes message;
  [[nodiscard]] CodecError decode(std::uint8_t flags, Bytes body);
};

// ERROR: <code: [int]><message: [string]> then per-code details (section 9;
// codes: ServerError in types.hpp).
struct ErrorResponse {
  std::int32_t code = 0;
  std::string message;
  // unavailable: <cl><required><alive>; write/read timeout and
  // write/read failure: <cl><received><blockfor>
  // [<numfailures>] then <data_present> (reads) or <writeType> (writes).
  Consistency consistency = Consistency::any;
  std::int32_t required = 0;
  std::int32_t alive = 0;
  std::int32_t received = 0;
  std::int32_t block_for = 0;
  std::int32_t num_failures = 0;
  bool data_present = false;
  std::string write_type;
  // already_exists: <ks><table>; function_failure:
  // <keyspace><function><arg_types>.
  std::string keyspace;
  std::string table; // or the function name
  std::vector<std::string> arg_types;
  // unprepared: [short bytes] id.
  std::vector<std::byte> unprepared_id;
  [[nodiscard]] CodecError decode(Bytes body);
};

// READY: empty body.
struct ReadyResponse {
  [[nodiscard]] CodecError decode(Bytes body);
};

// AUTHENTICATE: <authenticator: [string]> (IAuthenticator class name).
struct AuthenticateResponse {
  std::string authenticator;
  [[nodiscard]] CodecError decode(Bytes body);
};

// SUPPORTED: [string multimap] of STARTUP options -> allowed values.
struct SupportedResponse {
  std::vector<std::pair<std::string, std::vector<std::string>>> options;
  [[nodiscard]] const std::vector<std::string> *find(std::string_view key) const;
  [[nodiscard]] CodecError decode(Bytes body);
};

// AUTH_CHALLENGE / AUTH_SUCCESS: a single [bytes] token (may be null).
struct AuthChallengeResponse {
  std::optional<std::vector<std::byte>> token;
  [[nodiscard]] CodecError decode(Bytes body);
};
struct AuthSuccessResponse {
  std::optional<std::vector<std::byte>> token;
  [[nodiscard]] CodecError decode(Bytes body);
};

// [option] column type: <id: [short]><value>. Nested parameters (list
// element, map key/value, UDT fields, tuple members) are validated and
// skipped; `custom` holds the class name of a Custom (0x0000) type.
struct DataType {
  std::uint16_t id = 0;
  std::string custom;
};
inline constexpr int kMaxTypeDepth = 16;

// <col_spec_i>: (<ksname><tablename>)?<name><type>
struct ColumnSpec {
  std::string keyspace;
  std::string table;
  std::string name;
  DataType type;
};

// Rows <metadata>:
//   <flags><columns_count>[<paging_state>][<global_table_spec>?<col_spec_1>...]
struct RowsMetadata {
  static constexpr std::int32_t kGlobalTablesSpec = 0x0001;
  static constexpr std::int32_t kHasMorePages = 0x0002;
  static constexpr std::int32_t kNoMetadata = 0x0004;
  std::int32_t flags = 0;
  std::int32_t column_count = 0;
  std::optional<std::vector<std::byte>> paging_state;
  std::string global_keyspace;
  std::string global_table;
  std::vector<ColumnSpec> columns; // empty with No_metadata
  [[nodiscard]] bool has_more_pages() const noexcept { return (flags & kHasMorePages) != 0; }
  [[nodiscard]] bool no_metadata() const noexcept { return (flags & kNoMetadata) != 0; }
  bool decode(BodyReader &r);
};

// Prepared <metadata> (v4 adds the partition key indices):
//   <flags><columns_count><pk_count>[<pk_index_1>...][<global_table_spec>?<col_spec_1>...]
struct PreparedMetadata {
  std::int32_t flags = 0;
  std::int32_t column_count = 0;
  std::vector<std::uint16_t> pk_indices;
  std::string global_keyspace;
  std::string global_table;
  std::vector<ColumnSpec> columns;
  bool decode(BodyReader &r);
};

// Schema_change result and SCHEMA_CHANGE event: <change_type><target><options>
// where <options> is <keyspace> for KEYSPACE, <keyspace><name> for
// TABLE/TYPE, <keyspace><name><arg types: [string list]> for
// FUNCTION/AGGREGATE.
struct SchemaChange {
  std::string change_type; // CREATED, UPDATED, DROPPED
  std::string target;      // KEYSPACE, TABLE, TYPE, FUNCTION, AGGREGATE
  std::string keyspace;
  std::string name;
  std::vector<std::string> arg_types;
  bool decode(BodyReader &r);
};

// RESULT: <kind: [int]> then the kind's body (section 4.2.5).
struct ResultResponse {
  enum class Kind : std::int32_t {
    void_ = 0x0001,
    rows = 0x0002,
    set_keyspace = 0x0003,
    prepared = 0x0004,
    schema_change = 0x0005,
  };
  Kind kind = Kind::void_;
  // Rows: <metadata><rows_count><rows_content>; cells row-major,
  // row_count x metadata.column_count [bytes]. Reused across decodes.
  RowsMetadata metadata;
  std::int32_t row_count = 0;
  std::vector<Cell> cells;
  // Set_keyspace: <keyspace: [string]>
  std::string keyspace;
  // Prepared: <id: [short bytes]><metadata><result_metadata>
  std::vector<std::byte> prepared_id;
  PreparedMetadata prepared_metadata;
  RowsMetadata result_metadata;
  // Schema_change
  SchemaChange schema_change;

  [[nodiscard]] std::span<const Cell> row(std::size_t i) const {
    const auto n = static_cast<std::size_t>(metadata.column_count);
    return std::span<const Cell>(cells).subspan(i * n, n);
  }
  [[nodiscard]] CodecError decode(Bytes body);
};

// EVENT: <type: [string]> then TOPOLOGY_CHANGE / STATUS_CHANGE:
// <change: [string]><address: [inet]>, or SCHEMA_CHANGE: see SchemaChange.
struct EventResponse {
  std::string type;
  std::string change; // NEW_NODE, REMOVED_NODE, UP, DOWN
  IpAddress address;
  std::int32_t port = 0;
  SchemaChange schema_change;
  [[nodiscard]] CodecError decode(Bytes body);
};

} // namespace ta::cql
