#include "prometheus_child.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/wait.h>

namespace ta::app {

using Clock = std::chrono::steady_clock;

std::string find_on_path(const std::string &name) {
  const char *path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
    std::string candidate = dir;
    candidate += '/';
    candidate += name;
    if (access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return "";
}

bool PrometheusChild::start(const std::string &binary, const std::string &target,
                            std::uint16_t port, std::string &error) {
  const char *tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                      "/traffic-analyzer-prometheus-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    error = fmt::format("cannot create a temporary directory ({})", std::strerror(errno));
    return false;
  }
  dir_ = templ;
  const std::string config = dir_ + "/prometheus.yml";
  {
    std::ofstream f(config);
    f << "# Written by traffic-analyzer demo; removed when it exits.\n"
         "global:\n"
         "  scrape_interval: 1s\n"
         "  evaluation_interval: 1s\n"
         "scrape_configs:\n"
         "  - job_name: traffic-analyzer\n"
         "    static_configs:\n"
         "      - targets: ['"
      << target << "']\n";
    if (!f) {
      error = "cannot write " + config;
      return false;
    }
  }
  log_ = dir_ + "/prometheus.log";
  std::vector<std::string> args{
      binary, "--config.file=" + config, "--storage.tsdb.path=" + dir_ + "/data",
      fmt::format("--web.listen-address=127.0.0.1:{}", port), "--storage.tsdb.retention.time=1d"};
  std::vector<char *> argv;
  argv.reserve(args.size() + 1);
  for (auto &a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const int log_fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    error = fmt::format("cannot create {} ({})", log_, std::strerror(errno));
    return false;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    error = fmt::format("cannot start prometheus ({})", std::strerror(errno));
    close(log_fd);
    return false;
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only until exec.
    (void)setpgid(0, 0);
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
      _exit(127);
    }
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) {
      (void)dup2(null_fd, STDIN_FILENO);
    }
    (void)dup2(log_fd, STDOUT_FILENO);
    (void)dup2(log_fd, STDERR_FILENO);
    // The parent may have blocked or ignored signals; Prometheus must not
    // inherit that.
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, nullptr);
    (void)signal(SIGINT, SIG_DFL);
    (void)signal(SIGTERM, SIG_DFL);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  pid_ = pid;
  return true;
}

bool PrometheusChild::exited(std::string &why) {
  if (pid_ <= 0) {
    return false;
  }
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) {
    return false;
  }
  pid_ = 0;
  why = last_log_line();
  return true;
}

void PrometheusChild::stop() {
  if (pid_ > 0) {
    (void)kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(15);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        (void)kill(pid_, SIGKILL);
        (void)waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    pid_ = 0;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
}

std::string PrometheusChild::last_log_line() const {
  std::ifstream f(log_);
  std::string line;
  std::string last;
  while (std::getline(f, line)) {
    if (!line.empty()) {
      last = line;
    }
  }
  return last.empty() ? "no output" : last;
}

} // namespace ta::app
