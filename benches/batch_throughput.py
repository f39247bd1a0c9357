#!/usr/bin/env python3
"""Batch throughput: `vhdx-check check DIR` over many small images against a shell loop of
`qemu-img check` over the same files (BENCHMARKS.md, "Batch throughput").

    python3 benches/batch_throughput.py VHDX_CHECK DIR [COUNT] [ROUNDS]

DIR (tmpfs: /dev/shm) receives COUNT images (default 1,000; never committed): distinct
sparse copies of four qemu-img images — dynamic 64 MiB with 1 MiB blocks and 4 MiB written
by qemu-io (its log holds the entries), dynamic 256 MiB with the default 32 MiB blocks,
fixed 16 MiB, dynamic 1 GiB with 8 MiB written. Each round runs, in turn:
  check DIR        vhdx-check check --format json DIR > /dev/null (one process, workers)
  check loop       sh -c 'for f in DIR/*.vhdx; do vhdx-check check "$f"; done' > /dev/null
  qemu-img loop    sh -c 'for f in DIR/*.vhdx; do qemu-img check -f vhdx "$f"; done' > /dev/null
and prints the median wall time over ROUNDS (default 5), images per second, and the ratio
of each loop to `check DIR`. Exit codes are not judged (qemu-img exits 0 here; vhdx-check 0).
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from make_images import qemu_img  # noqa: E402


def seeds(d):
    qi = shutil.which("qemu-io") or "qemu-io"
    out = []
    spec = [
        ("dyn64m", ["-o", "block_size=1M"], "64M", ["write -P 0x5a 0 4M"]),
        ("dyn256m", [], "256M", []),
        ("fixed16m", ["-o", "subformat=fixed"], "16M", []),
        ("dyn1g", [], "1G", ["write -P 0x11 0 4M", "write -P 0x22 512M 4M"]),
    ]
    for name, opts, size, writes in spec:
        p = os.path.join(d, f"seed-{name}.vhdx")
        if not os.path.exists(p):
            qemu_img("create", "-f", "vhdx", *opts, p, size)
            cmds = [a for w in writes for a in ("-c", w)]
            if cmds:
                subprocess.run([qi, "-f", "vhdx", *cmds, p], check=True, stdout=subprocess.DEVNULL)
        out.append(p)
    return out


def make(d, count):
    imgs = os.path.join(d, "imgs")
    have = len(os.listdir(imgs)) if os.path.isdir(imgs) else 0
    if have != count:
        shutil.rmtree(imgs, ignore_errors=True)
        os.makedirs(imgs)
        src = seeds(d)
        for i in range(count):
            s = src[i % len(src)]
            # Distinct files (not hard links): each image is read from its own pages.
            subprocess.run(["cp", "--sparse=always", s, os.path.join(imgs, f"img{i:05}.vhdx")], check=True)
    return imgs


def wall(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    vc, d = os.path.abspath(sys.argv[1]), sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    os.makedirs(d, exist_ok=True)
    imgs = make(d, count)
    glob = os.path.join(imgs, "*.vhdx")
    cases = [
        ("check DIR", [vc, "check", "--format", "json", imgs]),
        ("check loop", ["sh", "-c", f'for f in {glob}; do "{vc}" check "$f"; done']),
        ("qemu-img loop", ["sh", "-c", f'for f in {glob}; do qemu-img check -f vhdx "$f"; done']),
    ]
    times = {name: [] for name, _ in cases}
    for _ in range(rounds):
        for name, cmd in cases:
            times[name].append(wall(cmd))
    base = statistics.median(times["check DIR"])
    print(f"{count} images, {rounds} rounds, {os.cpu_count()} CPUs")
    for name, _ in cases:
        m = statistics.median(times[name])
        print(f"{name:14} median {m:8.3f} s  min {min(times[name]):8.3f} s  "
              f"{count / m:9.0f} images/s  {m / base:6.1f}x the time of check DIR")


if __name__ == "__main__":
    main()
