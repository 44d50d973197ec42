// Codec tests: frame header, each request's exact bytes and each response
// decoded from hand-written fixtures (hex plus ASCII runs, laid out as the
// v4 spec notation), malformed input yielding its named error, LZ4.
#include <set>

#include <gtest/gtest.h>

#include "ta/cql/frame.hpp"
#include "ta/cql/messages.hpp"
#include "ta/cql/session.hpp"
#include "ta/cql/types.hpp"

#include "fake_server.hpp"

namespace ta::cql {
namespace {

using test::dump;
using test::Fx;

// ------------------------------------------------------------ frame header

TEST(CqlFrame, EncodesHeader) {
  FrameHeader h;
  h.stream = 0x0102;
  h.opcode = Opcode::startup;
  h.length = 0x16;
  std::vector<std::byte> out;
  encode_header(h, out);
  EXPECT_BYTES(out, Fx{}.h("04 00 0102 01 00000016"));
}

TEST(CqlFrame, DecodesResponseHeaderWithNegativeStream) {
  FrameHeader h;
  ASSERT_EQ(decode_header(Fx{}.h("84 08 ffff 0c 00000010"), Direction::response, kMaxFrameBody, h),
            CodecError::ok);
  EXPECT_EQ(h.stream, -1);
  EXPECT_EQ(h.opcode, Opcode::event);
  EXPECT_EQ(h.flags, kFlagWarning);
  EXPECT_EQ(h.length, 16U);
}

TEST(CqlFrame, RejectsBadHeaders) {
  FrameHeader h;
  const auto check = [&](const Fx &f, Direction d, CodecError want, std::uint32_t max = 1000) {
    EXPECT_EQ(decode_header(f, d, max, h), want) << dump(f.v);
  };
  check(Fx{}.h("83 00 0000 02 00000000"), Direction::response, CodecError::bad_version);
  check(Fx{}.h("05 00 0000 01 00000000"), Direction::request, CodecError::bad_version);
  check(Fx{}.h("84 00 0000 02 00000000"), Direction::request, CodecError::bad_direction);
  check(Fx{}.h("04 00 0000 01 00000000"), Direction::response, CodecError::bad_direction);
  check(Fx{}.h("84 00 0000 04 00000000"), Direction::response, CodecError::bad_opcode);
  check(Fx{}.h("84 00 0000 11 00000000"), Direction::response, CodecError::bad_opcode);
  // A request opcode in a response frame and vice versa.
  check(Fx{}.h("84 00 0000 07 00000000"), Direction::response, CodecError::bad_opcode);
  check(Fx{}.h("04 00 0000 08 00000000"), Direction::request, CodecError::bad_opcode);
  check(Fx{}.h("84 00 0000 08 80000000"), Direction::response, CodecError::bad_length);
  check(Fx{}.h("84 00 0000 08 ffffffff"), Direction::response, CodecError::bad_length);
  check(Fx{}.h("84 00 0000 08 000003e9"), Direction::response, CodecError::too_large);
  check(Fx{}.h("84 00 0000 08 000003e8"), Direction::response, CodecError::ok);
  // The spec's 256 MB limit by default.
  EXPECT_EQ(decode_header(Fx{}.h("84 00 0000 08 10000001"), Direction::response, kMaxFrameBody, h),
            CodecError::too_large);
}

TEST(CqlFrame, TruncatedHeaderAtEveryLength) {
  const Fx full = Fx{}.h("84 00 0001 02 00000000");
  for (std::size_t n = 0; n < kHeaderSize; ++n) {
    FrameHeader h;
    EXPECT_EQ(decode_header(Bytes(full.v).first(n), Direction::response, kMaxFrameBody, h),
              CodecError::truncated)
        << n;
  }
}

TEST(CqlFrame, DecoderReassemblesByteByByte) {
  // READY on stream 1, then AUTH_SUCCESS with a null token on stream 2.
  const Fx stream = Fx{}.h("84 00 0001 02 00000000").h("84 00 0002 10 00000004 ffffffff");
  FrameDecoder d;
  std::vector<std::pair<std::int16_t, std::size_t>> seen;
  for (const auto b : stream.v) {
    d.feed(std::span(&b, 1));
    Frame f;
    while (d.next(f)) {
      seen.emplace_back(f.header.stream, f.body.size());
    }
    EXPECT_EQ(d.error(), CodecError::ok);
  }
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[0], std::make_pair(std::int16_t{1}, std::size_t{0}));
  EXPECT_EQ(seen[1], std::make_pair(std::int16_t{2}, std::size_t{4}));
  EXPECT_EQ(d.buffered(), 0U);
}

TEST(CqlFrame, DecoderErrorIsStickyAndBounded) {
  FrameDecoder d(Direction::response, 16);
  d.feed(Fx{}.h("84 00 0001 08 00000011"));
  Frame f;
  EXPECT_FALSE(d.next(f));
  EXPECT_EQ(d.error(), CodecError::too_large);
  d.feed(Fx{}.h("84 00 0001 02 00000000"));
  EXPECT_FALSE(d.next(f));
  EXPECT_EQ(d.error(), CodecError::too_large);
  d.reset();
  d.feed(Fx{}.h("84 00 0001 02 00000000"));
  EXPECT_TRUE(d.next(f));
}

TEST(CqlFrame, PartialBodyWaits) {
  FrameDecoder d;
  d.feed(Fx{}.h("84 00 0003 08 00000004 0000"));
  Frame f;
  EXPECT_FALSE(d.next(f));
  EXPECT_EQ(d.error(), CodecError::ok);
  EXPECT_EQ(d.buffered(), 11U);
  d.feed(Fx{}.h("0001"));
  ASSERT_TRUE(d.next(f));
  EXPECT_BYTES(f.body, Fx{}.h("00000001"));
}

// ---------------------------------------------------------------- requests

TEST(CqlRequest, StartupFrame) {
  std::vector<std::byte> out;
  encode_frame(StartupRequest{}, 0, out);
  // [string map]: <n=1> <"CQL_VERSION"> <"3.0.0">
  EXPECT_BYTES(
      out, Fx{}.h("04 00 0000 01 00000016").h("0001 000b").s("CQL_VERSION").h("0005").s("3.0.0"));
}

TEST(CqlRequest, StartupWithLz4) {
  std::vector<std::byte> out;
  StartupRequest{true}.encode(out);
  EXPECT_BYTES(out, Fx{}.h("0002 000b")
                        .s("CQL_VERSION")
                        .h("0005")
                        .s("3.0.0")
                        .h("000b")
                        .s("COMPRESSION")
                        .h("0003")
                        .s("lz4"));
}

TEST(CqlRequest, OptionsIsEmpty) {
  std::vector<std::byte> out;
  encode_frame(OptionsRequest{}, 7, out);
  EXPECT_BYTES(out, Fx{}.h("04 00 0007 05 00000000"));
}

TEST(CqlRequest, AuthResponsePlainToken) {
  std::vector<std::byte> out;
  const auto token = AuthResponseRequest::plain_token("cassandra", "secret");
  AuthResponseRequest{token}.encode(out);
  // [bytes] "\0cassandra\0secret"
  EXPECT_BYTES(out, Fx{}.h("00000011 00").s("cassandra").h("00").s("secret"));
}

TEST(CqlRequest, QueryWithPagingState) {
  std::vector<std::byte> out;
  QueryRequest q;
  q.query = "SELECT 1";
  q.params.consistency = Consistency::one;
  q.params.page_size = 100;
  const Fx state = Fx{}.h("abcd");
  q.params.paging_state = Bytes(state);
  encode_frame(q, 3, out);
  // <query: [long string]><consistency><flags 0x04|0x08><page size><paging state>
  EXPECT_BYTES(out, Fx{}.h("04 00 0003 07 00000019")
                        .h("00000008")
                        .s("SELECT 1")
                        .h("0001 0c 00000064 00000002 abcd"));
}

TEST(CqlRequest, QueryWithValuesSerialAndTimestamp) {
  std::vector<std::byte> out;
  Values v;
  v.add_int(7).add_null();
  QueryRequest q;
  q.query = "X";
  q.params.consistency = Consistency::quorum;
  q.params.value_count = v.count();
  q.params.values = v.encoded();
  q.params.serial_consistency = Consistency::local_serial;
  q.params.timestamp = 0x0102030405060708;
  q.encode(out);
  EXPECT_BYTES(
      out,
      Fx{}.h("00000001").s("X").h("0004 31 0002 00000004 00000007 ffffffff 0009 0102030405060708"));
}

TEST(CqlRequest, ExecuteWithValues) {
  std::vector<std::byte> out;
  Values v;
  v.add_int(7).add_text("hi");
  ExecuteRequest e;
  const Fx id = Fx{}.h("cafe");
  e.id = id;
  e.params.consistency = Consistency::local_quorum;
  e.params.value_count = v.count();
  e.params.values = v.encoded();
  encode_frame(e, 0x0101, out);
  // <id: [short bytes]><consistency><flags 0x01><n>[value]...
  EXPECT_BYTES(out, Fx{}.h("04 00 0101 0a 00000017")
                        .h("0002 cafe 0006 01 0002 00000004 00000007 00000002")
                        .s("hi"));
}

TEST(CqlRequest, UnloggedBatchOfPreparedStatements) {
  std::vector<std::byte> out;
  Values a;
  a.add_int(1);
  Values b;
  const Fx id = Fx{}.h("cafe");
  const std::array<BatchStatement, 2> stmts{
      {{Bytes(id), a.count(), a.encoded()}, {Bytes(id), b.count(), b.encoded()}}};
  BatchRequest req;
  req.statements = stmts;
  req.consistency = Consistency::local_quorum;
  encode_frame(req, 9, out);
  // <type 1><n 2> <kind 1><id><n 1><value> <kind 1><id><n 0> <consistency><flags>
  EXPECT_BYTES(out, Fx{}.h("04 00 0009 0d 0000001c")
                        .h("01 0002")
                        .h("01 0002 cafe 0001 00000004 00000001")
                        .h("01 0002 cafe 0000")
                        .h("0006 00"));
}

TEST(CqlRequest, PrepareAndRegister) {
  std::vector<std::byte> out;
  PrepareRequest{"SELECT ?"}.encode(out);
  EXPECT_BYTES(out, Fx{}.h("00000008").s("SELECT ?"));
  out.clear();
  const std::array<std::string_view, 2> ev{"STATUS_CHANGE", "SCHEMA_CHANGE"};
  RegisterRequest{ev}.encode(out);
  EXPECT_BYTES(out, Fx{}.h("0002 000d").s("STATUS_CHANGE").h("000d").s("SCHEMA_CHANGE"));
}

TEST(CqlValues, EncodesEachType) {
  Values v;
  const std::array<std::byte, 2> blob{std::byte{0xde}, std::byte{0xad}};
  v.add_null()
      .add_bigint(-2)
      .add_smallint(0x0102)
      .add_tinyint(-1)
      .add_boolean(true)
      .add_blob(blob)
      .add_inet(*IpAddress::parse("10.0.0.1"))
      .add_inet(*IpAddress::parse("::1"));
  EXPECT_EQ(v.count(), 8);
  EXPECT_BYTES(v.encoded(), Fx{}.h("ffffffff")
                                .h("00000008 fffffffffffffffe")
                                .h("00000002 0102")
                                .h("00000001 ff")
                                .h("00000001 01")
                                .h("00000002 dead")
                                .h("00000004 0a000001")
                                .h("00000010 00000000000000000000000000000001"));
  v.clear();
  EXPECT_EQ(v.count(), 0);
  EXPECT_TRUE(v.encoded().empty());
}

TEST(CqlValues, CellDecoders) {
  const Fx i = Fx{}.h("fffffffe");
  const Fx l = Fx{}.h("0000000000000100");
  const Fx d = Fx{}.h("3ff8000000000000");
  const Fx ip = Fx{}.h("7f000001");
  const Fx t = Fx{}.s("hé");
  EXPECT_EQ(as_int(Cell{Bytes(i)}), -2);
  EXPECT_EQ(as_int(Cell{Bytes(l)}), std::nullopt); // wrong size
  EXPECT_EQ(as_int(Cell{}), std::nullopt);         // NULL
  EXPECT_EQ(as_bigint(Cell{Bytes(l)}), 256);
  EXPECT_EQ(as_double(Cell{Bytes(d)}), 1.5);
  EXPECT_EQ(as_text(Cell{Bytes(t)}), "hé");
  EXPECT_EQ(as_inet(Cell{Bytes(ip)})->to_string(), "127.0.0.1");
  EXPECT_EQ(as_inet(Cell{Bytes(i).first(3)}), std::nullopt);
  EXPECT_EQ(as_boolean(Cell{Bytes(i).first(1)}), true);
}

TEST(CqlNames, StableAndDistinct) {
  std::set<std::string_view> names;
  for (int e = 0; e < static_cast<int>(CodecError::count_); ++e) {
    const auto n = to_string(static_cast<CodecError>(e));
    EXPECT_NE(n, "unknown");
    EXPECT_TRUE(names.insert(n).second) << n;
  }
  EXPECT_EQ(server_error_name(0x1100), "write_timeout");
  EXPECT_EQ(server_error_name(0x1001), "overloaded");
  EXPECT_EQ(server_error_name(0x0100), "bad_credentials");
  EXPECT_EQ(server_error_name(0x2500), "unprepared");
  EXPECT_EQ(server_error_name(0x7777), "unknown");
  EXPECT_EQ(parse_consistency("LOCAL_QUORUM"), Consistency::local_quorum);
  EXPECT_EQ(parse_consistency("one"), Consistency::one);
  EXPECT_EQ(parse_consistency("most"), std::nullopt);
  EXPECT_EQ(consistency_name(Consistency::each_quorum), "each_quorum");
  EXPECT_EQ(error_kind_name(ErrorKind::no_host), "no_host");
}

// --------------------------------------------------------------- responses

// Every proper prefix of a valid body must fail cleanly (and never crash).
template <class Msg> void expect_prefixes_fail(const Fx &body) {
  for (std::size_t n = 0; n < body.v.size(); ++n) {
    Msg m;
    const CodecError e = m.decode(Bytes(body.v).first(n));
    EXPECT_NE(e, CodecError::ok) << "prefix " << n << " of " << dump(body.v);
  }
}

const Fx kUnavailable = Fx{}.h("00001000 0003").s("abc").h("0006 00000003 00000001");
const Fx kWriteTimeout =
    Fx{}.h("00001100 0004").s("slow").h("0004 00000001 00000002 000e").s("UNLOGGED_BATCH");
const Fx kReadTimeout = Fx{}.h("00001200 0000 0001 00000000 00000001 01");
const Fx kAlreadyExists = Fx{}.h("00002400 0002").s("ex").h("0002").s("ks").h("0001").s("t");
const Fx kUnprepared = Fx{}.h("00002500 0000 0002 cafe");

TEST(CqlError, Unavailable) {
  ErrorResponse e;
  ASSERT_EQ(e.decode(kUnavailable), CodecError::ok);
  EXPECT_EQ(e.code, 0x1000);
  EXPECT_EQ(e.message, "abc");
  EXPECT_EQ(e.consistency, Consistency::local_quorum);
  EXPECT_EQ(e.required, 3);
  EXPECT_EQ(e.alive, 1);
  expect_prefixes_fail<ErrorResponse>(kUnavailable);
}

TEST(CqlError, WriteTimeoutWithWriteType) {
  ErrorResponse e;
  ASSERT_EQ(e.decode(kWriteTimeout), CodecError::ok);
  EXPECT_EQ(e.code, 0x1100);
  EXPECT_EQ(e.consistency, Consistency::quorum);
  EXPECT_EQ(e.received, 1);
  EXPECT_EQ(e.block_for, 2);
  EXPECT_EQ(e.write_type, "UNLOGGED_BATCH");
  expect_prefixes_fail<ErrorResponse>(kWriteTimeout);
}

TEST(CqlError, ReadTimeout) {
  ErrorResponse e;
  ASSERT_EQ(e.decode(kReadTimeout), CodecError::ok);
  EXPECT_EQ(e.code, 0x1200);
  EXPECT_EQ(e.consistency, Consistency::one);
  EXPECT_EQ(e.received, 0);
  EXPECT_EQ(e.block_for, 1);
  EXPECT_TRUE(e.data_present);
  expect_prefixes_fail<ErrorResponse>(kReadTimeout);
}

TEST(CqlError, AlreadyExists) {
  ErrorResponse e;
  ASSERT_EQ(e.decode(kAlreadyExists), CodecError::ok);
  EXPECT_EQ(e.keyspace, "ks");
  EXPECT_EQ(e.table, "t");
  expect_prefixes_fail<ErrorResponse>(kAlreadyExists);
}

TEST(CqlError, UnpreparedId) {
  ErrorResponse e;
  ASSERT_EQ(e.decode(kUnprepared), CodecError::ok);
  EXPECT_EQ(e.code, 0x2500);
  EXPECT_BYTES(e.unprepared_id, Fx{}.h("cafe"));
  expect_prefixes_fail<ErrorResponse>(kUnprepared);
}

TEST(CqlError, FailuresAndPlainCodes) {
  ErrorResponse e;
  ASSERT_EQ(e.decode(Fx{}.h("00001500 0000 0006 00000001 00000002 00000001 0006").s("SIMPLE")),
            CodecError::ok);
  EXPECT_EQ(e.num_failures, 1);
  EXPECT_EQ(e.write_type, "SIMPLE");
  ASSERT_EQ(e.decode(Fx{}.h("00001300 0000 0001 00000000 00000001 00000002 00")), CodecError::ok);
  EXPECT_EQ(e.num_failures, 2);
  EXPECT_FALSE(e.data_present);
  ASSERT_EQ(e.decode(Fx{}.h("00001400 0000 0002").s("ks").h("0001").s("f").h("0001 0003").s("int")),
            CodecError::ok);
  EXPECT_EQ(e.table, "f");
  EXPECT_EQ(e.arg_types, std::vector<std::string>{"int"});
  ASSERT_EQ(e.decode(Fx{}.h("00002000 0006").s("syntax")), CodecError::ok);
  EXPECT_EQ(e.code, 0x2000);
  EXPECT_EQ(e.message, "syntax");
}

const Fx kRows = Fx{}.h("00000002")      // kind Rows
                     .h("00000003")      // flags: global_tables_spec | has_more_pages
                     .h("00000002")      // columns_count
                     .h("00000002 aabb") // paging_state [bytes]
                     .h("0002")
                     .s("ks") // global keyspace
                     .h("0001")
                     .s("t") // global table
                     .h("0001")
                     .s("a")
                     .h("0009") // col a int
                     .h("0001")
                     .s("b")
                     .h("000d")     // col b varchar
                     .h("00000002") // rows_count
                     .h("00000004 00000001 00000001")
                     .s("x")
                     .h("00000004 00000002 ffffffff");

TEST(CqlResult, RowsWithMetadataAndPagingState) {
  ResultResponse r;
  ASSERT_EQ(r.decode(kRows), CodecError::ok);
  ASSERT_EQ(r.kind, ResultResponse::Kind::rows);
  EXPECT_TRUE(r.metadata.has_more_pages());
  EXPECT_FALSE(r.metadata.no_metadata());
  ASSERT_TRUE(r.metadata.paging_state);
  EXPECT_BYTES(*r.metadata.paging_state, Fx{}.h("aabb"));
  EXPECT_EQ(r.metadata.global_keyspace, "ks");
  EXPECT_EQ(r.metadata.global_table, "t");
  ASSERT_EQ(r.metadata.columns.size(), 2U);
  EXPECT_EQ(r.metadata.columns[0].name, "a");
  EXPECT_EQ(r.metadata.columns[0].type.id, 0x0009);
  EXPECT_EQ(r.metadata.columns[1].type.id, 0x000d);
  ASSERT_EQ(r.row_count, 2);
  EXPECT_EQ(as_int(r.row(0)[0]), 1);
  EXPECT_EQ(as_text(r.row(0)[1]), "x");
  EXPECT_EQ(as_int(r.row(1)[0]), 2);
  EXPECT_FALSE(r.row(1)[1].has_value());
  expect_prefixes_fail<ResultResponse>(kRows);
}

TEST(CqlResult, RowsNoMetadataAndPerColumnSpecs) {
  ResultResponse r;
  ASSERT_EQ(r.decode(Fx{}.h("00000002 00000004 00000001 00000001 00000000")), CodecError::ok);
  EXPECT_TRUE(r.metadata.no_metadata());
  EXPECT_TRUE(r.metadata.columns.empty());
  ASSERT_EQ(r.row_count, 1);
  EXPECT_TRUE(r.row(0)[0].has_value());
  EXPECT_TRUE(r.row(0)[0]->empty()); // empty, not NULL
  // No global spec: <ksname><tablename> per column.
  ASSERT_EQ(r.decode(Fx{}.h("00000002 00000000 00000001")
                         .h("0002")
                         .s("k2")
                         .h("0002")
                         .s("t2")
                         .h("0001")
                         .s("c")
                         .h("0002 00000000")),
            CodecError::ok);
  EXPECT_EQ(r.metadata.columns[0].keyspace, "k2");
  EXPECT_EQ(r.metadata.columns[0].table, "t2");
  EXPECT_EQ(r.metadata.columns[0].type.id, 0x0002);
  EXPECT_EQ(r.row_count, 0);
}

TEST(CqlResult, NestedTypes) {
  ResultResponse r;
  // list<int>, map<varchar, frozen<set<int>>>, udt ks.u{f: int},
  // tuple<int, bigint>, custom 'x.Y'.
  const Fx body = Fx{}.h("00000002 00000001 00000005 0002")
                      .s("ks")
                      .h("0001")
                      .s("t")
                      .h("0001")
                      .s("l")
                      .h("0020 0009")
                      .h("0001")
                      .s("m")
                      .h("0021 000d 0022 0009")
                      .h("0001")
                      .s("u")
                      .h("0030 0002")
                      .s("ks")
                      .h("0001")
                      .s("u")
                      .h("0001 0001")
                      .s("f")
                      .h("0009")
                      .h("0001")
                      .s("p")
                      .h("0031 0002 0009 0002")
                      .h("0001")
                      .s("c")
                      .h("0000 0003")
                      .s("x.Y")
                      .h("00000000");
  ASSERT_EQ(r.decode(body), CodecError::ok);
  ASSERT_EQ(r.metadata.columns.size(), 5U);
  EXPECT_EQ(r.metadata.columns[1].type.id, 0x0021);
  EXPECT_EQ(r.metadata.columns[4].type.custom, "x.Y");
  expect_prefixes_fail<ResultResponse>(body);
}

TEST(CqlResult, Prepared) {
  const Fx body = Fx{}.h("00000004")
                      .h("0002 cafe")                       // id
                      .h("00000001 00000002 00000001 0000") // flags, cols, pk_count, pk 0
                      .h("0002")
                      .s("ks")
                      .h("0001")
                      .s("t")
                      .h("0001")
                      .s("a")
                      .h("0009")
                      .h("0001")
                      .s("b")
                      .h("000d")
                      .h("00000004 00000000"); // result metadata: no_metadata
  ResultResponse r;
  ASSERT_EQ(r.decode(body), CodecError::ok);
  ASSERT_EQ(r.kind, ResultResponse::Kind::prepared);
  EXPECT_BYTES(r.prepared_id, Fx{}.h("cafe"));
  EXPECT_EQ(r.prepared_metadata.column_count, 2);
  EXPECT_EQ(r.prepared_metadata.pk_indices, std::vector<std::uint16_t>{0});
  EXPECT_EQ(r.prepared_metadata.global_table, "t");
  EXPECT_EQ(r.prepared_metadata.columns[1].name, "b");
  EXPECT_TRUE(r.result_metadata.no_metadata());
  expect_prefixes_fail<ResultResponse>(body);
}

TEST(CqlResult, SetKeyspaceVoidAndSchemaChange) {
  ResultResponse r;
  ASSERT_EQ(r.decode(Fx{}.h("00000003 0002").s("ks")), CodecError::ok);
  EXPECT_EQ(r.kind, ResultResponse::Kind::set_keyspace);
  EXPECT_EQ(r.keyspace, "ks");
  ASSERT_EQ(r.decode(Fx{}.h("00000001")), CodecError::ok);
  EXPECT_EQ(r.kind, ResultResponse::Kind::void_);
  ASSERT_EQ(r.decode(Fx{}.h("00000005 0007")
                         .s("CREATED")
                         .h("0005")
                         .s("TABLE")
                         .h("0002")
                         .s("ks")
                         .h("0001")
                         .s("t")),
            CodecError::ok);
  EXPECT_EQ(r.schema_change.change_type, "CREATED");
  EXPECT_EQ(r.schema_change.target, "TABLE");
  EXPECT_EQ(r.schema_change.name, "t");
  ASSERT_EQ(r.decode(Fx{}.h("00000005 0007")
                         .s("DROPPED")
                         .h("0008")
                         .s("FUNCTION")
                         .h("0002")
                         .s("ks")
                         .h("0001")
                         .s("f")
                         .h("0002 0003")
                         .s("int")
                         .h("0004")
                         .s("text")),
            CodecError::ok);
  EXPECT_EQ(r.schema_change.arg_types, (std::vector<std::string>{"int", "text"}));
  ASSERT_EQ(
      r.decode(Fx{}.h("00000005 0007").s("UPDATED").h("0008").s("KEYSPACE").h("0002").s("ks")),
      CodecError::ok);
  EXPECT_EQ(r.schema_change.keyspace, "ks");
}

TEST(CqlResult, Malformed) {
  ResultResponse r;
  EXPECT_EQ(r.decode(Fx{}.h("00000006")), CodecError::bad_result_kind);
  EXPECT_EQ(r.decode(Fx{}.h("00000000")), CodecError::bad_result_kind);
  // A cell length below -2.
  EXPECT_EQ(r.decode(Fx{}.h("00000002 00000004 00000001 00000001 fffffffd")),
            CodecError::bad_length);
  // -2 ("not set") reads as null.
  ASSERT_EQ(r.decode(Fx{}.h("00000002 00000004 00000001 00000001 fffffffe")), CodecError::ok);
  EXPECT_FALSE(r.row(0)[0].has_value());
  // Huge counts do not allocate: rows x columns over what the body holds.
  EXPECT_EQ(r.decode(Fx{}.h("00000002 00000004 7fffffff 7fffffff 00000000")),
            CodecError::truncated);
  EXPECT_EQ(r.decode(Fx{}.h("00000002 00000000 7fffffff")), CodecError::truncated);
  EXPECT_EQ(r.decode(Fx{}.h("00000002 00000004 ffffffff 00000000")), CodecError::bad_length);
  EXPECT_EQ(r.decode(Fx{}.h("00000002 00000004 00000001 ffffffff")), CodecError::bad_length);
  // Cell length past the end.
  EXPECT_EQ(r.decode(Fx{}.h("00000002 00000004 00000001 00000001 00000005 01")),
            CodecError::truncated);
  // Unknown type id, and nesting beyond the limit.
  EXPECT_EQ(r.decode(Fx{}.h("00000002 00000001 00000001 0001")
                         .s("k")
                         .h("0001")
                         .s("t")
                         .h("0001")
                         .s("c")
                         .h("0050 00000000")),
            CodecError::bad_type);
  Fx deep = Fx{}.h("00000002 00000001 00000001 0001").s("k").h("0001").s("t").h("0001").s("c");
  for (int i = 0; i < 40; ++i) {
    deep.h("0020");
  }
  deep.h("0009 00000000");
  EXPECT_EQ(r.decode(deep), CodecError::too_deep);
  // Negative pk_count in Prepared.
  EXPECT_EQ(r.decode(Fx{}.h("00000004 0000 00000000 00000000 ffffffff")), CodecError::bad_length);
}

TEST(CqlResponse, SupportedMultimap) {
  const Fx body = Fx{}.h("0002 000b")
                      .s("COMPRESSION")
                      .h("0002 0003")
                      .s("lz4")
                      .h("0006")
                      .s("snappy")
                      .h("000b")
                      .s("CQL_VERSION")
                      .h("0001 0005")
                      .s("3.0.0");
  SupportedResponse s;
  ASSERT_EQ(s.decode(body), CodecError::ok);
  ASSERT_NE(s.find("COMPRESSION"), nullptr);
  EXPECT_EQ(*s.find("COMPRESSION"), (std::vector<std::string>{"lz4", "snappy"}));
  EXPECT_EQ(*s.find("CQL_VERSION"), std::vector<std::string>{"3.0.0"});
  EXPECT_EQ(s.find("X"), nullptr);
  expect_prefixes_fail<SupportedResponse>(body);
}

TEST(CqlResponse, AuthenticateChallengeSuccessReady) {
  AuthenticateResponse a;
  ASSERT_EQ(a.decode(Fx{}.h("002f").s("org.apache.cassandra.auth.PasswordAuthenticator")),
            CodecError::ok);
  EXPECT_EQ(a.authenticator, "org.apache.cassandra.auth.PasswordAuthenticator");
  EXPECT_EQ(a.decode(Fx{}.h("002f").s("org.apache")), CodecError::truncated);
  AuthChallengeResponse c;
  ASSERT_EQ(c.decode(Fx{}.h("00000002 0102")), CodecError::ok);
  EXPECT_EQ(c.token->size(), 2U);
  AuthSuccessResponse s;
  ASSERT_EQ(s.decode(Fx{}.h("ffffffff")), CodecError::ok);
  EXPECT_FALSE(s.token.has_value());
  EXPECT_EQ(s.decode(Fx{}.h("fffffff0")), CodecError::bad_length);
  EXPECT_EQ(s.decode(Fx{}.h("000000")), CodecError::truncated);
  ReadyResponse r;
  EXPECT_EQ(r.decode({}), CodecError::ok);
}

TEST(CqlResponse, Events) {
  EventResponse e;
  ASSERT_EQ(
      e.decode(Fx{}.h("000d").s("STATUS_CHANGE").h("0004").s("DOWN").h("04 0a000002 00002352")),
      CodecError::ok);
  EXPECT_EQ(e.change, "DOWN");
  EXPECT_EQ(e.address.to_string(), "10.0.0.2");
  EXPECT_EQ(e.port, 9042);
  EXPECT_EQ(e.decode(Fx{}.h("000f").s("TOPOLOGY_CHANGE").h("0008").s("NEW_NODE").h("05 0a000002")),
            CodecError::bad_inet);
  ASSERT_EQ(e.decode(Fx{}.h("000d")
                         .s("SCHEMA_CHANGE")
                         .h("0007")
                         .s("CREATED")
                         .h("0004")
                         .s("TYPE")
                         .h("0002")
                         .s("ks")
                         .h("0001")
                         .s("u")),
            CodecError::ok);
  EXPECT_EQ(e.schema_change.name, "u");
}

TEST(CqlResponse, EnvelopeTracingWarningsPayload) {
  ResponseEnvelope env;
  const Fx body = Fx{}.h("000102030405060708090a0b0c0d0e0f") // tracing [uuid]
                      .h("0001 0004")
                      .s("warn") // [string list]
                      .h("0001 0001")
                      .s("k")
                      .h("00000001 ff") // [bytes map]
                      .h("00000001");   // RESULT Void
  ASSERT_EQ(env.decode(kFlagTracing | kFlagWarning | kFlagCustomPayload, body), CodecError::ok);
  ASSERT_TRUE(env.tracing_id);
  EXPECT_EQ((*env.tracing_id)[15], std::byte{0x0f});
  EXPECT_EQ(env.warnings, std::vector<std::string>{"warn"});
  EXPECT_BYTES(env.message, Fx{}.h("00000001"));
  for (std::size_t n = 0; n + 4 < body.v.size(); ++n) {
    EXPECT_NE(env.decode(kFlagTracing | kFlagWarning | kFlagCustomPayload, Bytes(body.v).first(n)),
              CodecError::ok)
        << n;
  }
}

TEST(CqlReader, NotationLimits) {
  const Fx neg = Fx{}.h("ffffffff");
  BodyReader r(neg);
  std::string_view s;
  EXPECT_FALSE(r.read_long_string(s));
  EXPECT_EQ(r.error(), CodecError::bad_length);
  const Fx many = Fx{}.h("ffff");
  BodyReader r2(many);
  std::vector<std::string> list;
  EXPECT_FALSE(r2.read_string_list(list));
  EXPECT_EQ(r2.error(), CodecError::truncated);
}

// ---------------------------------------------------------------------- LZ4

TEST(CqlLz4, RoundTrip) {
  std::vector<std::byte> plain;
  plain.reserve(10000);
  for (int i = 0; i < 10000; ++i) {
    plain.push_back(static_cast<std::byte>(i % 7));
  }
  std::vector<std::byte> packed;
  lz4_compress(plain, packed);
  EXPECT_LT(packed.size(), plain.size());
  // [int] uncompressed length, big-endian.
  EXPECT_BYTES(Bytes(packed).first(4), Fx{}.h("00002710"));
  std::vector<std::byte> back;
  ASSERT_EQ(lz4_decompress(packed, back), CodecError::ok);
  EXPECT_EQ(back, plain);
  packed.clear();
  lz4_compress({}, packed);
  ASSERT_EQ(lz4_decompress(packed, back), CodecError::ok);
  EXPECT_TRUE(back.empty());
}

TEST(CqlLz4, CorruptBodies) {
  std::vector<std::byte> plain(1000, std::byte{'a'});
  std::vector<std::byte> packed;
  lz4_compress(plain, packed);
  std::vector<std::byte> out;
  // Announced length bigger than what the block yields.
  auto wrong = packed;
  wrong[3] = std::byte{0xff};
  EXPECT_EQ(lz4_decompress(wrong, out), CodecError::bad_compression);
  // A cut block.
  EXPECT_EQ(lz4_decompress(Bytes(packed).first(packed.size() - 2), out),
            CodecError::bad_compression);
  EXPECT_EQ(lz4_decompress(Fx{}.h("000010 "), out), CodecError::truncated);
  EXPECT_EQ(lz4_decompress(Fx{}.h("80000000 00"), out), CodecError::bad_length);
  EXPECT_EQ(lz4_decompress(Fx{}.h("00010000 00"), out, 1024), CodecError::too_large);
  EXPECT_EQ(lz4_decompress(Fx{}.h("00000010 ffffffffffff"), out), CodecError::bad_compression);
}

} // namespace
} // namespace ta::cql
