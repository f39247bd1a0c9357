#!/usr/bin/env python3
"""Seed tools for the fuzz targets (no dependencies beyond Python 3).

  vhdx2sparse.py sparse IMAGE OUT      image -> image_sparse encoding (see src/sparse.rs)
  vhdx2sparse.py slice IMAGE OUT KIND  cut a structure for a parser target:
        header1 | header2 | region1 | region2 -> 1 flag byte (0) + the structure, trailing
        zeros trimmed; metadata -> the metadata table (via region table 1), trimmed

Sparse encoding: per 4 KiB page, all-zero pages are skipped, pages that repeat one byte
become fill records (runs of equal pages merged), other pages literal records with leading
and trailing zeros trimmed (adjacent literal pages merged).
"""
import struct, sys

PAGE = 4096

def sparse(data):
    out = bytearray(struct.pack('<Q', len(data)))
    recs = []  # [kind, offset, payload]; kind 'L' literal bytes, 'F' (count, byte)
    for off in range(0, len(data), PAGE):
        p = data[off:off + PAGE]
        if not any(p):
            continue
        if p.count(p[0]) == len(p):
            last = recs[-1] if recs else None
            if last and last[0] == 'F' and last[2][1] == p[0] and last[1] + last[2][0] == off:
                last[2] = (last[2][0] + len(p), p[0])
            else:
                recs.append(['F', off, (len(p), p[0])])
            continue
        lo = next(i for i, b in enumerate(p) if b)
        hi = len(p) - next(i for i, b in enumerate(reversed(p)) if b)
        last = recs[-1] if recs else None
        if last and last[0] == 'L' and last[1] + len(last[2]) == off and lo == 0:
            last[2] += p[:hi]
        else:
            recs.append(['L', off + lo, bytearray(p[lo:hi])])
    for kind, off, pay in recs:
        if kind == 'F':
            out += struct.pack('<BQIB', 1, off, pay[0], pay[1])
        else:
            out += struct.pack('<BQI', 0, off, len(pay)) + pay
    return bytes(out)

def trim(b):
    return bytes(b).rstrip(b'\0')

def main():
    cmd, image, outp = sys.argv[1:4]
    data = open(image, 'rb').read()
    if cmd == 'sparse':
        res = sparse(data)
    else:
        kind = sys.argv[4]
        if kind in ('header1', 'header2'):
            off = 0x10000 if kind == 'header1' else 0x20000
            res = b'\0' + trim(data[off:off + 4096])
        elif kind in ('region1', 'region2'):
            off = 0x30000 if kind == 'region1' else 0x40000
            res = b'\0' + trim(data[off:off + 65536])
        elif kind == 'metadata':
            rt = data[0x30000:0x40000]
            n = struct.unpack_from('<I', rt, 8)[0]
            md = bytes.fromhex('06a27c8b90479a4bb8fe575f050f886e')
            for i in range(min(n, 2047)):
                e = rt[16 + 32 * i:48 + 32 * i]
                if e[:16] == md:
                    off = struct.unpack_from('<Q', e, 16)[0]
                    res = trim(data[off:off + 65536])
                    break
            else:
                sys.exit('no metadata region')
        else:
            sys.exit('unknown kind ' + kind)
    open(outp, 'wb').write(res)

if __name__ == '__main__':
    main()
