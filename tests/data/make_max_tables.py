#!/usr/bin/env python3
"""Crafts a sparse image that claims the largest legal tables, for resource-bound figures:
a 4095 MiB log, a 4095 MiB BAT region (64 TiB disk, 1 MiB blocks), 2047 region-table entries
(2045 unknown optional regions), 2047 metadata entries, headers and tables with valid CRCs.
Usage: make_max_tables.py SRC.vhdx OUT.vhdx   (SRC: a qemu-img dynamic image, 1 MiB blocks)"""
import os, struct, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vhdx_crc import reseal as seal  # noqa: E402

src, out = sys.argv[1], sys.argv[2]
MIB = 1 << 20
b = bytearray(open(src, 'rb').read()[:4 * MIB])
log_off, log_len = 8 * MIB, 4095 * MIB
meta_off = log_off + log_len
bat_off = meta_off + MIB
bat_len = 4095 * MIB
end = bat_off + bat_len + 16 * MIB
for h in (0x10000, 0x20000):
    struct.pack_into('<IQ', b, h + 68, log_len, log_off)
    seal(b, h, 4096)
# Metadata region: qemu's, moved; 2047 entries (5 known + 2042 unknown optional user items).
meta = bytearray(b[3 * MIB:4 * MIB])
n_known = struct.unpack_from('<H', meta, 10)[0]
for i in range(n_known, 2047):
    e = 32 + 32 * i
    meta[e:e + 16] = struct.pack('<IHH8s', 0x1000 + i, 1, 2, b'maxtable')
    struct.pack_into('<III', meta, e + 16, 0x20000 + 16 * i, 16, 1)  # IsUser
struct.pack_into('<H', meta, 10, 2047)
# Region table: BAT, metadata, then 2045 unknown optional 1 MiB regions past the BAT.
rt = bytearray(65536)
rt[0:4] = b'regi'
struct.pack_into('<I', rt, 8, 2047)
rt[16:32] = bytes.fromhex('6677c22d23f600429d64115e9bfd4a08')
struct.pack_into('<QII', rt, 32, bat_off, bat_len, 1)
rt[48:64] = bytes.fromhex('06a27c8b90479a4bb8fe575f050f886e')
struct.pack_into('<QII', rt, 64, meta_off, MIB, 1)
for i in range(2, 2047):
    e = 16 + 32 * i
    rt[e:e + 16] = struct.pack('<IHH8s', i, 7, 7, b'unknown!')
    struct.pack_into('<QII', rt, e + 16, bat_off + bat_len + (i % 16) * MIB, MIB, 0)
seal(rt, 0, 65536)
b[0x30000:0x40000] = rt
b[0x40000:0x50000] = rt
# Virtual disk size 64 TiB.
for i in range(n_known):
    e = 32 + 32 * i
    if meta[e:e + 16] == bytes.fromhex('2442a52f1bcd7648b2115dbed83bf4b8'):
        off = struct.unpack_from('<I', meta, e + 16)[0]
        struct.pack_into('<Q', meta, off, 64 << 40)
with open(out, 'wb') as f:
    f.write(b[:3 * MIB])
    f.seek(meta_off); f.write(meta)
    f.truncate(end)
