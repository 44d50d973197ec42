// `watch DIR`: ingest rotated captures as they are closed (the original
// loader: inotifywait + tshark + cqlsh, restart-safe).
//
// Which files: regular files whose names neither start with '.' nor end in
// .tmp or .part (writers' temporary names), announced by inotify CLOSE_WRITE
// (tcpdump -G closing a file) or MOVED_TO (a writer renaming into place),
// plus the files already there at start, in name order. A file modified less
// than --settle seconds ago at start may still be being written: it waits for
// its close event, or until it has been quiet that long.
//
// Restart safety is the store's ledger: each capture resumes past the frames
// already stored, so a restart (even after kill -9 mid-file) neither loses
// nor double-counts a packet. --delete-after removes a file only after its
// records are durable (the writer drained without error).
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <set>

#include <sys/inotify.h>
#include <sys/stat.h>

#include "commands.hpp"
#include "pipeline.hpp"

namespace ta::app {
namespace {

bool eligible(const std::string &name) {
  auto ends_with = [&name](const char *s) {
    const std::size_t n = std::strlen(s);
    return name.size() >= n && name.compare(name.size() - n, n, s) == 0;
  };
  return !name.empty() && name[0] != '.' && !ends_with(".tmp") && !ends_with(".part");
}

// Seconds since the file was last modified; -1 if it is not a regular file.
double quiet_for(const std::string &path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return -1;
  }
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec - st.st_mtim.tv_sec) +
         static_cast<double>(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
}

} // namespace

void add_watch(CLI::App &app, WatchArgs &args) {
  auto *cmd = app.add_subcommand(
      "watch", "Ingest rotated capture files from a directory as they are closed");
  cmd->add_option("DIR", args.directory, "Directory to watch")->required();
  cmd->add_flag("--delete-after", args.delete_after,
                "Remove each file once its records are durably stored");
  cmd->add_flag("--once", args.once, "Ingest the files there now, then exit");
  cmd->add_option("--settle", args.settle_seconds,
                  "At start, a file modified more recently than this (seconds) waits for its "
                  "close event")
      ->capture_default_str();
  add_pipeline_options(cmd, args.pipeline, true);
}

int run_watch(const WatchArgs &args) {
  std::error_code ec;
  if (!std::filesystem::is_directory(args.directory, ec)) {
    std::fprintf(stderr,
                 "traffic-analyzer: %s: no such directory (create it, or point `capture --out` "
                 "at an existing one)\n",
                 args.directory.c_str());
    return kExitBadInput;
  }
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  // The watch goes in before the directory is listed, so no file can be
  // closed in between unseen.
  if (fd < 0 || inotify_add_watch(fd, args.directory.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    std::fprintf(stderr, "traffic-analyzer: %s: cannot watch (%s)\n", args.directory.c_str(),
                 std::strerror(errno));
    return kExitBadInput;
  }
  auto pipeline = Pipeline::open(args.pipeline, !args.once);
  if (!pipeline) {
    close(fd);
    return kExitBadInput;
  }
  install_stop_handlers();

  std::deque<std::string> ready;  // names to ingest, in order
  std::set<std::string> deferred; // present at start, maybe still being written
  std::vector<std::string> existing;
  for (const auto &entry : std::filesystem::directory_iterator(args.directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (eligible(name) && entry.is_regular_file(ec)) {
      existing.push_back(name);
    }
  }
  std::sort(existing.begin(), existing.end());
  for (const auto &name : existing) {
    const double q = quiet_for(args.directory + "/" + name);
    if (q >= 0 && q < args.settle_seconds && !args.once) {
      deferred.insert(name);
    } else {
      ready.push_back(name);
    }
  }

  int exit_code = kExitOk;
  auto ingest = [&](const std::string &name) {
    const std::string path = args.directory + "/" + name;
    if (quiet_for(path) < 0) {
      return; // gone (deleted, or renamed away) before we got to it
    }
    const auto before = pipeline->analyzer().stats().outcome(attribute::Outcome::counted);
    std::string message;
    const auto status = pipeline->ingest_file(path, false, message);
    const auto counted = pipeline->analyzer().stats().outcome(attribute::Outcome::counted) - before;
    if (auto *m = pipeline->metrics()) {
      m->on_file_ingested();
    }
    switch (status) {
    case Pipeline::FileStatus::ok:
    case Pipeline::FileStatus::empty:
      std::fprintf(stderr, "traffic-analyzer: ingested %s (%llu new records)\n", path.c_str(),
                   static_cast<unsigned long long>(counted));
      if (args.delete_after) {
        if (!pipeline->drain()) {
          return; // not durable: keep the file
        }
        if (unlink(path.c_str()) != 0) {
          std::fprintf(stderr, "traffic-analyzer: %s: cannot delete (%s)\n", path.c_str(),
                       std::strerror(errno));
        }
      }
      break;
    case Pipeline::FileStatus::not_capture:
    case Pipeline::FileStatus::damaged:
      // Everything readable was ingested; the file stays for a person to see.
      std::fprintf(stderr, "traffic-analyzer: %s (%llu records ingested before it)\n",
                   message.c_str(), static_cast<unsigned long long>(counted));
      break;
    case Pipeline::FileStatus::stopped:
      break;
    case Pipeline::FileStatus::store_failed:
      std::fprintf(stderr, "traffic-analyzer: %s\n", message.c_str());
      exit_code = kExitFailure;
      g_stop.store(true);
      break;
    }
  };

  auto last_publish = std::chrono::steady_clock::now();
  while (!g_stop.load()) {
    while (!ready.empty() && !g_stop.load()) {
      const std::string name = ready.front();
      ready.pop_front();
      deferred.erase(name);
      ingest(name);
    }
    if (args.once || g_stop.load()) {
      break;
    }
    pollfd pfd{fd, POLLIN, 0};
    (void)poll(&pfd, 1, 200);
    alignas(inotify_event) char buf[16384];
    ssize_t n = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
      for (char *p = buf; p < buf + n;) {
        const auto *ev = reinterpret_cast<const inotify_event *>(p);
        if (ev->len > 0) {
          const std::string name(ev->name);
          if (eligible(name) && std::find(ready.begin(), ready.end(), name) == ready.end()) {
            ready.push_back(name);
          }
        }
        if ((ev->mask & IN_Q_OVERFLOW) != 0) {
          // Events were lost: fall back to listing the directory; the
          // ledger makes re-reading anything already ingested harmless.
          for (const auto &entry : std::filesystem::directory_iterator(args.directory, ec)) {
            const std::string name = entry.path().filename().string();
            if (eligible(name)) {
              ready.push_back(name);
            }
          }
        }
        p += sizeof(inotify_event) + ev->len;
      }
    }
    for (auto it = deferred.begin(); it != deferred.end();) {
      if (quiet_for(args.directory + "/" + *it) >= args.settle_seconds) {
        ready.push_back(*it);
        it = deferred.erase(it);
      } else {
        ++it;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_publish > std::chrono::seconds(1)) {
      last_publish = now;
      pipeline->publish();
    }
  }
  close(fd);
  if (!pipeline->drain()) {
    return kExitFailure;
  }
  return exit_code;
}

} // namespace ta::app
