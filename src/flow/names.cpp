// Stable snake_case names of the flow table's closed enums (metric labels):
// append only, never rename.
#include "ta/flow/flow.hpp"

namespace ta::flow {

std::string_view flow_end_name(FlowEnd e) noexcept {
  switch (e) {
  case FlowEnd::fin:
    return "fin";
  case FlowEnd::rst:
    return "rst";
  case FlowEnd::idle:
    return "idle";
  case FlowEnd::evicted:
    return "evicted";
  case FlowEnd::count_:
    break;
  }
  return "unknown";
}

std::string_view decide_reason_name(DecideReason r) noexcept {
  switch (r) {
  case DecideReason::parsers:
    return "parsers";
  case DecideReason::wait_bound:
    return "wait_bound";
  case DecideReason::held_bound:
    return "held_bound";
  case DecideReason::flow_end:
    return "flow_end";
  case DecideReason::evicted:
    return "evicted";
  case DecideReason::end_of_input:
    return "end_of_input";
  case DecideReason::count_:
    break;
  }
  return "unknown";
}

std::string_view naming_outcome_name(NamingOutcome o) noexcept {
  switch (o) {
  case NamingOutcome::tls_sni:
    return "tls_sni";
  case NamingOutcome::tls_no_sni:
    return "tls_no_sni";
  case NamingOutcome::tls_not_client_hello:
    return "tls_not_client_hello";
  case NamingOutcome::tls_empty_name:
    return "tls_empty_name";
  case NamingOutcome::tls_too_large:
    return "tls_too_large";
  case NamingOutcome::tls_truncated:
    return "tls_truncated";
  case NamingOutcome::tls_bad_length:
    return "tls_bad_length";
  case NamingOutcome::tls_bad_extension:
    return "tls_bad_extension";
  case NamingOutcome::tls_not_tls:
    return "tls_not_tls";
  case NamingOutcome::tls_bad_record:
    return "tls_bad_record";
  case NamingOutcome::http_host:
    return "http_host";
  case NamingOutcome::http_no_host:
    return "http_no_host";
  case NamingOutcome::http_not_http:
    return "http_not_http";
  case NamingOutcome::http_too_large:
    return "http_too_large";
  case NamingOutcome::http_malformed:
    return "http_malformed";
  case NamingOutcome::quic_sni:
    return "quic_sni";
  case NamingOutcome::quic_no_sni:
    return "quic_no_sni";
  case NamingOutcome::quic_unsupported_version:
    return "quic_unsupported_version";
  case NamingOutcome::quic_not_quic:
    return "quic_not_quic";
  case NamingOutcome::tcp_gap:
    return "tcp_gap";
  case NamingOutcome::tcp_window_dropped:
    return "tcp_window_dropped";
  case NamingOutcome::count_:
    break;
  }
  return "unknown";
}

} // namespace ta::flow
