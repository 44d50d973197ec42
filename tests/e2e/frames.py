"""Frames and capture files written byte by byte, for the end-to-end tests
that need exact hostile input (TLS server names, odd names): a TLS record
with a ClientHello, an Ethernet/IPv4/TCP frame, a classic pcap file."""
import struct


def client_hello(names):
    """TLS records holding one ClientHello whose server_name list holds
    `names` (RFC 6066 section 3: host_name entries), split into records of at
    most 2^14 bytes; no extension at all for None."""
    exts = b""
    if names is not None:
        lst = b"".join(b"\x00" + struct.pack("!H", len(n)) + n for n in names)
        sni = struct.pack("!H", len(lst)) + lst
        exts = struct.pack("!HH", 0, len(sni)) + sni
    body = (b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" +
            struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    out = b""
    for i in range(0, len(hs), 16384):
        chunk = hs[i:i + 16384]
        out += b"\x16\x03\x01" + struct.pack("!H", len(chunk)) + chunk
    return out


def ipv4_tcp(src, dst, sport, dport, flags, seq, payload):
    """An Ethernet frame with an IPv4/TCP packet (no checksums)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 6, 0, bytes(src), bytes(dst))
    return b"\x02" * 12 + b"\x08\x00" + ip + tcp + payload


def write_pcap(path, frames):
    """A classic little-endian µs pcap (Ethernet), one frame a second."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(fr), len(fr)))
            f.write(fr)
