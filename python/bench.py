#!/usr/bin/env python3
"""Sequential read throughput of vhdx_check.VirtualDisk against `vhdx-check export IMAGE -
> /dev/null` on the same image, in one run (BENCHMARKS.md, "Python bindings").

    python python/bench.py [VHDX_CHECK] [DIR] [ROUNDS]

VHDX_CHECK defaults to target/release/vhdx-check, DIR to /dev/shm/vhdx-check-pybench
(tmpfs: the page cache is warm, so both sides measure the reader, not the disk). DIR
receives dyn1g.vhdx: `qemu-img create -f vhdx dyn1g.vhdx 1G` (32 MiB blocks), then
`qemu-io -c "write -P 0xa5 0 1G"` (every block FULLY_PRESENT). The commands run in turn,
round after round, so a change in the machine's load falls on all alike; the table gives
the median and the best wall time of each. Needs vhdx_check installed in the interpreter.
"""

import hashlib
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import vhdx_check

ROOT = Path(__file__).resolve().parents[1]
GIB = 1 << 30


def make_image(path):
    if path.exists():
        return
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(path), "1G"], check=True)
    subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -q -P 0xa5 0 1G", str(path)], check=True)


def export(cli, image):
    with open(os.devnull, "wb") as null:
        t = time.perf_counter()
        subprocess.run([str(cli), "export", str(image), "-"], stdout=null, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t


def read_all(image, chunk, into=False, buffered=0):
    t = time.perf_counter()
    with vhdx_check.VirtualDisk(image) as disk:
        total = 0
        if buffered:
            f = io.BufferedReader(disk, buffer_size=buffered)
            while b := f.read(chunk):
                total += len(b)
        elif into:
            buf = bytearray(chunk)
            while n := disk.readinto(buf):
                total += n
        else:
            while b := disk.read(chunk):
                total += len(b)
    wall = time.perf_counter() - t
    assert total == GIB, total
    return wall


def main():
    cli = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "release" / "vhdx-check"
    d = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/dev/shm/vhdx-check-pybench")
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    d.mkdir(parents=True, exist_ok=True)
    image = d / "dyn1g.vhdx"
    make_image(image)
    # The bytes read are the bytes qemu-io wrote.
    with vhdx_check.VirtualDisk(image) as disk:
        assert hashlib.sha256(disk.read(1 << 20)).digest() == hashlib.sha256(b"\xa5" * (1 << 20)).digest()
    cases = [
        ("vhdx-check export IMAGE - > /dev/null", lambda: export(cli, image)),
        ("VirtualDisk.read(4 MiB) loop", lambda: read_all(image, 4 << 20)),
        ("VirtualDisk.read(1 MiB) loop", lambda: read_all(image, 1 << 20)),
        ("VirtualDisk.readinto(4 MiB bytearray) loop", lambda: read_all(image, 4 << 20, into=True)),
        ("VirtualDisk.read(64 KiB) loop", lambda: read_all(image, 64 << 10)),
        ("BufferedReader(VirtualDisk, 4 MiB).read(64 KiB)", lambda: read_all(image, 64 << 10, buffered=4 << 20)),
    ]
    for _, f in cases:  # warm-up: page cache, first thread start
        f()
    walls = {name: [] for name, _ in cases}
    for _ in range(rounds):
        for name, f in cases:
            walls[name].append(f())
    base = statistics.median(walls[cases[0][0]])
    print(f"image: {image} (1 GiB virtual, {image.stat().st_size >> 20} MiB file); {rounds} rounds; nproc {os.cpu_count()}")
    print(f"{'command':<48} {'median s':>9} {'best s':>8} {'MiB/s':>8} {'vs export':>10}")
    for name, _ in cases:
        med = statistics.median(walls[name])
        print(f"{name:<48} {med:>9.3f} {min(walls[name]):>8.3f} {1024 / med:>8.0f} {med / base:>9.2f}x")


if __name__ == "__main__":
    main()
