#!/usr/bin/env python3
"""Side-by-side benchmark of vhdx-check against qemu-img on the images of
make_images.py. Prints the Markdown table of BENCHMARKS.md. Never part of the tests.

    python3 benches/bench.py VHDX_CHECK DIR [RUNS]

For every command: the median of RUNS runs (default 5) after one warm-up run, so the
page cache holds the images (on tmpfs they are in memory anyway).
  wall                  elapsed time of the command under /usr/bin/time, measured by
                        this driver (time.perf_counter; /usr/bin/time's %e has only
                        10 ms resolution)
  cpu, peak RSS         /usr/bin/time -f "%U %S %M": user + system time (10 ms
                        resolution), maximum resident set size of the command
  bytes read            `rchar` of /proc/PID/io (bytes the child read through read and
                        pread system calls, page cache included, every thread), taken in
                        the warm-up run: this driver spawns the command directly, waits
                        for its exit without reaping it (waitid WNOWAIT) and reads the file
A pipeline of two commands (qemu-img convert, then sha256sum) adds the walls, CPU
times and bytes read of both and takes the larger peak RSS.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time


def bytes_read(argv):
    """rchar of one run of argv, read from /proc before the child is reaped."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
    rchar = 0
    with open(f"/proc/{p.pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                rchar = int(line.split()[1])
    p.wait()
    return rchar


def measure(argv):
    """(wall s, cpu s, peak RSS KiB) of one run of argv under /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r") as t:
        t0 = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-f", "%U %S %M", "-o", t.name, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        wall = time.perf_counter() - t0
        # "Command exited with non-zero status" may precede the measurement line.
        u, s, m = t.read().strip().splitlines()[-1].split()
    return wall, float(u) + float(s), int(m)


def pipeline(cmds, runs):
    read = sum(bytes_read(c) for c in cmds)  # also the warm-up run
    samples = []
    for _ in range(runs):
        parts = [measure(c) for c in cmds]
        samples.append(
            (
                sum(p[0] for p in parts),
                sum(p[1] for p in parts),
                read,
                max(p[2] for p in parts),
            )
        )
    return tuple(statistics.median(s[i] for s in samples) for i in range(4))


def fmt_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def main():
    vc, d = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    img = lambda n: os.path.join(d, n)
    raw = img("out.raw")
    rows = []
    check_images = ["dyn64t.vhdx", "full64t.vhdx", "dyn2t.vhdx", "fixed1g.vhdx", "log.vhdx"]
    # Whole virtual disks are hashed: only the 1 GiB ones are practical (a 64 TiB disk of
    # zeros is 64 TiB of SHA-256 input for both tools).
    hash_images = ["fixed1g.vhdx", "log.vhdx"]
    for name in check_images:
        for label, cmds in (
            ("vhdx-check check", [[vc, "check", img(name)]]),
            ("qemu-img check", [["qemu-img", "check", img(name)]]),
            ("qemu-img info", [["qemu-img", "info", img(name)]]),
        ):
            rows.append((name, label, pipeline(cmds, runs)))
    for name in hash_images:
        for label, cmds in (
            ("vhdx-check check --hash sha256", [[vc, "check", "--hash", "sha256", img(name)]]),
            (
                "qemu-img convert -O raw + sha256sum",
                [["qemu-img", "convert", "-O", "raw", img(name), raw], ["sha256sum", raw]],
            ),
        ):
            rows.append((name, label, pipeline(cmds, runs)))
        os.remove(raw)
    print("| image | command | wall s | CPU s (user+sys) | bytes read | peak RSS |")
    print("|---|---|---:|---:|---:|---:|")
    for name, label, (wall, cpu, rd, rss) in rows:
        print(f"| {name} | {label} | {wall:.3f} | {cpu:.3f} | {fmt_bytes(rd)} | {rss / 1024:.1f} MiB |")
    print()
    print("Ratios (vhdx-check wall / qemu-img wall; < 1 is faster):")
    by = {(n, l): r for n, l, r in rows}
    for name in check_images:
        a, b = by[(name, "vhdx-check check")][0], by[(name, "qemu-img check")][0]
        print(f"- {name}: check {a / b:.2f}x of qemu-img check")
    for name in hash_images:
        a = by[(name, "vhdx-check check --hash sha256")][0]
        b = by[(name, "qemu-img convert -O raw + sha256sum")][0]
        print(f"- {name}: --hash is {b / a:.2f}x faster than convert + sha256sum")


if __name__ == "__main__":
    main()
