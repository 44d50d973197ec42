#include "ta/capture/rotate.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <string_view>
#include <vector>

#include <pcap/pcap.h>
#include <sys/stat.h>

namespace ta::capture {
namespace {

using Clock = RotatingWriter::Clock;

constexpr std::uint32_t kLinktypeRaw = 101;
// pcap record header on disk: ts_sec, ts_usec, caplen, len (4 bytes each).
constexpr std::uint64_t kRecordHeader = 16;
constexpr std::uint64_t kFileHeader = 24;
// stdio's default buffer is one block (4 KiB): a write(2) every few frames.
constexpr std::size_t kStdioBuffer = 1U << 20U;
constexpr int kMaxSuffix = 9999;

TimeUs to_us(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// What a failed system call on the directory means for the caller.
StatusCode errno_code(int err) {
  switch (err) {
  case EACCES:
  case EPERM:
  case EROFS:
    return StatusCode::permission_denied;
  default:
    return StatusCode::io_error;
  }
}

std::string with_suffix(const std::string &name, int k) {
  if (k == 0) {
    return name;
  }
  const std::string tag = "-" + std::to_string(k);
  constexpr std::string_view kExt = ".pcap";
  if (name.size() > kExt.size() &&
      name.compare(name.size() - kExt.size(), kExt.size(), kExt) == 0) {
    return name.substr(0, name.size() - kExt.size()) + tag + std::string(kExt);
  }
  return name + tag;
}

// Whether `name` exists in the directory (a dangling symlink counts).
bool name_taken(int dir_fd, const std::string &name) {
  struct stat st {};
  return ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

} // namespace

struct RotatingWriter::Impl {
  RotateOptions opt;
  std::string dir; // without a trailing '/'
  int dir_fd = -1;
  pcap_t *dead = nullptr;

  // The file being written.
  pcap_dumper_t *dumper = nullptr;
  std::string base;      // strftime of the start time
  int suffix = 0;        // name == with_suffix(base, suffix)
  std::string name;      // final name, without the directory
  std::string temp_name; // "." + name + ".part"
  std::string temp_path; // dir + "/" + temp_name
  Clock::time_point started{};
  // Earliest plausible "now": the start, or the time of a step back.
  Clock::time_point anchor{};
  Clock::time_point deadline{};
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::uint64_t file_bytes = 0;
  bool write_failed = false;
  Status write_error; // io_error once write_failed
  bool closed = false;

  std::vector<RotatedFile> finished;

  ~Impl() {
    if (dumper != nullptr) {
      pcap_dump_close(dumper);
    }
    if (dead != nullptr) {
      pcap_close(dead);
    }
    if (dir_fd >= 0) {
      ::close(dir_fd);
    }
  }

  [[nodiscard]] std::string path_of(const std::string &n) const { return dir + "/" + n; }

  Status start_file(Clock::time_point now) {
    const auto secs = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
    const auto t = static_cast<std::time_t>(secs);
    std::tm utc{};
    std::array<char, 512> buf{};
    std::size_t len = 0;
    if (::gmtime_r(&t, &utc) != nullptr) {
      len = std::strftime(buf.data(), buf.size(), opt.pattern.c_str(), &utc);
    }
    const std::string stem(buf.data(), len);
    if (stem.empty()) {
      return Status::invalid_argument(dir + ": file name pattern \"" + opt.pattern +
                                      "\" gives no name");
    }

    for (int k = 0; k <= kMaxSuffix; ++k) {
      const std::string candidate = with_suffix(stem, k);
      const std::string temp = "." + candidate + ".part";
      if (name_taken(dir_fd, candidate)) {
        continue;
      }
      // O_EXCL claims the name against another writer in the same directory.
      // 0640 (less where the umask says so): captures hold private traffic.
      const int fd = ::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
      if (fd < 0) {
        if (errno == EEXIST) {
          continue;
        }
        const int err = errno;
        return {errno_code(err),
                path_of(temp) + ": cannot create capture file: " + errno_text(err)};
      }
      FILE *f = ::fdopen(fd, "wb");
      if (f == nullptr) {
        Status st =
            Status::io_error(path_of(temp) + ": cannot open capture file: " + errno_text(errno));
        ::close(fd);
        ::unlinkat(dir_fd, temp.c_str(), 0);
        return st;
      }
      (void)std::setvbuf(f, nullptr, _IOFBF, kStdioBuffer);
      // open() proved the link type is one pcap files can carry, so this can
      // only fail writing the header, and then libpcap has closed `f`.
      dumper = pcap_dump_fopen(dead, f);
      if (dumper == nullptr) {
        Status st =
            Status::io_error(path_of(temp) + ": cannot write capture header: " + pcap_geterr(dead));
        ::unlinkat(dir_fd, temp.c_str(), 0);
        return st;
      }
      base = stem;
      suffix = k;
      name = candidate;
      temp_name = temp;
      temp_path = path_of(temp);
      started = now;
      anchor = now;
      frames = 0;
      bytes = 0;
      file_bytes = kFileHeader;
      write_failed = false;
      write_error = Status();
      return {};
    }
    return Status::failure(path_of(stem) + ": name and " + std::to_string(kMaxSuffix) +
                           " numbered variants all taken");
  }

  // Flush, fsync, close, rename to the final name, fsync the directory.
  // The file gets its final name even after a write error: what reached it
  // is readable, and nothing is left behind as ".part".
  Status finish_file(Clock::time_point now) {
    if (dumper == nullptr) {
      return {};
    }
    // The first problem's code; every problem's message, "; "-joined.
    StatusCode code = StatusCode::ok;
    std::string problem;
    auto add = [&code, &problem](StatusCode c, const std::string &m) {
      if (code == StatusCode::ok) {
        code = c;
      }
      problem += (problem.empty() ? "" : "; ") + m;
    };
    FILE *f = pcap_dump_file(dumper);
    if (std::fflush(f) != 0 || std::ferror(f) != 0) {
      add(StatusCode::io_error, write_failed ? write_error.message()
                                             : temp_path + ": write failed: " + errno_text(errno));
    } else if (::fsync(::fileno(f)) != 0) {
      add(StatusCode::io_error, temp_path + ": fsync failed: " + errno_text(errno));
    } else if (write_failed) {
      add(StatusCode::io_error, write_error.message());
    }
    pcap_dump_close(dumper); // fclose: nothing left to write after fflush
    dumper = nullptr;

    std::string final_name;
    bool renamed = false;
    int err = 0;
    // Someone may have taken the name since the file started: never
    // overwrite, take the next number instead.
    for (int k = suffix; k <= kMaxSuffix; ++k) {
      final_name = with_suffix(base, k);
      if (::renameat2(dir_fd, temp_name.c_str(), dir_fd, final_name.c_str(), RENAME_NOREPLACE) ==
          0) {
        renamed = true;
        break;
      }
      err = errno;
      if (err == EEXIST) {
        continue;
      }
      if (err == EINVAL || err == ENOSYS) {
        // A file system without RENAME_NOREPLACE: check, then plain rename.
        if (name_taken(dir_fd, final_name)) {
          continue;
        }
        if (::renameat(dir_fd, temp_name.c_str(), dir_fd, final_name.c_str()) == 0) {
          renamed = true;
          break;
        }
        err = errno;
      }
      break;
    }
    if (!renamed) {
      add(errno_code(err),
          temp_path + ": cannot rename to " + path_of(final_name) + ": " + errno_text(err));
      return {code, std::move(problem)};
    }
    if (::fsync(dir_fd) != 0 && problem.empty()) {
      add(StatusCode::io_error, dir + ": fsync of the directory failed: " + errno_text(errno));
    }

    RotatedFile done;
    done.path = path_of(final_name);
    done.started_us = to_us(started);
    done.closed_us = to_us(now);
    done.frames = frames;
    done.bytes = bytes;
    done.file_bytes = file_bytes;
    temp_path.clear();
    if (opt.on_closed) {
      try {
        opt.on_closed(done);
      } catch (const std::exception &e) {
        add(StatusCode::failed, done.path + ": on_closed failed: " + e.what());
      } catch (...) {
        add(StatusCode::failed, done.path + ": on_closed failed");
      }
    } else {
      finished.push_back(std::move(done));
    }
    if (code != StatusCode::ok) {
      return {code, std::move(problem)};
    }
    return {};
  }
};

Result<std::unique_ptr<RotatingWriter>> RotatingWriter::open(const RotateOptions &options,
                                                             Clock::time_point now) {
  std::unique_ptr<RotatingWriter> w(new RotatingWriter());
  w->impl_ = std::make_unique<Impl>();
  Impl &impl = *w->impl_;
  impl.opt = options;
  impl.dir = options.directory.empty() ? std::string(".") : options.directory;
  while (impl.dir.size() > 1 && impl.dir.back() == '/') {
    impl.dir.pop_back();
  }
  if (options.interval < std::chrono::seconds(1)) {
    return Status::invalid_argument(impl.dir + ": rotation interval must be at least 1 s");
  }
  if (options.pattern.find('/') != std::string::npos) {
    return Status::invalid_argument(impl.dir + ": file name pattern \"" + options.pattern +
                                    "\" must not contain '/'");
  }

  impl.dir_fd = ::open(impl.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (impl.dir_fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::not_found(impl.dir + ": no such directory (create it first)");
    }
    if (err == ENOTDIR) {
      return Status::invalid_argument(impl.dir + ": not a directory");
    }
    return Status(errno_code(err), impl.dir + ": cannot open directory: " + errno_text(err));
  }
  if (::faccessat(impl.dir_fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
    const int err = errno;
    return Status::permission_denied(impl.dir + ": directory not writable by uid " +
                                     std::to_string(::geteuid()) + ": " + errno_text(err));
  }

  const int dlt = options.link_type == kLinktypeRaw ? DLT_RAW : static_cast<int>(options.link_type);
  impl.dead = pcap_open_dead_with_tstamp_precision(dlt, static_cast<int>(options.snaplen),
                                                   PCAP_TSTAMP_PRECISION_MICRO);
  if (impl.dead == nullptr) {
    return Status::unsupported(impl.dir + ": cannot create captures of link type " +
                               std::to_string(options.link_type));
  }
  // pcap_dump_fopen() leaves the FILE open when it rejects the link type but
  // closes it when the header write fails; rejecting the link type here
  // (pcap_dump_open owns its FILE) leaves start_file() only the second case.
  if (pcap_dumper_t *probe = pcap_dump_open(impl.dead, "/dev/null"); probe != nullptr) {
    pcap_dump_close(probe);
  } else {
    return Status::unsupported(impl.dir + ": cannot write captures of link type " +
                               std::to_string(options.link_type) + ": " + pcap_geterr(impl.dead));
  }

  if (Status st = impl.start_file(now); !st) {
    return st;
  }
  impl.deadline = now + options.interval;
  return w;
}

RotatingWriter::~RotatingWriter() {
  if (impl_ != nullptr && !impl_->closed) {
    (void)close();
  }
}

Status RotatingWriter::write(const Frame &frame) noexcept {
  Impl &impl = *impl_;
  if (impl.dumper == nullptr) {
    if (impl.closed) {
      return Status::failure(impl.dir + ": capture writer already closed");
    }
    return Status::unavailable(impl.dir + ": no capture file open (starting it failed; retried at "
                                          "the next rotation)");
  }
  if (impl.write_failed) {
    return impl.write_error;
  }
  pcap_pkthdr hdr{};
  hdr.ts.tv_sec = static_cast<time_t>(frame.ts_us / 1'000'000);
  hdr.ts.tv_usec = static_cast<suseconds_t>(frame.ts_us % 1'000'000);
  hdr.caplen = static_cast<bpf_u_int32>(frame.data.size());
  hdr.len = frame.wire_length != 0 ? frame.wire_length : hdr.caplen;
  pcap_dump(reinterpret_cast<u_char *>(impl.dumper), &hdr,
            reinterpret_cast<const u_char *>(frame.data.data()));
  // pcap_dump() reports nothing; a failed fwrite leaves the stream's error
  // flag set (and libpcap writes nothing more to it).
  if (std::ferror(pcap_dump_file(impl.dumper)) != 0) {
    impl.write_failed = true;
    impl.write_error = Status::io_error(impl.temp_path + ": write failed: " + errno_text(errno));
    return impl.write_error;
  }
  ++impl.frames;
  impl.bytes += hdr.caplen;
  impl.file_bytes += kRecordHeader + hdr.caplen;
  return {};
}

Status RotatingWriter::tick(Clock::time_point now) noexcept {
  Impl &impl = *impl_;
  if (impl.closed) {
    return {};
  }
  if (now < impl.anchor) {
    // The wall clock stepped back: keep the file, give it a full interval.
    impl.anchor = now;
    impl.deadline = now + impl.opt.interval;
    return {};
  }
  if (now < impl.deadline) {
    return {};
  }
  // Next deadline on the start + k * interval grid, skipping the ones already
  // missed.
  const auto late = now - impl.deadline;
  const auto missed = late / impl.opt.interval; // whole intervals
  impl.deadline += impl.opt.interval * (missed + 1);

  Status finished = impl.finish_file(now);
  Status started = impl.start_file(now);
  if (!started) {
    impl.anchor = now; // a failed start is retried at the next deadline
  }
  if (finished && started) {
    return {};
  }
  if (!finished && !started) {
    return {finished.code(), finished.message() + "; " + started.message()};
  }
  return !finished ? finished : started;
}

Status RotatingWriter::close(Clock::time_point now) noexcept {
  Impl &impl = *impl_;
  if (impl.closed) {
    return {};
  }
  impl.closed = true;
  return impl.finish_file(now);
}

const std::string &RotatingWriter::current_path() const noexcept {
  return impl_->temp_path;
}

RotatingWriter::Clock::time_point RotatingWriter::next_rotation() const noexcept {
  return impl_->deadline;
}

std::vector<RotatedFile> RotatingWriter::take_closed() {
  std::vector<RotatedFile> out;
  out.swap(impl_->finished);
  return out;
}

} // namespace ta::capture
