#!/usr/bin/env python3
"""Log images written by QEMU itself, judged by qemu-img and vhdx-check side by side.

qemu-io leaves its log entries in the ring during allocating writes and clears LogGuid on a
clean close. Setting LogGuid back to an entry's (and undoing the BAT update that entry
carries) gives a pending log that QEMU wrote; variants damage it. For each image the table
shows `qemu-img check` (read-only), `qemu-img check -r all` on a copy (QEMU replays the log),
`vhdx-check check`, and for replayable images whether `vhdx-check replay` output passes
`qemu-img check` and reads (qemu-img convert -O raw) the same as QEMU's own replay.
Usage: python3 tests/data/compare_qemu_log.py target/release/vhdx-check OUTDIR"""
import json, os, shutil, struct, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vhdx_crc import reseal  # noqa: E402

tool, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


base = os.path.join(out, 'qemu-io-log.vhdx')
if os.path.exists(base):
    os.remove(base)
run('qemu-img', 'create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', base, '64M')
run('qemu-io', '-c', 'write -P 0xab 0 4M', base)
src = open(base, 'rb').read()
LOG = 0x100000
entries = [p for p in range(LOG, LOG + 0x100000, 4096) if src[p:p + 4] == b'loge']
last = entries[-1]


def current_header(b):
    s1, s2 = struct.unpack_from('<Q', b, 0x10008)[0], struct.unpack_from('<Q', b, 0x20008)[0]
    return 0x20000 if s2 > s1 else 0x10000


def set_guid(b, guid):
    h = current_header(b)
    b[h + 48:h + 64] = guid
    reseal(b, h, 4096)


def pending(b):
    set_guid(b, b[last + 32:last + 48])


def target(b):
    return struct.unpack_from('<Q', b, last + 64 + 16)[0]


def clean_close(b):
    pass


def pending_applied(b):
    pending(b)


def pending_dirty(b):
    pending(b)
    t = target(b)
    b[t:t + 4096] = bytes(4096)


def pending_dirty_torn(b):
    pending_dirty(b)
    b[last + 4096 + 100] ^= 0xFF       # data sector byte: the entry's CRC no longer matches


def guid_of_no_entry(b):
    set_guid(b, bytes(range(16)))


def dirty_truncated(b):
    pending_dirty(b)
    del b[0x800000:]                    # below the head's FlushedFileOffset


cases = [clean_close, pending_applied, pending_dirty, pending_dirty_torn, guid_of_no_entry,
         dirty_truncated]


def qsum(r):
    lines = [l for l in (r.stdout + r.stderr).strip().splitlines()
             if l and not l.startswith(('Data may', 'To replay', "qemu-img check -r"))]
    return f"exit {r.returncode}: " + ' / '.join(lines)[:110].replace('|', '/')


def raw(path):
    dst = path + '.raw'
    r = run('qemu-img', 'convert', '-O', 'raw', path, dst)
    data = open(dst, 'rb').read() if r.returncode == 0 else None
    if os.path.exists(dst):
        os.remove(dst)
    return data


print(f'QEMU entries in the ring: {len(entries)} (last at {hex(last)}, it updates {hex(target(bytearray(src)))})')
print()
print('| image | qemu-img check | qemu-img check -r all (copy) | vhdx-check (exit; e/w/i; non-info ids + LOG ids) | vhdx-check replay |')
print('|---|---|---|---|---|')
for case in cases:
    b = bytearray(src)
    case(b)
    path = os.path.join(out, case.__name__ + '.vhdx')
    open(path, 'wb').write(b)
    q = run('qemu-img', 'check', path)
    copy = path + '.qemu-replayed'
    shutil.copyfile(path, copy)
    qr = run('qemu-img', 'check', '-r', 'all', copy)
    v = run(tool, 'check', '--format', 'json', path)
    doc = json.loads(v.stdout)['images'][0]
    s = doc['summary']
    ids = sorted({f['rule'] for f in doc['findings']
                  if f['severity'] != 'info' or f['rule'].startswith('LOG')} | set(doc['suppressed']))
    ours = path + '.replayed'
    if os.path.exists(ours):
        os.remove(ours)
    rp = run(tool, 'replay', path, ours)
    if rp.returncode == 0:
        qc = run('qemu-img', 'check', ours)
        a, b2 = raw(ours), raw(copy)
        same = 'same guest bytes as QEMU\'s replay' if a is not None and a == b2 else 'guest bytes differ from QEMU\'s replay'
        rtext = f"exit 0; qemu-img check exit {qc.returncode}; {same}"
    else:
        rtext = f"exit {rp.returncode}: {rp.stderr.strip()[:80]}"
    print(f"| {case.__name__} | {qsum(q)} | {qsum(qr)} | exit {v.returncode}; {s['error']}/{s['warning']}/{s['info']}; {' '.join(ids)} | {rtext} |")
