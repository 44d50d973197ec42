"""Live capture, rotated captures and directory ingest (needs root: it
builds its own two-host network in network namespaces, see netns.py).

One producer (curl through a real DNS server) is watched at once by
`traffic-analyzer run` on the client's veth, by `traffic-analyzer capture`
writing rotated files that `watch` then ingests, and by tcpdump on the same
interface; every per-endpoint count must agree with tcpdump's and cover
exactly the hostnames the producer fetched.
"""
import json
import os
import pathlib
import shutil
import signal
import sqlite3
import tempfile
import subprocess
import time
from collections import Counter

import pytest

from netns import HOSTS, TwoHostNet, available
from test_golden import BIN, expected_rows, query_endpoints, readable_prefix, ta
from tshark_reference import compute

REASON = available()
needs_netns = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def wait_for_line(proc, needle, timeout=15):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"never saw {needle!r}: {''.join(seen)}")


def stop(proc, timeout=20):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return err


def tcpdump_counts(pcap):
    """Outbound TCP packets to port 80 per destination address, by tcpdump."""
    r = subprocess.run(["tcpdump", "-nn", "-q", "-r", str(pcap),
                        "src host 10.77.0.2 and tcp dst port 80"],
                       capture_output=True, text=True, check=True)
    counts = Counter()
    for line in r.stdout.splitlines():
        # 12:00:00.000000 IP 10.77.0.2.40000 > 10.77.0.11.80: tcp 0
        dst = line.split(" > ")[1].split(":")[0]
        counts[dst.rsplit(".", 1)[0]] += 1
    return counts


def by_endpoint(rows):
    return {r["endpoint"]: r["packets"] for r in rows}


@needs_netns
def test_run_and_capture_watch_agree_with_tcpdump_and_the_producer(tmp_path):
    with TwoHostNet(tmp_path) as net:
        db_run = tmp_path / "run.db"
        db_watch = tmp_path / "watch.db"
        dump = tmp_path / "dump"
        dump.mkdir()
        ref_pcap = tmp_path / "tcpdump.pcap"
        tcpdump = net.spawn(net.cli, "tcpdump", "-i", net.cli_if, "-U", "-w", ref_pcap,
                            "tcp port 80 or port 53")
        wait_for_line(tcpdump, "listening on")
        run = net.spawn(net.cli, BIN, "run", "--naming", "dns", "-i", net.cli_if, "--ports", "80", "--store",
                        f"sqlite:{db_run}", "--metrics-listen", "", "--flush-seconds", "0.2")
        wait_for_line(run, "capturing on")
        cap = net.spawn(net.cli, BIN, "capture", "-i", net.cli_if, "--ports", "80",
                        "--rotate", "1s", "--out", dump)
        # The original interceptor too: tcpdump -G rotating in place.
        gdump = tmp_path / "gdump"
        gdump.mkdir()
        tcpdump_g = net.spawn(net.cli, "tcpdump", "-Z", "root", "-i", net.cli_if, "-G", "1", "-w",
                              gdump / "%Y_%m_%d_%H_%M_%S-dump.pcap", "port 80 or port 53")
        wait_for_line(tcpdump_g, "listening on")
        time.sleep(1.0)  # capture has no ready line; its filter is in place well before this
        truth = net.produce(rounds=5)
        time.sleep(1.5)
        run_err = stop(run)
        stop(cap)
        for p in (tcpdump, tcpdump_g):
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=10)
        db_gwatch = tmp_path / "gwatch.db"
        ta("watch", "--naming", "dns", gdump, "--once", "--store", f"sqlite:{db_gwatch}")

        files = sorted(p.name for p in dump.iterdir())
        assert files and all(n.endswith("-dump.pcap") for n in files), files
        ta("watch", "--naming", "dns", dump, "--once", "--store", f"sqlite:{db_watch}")

        expected = {h: tcpdump_counts(ref_pcap)[net.addresses[h]] for h in HOSTS}
        assert set(expected) == {h for h, n in truth.items() if n > 0}
        assert all(n > 0 for n in expected.values())
        assert by_endpoint(query_endpoints(db_run)) == expected, run_err
        assert by_endpoint(query_endpoints(db_watch)) == expected
        assert by_endpoint(query_endpoints(db_gwatch)) == expected
        # Every fetch opened one connection: one SYN per fetch, so at least
        # five packets per fetch went out (SYN, ACK, request, ACK, FIN).
        for h, n in truth.items():
            assert expected[h] >= 5 * n
        assert "dropped by the kernel" in run_err


@needs_netns
def test_watch_killed_mid_file_resumes_exactly(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    cap = dump / "2024_01_01_00_00_00-dump.pcap"
    ta("generate", "--out", tmp_path / "big.pcap", "--packets", 1_000_000, "--seed", 9)
    os.rename(tmp_path / "big.pcap", cap)
    truth = json.loads((tmp_path / "big.pcap.truth.json").read_text())
    db = tmp_path / "t.db"
    watch = subprocess.Popen([BIN, "watch", "--naming", "dns", dump, "--store", f"sqlite:{db}", "--metrics-listen", ""],
                             stderr=subprocess.PIPE, text=True)
    done = 0
    deadline = time.time() + 60
    while time.time() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
                    row = c.execute("SELECT frames_done FROM sources").fetchone()
                    done = row[0] if row else 0
            except sqlite3.Error:
                done = 0
        if done > 0:
            break
        time.sleep(0.01)
    watch.kill()  # kill -9: no flush, no goodbye
    watch.wait()
    assert 0 < done < 1_000_000, f"not killed mid-file (frames_done={done})"
    r = ta("watch", "--naming", "dns", dump, "--once", "--store", f"sqlite:{db}")
    assert query_endpoints(db) == truth["endpoints"], r.stderr


def test_watch_delete_after_and_ignored_names(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    src = pathlib.Path(__file__).resolve().parent.parent / "data" / "arkime_v6.pcap"
    (dump / "a.pcap").write_bytes(src.read_bytes())
    (dump / ".b.pcap.part").write_bytes(src.read_bytes())
    (dump / "c.pcap.tmp").write_bytes(src.read_bytes())
    (dump / "junk.pcap").write_text("not a capture")
    whole = pathlib.Path(__file__).resolve().parent.parent / "data" / "chrissanders_http_espn.pcapng"
    (dump / "cut.pcapng").write_bytes(whole.read_bytes()[:300_000])
    db = tmp_path / "t.db"
    r = ta("watch", "--naming", "dns", dump, "--once", "--delete-after", "--store", f"sqlite:{db}")
    left = sorted(p.name for p in dump.iterdir())
    # Damaged or unreadable files stay for a person to look at; the rest go.
    assert left == [".b.pcap.part", "c.pcap.tmp", "cut.pcapng", "junk.pcap"], left
    assert "junk.pcap" in r.stderr
    assert "cut.pcapng" in r.stderr and "records ingested before it" in r.stderr
    cut_db = tmp_path / "cut.db"
    ta("analyze", "--naming", "dns", "--quiet", "--store", f"sqlite:{cut_db}", dump / "cut.pcapng", check=False)
    # The damaged file gave exactly what tshark reads in its complete blocks.
    readable = tmp_path / "readable.pcapng"
    readable.write_bytes(readable_prefix((dump / "cut.pcapng").read_bytes()))
    ref = compute(str(readable))
    assert sum(e["packets"] for e in ref["endpoints"]) > 0
    assert query_endpoints(cut_db) == expected_rows(ref)
    single = tmp_path / "single.db"
    ta("analyze", "--naming", "dns", "--quiet", "--store", f"sqlite:{single}", src, dump / "cut.pcapng", check=False)
    assert query_endpoints(db) == query_endpoints(single)


def test_watch_carries_dns_across_files_and_restarts(tmp_path):
    """DNS answers in one file name the traffic of the next, across a restart."""
    src = pathlib.Path(__file__).resolve().parent.parent / "data" / "generated_small.pcap"
    frames = src.read_bytes()
    # Split after the pcap header + first 20 records: the DNS exchanges are
    # at the start, much of the traffic after.
    import struct
    off, n = 24, 0
    while n < 20:
        caplen = struct.unpack_from("<I", frames, off + 8)[0]
        off += 16 + caplen
        n += 1
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "1.pcap").write_bytes(frames[:off])
    db = tmp_path / "t.db"
    ta("watch", "--naming", "dns", dump, "--once", "--store", f"sqlite:{db}")
    (dump / "2.pcap").write_bytes(frames[:24] + frames[off:])
    ta("watch", "--naming", "dns", dump, "--once", "--store", f"sqlite:{db}")
    whole = tmp_path / "whole.db"
    ta("analyze", "--naming", "dns", "--quiet", "--store", f"sqlite:{whole}", src)
    assert query_endpoints(db) == query_endpoints(whole)


def test_config_file_and_flags_override(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    src = pathlib.Path(__file__).resolve().parent.parent / "data" / "arkime_v6.pcap"
    (dump / "a.pcap").write_bytes(src.read_bytes())
    from_file = tmp_path / "from-file.db"
    from_flag = tmp_path / "from-flag.db"
    conf = tmp_path / "ta.toml"
    conf.write_text(f'[watch]\nstore = "sqlite:{from_file}"\nonce = true\nports = "22"\n')
    ta("--config", conf, "watch", "--naming", "dns", dump)
    assert from_file.exists()
    assert {r["endpoint"] for r in query_endpoints(from_file)} == {"kiwi.itojun.org"}
    ta("--config", conf, "watch", "--naming", "dns", dump, "--store", f"sqlite:{from_flag}")
    assert from_flag.exists()
    r = ta("--config", tmp_path / "missing.toml", "watch", dump, check=False)
    assert r.returncode == 2 and "missing.toml" in r.stderr


def test_live_bad_input_is_a_one_line_error(tmp_path):
    for args, needle in [
        (["run", "--naming", "dns", "-i", "no-such-if0", "--store", "none"], "no-such-if0"),
        (["capture", "-i", "no-such-if0", "--out", tmp_path], "no-such-if0"),
        (["capture", "-i", "lo", "--rotate", "soon", "--out", tmp_path], "--rotate"),
        (["watch", tmp_path / "nowhere"], "nowhere"),
        (["capture", "-i", "lo", "--out", tmp_path / "nowhere"], "nowhere"),
    ]:
        r = ta(*args, check=False)
        assert r.returncode == 2, (args, r.stderr)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and needle in lines[0], (args, r.stderr)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setcap") is None,
                    reason="needs root to grant capabilities, and setcap")
def test_runs_without_root_with_only_the_capture_capabilities():
    """The documented non-root setup: the binary holds cap_net_raw and
    cap_net_admin, the user is nobody."""
    d = pathlib.Path(tempfile.mkdtemp())
    try:
        os.chmod(d, 0o755)
        exe = d / "traffic-analyzer"
        shutil.copy(BIN, exe)
        os.chmod(exe, 0o755)
        subprocess.run(["setcap", "cap_net_raw,cap_net_admin+eip", exe], check=True)
        p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                              exe, "run", "--naming", "dns", "-i", "lo", "--store", "none", "--metrics-listen", ""],
                             stderr=subprocess.PIPE, text=True)
        wait_for_line(p, "capturing on lo")
        stop(p)
        # Without the capabilities the same user gets the one-line hint.
        plain = d / "plain"
        shutil.copy(BIN, plain)
        os.chmod(plain, 0o755)
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            plain, "run", "--naming", "dns", "-i", "lo", "--store", "none", "--metrics-listen", ""],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "setcap" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)
