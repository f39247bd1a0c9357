#!/usr/bin/env python3
"""Damages a qemu-img sample image in several independent ways and prints, per image, what
`qemu-img check` and `vhdx-check check` say. Usage:
    python3 tests/data/compare_qemu.py corpus/images/qemu-dynamic-1M.vhdx target/release/vhdx-check OUTDIR
Prints a Markdown table (for notes and BENCHMARKS-style records)."""
import json, os, struct, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vhdx_crc import reseal  # noqa: E402

src, tool, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
base = open(src, 'rb').read()

def bat_off(b):
    return struct.unpack_from('<Q', b, 0x30000 + 16 + 16)[0]

def meta_off(b):
    return struct.unpack_from('<Q', b, 0x30000 + 16 + 32 + 16)[0]

def header1_crc(b):
    b[0x10000 + 300] ^= 1
def both_headers(b):
    b[0x10000] = 0; b[0x20000] = 0
def region1_signature(b):
    b[0x30000:0x30004] = b'XXXX'
def both_region_tables(b):
    b[0x30000 + 100] ^= 1; b[0x40000 + 100] ^= 1
def bat_past_eof(b):
    struct.pack_into('<Q', b, bat_off(b) + 8 * 10, (9000 << 20) | 6)
def bat_duplicate(b):
    o = bat_off(b)
    struct.pack_into('<Q', b, o + 8 * 10, struct.unpack_from('<Q', b, o)[0])
def bat_reserved_state(b):
    struct.pack_into('<Q', b, bat_off(b) + 8 * 11, 4)
def block_over_metadata(b):
    struct.pack_into('<Q', b, bat_off(b) + 8 * 12, meta_off(b) | 6)
def metadata_duplicate_item(b):
    m = meta_off(b)
    b[m + 32 + 32:m + 32 + 48] = b[m + 32:m + 48]   # entry 1 takes entry 0's ItemId
def block_size_3m(b):
    m = meta_off(b)
    fp = struct.unpack_from('<I', b, m + 32 + 16)[0]  # entry 0 is File Parameters in qemu images
    struct.pack_into('<I', b, m + fp, 3 << 20)
def unknown_required_region(b):
    n = struct.unpack_from('<I', b, 0x30000 + 8)[0]
    e = 0x30000 + 16 + 32 * n
    b[e:e + 16] = bytes(range(16)); struct.pack_into('<QII', b, e + 16, 6 << 20, 1 << 20, 1)
    struct.pack_into('<I', b, 0x30000 + 8, n + 1)
    reseal(b, 0x30000, 65536)
    b[0x40000:0x50000] = b[0x30000:0x40000]
def current_header_version2(b):
    h = 0x20000 if struct.unpack_from('<Q', b, 0x20008)[0] > struct.unpack_from('<Q', b, 0x10008)[0] else 0x10000
    struct.pack_into('<H', b, h + 66, 2); reseal(b, h, 4096)
def truncated(b):
    del b[(5 << 20):]
def hidden_data(b):
    b[0x70000:0x70010] = b'exfiltrated-data'
    b += b'appended-after-last-object'.ljust(1 << 20, b'\0')

cases = [header1_crc, both_headers, region1_signature, both_region_tables, bat_past_eof,
         bat_duplicate, bat_reserved_state, block_over_metadata, metadata_duplicate_item,
         block_size_3m, unknown_required_region, current_header_version2, truncated, hidden_data]

print('| image | qemu-img check | vhdx-check (exit; errors/warnings/info; rule ids) |')
print('|---|---|---|')
for case in cases:
    b = bytearray(base)
    case(b)
    path = os.path.join(out, case.__name__ + '.vhdx')
    open(path, 'wb').write(b)
    q = subprocess.run(['qemu-img', 'check', path], capture_output=True, text=True)
    qtext = (q.stdout + q.stderr).strip().splitlines()
    qsum = ' / '.join(l for l in qtext if l and not l.startswith('Data may')) [:160]
    v = subprocess.run([tool, 'check', '--format', 'json', path], capture_output=True, text=True)
    doc = json.loads(v.stdout)['images'][0]
    s = doc['summary']
    ids = sorted({f['rule'] for f in doc['findings'] if f['severity'] != 'info'} | set(doc['suppressed']))
    print(f"| {case.__name__} | exit {q.returncode}: {qsum.replace('|', '/')} | exit {v.returncode}; {s['error']}/{s['warning']}/{s['info']}; {' '.join(ids)} |")
