// `top`: the live view (README "top"). Runs the live pipeline as `run` does
// (same capture, same engine; store `none` by default) and, once a second
// after each flush, feeds the analyzer's per-endpoint counters to the view's
// models (ta_top): one per grouping (host, registrable domain, program), all
// fed every time so that `g` switches with the rates already there. The
// programs come from each sealed batch's flow records (a batch observer). On
// a terminal: a full-screen ncurses view with keys; on a pipe or with
// --once: plain tables (no escape codes), like `top -b`.
#include "ta/top/top.hpp"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <sys/ioctl.h>

#include "ta/domain/registrable.hpp"
#include "ta/ingest/sources.hpp"
#include "ta/store/store.hpp"
#include "ta/top/programs.hpp"

#include "commands.hpp"
#include "pipeline.hpp"

// Last: curses.h defines macros (timeout, erase, ...) that clash with C++ names.
#include <curses.h>

namespace ta::app {
namespace {

using Clock = std::chrono::steady_clock;

capture::LiveCapture *g_top_live = nullptr;
void wake_top(int /*sig*/) {
  if (g_top_live != nullptr) {
    g_top_live->wake();
  }
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr std::array<top::GroupBy, 3> kGroupings = {top::GroupBy::host, top::GroupBy::domain,
                                                    top::GroupBy::process};

// `flows`: whether the analyzer counts flows (flow naming); else shown "-".
top::Sample sample_of(const std::string &name, const attribute::EndpointRun &r, bool flows) {
  top::Sample s;
  s.name = name;
  s.totals = {r.packets, r.bytes, r.received_packets, r.received_bytes};
  s.flows = flows ? static_cast<std::int64_t>(r.flows) : -1;
  s.sources = r.sources;
  return s;
}

// The view's three models (one per grouping) and where programs come from.
struct Views {
  std::array<top::Model, kGroupings.size()> models;
  top::ProgramTracker programs;
  std::size_t shown = 0; // index into kGroupings

  [[nodiscard]] top::Model &model() { return models.at(shown); }
  [[nodiscard]] top::GroupBy grouping() const { return kGroupings.at(shown); }

  void feed(const attribute::Analyzer &analyzer, double now) {
    const bool flows = analyzer.naming() == attribute::Naming::flow;
    std::vector<top::Sample> samples;
    samples.reserve(analyzer.run_summary().size());
    for (const auto &[name, r] : analyzer.run_summary()) {
      top::Sample s = sample_of(name, r, flows);
      programs.programs_of(name, s);
      samples.push_back(std::move(s));
    }
    const top::Sample rest = sample_of({}, analyzer.run_summary_rest(), flows);
    models[0].update(now, samples, rest);
    models[1].update(now, samples, rest);
    models[2].update(now, programs.samples(), programs.rest());
  }
};

// The models, each keyed its own way; fails only when libpsl has no list.
Result<std::unique_ptr<Views>> make_views(std::size_t max_rows, top::GroupBy first) {
  auto grouper = domain::Grouper::create();
  if (!grouper) {
    return grouper.status();
  }
  std::vector<std::string> source_names;
  for (std::size_t i = 0; i < static_cast<std::size_t>(store::NameSource::count_); ++i) {
    source_names.emplace_back(store::name_source_name(static_cast<store::NameSource>(i)));
  }
  auto shared = std::make_shared<domain::Grouper>(std::move(*grouper));
  const auto options = [&](top::GroupBy g) {
    top::Options o;
    o.max_rows = max_rows;
    o.source_names = source_names;
    if (g == top::GroupBy::domain) {
      o.group_key = [shared](std::string_view name) { return shared->group(name).key; };
    }
    return o;
  };
  auto views = std::unique_ptr<Views>(
      new Views{{top::Model(options(kGroupings[0])), top::Model(options(kGroupings[1])),
                 top::Model(options(kGroupings[2]))},
                top::ProgramTracker{},
                0});
  for (std::size_t i = 0; i < kGroupings.size(); ++i) {
    if (kGroupings.at(i) == first) {
      views->shown = i;
    }
  }
  return views;
}

// Interfaces and their drops, DNS answers learnt, the share of counted
// packets per name source, encrypted-DNS clients, and the grouping.
std::string header_line(ingest::LiveSource &source, const attribute::Analyzer &analyzer,
                        double seconds, top::GroupBy grouping) {
  std::string out = fmt::format("traffic-analyzer top: {:.0f} s | by {} |", seconds,
                                top::group_by_name(grouping));
  for (const auto &s : source.capture().stats()) {
    out += fmt::format(" {} {} pkts, {} dropped", s.name, s.received, s.dropped + s.if_dropped);
  }
  const attribute::Stats &st = analyzer.stats();
  out += fmt::format(" | dns answers learnt {} | named:", st.dns_answers_learnt);
  std::uint64_t all = 0;
  for (const std::uint64_t n : st.names) {
    all += n;
  }
  for (std::size_t i = 0; i < st.names.size(); ++i) {
    const double share =
        all > 0 ? 100.0 * static_cast<double>(st.names[i]) / static_cast<double>(all) : 0.0;
    out += fmt::format(" {} {:.0f}%", store::name_source_name(static_cast<store::NameSource>(i)),
                       share);
  }
  if (analyzer.naming() == attribute::Naming::flow) {
    out += fmt::format(" | encrypted dns clients {}", analyzer.encrypted_dns_clients());
  }
  return out;
}

// The full-screen view: ncurses on the process's terminal, given back
// (alternate screen left, modes restored) when this goes out of scope.
class Screen {
public:
  Screen() {
    initscr();
    cbreak();
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);
  }
  ~Screen() { endwin(); }
  Screen(const Screen &) = delete;
  Screen &operator=(const Screen &) = delete;

  // The terminal's size as the kernel has it now: a resize whose SIGWINCH
  // came before ncurses listened (or a stale LINES/COLUMNS in the
  // environment) is caught up with here, once per tick.
  static void follow_size(bool &dirty) {
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0 &&
        (ws.ws_row != LINES || ws.ws_col != COLS)) {
      resizeterm(ws.ws_row, ws.ws_col);
      dirty = true;
    }
  }

  // Keys: see the README ("top") and the help line drawn below.
  void handle_keys(top::ViewOptions &view, Views &views, bool &paused, bool &dirty) {
    follow_size(dirty);
    for (int ch = getch(); ch != ERR; ch = getch()) {
      dirty = true;
      if (editing_) {
        if (ch == '\n' || ch == KEY_ENTER) {
          view.filter = edit_;
          editing_ = false;
        } else if (ch == 27) { // Esc: keep the filter as it was
          editing_ = false;
        } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
          if (!edit_.empty()) {
            edit_.pop_back();
          }
        } else if (ch >= 32 && ch < 127 && edit_.size() < 200) {
          edit_ += static_cast<char>(ch);
        }
        continue;
      }
      switch (ch) {
      case 'q':
      case 'Q':
        g_stop.store(true);
        break;
      case 'p':
        paused = !paused;
        break;
      case '/':
        editing_ = true;
        edit_ = view.filter;
        break;
      case 'g': // host -> domain -> process -> host
        views.shown = (views.shown + 1) % kGroupings.size();
        break;
      case 'n':
        sort_by(view, top::Column::name);
        break;
      case 's':
        sort_by(view, top::Column::sent_rate);
        break;
      case 'r':
        sort_by(view, top::Column::received_rate);
        break;
      case 'k':
        sort_by(view, top::Column::packet_rate);
        break;
      case 'S':
        sort_by(view, top::Column::sent_total);
        break;
      case 'R':
        sort_by(view, top::Column::received_total);
        break;
      case 'f':
        sort_by(view, top::Column::flows);
        break;
      case 'w':
        view.sort_window = (view.sort_window + 1) % top::kWindowCount;
        break;
      case 'a':
        view.ascending = !view.ascending;
        break;
      default: // KEY_RESIZE among others: redrawn at the new size
        break;
      }
    }
  }

  // The rows to show: the model's now, or those frozen by `p`.
  [[nodiscard]] int row_room() const { return LINES > 4 ? LINES - 4 : 1; }

  void draw(const std::string &header, const std::vector<top::Row> &rows,
            const top::ViewOptions &view, top::GroupBy grouping, bool paused) {
    const auto width = static_cast<std::size_t>(COLS > 0 ? COLS : 80);
    const int height = LINES > 0 ? LINES : 24;
    erase();
    std::string status = fmt::format(
        "sort {} over {} s{} | filter '{}' | group {}{} | keys: n s r k S R f sort, w window, "
        "a order, / filter, g group, p pause, q quit",
        top::column_name(view.sort), top::kWindows.at(view.sort_window),
        view.ascending ? " (ascending)" : "", view.filter, top::group_by_name(grouping),
        paused ? " | PAUSED" : "");
    if (editing_) {
      status = "filter: " + edit_ + "_  (Enter apply, Esc cancel)";
    } else if (!message_.empty()) {
      status = message_;
      message_.clear();
    }
    mvaddnstr(0, 0, header.c_str(), static_cast<int>(width));
    mvaddnstr(1, 0, status.c_str(), static_cast<int>(width));
    const std::string table = top::render_table(rows, width);
    int y = 3;
    std::size_t at = 0;
    while (at < table.size() && y < height) {
      const std::size_t nl = table.find('\n', at);
      const std::string line = table.substr(at, nl - at);
      if (y == 3) {
        attron(A_REVERSE);
        mvaddnstr(y, 0, line.c_str(), static_cast<int>(width));
        attroff(A_REVERSE);
      } else {
        mvaddnstr(y, 0, line.c_str(), static_cast<int>(width));
      }
      ++y;
      at = nl == std::string::npos ? table.size() : nl + 1;
    }
    refresh();
  }

private:
  static void sort_by(top::ViewOptions &view, top::Column c) {
    if (view.sort == c) {
      view.ascending = !view.ascending;
    } else {
      view.sort = c;
      view.ascending = false;
    }
  }
  bool editing_ = false;
  std::string edit_;
  std::string message_;
};

} // namespace

void add_top(CLI::App &app, TopArgs &args) {
  auto *cmd = app.add_subcommand(
      "top", "Live view: who this machine talks to now, rates and totals per endpoint");
  cmd->add_option("-i,--interface", args.interfaces,
                  "Interface to capture on (repeatable; `any` = all, with packet direction)");
  cmd->add_option("--filter", args.filter, "BPF capture filter (default: --ports and DNS)");
  cmd->add_option("--snaplen", args.snaplen, "Bytes captured per packet")
      ->capture_default_str()
      ->check(CLI::Range(64U, 262144U));
  cmd->add_option("--buffer-mib", args.buffer_mib, "Kernel capture buffer per interface, MiB")
      ->capture_default_str()
      ->check(CLI::Range(1U, 4096U));
  cmd->add_option("--group-by", args.group_by,
                  "Rows per host, per registrable domain (eTLD+1) or per program (command name)")
      ->capture_default_str()
      ->check(CLI::IsMember({"host", "domain", "process"}));
  cmd->add_option("--interval", args.interval_seconds, "Seconds between tables without a terminal")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_flag("--once", args.once, "Print one plain table after --duration (default 5 s)");
  cmd->add_option("--duration", args.duration_seconds, "Stop after this many seconds")
      ->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--max-rows", args.max_rows, "Most rows kept; the rest are added up as (other)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20U));
  args.pipeline.store = "none";
  add_pipeline_options(cmd, args.pipeline, false);
  add_process_option(cmd, args.pipeline);
}

int run_top(const TopArgs &args) {
  top::GroupBy first = top::GroupBy::host;
  for (const top::GroupBy g : kGroupings) {
    if (top::group_by_name(g) == args.group_by) {
      first = g;
    }
  }
  auto made = make_views(args.max_rows, first);
  if (!made) {
    print_error(made.status());
    return kExitFailure;
  }
  Views &views = **made;
  auto live = open_live(args.interfaces, args.filter, args.pipeline.ports, args.snaplen,
                        args.buffer_mib, false);
  if (!live) {
    return kExitBadInput;
  }
  for (const auto &w : live->warnings()) {
    std::fprintf(stderr, "traffic-analyzer: warning: %s\n", w.c_str());
  }
  // On the analyzer's thread, like the feed below: no lock needed.
  auto engine =
      open_engine(args.pipeline, false, [&views](store::Batch &b) { views.programs.on_batch(b); });
  if (!engine) {
    return kExitBadInput;
  }
  ingest::LiveSource source(std::move(live));
  if (Status st = source.begin(*engine); !st) {
    print_error(st);
    return kExitFailure;
  }
  g_top_live = &source.capture();
  // Before ncurses starts: it then leaves SIGINT and SIGTERM to us, so both
  // end the loop and the screen is given back by Screen's destructor.
  install_stop_handlers(wake_top);

  const bool full_screen = !args.once && isatty(STDOUT_FILENO) != 0 && isatty(STDIN_FILENO) != 0;
  if (!full_screen) {
    std::fprintf(stderr, "traffic-analyzer: top: capturing on %s\n", source.name().c_str());
  }
  const auto t0 = Clock::now();
  for (top::Model &m : views.models) {
    m.start(0);
  }
  top::ViewOptions view;
  bool paused = false;
  bool dirty = true;

  ingest::RunOptions run;
  run.flush_every = std::chrono::seconds(1);
  run.max_wait = std::chrono::milliseconds(100);
  const double duration = args.once && args.duration_seconds <= 0 ? 5.0 : args.duration_seconds;
  if (duration > 0) {
    run.deadline =
        t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
  }
  run.after_flush = [&] {
    views.feed(engine->analyzer(), seconds_since(t0));
    dirty = true;
  };
  const auto print_table = [&] {
    std::string out =
        header_line(source, engine->analyzer(), seconds_since(t0), views.grouping()) + "\n";
    out += top::render_table(views.model().rows(view));
    out += "\n";
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
  };

  ingest::RunResult result;
  if (full_screen) {
    Screen screen;
    run.tick_every = std::chrono::milliseconds(100);
    // Paused, the header and rows stay as they were (the model is still
    // fed); the status line follows the keys.
    std::string header;
    std::vector<top::Row> rows;
    run.tick = [&] {
      screen.handle_keys(view, views, paused, dirty);
      if (!dirty) {
        return;
      }
      if (!paused) {
        top::ViewOptions shown = view;
        shown.limit = static_cast<std::size_t>(screen.row_room());
        header = header_line(source, engine->analyzer(), seconds_since(t0), views.grouping());
        rows = views.model().rows(shown);
      }
      screen.draw(header, rows, view, views.grouping(), paused);
      dirty = false;
    };
    result = ingest::run(*engine, source, stop_token(), run);
  } else {
    if (!args.once) {
      run.tick_every = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(args.interval_seconds));
      run.tick = print_table;
    }
    result = ingest::run(*engine, source, stop_token(), run);
    // What the last seal added (the run's end seals the open batch).
    views.feed(engine->analyzer(), seconds_since(t0));
    if (args.once) {
      print_table();
    }
  }
  g_top_live = nullptr;
  return print_run_failures(result) ? kExitFailure : kExitOk;
}

} // namespace ta::app
