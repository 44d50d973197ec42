"""A private Prometheus for tests: Debian's `prometheus` binary on 127.0.0.1,
a generated scrape config and a temporary TSDB; every wait bounded."""
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

PROMETHEUS = shutil.which("prometheus")


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def wait_http(url, timeout, proc=None, want=None):
    """GET `url` until it answers 200 (and contains `want`); the body."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited {proc.returncode} before {url} answered")
        try:
            status, body = http_get(url, timeout=2)
            if status == 200 and (want is None or want in body):
                return body
            last = f"status {status}"
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s ({last})")


def kill(proc, timeout=15):
    """Stop a spawned process (SIGTERM, then SIGKILL); its output."""
    if proc is None or proc.poll() is not None:
        return proc.communicate() if proc is not None else (None, None)
    proc.terminate()
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=timeout)


class Prometheus:
    """`with Prometheus(tmp_path, ["127.0.0.1:9100"]) as p: p.query(...)`"""

    def __init__(self, directory, targets, job="traffic-analyzer", job_extra=""):
        """`job_extra`: more YAML lines of the scrape job, indented by four
        spaces (e.g. scheme, tls_config, basic_auth)."""
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.job = job
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.dir / "prometheus.yml"
        quoted = ", ".join(f"'{t}'" for t in targets)
        self.config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: {job}\n"
            "    static_configs:\n"
            f"      - targets: [{quoted}]\n"
            + job_extra)
        self.log = self.dir / "prometheus.log"
        self.proc = None

    def __enter__(self):
        log = open(self.log, "w")
        try:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config}",
                 f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        try:
            wait_http(f"{self.url}/-/ready", 30, self.proc)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        kill(self.proc)

    def query(self, expr):
        """Instant query: [(labels, float value)]."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        _, body = http_get(url)
        data = json.loads(body)
        assert data["status"] == "success", data
        return [(r["metric"], float(r["value"][1])) for r in data["data"]["result"]]

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""
