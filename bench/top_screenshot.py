#!/usr/bin/env python3
"""The README's picture of `top` (needs root, tmux and ImageMagick's
`convert`, Debian package imagemagick, with the DejaVu Sans Mono font,
fonts-dejavu-core).

In the two-host network of tests/e2e/netns.py (network namespaces this
script creates; nothing leaves them) `traffic-analyzer top` runs full screen
in a private tmux server's pane on the client's interface while curl fetches
from the server namespace's HTTP server for a fixed number of rounds: the
demo hostnames through DNS, and a few more by Host header. Then
`tmux capture-pane -p` gives the screen as text, and `convert` draws that
text, light on dark, into a PNG.

    sudo python3 bench/top_screenshot.py [OUT.png]   (default docs/top.png)
"""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from netns import HOSTS, TwoHostNet, available  # noqa: E402

TA = ROOT / "build/src/app/traffic-analyzer"
FONT = pathlib.Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
COLUMNS, LINES = 172, 16
ROUNDS = 12  # bounded traffic: each round fetches every name once
# Names only sent in a Host header (HTTP naming), with the file they fetch.
BY_HOST = {"video.stream.test": "big.bin", "updates.os.test": "mid.bin"}


def tmux(sock, *args):
    return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True,
                          check=True, timeout=10)


def fetch(net, url, host=None):
    extra = ["-H", f"Host: {host}"] if host else []
    net.run_in(net.cli, "curl", "-s", "-o", "/dev/null", "--max-time", "5", *extra, url,
               check=False)


def long_lived(net):
    """Two downloads that last across many flushes, so the PROGRAM column
    has owners to show (a flow is mapped at the 1 s flush after it is named;
    the short fetches below end before that): curl, rate-limited (the
    receive window then throttles the server), and a slow Python reader."""
    return [
        subprocess.Popen(["ip", "netns", "exec", net.cli, "curl", "-s", "-o", "/dev/null",
                          "--max-time", "20", "--limit-rate", "150k", "-H",
                          "Host: video.stream.test", "http://10.77.0.11/stream.bin"]),
        subprocess.Popen(["ip", "netns", "exec", net.cli, "python3", "-c",
                          "import socket, time\n"
                          "s = socket.create_connection(('10.77.0.11', 80))\n"
                          "s.sendall(b'GET /stream.bin HTTP/1.1\\r\\nHost: updates.os.test\\r\\n\\r\\n')\n"
                          "end = time.time() + 20\n"
                          "while time.time() < end and s.recv(4096):\n"
                          "    time.sleep(0.05)\n"]),
    ]


def traffic(net):
    for i in range(ROUNDS):
        for h in HOSTS:
            fetch(net, f"http://{h}/" + ("mid.bin" if h.startswith("cdn") else ""))
        for h, path in BY_HOST.items():
            fetch(net, f"http://10.77.0.11/{path}", host=h)
        time.sleep(0.3)


def render(text, out):
    """`text` light on dark in DejaVu Sans Mono; % and \\ are escaped for
    -annotate."""
    escaped = text.replace("\\", "\\\\").replace("%", "%%")
    subprocess.run(["convert", "-size", f"{COLUMNS * 8 + 24}x{LINES * 18 + 24}", "xc:#1d1f21",
                    "-fill", "#d8dee9", "-font", str(FONT), "-pointsize", "13",
                    "-annotate", "+12+24", escaped, "-trim", "-bordercolor", "#1d1f21",
                    "-border", "12", "-strip", "-colors", "16", str(out)], check=True, timeout=60)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "top.png")
    why = available()
    for tool in ("tmux", "convert"):
        if shutil.which(tool) is None:
            why = why or f"needs {tool}"
    if not FONT.exists():
        why = why or f"needs {FONT} (fonts-dejavu-core)"
    if why:
        raise SystemExit(f"top_screenshot: {why}")
    tmp = pathlib.Path(tempfile.mkdtemp())
    sock = str(tmp / "tmux.sock")
    try:
        with TwoHostNet(tmp) as net:
            www = tmp / "www"
            (www / "mid.bin").write_bytes(os.urandom(40_000))
            (www / "big.bin").write_bytes(os.urandom(400_000))
            (www / "stream.bin").write_bytes(os.urandom(8_000_000))
            cmd = f"exec ip netns exec {net.cli} {TA} top -i {net.cli_if}"
            tmux(sock, "new-session", "-d", "-s", "shot", "-x", str(COLUMNS), "-y", str(LINES),
                 cmd)
            try:
                deadline = time.time() + 20
                while "NAME" not in tmux(sock, "capture-pane", "-p", "-t", "shot").stdout:
                    if time.time() > deadline:
                        raise SystemExit("top_screenshot: top never drew its table")
                    time.sleep(0.2)
                slow = long_lived(net)
                try:
                    traffic(net)
                    time.sleep(1.5)  # one more redraw with the last of it
                    text = tmux(sock, "capture-pane", "-p", "-t", "shot").stdout.rstrip("\n")
                finally:
                    for p in slow:
                        p.kill()
                        p.wait(timeout=10)
                tmux(sock, "send-keys", "-t", "shot", "q")
            finally:
                subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True,
                               timeout=10)
        print(text)
        render(text, out)
        print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
