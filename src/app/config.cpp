#include "config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <sys/stat.h>
#include <toml++/toml.h>

namespace ta::app {
namespace {

// The items were read and checked before CLI11 parses; CLI11 only applies
// them (to options the command line left empty), so the stream it opens is
// never read.
class CheckedConfig final : public CLI::Config {
public:
  explicit CheckedConfig(std::vector<CLI::ConfigItem> checked) : items_(std::move(checked)) {}
  std::string to_config(const CLI::App * /*app*/, bool /*defaults*/, bool /*descriptions*/,
                        std::string /*prefix*/) const override {
    return {};
  }
  std::vector<CLI::ConfigItem> from_config(std::istream & /*input*/) const override {
    return items_;
  }

private:
  std::vector<CLI::ConfigItem> items_;
};

// Reads a whole regular file of at most kMaxConfigBytes; a FIFO, a device
// (/dev/zero), a directory or a larger file is refused without reading it.
std::optional<std::string> read_config_file(const std::string &path, std::string &error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    error = fmt::format("{}: cannot read the config file: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  struct stat st {};
  std::string text;
  if (::fstat(fd, &st) != 0) {
    error = fmt::format("{}: cannot read the config file: {}", path, std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    error = fmt::format("{}: the config file is not a regular file", path);
  } else if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes) {
    error = fmt::format("{}: the config file is larger than {} bytes", path, kMaxConfigBytes);
  } else {
    text.resize(kMaxConfigBytes + 1);
    std::size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        error = fmt::format("{}: cannot read the config file: {}", path, std::strerror(errno));
        break;
      }
      if (n == 0) {
        break;
      }
      got += static_cast<std::size_t>(n);
    }
    if (error.empty() && got > kMaxConfigBytes) { // it grew while we read it
      error = fmt::format("{}: the config file is larger than {} bytes", path, kMaxConfigBytes);
    }
    text.resize(got);
  }
  ::close(fd);
  if (!error.empty()) {
    return std::nullopt;
  }
  return text;
}

// The option a key names, looked up as CLI11 applies config items.
CLI::Option *find_option(CLI::App *mode, const std::string &key) {
  if (mode == nullptr || key.empty() || key.front() == '-') {
    return nullptr;
  }
  CLI::Option *op = mode->get_option_no_throw("--" + key);
  if (op == nullptr && key.size() == 1) {
    op = mode->get_option_no_throw("-" + key);
  }
  if (op == nullptr) {
    op = mode->get_option_no_throw(key);
  }
  if (op != nullptr && !op->get_configurable()) {
    return nullptr;
  }
  return op;
}

// One TOML scalar as CLI11 input text, or an error naming the expected type.
std::optional<std::string> scalar_text(const toml::node &v, const std::string &type, bool flag,
                                       std::string &error) {
  if (flag) {
    if (const auto *b = v.as_boolean()) {
      return b->get() ? "true" : "false";
    }
    error = "expects true or false";
    return std::nullopt;
  }
  const bool is_int = type.rfind("INT", 0) == 0 || type.rfind("UINT", 0) == 0;
  const bool is_float = type.rfind("FLOAT", 0) == 0;
  if (const auto *i = v.as_integer()) {
    if (type.rfind("UINT", 0) == 0 && i->get() < 0) {
      error = "expects a number that is not negative";
      return std::nullopt;
    }
    if (is_int || is_float) {
      return std::to_string(i->get());
    }
  } else if (const auto *f = v.as_floating_point()) {
    if (is_float) {
      return fmt::format("{}", f->get());
    }
  } else if (const auto *s = v.as_string()) {
    if (!is_int && !is_float) {
      return s->get();
    }
  }
  error = is_int ? "expects a whole number" : is_float ? "expects a number" : "expects a string";
  return std::nullopt;
}

// CLI11's validators of `op` (ranges, sets) over one input text.
std::string validate(CLI::Option *op, const std::string &input) {
  for (int i = 0;; ++i) {
    CLI::Validator *v = nullptr;
    try {
      v = op->get_validator(i);
    } catch (const CLI::OptionNotFound &) {
      return {};
    }
    std::string copy = input;
    std::string why = (*v)(copy);
    if (!why.empty()) {
      return why;
    }
  }
}

struct Checker {
  CLI::App &app;
  std::string path;
  std::string error;

  bool fail(const toml::source_region &where, const std::string &key, const std::string &why) {
    error = fmt::format("{}:{}: {}: {}", path, where.begin.line, key, why);
    return false;
  }

  // `key = value` against one mode's option -> a CLI11 item.
  bool item(CLI::Option *op, const std::string &key, const toml::node &v,
            const toml::source_region &where, std::vector<std::string> parents,
            std::vector<CLI::ConfigItem> *out) {
    const bool flag = op->get_expected_min() == 0;
    const bool many = op->get_items_expected_max() > 1;
    const std::string type = op->get_type_name();
    std::vector<std::string> inputs;
    std::string why;
    if (const auto *arr = v.as_array()) {
      if (!many) {
        return fail(where, key, "takes one value, not a list");
      }
      for (const toml::node &e : *arr) {
        auto text = scalar_text(e, type, flag, why);
        if (!text) {
          return fail(where, key, why);
        }
        inputs.push_back(std::move(*text));
      }
    } else if (v.is_table()) {
      return fail(where, key, "is an option, not a section");
    } else {
      auto text = scalar_text(v, type, flag, why);
      if (!text) {
        return fail(where, key, why);
      }
      inputs.push_back(std::move(*text));
    }
    if (!flag) {
      for (const std::string &input : inputs) {
        if (std::string bad = validate(op, input); !bad.empty()) {
          return fail(where, key, bad);
        }
      }
    }
    if (out != nullptr) {
      CLI::ConfigItem ci;
      ci.parents = std::move(parents);
      ci.name = key;
      ci.inputs = std::move(inputs);
      out->push_back(std::move(ci));
    }
    return true;
  }

  // The modes a section or the top level may configure: each subcommand, and
  // each query subcommand under [query].
  static std::vector<std::pair<std::vector<std::string>, CLI::App *>> modes_of(CLI::App &root) {
    std::vector<std::pair<std::vector<std::string>, CLI::App *>> out;
    for (CLI::App *sub : root.get_subcommands({})) {
      if (sub->get_subcommands({}).empty()) {
        out.push_back({{sub->get_name()}, sub});
      }
      for (CLI::App *leaf : sub->get_subcommands({})) {
        out.push_back({{sub->get_name(), leaf->get_name()}, leaf});
      }
    }
    return out;
  }

  // Keys of the top level (section empty) or of one section: every key must
  // be an option of at least one mode in scope; the running mode gets items.
  bool keys(const toml::table &table, const std::string &section,
            const std::vector<std::string> &running, std::vector<CLI::ConfigItem> &out) {
    const auto modes = modes_of(app);
    for (auto &&[k, v] : table) {
      const std::string key(k.str());
      if (section.empty() && v.is_table()) {
        continue; // a section, read by the caller
      }
      std::string shown = section;
      if (!shown.empty()) {
        shown += '.';
      }
      shown += key;
      CLI::Option *mine = nullptr;
      CLI::Option *any = nullptr;
      for (const auto &[mode_path, mode] : modes) {
        if (!section.empty() && mode_path.front() != section) {
          continue;
        }
        CLI::Option *op = find_option(mode, key);
        if (op == nullptr) {
          continue;
        }
        if (any == nullptr) {
          any = op;
        }
        if (mode_path == running) {
          mine = op;
        }
      }
      if (any == nullptr) {
        return fail(k.source(), shown,
                    section.empty() ? "unknown key (no mode has this option)"
                                    : "unknown key (" + section + " has no such option)");
      }
      CLI::Option *op = mine != nullptr ? mine : any;
      if (!item(op, shown, v, k.source(), running, mine != nullptr ? &out : nullptr)) {
        return false;
      }
      if (mine != nullptr) {
        out.back().name = key;
      }
    }
    return true;
  }
};

} // namespace

ConfigRequest find_config(int argc, char **argv) {
  ConfigRequest r;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      break;
    }
    if (r.mode.empty() && arg == "--config") {
      if (i + 1 < argc) {
        r.given = true;
        r.path = argv[++i];
      }
      continue;
    }
    if (r.mode.empty() && arg.rfind("--config=", 0) == 0) {
      r.given = true;
      r.path = arg.substr(9);
      continue;
    }
    if (!arg.empty() && arg.front() == '-') {
      if (r.mode.empty()) {
        continue;
      }
      break; // the mode's own options: only `query` has a second name
    }
    r.mode.push_back(arg);
    if (r.mode.size() == 2 || r.mode.front() != "query") {
      break;
    }
  }
  return r;
}

std::string load_config(CLI::App &app, const ConfigRequest &request) {
  if (!request.given) {
    return {};
  }
  if (request.path.empty()) {
    return "--config: empty file name";
  }
  std::string error;
  const auto text = read_config_file(request.path, error);
  if (!text) {
    return error;
  }
  toml::table root;
  try {
    root = toml::parse(*text, request.path);
  } catch (const toml::parse_error &e) {
    return fmt::format("{}:{}: {}", request.path, e.source().begin.line, e.description());
  }
  Checker check{app, request.path, {}};
  // Top-level keys first, then the running mode's section: CLI11 keeps the
  // last value given for an option, so the section overrides the top level.
  std::vector<CLI::ConfigItem> top;
  std::vector<CLI::ConfigItem> section_items;
  if (!check.keys(root, "", request.mode, top)) {
    return check.error;
  }
  for (auto &&[k, v] : root) {
    const auto *table = v.as_table();
    if (table == nullptr) {
      continue;
    }
    const std::string name(k.str());
    CLI::App *mode = nullptr;
    try {
      mode = app.get_subcommand(name);
    } catch (const CLI::OptionNotFound &) {
      mode = nullptr;
    }
    if (mode == nullptr) {
      check.fail(k.source(), "[" + name + "]", "unknown section (sections are mode names)");
      return check.error;
    }
    std::vector<CLI::ConfigItem> items;
    if (!check.keys(*table, name, request.mode, items)) {
      return check.error;
    }
    const bool running = !request.mode.empty() && request.mode.front() == name;
    if (running) {
      section_items = std::move(items);
    }
  }
  // A section's key replaces the same top-level key.
  std::vector<CLI::ConfigItem> items;
  for (auto &t : top) {
    bool replaced = false;
    for (const auto &s : section_items) {
      replaced = replaced || s.name == t.name;
    }
    if (!replaced) {
      items.push_back(std::move(t));
    }
  }
  for (auto &s : section_items) {
    items.push_back(std::move(s));
  }
  app.config_formatter(std::make_shared<CheckedConfig>(std::move(items)));
  return {};
}

} // namespace ta::app
