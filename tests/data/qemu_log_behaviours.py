#!/usr/bin/env python3
"""What QEMU does with hand-built pending logs, side by side with vhdx-check.

Each case starts from a qemu-img image (64 MiB, 1 MiB blocks, blocks 0..3 written by
qemu-io), sets LogGuid in the current header and writes log entries by hand. Entries change
the BAT sector so that blocks read as zeros: which blocks QEMU zeroes shows which entries it
replayed. For each case: `qemu-img check -r all` on a copy (QEMU replays), then
`qemu-img convert -O raw` of the copy, its SHA-256 against vhdx-check's virtual digest, and
the LOG ids vhdx-check reports.
Usage: python3 tests/data/qemu_log_behaviours.py target/release/vhdx-check OUTDIR [CASE...]"""
import hashlib, json, os, shutil, struct, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vhdx_crc import crc32c, reseal  # noqa: E402

tool, out = sys.argv[1], sys.argv[2]
only = set(sys.argv[3:])
os.makedirs(out, exist_ok=True)
LOG, RING, MIB = 0x100000, 0x100000, 1 << 20
GUID = bytes(range(0x40, 0x50))


def run(*cmd):
    return subprocess.run(cmd, capture_output=True)


base = os.path.join(out, 'base.vhdx')
if not os.path.exists(base):
    run('qemu-img', 'create', '-q', '-f', 'vhdx', '-o', 'block_size=1M', base, '64M')
    run('qemu-io', '-c', 'write -P 0xab 0 4M', base)
SRC = open(base, 'rb').read()


def bat_offset(b):
    for i in range(int.from_bytes(b[0x30008:0x3000c], 'little')):
        e = 0x30010 + 32 * i
        if b[e:e + 4] == bytes.fromhex('6677c22d'):
            return int.from_bytes(b[e + 16:e + 24], 'little')
    raise SystemExit('no BAT')


BAT = bat_offset(SRC)


def current_header(b):
    s1, s2 = struct.unpack_from('<Q', b, 0x10008)[0], struct.unpack_from('<Q', b, 0x20008)[0]
    return 0x20000 if s2 > s1 else 0x10000


def set_guid(b, guid=GUID):
    h = current_header(b)
    b[h + 48:h + 64] = guid
    reseal(b, h, 4096)


def bat_sector(b, zeroed):
    """The BAT's first 4 KiB with the entries of `zeroed` blocks set to NOT_PRESENT."""
    s = bytearray(b[BAT:BAT + 4096])
    for k in zeroed:
        s[8 * k:8 * k + 8] = bytes(8)
    return bytes(s)


def entry(seq, tail, data=(), zeros=(), ffo=None, lfo=None, pad=0, guid=GUID,
          bad_sig=False, bad_seq=False, bad_desc=False, length=None):
    """data: [(file_offset, 4096 bytes)], zeros: [(file_offset, length)]."""
    n = len(data) + len(zeros)
    d = (n + 2 + 127) // 128
    length = length if length is not None else (d + len(data) + pad) * 4096
    ffo = len(SRC) if ffo is None else ffo
    lfo = len(SRC) if lfo is None else lfo
    b = bytearray((d + len(data) + pad) * 4096)
    struct.pack_into('<4sIIIQII16sQQ', b, 0, b'loge', 0, length, tail, seq, n, 0, guid, ffo, lfo)
    slot = 64
    for off, sec in data:
        sig = b'desX' if bad_desc else b'desc'
        struct.pack_into('<4s4s8sQQ', b, slot, sig, sec[4092:], sec[:8], off, seq)
        slot += 32
    for off, ln in zeros:
        struct.pack_into('<4sIQQQ', b, slot, b'zero', 0, ln, off, seq)
        slot += 32
    for j, (off, sec) in enumerate(data):
        p = (d + j) * 4096
        s = seq + 1 if bad_seq else seq
        struct.pack_into('<4sI', b, p, b'daXa' if bad_sig else b'data', s >> 32)
        b[p + 8:p + 4092] = sec[8:4092]
        struct.pack_into('<I', b, p + 4092, s & 0xFFFFFFFF)
    crc_len = min(length, len(b)) if length else 4096
    struct.pack_into('<I', b, 4, 0)
    struct.pack_into('<I', b, 4, crc32c(bytes(b[:crc_len])))
    return bytes(b)


def put(b, ring_offset, e):
    for i in range(0, len(e), 4096):
        p = LOG + (ring_offset + i) % RING
        b[p:p + 4096] = e[i:i + 4096]


def z(*blocks):
    return [(BAT, bat_sector(SRC, blocks))]


FREE = BAT + 0x10000      # unused BAT region space: a harmless zero target


def case_two_sequences_first_vs_head(b):
    """R1 at 0: [100] zeroes block 0. R2 at 0x80000: [98, 99, 100, 101], its head zeroes
    block 1. The specification takes R2 (head 101), QEMU R1 (first 100 > 98)."""
    put(b, 0, entry(100, 0, data=z(0)))
    at = 0x80000
    for s in (98, 99, 100):
        e = entry(s, 0x80000, zeros=[(FREE, 4096)])
        put(b, at, e)
        at += len(e)
    put(b, at, entry(101, 0x80000, data=z(1)))


def case_equal_sequence_numbers(b):
    """[E1 100 zeroes block 0, E2 100 zeroes block 1] at 0, both Tail 0."""
    e1 = entry(100, 0, data=z(0))
    put(b, 0, e1)
    put(b, len(e1), entry(100, 0, data=z(1)))


def case_older_entry_before_tail(b):
    """[E1 100 Tail 0 zeroes block 0, E2 101 Tail E2 writes zeros to free space]."""
    e1 = entry(100, 0, data=z(0))
    put(b, 0, e1)
    put(b, len(e1), entry(101, len(e1), zeros=[(FREE, 4096)]))


def case_stale_entry_with_bad_descriptor(b):
    """Active [100] zeroes block 0; an older entry (seq 50) elsewhere has a bad descriptor."""
    put(b, 0, entry(100, 0, data=z(0)))
    put(b, 0x80000, entry(50, 0x80000, data=z(2), bad_desc=True))


def case_newer_entry_with_bad_descriptor(b):
    put(b, 0, entry(100, 0, data=z(0)))
    put(b, 0x80000, entry(150, 0x80000, data=z(2), bad_desc=True))


def case_data_sector_bad_signature(b):
    put(b, 0, entry(100, 0, data=z(0), bad_sig=True))


def case_data_sector_bad_sequence(b):
    put(b, 0, entry(100, 0, data=z(0), bad_seq=True))


def case_127_descriptors(b):
    put(b, 0, entry(100, 0, data=z(0), zeros=[(FREE + 4096 * i, 4096) for i in range(126)]))


def case_127_zero_descriptors(b):
    put(b, 0, entry(100, 0, zeros=[(FREE + 4096 * i, 4096) for i in range(127)]))


def case_200_zero_descriptors(b):
    put(b, 0, entry(100, 0, zeros=[(FREE + 4096 * i, 4096) for i in range(200)]))


def case_stale_entry_with_127_descriptors(b):
    put(b, 0, entry(100, 0, data=z(0)))
    put(b, 0x80000, entry(50, 0x80000, zeros=[(FREE + 4096 * i, 4096) for i in range(127)]))


def case_stale_127_descriptors_bad_crc(b):
    put(b, 0, entry(100, 0, data=z(0)))
    e = bytearray(entry(50, 0x80000, zeros=[(FREE + 4096 * i, 4096) for i in range(127)]))
    e[4] ^= 1
    put(b, 0x80000, bytes(e))


def case_126_descriptors(b):
    put(b, 0, entry(100, 0, data=z(0), zeros=[(FREE + 4096 * i, 4096) for i in range(125)]))


def case_padded_single_entry(b):
    put(b, 0, entry(100, 0, data=z(0), pad=1))


def case_padded_first_of_two(b):
    e1 = entry(100, 0, data=z(0), pad=1)
    put(b, 0, e1)
    put(b, len(e1), entry(101, 0, data=z(0, 1)))


def case_no_valid_entry(b):
    put(b, 0, entry(100, 0, data=z(0), guid=bytes(16)))


def case_last_file_offset_2_63(b):
    put(b, 0, entry(100, 0, data=z(0), lfo=1 << 63))


def case_wrapped_sequence(b):
    """[E1 100 at ring end - 4 KiB.. wrapping, E2 101 at 4 KiB] all Tail E1: E1 zeroes 0,
    E2 zeroes 0 and 1."""
    e1 = entry(100, RING - 4096, data=z(0))
    put(b, RING - 4096, e1)
    put(b, 4096, entry(101, RING - 4096, data=z(0, 1)))


def case_logical_sector_4096(b):
    put(b, 0, entry(100, 0, data=z(0)))
    # Logical Sector Size item: find it in the metadata table.
    for i in range(int.from_bytes(b[0x30008:0x3000c], 'little')):
        e = 0x30010 + 32 * i
        if b[e:e + 4] == bytes.fromhex('06a27c8b'):
            md = int.from_bytes(b[e + 16:e + 24], 'little')
    n = int.from_bytes(b[md + 10:md + 12], 'little')
    for k in range(n):
        e = md + 32 + 32 * k
        if b[e:e + 4] == bytes.fromhex('1dbf4181'):
            off = int.from_bytes(b[e + 16:e + 20], 'little')
            b[md + off:md + off + 4] = (4096).to_bytes(4, 'little')


CASES = [v for k, v in sorted(globals().items()) if k.startswith('case_')]


def sha(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            c = f.read(1 << 20)
            if not c:
                return h.hexdigest()
            h.update(c)


print('| case | qemu-img check -r all | QEMU raw = vhdx-check virtual | vhdx-check exit; LOG ids (non-info) | LOG-070 |')
print('|---|---|---|---|---|')
for case in CASES:
    name = case.__name__[5:]
    if only and name not in only:
        continue
    b = bytearray(SRC)
    set_guid(b)
    case(b)
    path = os.path.join(out, name + '.vhdx')
    open(path, 'wb').write(b)
    copy = path + '.qemu'
    shutil.copyfile(path, copy)
    qr = run('qemu-img', 'check', '-r', 'all', copy)
    qtext = f"exit {qr.returncode}" + (': ' + qr.stderr.decode().strip().splitlines()[-1][:70] if qr.returncode and qr.stderr else '')
    rawp = copy + '.raw'
    cv = run('qemu-img', 'convert', '-f', 'vhdx', '-O', 'raw', copy, rawp)
    v = run(tool, 'check', '--hash', 'sha256', '--format', 'json', path)
    doc = json.loads(v.stdout)['images'][0]
    ours = (doc.get('digests') or {}).get('virtual_disk')
    if cv.returncode == 0:
        same = 'equal' if sha(rawp) == ours else 'DIFFER'
        os.remove(rawp)
    else:
        same = 'QEMU does not open it'
    ids = sorted({f['rule'] for f in doc['findings'] if f['rule'].startswith('LOG') and f['severity'] != 'info'})
    l70 = [f['message'] for f in doc['findings'] if f['rule'] == 'LOG-070']
    print(f"| {name} | {qtext} | {same} | {v.returncode}; {' '.join(ids)} | {l70[0][36:200] if l70 else '-'} |")
    os.remove(copy)
