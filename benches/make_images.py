#!/usr/bin/env python3
"""Generates the benchmark images of BENCHMARKS.md into a directory (never committed).

    python3 benches/make_images.py DIR

Images: qemu-img writes the plain ones; two are crafted here from qemu-img output:
  dyn64t.vhdx      64 TiB dynamic, 1 MiB blocks, empty BAT (qemu-img create)
  full64t.vhdx     the same with every payload entry FULLY_PRESENT at a distinct offset,
                   the file extended sparsely to hold every block (64 TiB + BAT): needs a
                   file system that allows such files (tmpfs or xfs; ext4 stops at 16 TiB)
  dyn2t.vhdx       2 TiB dynamic, 32 MiB blocks (qemu-img create)
  fixed1g.vhdx     1 GiB fixed (qemu-img create -o subformat=fixed)
  log.vhdx         1 GiB dynamic whose log holds many entries (qemu-io writes, see below)
"""
import os
import shutil
import struct
import subprocess
import sys
from array import array

MIB = 1 << 20
BAT_GUID = bytes.fromhex("6677c22d23f600429d64115e9bfd4a08")  # 2DC27766-F623-4200-9D64-115E9BFD4A08


def qemu_img(*args):
    subprocess.run(["qemu-img", *args], check=True, stdout=subprocess.DEVNULL)


def regions(path):
    """{guid: (file offset, length)} from region table 1 at 192 KiB."""
    with open(path, "rb") as f:
        f.seek(192 * 1024)
        t = f.read(64 * 1024)
    assert t[:4] == b"regi", "region table signature"
    (count,) = struct.unpack_from("<I", t, 8)
    out = {}
    for n in range(count):
        e = t[16 + 32 * n : 48 + 32 * n]
        out[e[:16]] = struct.unpack_from("<QI", e, 16)
    return out


def populate(path, virtual_size, block_size=MIB, sector=512):
    """Every payload entry FULLY_PRESENT (state 6) at its own offset after the BAT;
    sector-bitmap entries stay SB_BLOCK_NOT_PRESENT (a dynamic disk). Blocks follow the
    last region, as qemu-img places them."""
    c = (1 << 23) * sector // block_size  # chunk ratio
    p = -(-virtual_size // block_size)  # payload blocks
    r = regions(path)
    off, _ = r[BAT_GUID]
    data_mb = -(-max(o + n for o, n in r.values()) // MIB)  # first MiB after every region
    step = block_size  # FileOffsetMB advances by the block size in MiB
    with open(path, "r+b") as f:
        f.seek(off)
        k = 0
        while k < p:
            n = min(c, p - k)
            first = ((data_mb * MIB + k * step) | 6)
            chunk = array("Q", range(first, first + n * step, step))
            if k + n < p:
                chunk.append(0)  # the chunk's sector-bitmap entry
            f.write(chunk.tobytes())  # little-endian hosts only (x86-64, aarch64)
            k += n
        f.truncate(data_mb * MIB + p * block_size)


def log_image(path, qemu_io):
    """A dynamic image whose log holds many entries: every block allocation by qemu
    updates the BAT through the log (MS-VHDX 2.3); one qemu-io session, many writes."""
    qemu_img("create", "-f", "vhdx", "-o", "block_size=1M,log_size=8M", path, "1G")
    cmds = []
    for n in range(0, 1024, 2):
        cmds += ["-c", f"write -q {n}M 4k"]
    subprocess.run([qemu_io, "-f", "vhdx", *cmds, path], check=True, stdout=subprocess.DEVNULL)


def main():
    if sys.byteorder != "little":
        raise SystemExit("little-endian host required")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    j = lambda n: os.path.join(out, n)
    qemu_img("create", "-f", "vhdx", "-o", "block_size=1M", j("dyn64t.vhdx"), "64T")
    shutil.copyfile(j("dyn64t.vhdx"), j("full64t.vhdx"))
    populate(j("full64t.vhdx"), 64 << 40)
    qemu_img("create", "-f", "vhdx", "-o", "block_size=32M", j("dyn2t.vhdx"), "2T")
    qemu_img("create", "-f", "vhdx", "-o", "subformat=fixed", j("fixed1g.vhdx"), "1G")
    log_image(j("log.vhdx"), shutil.which("qemu-io") or "qemu-io")


if __name__ == "__main__":
    main()
