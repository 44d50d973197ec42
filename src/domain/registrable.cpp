// domain/registrable: see the header for the contract.
#include "ta/domain/registrable.hpp"

#include <libpsl.h>

#include <cstdlib>
#include <unordered_map>
#include <utility>

#include "ta/common/address.hpp"

namespace ta::domain {

namespace {

// RFC 1035 bounds a name's text to 253 bytes without the trailing dot.
constexpr std::size_t max_name = 253;

bool is_ip_literal(std::string_view s) {
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
    s = s.substr(1, s.size() - 2);
  }
  // Only digits, hex, '.', ':' can make an address: skip the parse otherwise.
  for (const char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                    c == '.' || c == ':';
    if (!ok) {
      return false;
    }
  }
  return IpAddress::parse(s).has_value();
}

// Lower case, one trailing dot removed (the rule of ta/common/hostname.hpp).
std::string normalise(std::string_view host) {
  std::string out(host);
  for (char &c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  if (!out.empty() && out.back() == '.') {
    out.pop_back();
  }
  return out;
}

// Letters, digits, '-', '_' in non-empty labels; the caller lowered case.
bool is_dns_name(std::string_view s) {
  if (s.empty() || s.size() > max_name) {
    return false;
  }
  std::size_t label = 0;
  for (const char c : s) {
    if (c == '.') {
      if (label == 0) {
        return false;
      }
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) {
      return false;
    }
    ++label;
  }
  return label != 0;
}

} // namespace

std::string_view kind_name(Kind kind) noexcept {
  switch (kind) {
  case Kind::registrable:
    return "registrable";
  case Kind::unresolved:
    return "unresolved";
  case Kind::ip_literal:
    return "ip_literal";
  case Kind::public_suffix:
    return "public_suffix";
  case Kind::single_label:
    return "single_label";
  case Kind::not_a_name:
    return "not_a_name";
  }
  return "unknown";
}

struct Grouper::Impl {
  const psl_ctx_t *psl = nullptr;
  std::size_t generation_cap = 1;
  std::unordered_map<std::string, Grouped> newest;
  std::unordered_map<std::string, Grouped> older;
  CacheCounters counters;

  Grouped compute(std::string_view host) const {
    if (host.empty()) {
      return {std::string(), Kind::unresolved};
    }
    if (is_ip_literal(host)) {
      return {std::string(host), Kind::ip_literal};
    }
    std::string name = normalise(host);
    if (is_ip_literal(name)) { // "192.0.2.1." once its dot is gone
      return {std::string(host), Kind::ip_literal};
    }
    if (!is_dns_name(name)) {
      if (name.empty()) { // "." stays "." (a key is never empty for a non-empty name)
        return {std::string(host), Kind::not_a_name};
      }
      return {std::move(name), Kind::not_a_name};
    }
    if (name.find('.') == std::string::npos) {
      return {std::move(name), Kind::single_label};
    }
    // NULL when the name is itself a public suffix (or has none below it).
    const char *reg = psl_registrable_domain(psl, name.c_str());
    if (reg == nullptr) {
      return {std::move(name), Kind::public_suffix};
    }
    return {std::string(reg), Kind::registrable};
  }

  void remember(std::string_view host, const Grouped &g) {
    if (newest.size() >= generation_cap) {
      older = std::move(newest);
      newest = {};
      ++counters.generations_dropped;
    }
    newest.emplace(std::string(host), g);
  }
};

Grouper::Grouper(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Grouper::Grouper(Grouper &&) noexcept = default;
Grouper &Grouper::operator=(Grouper &&) noexcept = default;
Grouper::~Grouper() = default;

Result<Grouper> Grouper::create(std::size_t max_cached) {
  const psl_ctx_t *psl = psl_builtin();
  if (psl == nullptr) {
    return Status::unavailable("libpsl has no built-in public suffix list");
  }
  auto impl = std::make_unique<Impl>();
  impl->psl = psl;
  impl->generation_cap = max_cached / 2 == 0 ? 1 : max_cached / 2;
  return Grouper(std::move(impl));
}

Grouped Grouper::group(std::string_view host) {
  Impl &m = *impl_;
  // Longer inputs are never names (253 bytes and one dot at most): not cached.
  if (host.size() > max_name + 1) {
    ++m.counters.misses;
    return m.compute(host);
  }
  const std::string key(host);
  if (auto it = m.newest.find(key); it != m.newest.end()) {
    ++m.counters.hits;
    return it->second;
  }
  if (auto it = m.older.find(key); it != m.older.end()) {
    ++m.counters.hits;
    Grouped g = it->second;
    m.older.erase(it);
    m.remember(host, g); // in steady use: keep it past the next drop
    return g;
  }
  ++m.counters.misses;
  Grouped g = m.compute(host);
  m.remember(host, g);
  return g;
}

CacheCounters Grouper::counters() const noexcept {
  CacheCounters c = impl_->counters;
  c.entries = impl_->newest.size() + impl_->older.size();
  return c;
}

} // namespace ta::domain
