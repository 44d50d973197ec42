#include "directory_watch.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <vector>

#include <sys/inotify.h>
#include <sys/stat.h>

namespace ta::ingest {

bool DirectoryWatch::eligible(const std::string &name) {
  auto ends_with = [&name](const char *s) {
    const std::size_t n = std::strlen(s);
    return name.size() >= n && name.compare(name.size() - n, n, s) == 0;
  };
  return !name.empty() && name[0] != '.' && !ends_with(".tmp") && !ends_with(".part");
}

double DirectoryWatch::quiet_for(const std::string &path) {
  struct stat st {};
  // lstat: a link is not waited for; the reader decides about it.
  if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return -1;
  }
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec - st.st_mtim.tv_sec) +
         static_cast<double>(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
}

Result<std::unique_ptr<DirectoryWatch>>
DirectoryWatch::open(const std::string &directory, double settle_seconds, bool defer_recent) {
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    return Status::not_found(directory + ": no such directory");
  }
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  // The watch goes in before the directory is listed, so no file can be
  // closed in between unseen.
  if (fd < 0 || inotify_add_watch(fd, directory.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    Status st = Status::io_error(directory + ": cannot watch (" + std::strerror(errno) + ")");
    if (fd >= 0) {
      close(fd);
    }
    return st;
  }
  std::unique_ptr<DirectoryWatch> w(new DirectoryWatch(directory, settle_seconds, fd));
  std::vector<std::string> existing;
  for (const auto &entry : std::filesystem::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    // Whatever is not a directory is listed, links and FIFOs included, so
    // that the reader counts and reports what it skips. (The entry's own
    // type: directory_entry::is_regular_file would follow a link.)
    if (eligible(name) &&
        entry.symlink_status(ec).type() != std::filesystem::file_type::directory) {
      existing.push_back(name);
    }
  }
  std::sort(existing.begin(), existing.end());
  for (const auto &name : existing) {
    std::string path = directory;
    path += '/';
    path += name;
    const double q = quiet_for(path);
    if (q >= 0 && q < settle_seconds && defer_recent) {
      w->deferred_.insert(name);
    } else {
      w->ready_.push_back(name);
    }
  }
  return w;
}

DirectoryWatch::DirectoryWatch(std::string directory, double settle_seconds, int fd)
    : directory_(std::move(directory)), settle_seconds_(settle_seconds), fd_(fd) {}

DirectoryWatch::~DirectoryWatch() {
  close(fd_);
}

std::optional<std::string> DirectoryWatch::next_ready() {
  if (ready_.empty()) {
    return std::nullopt;
  }
  std::string name = std::move(ready_.front());
  ready_.pop_front();
  deferred_.erase(name);
  return name;
}

void DirectoryWatch::on_event(std::uint32_t mask, std::string_view name_view) {
  // A directory moved in is not a capture (nor counted as skipped).
  if (!name_view.empty() && (mask & IN_ISDIR) == 0) {
    const std::string name(name_view);
    if (eligible(name) && std::find(ready_.begin(), ready_.end(), name) == ready_.end()) {
      ready_.push_back(name);
    }
  }
  if ((mask & IN_Q_OVERFLOW) != 0) {
    rescan();
  }
}

void DirectoryWatch::rescan() {
  // Events were lost: fall back to listing the directory; the ledger makes
  // re-reading anything already ingested harmless.
  std::error_code ec;
  for (const auto &entry : std::filesystem::directory_iterator(directory_, ec)) {
    const std::string name = entry.path().filename().string();
    if (eligible(name) &&
        entry.symlink_status(ec).type() != std::filesystem::file_type::directory) {
      ready_.push_back(name);
    }
  }
}

void DirectoryWatch::wait(int timeout_ms) {
  pollfd pfd{fd_, POLLIN, 0};
  (void)poll(&pfd, 1, std::max(0, timeout_ms));
  alignas(inotify_event) char buf[16384];
  ssize_t n = 0;
  while ((n = read(fd_, buf, sizeof buf)) > 0) {
    for (char *p = buf; p < buf + n;) {
      const auto *ev = reinterpret_cast<const inotify_event *>(p);
      on_event(ev->mask, ev->len > 0 ? std::string_view(ev->name) : std::string_view());
      p += sizeof(inotify_event) + ev->len;
    }
  }
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    if (quiet_for(directory_ + "/" + *it) >= settle_seconds_) {
      ready_.push_back(*it);
      it = deferred_.erase(it);
    } else {
      ++it;
    }
  }
}

} // namespace ta::ingest
