"""/metrics under hostile clients and behind --web-config.

The server must answer a scrape while 1,000 idle or slowly-sending
connections are held open, close idle connections by itself, and bound the
connections of one client address. With a web config (the Prometheus
exporters' format) it serves HTTPS with basic auth to a real Prometheus,
answers a wrong or missing password with 401, refuses a client without the
required certificate, and a bad config stops the mode with exit 2 before
anything starts. Everything listens on 127.0.0.x; every wait and loop is
bounded; every spawned process is stopped in `finally`.
"""
import resource
import secrets
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from prometheus_helper import PROMETHEUS, Prometheus, free_port, kill, wait_http
from test_golden import BIN

needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed")

USER = "prometheus"


def bcrypt_hash(password):
    """A bcrypt hash made outside the analyzer: Python's crypt, else
    htpasswd -B."""
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # Debian 12's Python 3.11 has it
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    except ImportError:
        out = subprocess.run(["htpasswd", "-nbBC", "4", USER, password], check=True,
                             capture_output=True, text=True).stdout
        return out.strip().split(":", 1)[1]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate it
    signed, and a client certificate from another CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                "-subj", f"/CN={ca}", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, ca, ext in (("server", "ca", ["-extfile", "san.ext"]), ("client", "ca", []),
                          ("stranger", "other-ca", [])):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *ext, cwd=d)
    return d


def spawn_watch(tmp_path, port, *extra):
    watched = tmp_path / "dump"
    watched.mkdir(exist_ok=True)
    return subprocess.Popen([BIN, "watch", str(watched), "--store", f"sqlite:{tmp_path / 't.db'}",
                             "--metrics-listen", f"127.0.0.1:{port}", *map(str, extra)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)


def wait_port(port, proc, timeout=30):
    """Until something accepts on 127.0.0.1:port (bounded)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"exited {proc.returncode}: {proc.communicate()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def still_open(sock):
    """True if the peer has not closed `sock` (nothing to read, no EOF)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_a_scrape_is_answered_while_1000_idle_and_slow_connections_are_held(tmp_path):
    assert raise_fd_limit(4096) >= 1200, "cannot open 1,000 sockets here"
    port = free_port()
    proc = spawn_watch(tmp_path, port)
    held = []
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", 30, proc)
        # 1,000 connections from 20 addresses of 127/8, 50 each (under the
        # per-address bound): odd ones idle, even ones sending a request a
        # byte at a time that never ends.
        for i in range(1000):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(10)
            s.bind((f"127.0.0.{2 + i % 20}", 0))
            s.connect(("127.0.0.1", port))
            if i % 2 == 0:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(s)
        result = {}

        def scrape():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                    result["status"], result["body"] = r.status, r.read().decode()
            except OSError as e:
                result["error"] = e

        scraper = threading.Thread(target=scrape)
        scraper.start()
        for _ in range(20):  # keep trickling while the scrape runs (bounded)
            if not scraper.is_alive():
                break
            for s in held[::2]:
                try:
                    s.send(b"a")
                except OSError:
                    pass
            scraper.join(0.5)
        scraper.join(15)
        assert not scraper.is_alive()
        assert result.get("status") == 200, result.get("error")
        assert "traffic_frames_total " in result["body"]
        # The scrape did not need the held connections to go away first.
        open_now = sum(still_open(s) for s in held[::2])
        assert open_now > 0, "the server dropped every slow connection before answering"
    finally:
        for s in held:
            s.close()
        kill(proc)


def test_idle_connections_are_closed_and_one_address_gets_a_bounded_share(tmp_path):
    assert raise_fd_limit(1024) >= 400
    port = free_port()
    proc = spawn_watch(tmp_path, port)
    held = []
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", 30, proc)
        for _ in range(200):  # one address: 64 are kept, the rest closed at once
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(10)
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            held.append(s)
        body = wait_http(f"http://127.0.0.1:{port}/metrics", 10, proc)
        assert "traffic_frames_total " in body
        # Every idle connection is closed by the server: the refused ones at
        # once, the others after the connection timeout (10 s).
        deadline = time.time() + 90
        while time.time() < deadline and any(still_open(s) for s in held):
            time.sleep(0.5)
        assert not any(still_open(s) for s in held)
    finally:
        for s in held:
            s.close()
        kill(proc)


def curl(url, *args):
    """(HTTP status or 0, curl's exit status, response headers)."""
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "-w", "\n%{http_code}",
                        "--max-time", "10", *args, url], capture_output=True, text=True,
                       timeout=30)
    lines = r.stdout.rstrip("\n").split("\n")
    return int(lines[-1] or 0), r.returncode, "\n".join(lines[:-1])


def write_config(d, text):
    path = d / "web.yml"
    path.write_text(text)
    return path


@needs_prometheus
def test_prometheus_scrapes_over_tls_with_basic_auth_and_a_wrong_password_gets_401(tmp_path):
    pki = make_pki(tmp_path)
    password = secrets.token_urlsafe(12)
    config = write_config(tmp_path, "tls_server_config:\n"
                                    "  cert_file: server.crt\n"  # relative to the config
                                    f"  key_file: {tmp_path / 'server.key'}\n"
                                    "basic_auth_users:\n"
                                    f"  {USER}: '{bcrypt_hash(password)}'\n")
    port = free_port()
    proc = spawn_watch(tmp_path, port, "--web-config", config)
    url = f"https://127.0.0.1:{port}/metrics"
    ca = ["--cacert", str(pki / "ca.crt")]
    try:
        wait_port(port, proc)
        status, rc, headers = curl(url, *ca)
        assert status == 401, (status, rc, headers)
        assert 'WWW-Authenticate: Basic realm="traffic-analyzer"' in headers, headers
        status, _, headers = curl(url, *ca, "-u", f"{USER}:{password}x")
        assert status == 401 and "WWW-Authenticate: Basic" in headers, headers
        status, _, _ = curl(url, *ca, "-u", f"nobody:{password}")
        assert status == 401
        status, rc, _ = curl(url, *ca, "-u", f"{USER}:{password}")
        assert status == 200, rc
        # Plain HTTP on the TLS port gets no metrics.
        status, _, _ = curl(f"http://127.0.0.1:{port}/metrics", "-u", f"{USER}:{password}")
        assert status != 200

        job = "    scheme: https\n" \
              "    tls_config:\n" \
              f"      ca_file: {pki / 'ca.crt'}\n" \
              "    basic_auth:\n" \
              f"      username: {USER}\n" \
              f"      password: '{password}'\n"
        with Prometheus(tmp_path / "prom", [f"127.0.0.1:{port}"], job="ta-tls",
                        job_extra=job) as prom:
            deadline = time.time() + 60
            up, frames = [], []
            while time.time() < deadline:
                up = prom.query('up{job="ta-tls"}')
                frames = prom.query('traffic_frames_total{job="ta-tls"}')
                if any(v == 1 for _, v in up) and frames:
                    break
                time.sleep(0.5)
            assert [v for _, v in up] == [1.0], prom.log_text()
            assert len(frames) == 1 and frames[0][0]["instance"] == f"127.0.0.1:{port}", frames
    finally:
        kill(proc)


def test_a_required_client_certificate_is_enforced(tmp_path):
    pki = make_pki(tmp_path)
    config = write_config(tmp_path, "tls_server_config:\n"
                                    "  cert_file: server.crt\n"
                                    "  key_file: server.key\n"
                                    "  client_ca_file: ca.crt\n"
                                    "  client_auth_type: RequireAndVerifyClientCert\n")
    port = free_port()
    proc = spawn_watch(tmp_path, port, "--web-config", config)
    url = f"https://127.0.0.1:{port}/metrics"
    ca = ["--cacert", str(pki / "ca.crt")]
    try:
        wait_port(port, proc)
        status, rc, _ = curl(url, *ca)
        assert status == 0 and rc != 0, (status, rc)  # the handshake fails
        status, rc, _ = curl(url, *ca, "--cert", str(pki / "stranger.crt"), "--key",
                             str(pki / "stranger.key"))
        assert status == 0 and rc != 0, (status, rc)  # signed by a CA it does not trust
        status, rc, _ = curl(url, *ca, "--cert", str(pki / "client.crt"), "--key",
                             str(pki / "client.key"))
        assert status == 200, rc
    finally:
        kill(proc)


BAD_CONFIGS = [
    ("tls_server_config:\n  cert_file: server.crt\n", "web.yml:2: cert_file without key_file"),
    ("basic_auth_users:\n  u: hunter2\n", "web.yml:2: the password of 'u' is not a bcrypt hash"),
    ("tls_sever_config:\n", "web.yml:1: unknown key 'tls_sever_config'"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: other-ca.key\n",
     "web.yml: cert_file and key_file are not a usable PEM certificate and its key"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n",
     "web.yml:3: key_file"),
]


@pytest.mark.parametrize("text,message", BAD_CONFIGS)
def test_a_bad_web_config_stops_before_anything_starts(tmp_path, text, message):
    make_pki(tmp_path)
    config = write_config(tmp_path, text)
    port = free_port()
    r = subprocess.run([BIN, "watch", str(tmp_path), "--store", f"sqlite:{tmp_path / 'x.db'}",
                        "--metrics-listen", f"127.0.0.1:{port}", "--web-config", str(config)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert lines[0].startswith(f"traffic-analyzer: web config {tmp_path}/web.yml"), lines[0]
    assert not (tmp_path / "x.db").exists()  # the store was never opened


def test_a_missing_web_config_file_stops_with_exit_2(tmp_path):
    r = subprocess.run([BIN, "watch", str(tmp_path), "--store", f"sqlite:{tmp_path / 'x.db'}",
                        "--metrics-listen", "127.0.0.1:0", "--web-config",
                        str(tmp_path / "nope.yml")],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert "web config" in r.stderr and "nope.yml" in r.stderr, r.stderr
    assert not (tmp_path / "x.db").exists()
