"""A two-host test network in network namespaces this test creates.

    client ns (10.77.0.2/24) --veth-- server ns (10.77.0.1/24 + one address
    per demo hostname: 10.77.0.11, .12, ...)

The server runs dnsmasq (a real DNS server, answering each demo hostname
with its own server address) and an HTTP server on port 80; the client's
resolver is the server (/etc/netns/<client>/resolv.conf, which `ip netns
exec` mounts over /etc/resolv.conf). Nothing leaves the namespaces.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import time

HOSTS = ["www.example.test", "api.example.test", "cdn.news.test", "static.shop.test"]


def sh(*cmd, check=True, **kw):
    return subprocess.run(list(map(str, cmd)), check=check, capture_output=True, text=True, **kw)


def available():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "dnsmasq", "curl", "tcpdump"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


class TwoHostNet:
    def __init__(self, tmp):
        tag = f"{os.getpid() % 100000}"
        self.cli, self.srv = f"ta-cli-{tag}", f"ta-srv-{tag}"
        self.cli_if, self.srv_if = f"tac{tag}", f"tas{tag}"
        self.tmp = pathlib.Path(tmp)
        self.procs = []
        self.addresses = {h: f"10.77.0.{11 + i}" for i, h in enumerate(HOSTS)}

    def __enter__(self):
        sh("ip", "netns", "add", self.cli)
        sh("ip", "netns", "add", self.srv)
        sh("ip", "link", "add", self.cli_if, "type", "veth", "peer", "name", self.srv_if)
        sh("ip", "link", "set", self.cli_if, "netns", self.cli)
        sh("ip", "link", "set", self.srv_if, "netns", self.srv)
        self.run_in(self.cli, "ip", "addr", "add", "10.77.0.2/24", "dev", self.cli_if)
        self.run_in(self.srv, "ip", "addr", "add", "10.77.0.1/24", "dev", self.srv_if)
        for a in self.addresses.values():
            self.run_in(self.srv, "ip", "addr", "add", f"{a}/24", "dev", self.srv_if)
        for ns, dev in ((self.cli, self.cli_if), (self.srv, self.srv_if)):
            self.run_in(ns, "ip", "link", "set", dev, "up")
            self.run_in(ns, "ip", "link", "set", "lo", "up")
        etc = pathlib.Path("/etc/netns") / self.cli
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 10.77.0.1\noptions attempts:1 timeout:2\n")
        dns_args = [f"--address=/{h}/{a}" for h, a in self.addresses.items()]
        self.spawn(self.srv, "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                   "--bind-interfaces", "--listen-address=10.77.0.1", "--port=53",
                   "--user=root", "--pid-file=" + str(self.tmp / "dnsmasq.pid"), *dns_args)
        www = self.tmp / "www"
        www.mkdir(exist_ok=True)
        (www / "index.html").write_text("hello\n" * 50)
        self.spawn(self.srv, "python3", "-m", "http.server", "80", "--bind", "0.0.0.0",
                   "--directory", www)
        # Ready when the HTTP server answers by address and DNS resolves.
        deadline = time.time() + 15
        while time.time() < deadline:
            r = self.run_in(self.cli, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            "--max-time", "2", "http://10.77.0.1/", check=False)
            if r.stdout == "200":
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("test network did not come up")
        return self

    def run_in(self, ns, *cmd, check=True):
        return sh("ip", "netns", "exec", ns, *cmd, check=check)

    def spawn(self, ns, *cmd, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", ns, *map(str, cmd)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        self.procs.append(p)
        return p

    def produce(self, rounds):
        """Each hostname fetched `rounds` times with curl (name resolution
        through dnsmasq each time). Returns {hostname: fetches}."""
        truth = {h: 0 for h in HOSTS}
        for _ in range(rounds):
            for h in HOSTS:
                r = self.run_in(self.cli, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "--max-time", "5", f"http://{h}/", check=False)
                assert r.stdout == "200", f"curl {h}: {r.stdout} {r.stderr}"
                truth[h] += 1
        return truth

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        sh("ip", "netns", "del", self.cli, check=False)
        sh("ip", "netns", "del", self.srv, check=False)
        shutil.rmtree(pathlib.Path("/etc/netns") / self.cli, ignore_errors=True)
