"""`watch` reads only regular files of its folder: a symbolic link (to a
capture elsewhere, or to a private file) or a FIFO put there is not read,
is counted in /metrics and reported on one line; --follow-symlinks opts in.
The expected endpoints are those `analyze` gives on the files that should
have been read."""
import os
import pathlib
import re
import signal
import subprocess
import time

from prometheus_helper import free_port, http_get
from test_golden import BIN, query_endpoints, ta

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"


def layout(tmp_path):
    """dump/ with one capture of its own, a link to a capture outside, a link
    to a private (0600) file outside and a FIFO. Each capture names different
    endpoints, so reading one shows in the store."""
    dump, outside = tmp_path / "dump", tmp_path / "outside"
    dump.mkdir()
    outside.mkdir()
    own = dump / "a.pcap"
    own.write_bytes((DATA / "arkime_v6.pcap").read_bytes())
    elsewhere = outside / "elsewhere.pcapng"
    elsewhere.write_bytes((DATA / "chrissanders_http_espn.pcapng").read_bytes())
    private = outside / "shadow"
    private.write_bytes((DATA / "ndpi_chrome.pcap").read_bytes())
    private.chmod(0o600)
    (dump / "b.pcapng").symlink_to(elsewhere)
    (dump / "shadow").symlink_to(private)
    os.mkfifo(dump / "c.pcap")
    return dump, own, elsewhere, private


def analyze(tmp_path, name, *files):
    db = tmp_path / name
    ta("analyze", "--naming", "dns", "--quiet", "--store", f"sqlite:{db}", *files)
    return query_endpoints(db)


def metric(text, reason):
    m = re.search(r'^traffic_ingest_files_skipped_total\{reason="%s"\} (\S+)$' % reason, text, re.M)
    return float(m.group(1)) if m else None


def test_links_and_fifos_are_skipped_counted_and_reported(tmp_path):
    dump, own, elsewhere, private = layout(tmp_path)
    db = tmp_path / "t.db"
    port = free_port()
    proc = subprocess.Popen([BIN, "watch", "--naming", "dns", dump, "--store", f"sqlite:{db}",
                             "--metrics-listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.PIPE, text=True)
    try:
        # Wait (bounded) for the initial scan's verdicts in /metrics.
        deadline = time.time() + 60
        text = ""
        while time.time() < deadline:
            try:
                _, text = http_get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            except OSError:
                text = ""
            if metric(text, "symlink") == 2 and metric(text, "not_regular_file") == 1 \
                    and "traffic_capture_files_ingested_total 1" in text:
                break
            time.sleep(0.2)
        assert metric(text, "symlink") == 2, text
        assert metric(text, "not_regular_file") == 1, text
        assert "traffic_capture_files_ingested_total 1" in text
        # A link renamed into place (MOVED_TO) is not followed either.
        tmp_link = dump / ".late.tmp"
        tmp_link.symlink_to(private)
        os.rename(tmp_link, dump / "late.pcap")
        deadline = time.time() + 60
        while time.time() < deadline and metric(text, "symlink") != 3:
            time.sleep(0.2)
            _, text = http_get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        assert metric(text, "symlink") == 3, text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    for name in ("b.pcapng", "shadow", "late.pcap"):
        hits = [l for l in lines if f"{dump / name}: skipped: a symbolic link" in l]
        assert len(hits) == 1, err
    assert len([l for l in lines if f"{dump / 'c.pcap'}: skipped: a FIFO" in l]) == 1, err
    # Only the folder's own capture was read.
    assert query_endpoints(db) == analyze(tmp_path, "own.db", own)
    assert (dump / "c.pcap").exists() and (dump / "shadow").is_symlink()


def test_follow_symlinks_reads_the_links_but_never_a_fifo(tmp_path):
    dump, own, elsewhere, private = layout(tmp_path)
    db = tmp_path / "t.db"
    r = ta("watch", "--naming", "dns", dump, "--once", "--follow-symlinks", "--store", f"sqlite:{db}")
    assert query_endpoints(db) == analyze(tmp_path, "all.db", own, elsewhere, private)
    assert "symbolic link" not in r.stderr
    assert len([l for l in r.stderr.splitlines() if "c.pcap: skipped: a FIFO" in l]) == 1, r.stderr


def test_delete_after_never_deletes_what_it_skipped(tmp_path):
    dump, own, elsewhere, private = layout(tmp_path)
    db = tmp_path / "t.db"
    ta("watch", "--naming", "dns", dump, "--once", "--delete-after", "--store", f"sqlite:{db}")
    assert sorted(p.name for p in dump.iterdir()) == ["b.pcapng", "c.pcap", "shadow"]
    assert elsewhere.exists() and private.exists()
