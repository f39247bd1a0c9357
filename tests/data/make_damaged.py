#!/usr/bin/env python3
"""Makes corpus/images/damaged-multi.vhdx from the qemu-img sample: several independent
faults at once (headers, region tables, metadata, BAT, hidden data). Kept so the committed
sample can be regenerated and its faults read off in one place."""
import struct, sys

src, dst = sys.argv[1], sys.argv[2]
b = bytearray(open(src, 'rb').read())

# Header 1: one reserved byte flipped -> checksum mismatch (HDR-002, HDR-006).
b[0x10000 + 200] ^= 0xFF
# Region table 2: signature destroyed (RGN-001, RGN-005).
b[0x40000:0x40004] = b'XXXX'
# Hidden data in the reserved tail of the header section (LAYOUT-006).
b[0x60000:0x60010] = b'hidden-evidence!'
# Metadata: Virtual Disk Size made not a multiple of the 512-byte sector (META-028, META-031).
meta = struct.unpack_from('<Q', b, 0x30000 + 16 + 32 + 16)[0]  # region entry 1 = metadata
n = struct.unpack_from('<H', b, meta + 10)[0]
vds_guid = bytes.fromhex('2442a52f1bcd7648b2115dbed83bf4b8')
for i in range(n):
    e = meta + 32 + 32 * i
    if b[e:e + 16] == vds_guid:
        off = struct.unpack_from('<I', b, e + 16)[0]
        struct.pack_into('<Q', b, meta + off, 64 * 1024 * 1024 + 100)
# BAT (region entry 0): block 5 past the end of the file, block 6 a duplicate of block 0.
bat = struct.unpack_from('<Q', b, 0x30000 + 16 + 16)[0]
first = struct.unpack_from('<Q', b, bat)[0]
struct.pack_into('<Q', b, bat + 8 * 5, (4000 << 20) | 6)
struct.pack_into('<Q', b, bat + 8 * 6, first)
# Reserved BAT bits on block 7 (BAT-002).
struct.pack_into('<Q', b, bat + 8 * 7, struct.unpack_from('<Q', b, bat + 8 * 7)[0] | 0x100)
open(dst, 'wb').write(b)
