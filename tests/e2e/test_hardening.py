"""What a typo, a hostile network or a curious local user must not break
(README "Using it", "Live capture, rotated files, directory ingest",
"Re-analysis is idempotent"): a strict config file, a read-only `query`,
captures from a pipe or a FIFO read once, escaped and bounded analyze
summaries, one error line per failure, no spool left behind, private file
modes.

Captures are written here byte by byte, so every expected value is counted
from what the test itself wrote.
"""
import hashlib
import json
import os
import pathlib
import shutil
import sqlite3
import stat
import subprocess
import threading

from frames import client_hello, ipv4_tcp, write_pcap

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "data"
BIN = os.environ.get("TA_BIN", str(HERE.parent.parent / "build" / "src" / "app" / "traffic-analyzer"))
CAPTURE = DATA / "ndpi_http_connect.pcap"
TIMEOUT = 120  # a bound for commands that hung before (FIFOs, /dev/zero)


def ta(*args, check=True, cwd=None, stdin=None, input=None):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, cwd=cwd, stdin=stdin,
                       input=input, timeout=TIMEOUT)
    if check and r.returncode != 0:
        raise AssertionError(f"traffic-analyzer {args} exited {r.returncode}:\n{r.stderr!r}")
    return r


def stderr_lines(r):
    return [line for line in r.stderr.decode(errors="replace").splitlines() if line.strip()]


def endpoints(db):
    return json.loads(ta("query", "endpoints", "--store", f"sqlite:{db}", "--format", "json").stdout)


# ---- captures written here ---------------------------------------------------







def named_flows(path, names_and_packets):
    """One TCP flow per (name, packets): a ClientHello naming it, then more
    client data, `packets` client->server frames in all."""
    frames = []
    for i, (name, packets) in enumerate(names_and_packets):
        client, server = [10, 0, 0, 2], [192, 0, 2, 1 + i]
        sport = 40000 + i
        hello = client_hello([name])
        frames.append(ipv4_tcp(client, server, sport, 443, 0x18, 1000, hello))
        for k in range(packets - 1):
            frames.append(ipv4_tcp(client, server, sport, 443, 0x18, 1000 + len(hello) + k, b"x"))
    write_pcap(path, frames)


# ---- 1. the config file --------------------------------------------------------

def config_run(tmp_path, text, *mode_args):
    conf = tmp_path / "ta.toml"
    conf.write_text(text)
    r = ta("--config", conf, *mode_args, check=False)
    return conf, r


def test_config_unknown_key_is_refused_with_file_line_and_key(tmp_path):
    conf, r = config_run(tmp_path, '# comment\nlocal-nett = "10.0.0.0/8"\n', "analyze",
                         "--store", "none", CAPTURE)
    assert r.returncode == 2
    assert f"{conf}:2: local-nett: unknown key" in r.stderr.decode(), r.stderr


def test_config_unknown_key_in_a_section(tmp_path):
    conf, r = config_run(tmp_path, '[analyze]\nstore = "none"\nnamingg = "dns"\n', "analyze",
                         CAPTURE)
    assert r.returncode == 2
    assert f"{conf}:3: analyze.namingg: unknown key" in r.stderr.decode(), r.stderr


def test_config_bad_section_header(tmp_path):
    conf, r = config_run(tmp_path, 'store = "none"\n[watch\nonce = true\n', "analyze", CAPTURE)
    assert r.returncode == 2
    assert r.stderr.decode().startswith(f"traffic-analyzer: {conf}:2: "), r.stderr


def test_config_unknown_section(tmp_path):
    conf, r = config_run(tmp_path, '[wach]\nonce = true\n', "analyze", "--store", "none", CAPTURE)
    assert r.returncode == 2
    assert f"{conf}:1: [wach]: unknown section" in r.stderr.decode(), r.stderr


def test_config_wrong_type_and_bad_value(tmp_path):
    conf, r = config_run(tmp_path, '[analyze]\nmax-flows = "many"\n', "analyze", "--store",
                         "none", CAPTURE)
    assert r.returncode == 2
    assert f"{conf}:2: analyze.max-flows: expects a whole number" in r.stderr.decode(), r.stderr
    conf, r = config_run(tmp_path, '\n\nnaming = "bogus"\n', "analyze", "--store", "none", CAPTURE)
    assert r.returncode == 2
    assert f"{conf}:3: naming: " in r.stderr.decode(), r.stderr
    conf, r = config_run(tmp_path, '[analyze]\nquiet = "yes"\n', "analyze", "--store", "none",
                         CAPTURE)
    assert r.returncode == 2
    assert f"{conf}:2: analyze.quiet: expects true or false" in r.stderr.decode(), r.stderr


def test_config_that_is_not_a_regular_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for path in ("/dev/zero", tmp_path, fifo):
        r = ta("--config", path, "analyze", "--store", "none", CAPTURE, check=False)
        assert r.returncode == 2, (path, r.stderr)
        assert f"{path}: the config file is not a regular file" in r.stderr.decode(), r.stderr
    r = ta("--config", tmp_path / "missing.toml", "analyze", "--store", "none", CAPTURE,
           check=False)
    assert r.returncode == 2
    assert "missing.toml: cannot read the config file" in r.stderr.decode(), r.stderr
    big = tmp_path / "big.toml"
    big.write_text("# x\n" * 300_000)
    r = ta("--config", big, "analyze", "--store", "none", CAPTURE, check=False)
    assert r.returncode == 2 and "larger than" in r.stderr.decode(), r.stderr


def test_config_top_level_keys_apply_and_sections_and_flags_override(tmp_path):
    top, section, flag = tmp_path / "top.db", tmp_path / "section.db", tmp_path / "flag.db"
    # Top-level: the store, and a key of another mode (metrics-listen) that
    # analyze does not have, which is not an error.
    conf, r = config_run(tmp_path, f'store = "sqlite:{top}"\nmetrics-listen = ""\n', "analyze",
                         "--quiet", CAPTURE)
    assert r.returncode == 0, r.stderr
    assert top.exists()
    # The [analyze] section overrides the top level.
    conf, r = config_run(tmp_path, f'store = "sqlite:{top}"\n[analyze]\nstore = "sqlite:{section}"\n'
                         '[watch]\nonce = true\n', "analyze", "--quiet", CAPTURE)
    assert r.returncode == 0, r.stderr
    assert section.exists()
    # A flag overrides both.
    conf, r = config_run(tmp_path, f'store = "sqlite:{top}"\n[analyze]\nstore = "sqlite:{section}"\n',
                         "analyze", "--quiet", "--store", f"sqlite:{flag}", CAPTURE)
    assert r.returncode == 0, r.stderr
    assert flag.exists()
    # The top-level naming applies too: DNS-only naming counts no received
    # packets, flow naming does (52 in this capture).
    os.unlink(top)
    conf, r = config_run(tmp_path, f'store = "sqlite:{top}"\nnaming = "dns"\n', "analyze",
                         "--quiet", CAPTURE)
    assert r.returncode == 0, r.stderr
    assert sum(row["received_packets"] for row in endpoints(top)) == 0
    assert sum(row["received_packets"] for row in endpoints(flag)) == 52


# ---- 5. query reads only -----------------------------------------------------

def snapshot(path):
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode),
            hashlib.sha256(path.read_bytes()).hexdigest())


def test_query_of_a_missing_store_creates_nothing(tmp_path):
    db = tmp_path / "typo.db"
    for what in ("endpoints", "addresses", "flows"):
        r = ta("query", what, "--store", f"sqlite:{db}", check=False)
        assert r.returncode == 2, r.stderr
        assert "no such store" in r.stderr.decode(), r.stderr
        assert r.stdout == b""
    assert list(tmp_path.iterdir()) == []


def test_query_never_writes_the_store(tmp_path):
    db = tmp_path / "s.db"
    ta("analyze", "--quiet", "--store", f"sqlite:{db}", CAPTURE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]  # closed cleanly: no -wal
    os.chmod(db, 0o444)
    before = snapshot(db)
    rows = endpoints(db)
    assert rows and sum(row["packets"] for row in rows) > 0
    for args in (("addresses",), ("flows",), ("packets", "--endpoint", rows[0]["endpoint"])):
        ta("query", *args, "--store", f"sqlite:{db}")
    assert snapshot(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


def test_query_works_on_a_read_only_mount(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise AssertionError("needs root and unshare (a read-only bind mount of its own)")
    ro = tmp_path / "ro"
    ro.mkdir()
    db = ro / "s.db"
    ta("analyze", "--quiet", "--store", f"sqlite:{db}", CAPTURE)
    expected = endpoints(db)
    script = (f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
              f"exec {BIN} query endpoints --store sqlite:{db} --format json")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == expected


def test_query_of_an_older_schema_says_so_and_changes_nothing(tmp_path):
    db = tmp_path / "v2.db"
    shutil.copy(DATA / "store_v2_espn.db", db)
    before = snapshot(db)
    r = ta("query", "endpoints", "--store", f"sqlite:{db}", check=False)
    assert r.returncode == 2
    assert "schema version 2 was written by an earlier release" in r.stderr.decode(), r.stderr
    assert snapshot(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v2.db"]


# ---- 7. pipes and FIFOs ----------------------------------------------------------

def summary_lines(stdout):
    """The summary without its timing line."""
    return [line for line in stdout.decode().splitlines() if not line.startswith("frames ")]


def test_analyze_from_stdin_equals_analyze_of_the_file(tmp_path):
    from_file, from_pipe = tmp_path / "file.db", tmp_path / "pipe.db"
    a = ta("analyze", "--store", f"sqlite:{from_file}", CAPTURE)
    with open(CAPTURE, "rb") as f:
        b = ta("analyze", "--store", f"sqlite:{from_pipe}", "-", stdin=f)
    assert summary_lines(a.stdout) == summary_lines(b.stdout)
    assert endpoints(from_file) == endpoints(from_pipe)
    # A stream has its first frame's identity: the same capture again, as a
    # file, counts nothing twice.
    before = endpoints(from_pipe)
    ta("analyze", "--quiet", "--store", f"sqlite:{from_pipe}", CAPTURE)
    assert endpoints(from_pipe) == before
    with open(CAPTURE, "rb") as f:
        ta("analyze", "--quiet", "--store", f"sqlite:{from_pipe}", "-", stdin=f)
    assert endpoints(from_pipe) == before


def test_analyze_of_a_fifo_reads_it_once(tmp_path):
    fifo = tmp_path / "cap.fifo"
    os.mkfifo(fifo)
    data = CAPTURE.read_bytes()

    def feed():
        with open(fifo, "wb") as f:  # blocks until the analyzer opens it
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    db, ref = tmp_path / "fifo.db", tmp_path / "ref.db"
    r = ta("analyze", "--store", f"sqlite:{db}", fifo, check=False)
    writer.join(timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    a = ta("analyze", "--store", f"sqlite:{ref}", CAPTURE)
    assert summary_lines(r.stdout) == summary_lines(a.stdout)
    assert endpoints(db) == endpoints(ref)


# ---- 8. the analyze summary ------------------------------------------------------

def test_summary_escapes_names_as_the_query_table_does(tmp_path):
    cap, db = tmp_path / "esc.pcap", tmp_path / "esc.db"
    name = b"esc\x1b]0;pwned\x07\x1b[31mred\x00nul.example"
    named_flows(cap, [(name, 3)])
    r = ta("analyze", "--store", f"sqlite:{db}", cap)
    shown = b"esc\\x1b]0;pwned\\x07\\x1b[31mred\\x00nul.example"
    assert b"\x1b" not in r.stdout and b"\x00" not in r.stdout and b"\x07" not in r.stdout
    assert shown in r.stdout, r.stdout
    table = ta("query", "endpoints", "--store", f"sqlite:{db}").stdout
    assert shown in table, table


def test_summary_lists_the_top_endpoints_and_counts_the_rest(tmp_path):
    cap = tmp_path / "many.pcap"
    flows = [(b"n%02d.example" % i, 1 + i) for i in range(30)]  # n29 has the most packets
    named_flows(cap, flows)
    r = ta("analyze", "--store", "none", cap)
    lines = r.stdout.decode().splitlines()
    rows = [line.split()[0] for line in lines[1:] if ".example" in line]
    expected = [n.decode() for n, _ in sorted(flows, key=lambda f: -f[1])[:20]]
    assert rows == expected
    rest = sum(p for _, p in sorted(flows, key=lambda f: -f[1])[20:])
    assert f"... and 10 more endpoints ({rest} packets," in r.stdout.decode(), r.stdout
    r = ta("analyze", "--store", "none", "--top", "0", cap)
    assert sum(1 for line in r.stdout.decode().splitlines() if ".example" in line) == 30
    assert "more endpoints" not in r.stdout.decode()


# ---- 10. small ones --------------------------------------------------------------

def test_analyze_into_a_damaged_store_fails(tmp_path):
    cap, db = tmp_path / "g.pcap", tmp_path / "c.db"
    ta("generate", "--out", cap, "--packets", "50000")
    ta("analyze", "--quiet", "--store", f"sqlite:{db}", cap)
    data = bytearray(db.read_bytes())
    page = 16384
    pages = len(data) // page
    assert pages > 20
    middle = pages // 2  # a packets page: appending never reads it again
    data[middle * page:(middle + 1) * page] = b"\xa5" * page
    db.write_bytes(bytes(data))
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:  # SQLite's own verdict: a row that is not "ok", or an error
        verdict = con.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as e:
        verdict = str(e)
    con.close()
    assert verdict != "ok"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    r = ta("analyze", "--quiet", "--store", f"sqlite:{db}", CAPTURE, check=False)
    assert r.returncode != 0, (r.stdout, r.stderr)
    lines = stderr_lines(r)
    assert len(lines) == 1 and f"'{db}': damaged" in lines[0], lines
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_unreachable_cassandra_leaves_no_spool(tmp_path):
    # Port 1 on loopback: nothing listens there, the connection is refused.
    r = ta("analyze", "--quiet", "--store", "cassandra://127.0.0.1:1/ks", CAPTURE, check=False,
           cwd=tmp_path)
    assert r.returncode != 0
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())
    # A spool that already existed stays.
    spool = tmp_path / "mine.db"
    spool.write_bytes(b"")
    r = ta("analyze", "--quiet", "--store", "cassandra://127.0.0.1:1/ks", "--spool", spool,
           CAPTURE, check=False, cwd=tmp_path)
    assert r.returncode != 0
    assert spool.exists()


def test_files_are_created_0640(tmp_path):
    old = os.umask(0o022)
    try:
        db, cap = tmp_path / "m.db", tmp_path / "g.pcap"
        ta("generate", "--out", cap, "--packets", "100")
        ta("analyze", "--quiet", "--store", f"sqlite:{db}", cap)
    finally:
        os.umask(old)
    assert stat.S_IMODE(cap.stat().st_mode) == 0o640
    assert stat.S_IMODE(db.stat().st_mode) == 0o640


def test_a_full_disk_is_one_error_line(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise AssertionError("needs root and unshare (a tmpfs in a private mount namespace)")
    cap = tmp_path / "big.pcap"
    ta("generate", "--out", cap, "--packets", "200000")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (f"mount -t tmpfs -o size=256k tmpfs {disk} && "
              f"exec {BIN} analyze --quiet --store sqlite:{disk}/s.db {cap}")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                       timeout=TIMEOUT)
    assert r.returncode == 1, r.stderr
    lines = stderr_lines(r)
    assert len(lines) == 1, lines
    assert "full" in lines[0], lines


def test_capture_on_a_full_disk_reports_each_failure_once(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        raise AssertionError("needs root and unshare (a tmpfs in a private mount namespace)")
    out = tmp_path / "dump"
    out.mkdir()
    blast = tmp_path / "blast.py"
    # UDP to loopback only, bounded by a count and a few seconds.
    blast.write_text(
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "end = time.monotonic() + 5\n"
        "for i in range(2_000_000):\n"
        "    if time.monotonic() > end:\n"
        "        break\n"
        "    s.sendto(b'x' * 200, ('127.0.0.1', 45000 + i % 100))\n")
    script = (f"mount -t tmpfs -o size=64k tmpfs {out} && "
              f"(sleep 1; python3 {blast}) & "
              f"timeout -s INT 8 {BIN} capture -i lo --rotate 3s --out {out}; wait")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                       timeout=TIMEOUT)
    lines = [line for line in stderr_lines(r) if "write failed" in line or "No space" in line]
    assert lines, stderr_lines(r)  # the disk did fill
    assert len(lines) == len(set(lines)), lines
