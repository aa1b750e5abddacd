#!/usr/bin/env python3
"""make_seeds.py - writes the hand-made seeds of tests/fuzz/corpus/<name>/
(seed-*). Run from anywhere: python3 tests/fuzz/make_seeds.py. Crash
reproducers found by the fuzzers live next to them (crash-*) and are not
touched. A tiny msgpack encoder is inlined: Debian's python3 has none."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def mp(v):
    """msgpack bytes of v: None, bool, int, float, str, bytes, list, dict, Ext."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v) if v >= 1 << 32 else b"\xce" + struct.pack(">I", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xda" + struct.pack(">H", len(b))) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    if isinstance(v, Ext):
        n = len(v.body)
        head = {1: b"\xd4", 2: b"\xd5", 4: b"\xd6", 8: b"\xd7", 16: b"\xd8"}.get(n)
        head = head or b"\xc7" + bytes([n])
        return head + struct.pack("b", v.type) + v.body
    raise TypeError(v)


class Ext:
    def __init__(self, type_, body):
        self.type, self.body = type_, body


def ref(ref_id, type_=5):
    return Ext(82, struct.pack(">QI", ref_id, type_))


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for i, data in enumerate(seeds):
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(data)


def error_chain(links, cause=0):
    return mp([[[c, m, o, t, a] for (c, m, o, t, a) in links], cause])


write("error", [
    error_chain([(-3, "task failed", "f", 7, 0)]),
    error_chain([(-11, "boom", None, 1, 2), (-3, "", "actor.method", 2**40, 0)], 12345),
    error_chain([(-1, "x" * 40, "o", 0, 4294967295)] * 3, 2**64 - 1),
    error_chain([(-2, None, None, 0, 0)]),
    error_chain([(-5, "m", "o", 1, 1)]) + b"\x00",  # trailing byte: refused
    mp([[], 0]),                                     # no link: refused
    mp([[[-3, 7, None, 0, 0]], 0]),                  # message not a str: refused
])

write("msgpack_refs", [
    mp(None),
    mp(-12345),
    mp(2**63),
    mp(3.5),
    mp("a string"),
    mp(ref(1)),
    mp([ref(1), ref(2, 2), ref(3)]),
    mp({"k": ref(2), "nested": [1, [ref(1), {"x": ref(3)}]], ref(5): b"bin"}),
    mp([ref(4), ref(1)]),                              # id 4 -> a released object
    mp([Ext(82, b"\x00" * 12)]),                       # id 0: refused
    mp([Ext(82, b"\x01" * 11)]),                       # wrong size: refused
    mp([Ext(7, b"other ext"), True, False, None]),
    mp([[[[[[[[ref(2)]]]]]]]]),
])


def segment(sizes, body, ops):
    """k, sizes (u16 le), records' bytes, then damage ops [kind, pos lo, pos hi, val]."""
    out = bytes([len(sizes) - 1]) + b"".join(struct.pack("<H", s) for s in sizes)
    out += body
    for kind, pos, val in ops:
        out += bytes([kind]) + struct.pack("<H", pos) + bytes([val])
    return out


def body(n):
    return bytes((i * 37 + 11) & 0xFF for i in range(n))


write("spill_segment", [
    segment([16], body(16), []),
    segment([0, 5, 100], body(105), []),
    segment([40, 40], body(80), [(0, 3, 0x10)]),           # one byte flipped
    segment([40, 40], body(80), [(1, 60, 0)]),             # truncated in the second
    segment([8, 8, 8], body(24), [(2, 0, 30)]),            # garbage appended
    segment([33, 1], body(34), [(3, 0, 5)]),               # a checksum bit flipped
    segment([33, 1], body(34), [(3, 1, 200)]),             # offset past INT64_MAX
    segment([4096, 64], body(100), [(0, 4100, 0xFF), (1, 9000, 0)]),  # pattern-filled tail
])
