#!/usr/bin/env python3
"""Side-by-side benchmark of vhdx-check against qemu-img on the images of
make_images.py. Prints the Markdown table of BENCHMARKS.md. Never part of the tests.

    python3 benches/bench.py VHDX_CHECK DIR [RUNS [SMALL_RUNS]]

With BASELINE=PATH in the environment, another vhdx-check binary joins every `check`
round as "vhdx-check check (baseline)", for before/after figures; BASELINE_LABEL names it
otherwise (run.sh: the dynamically linked build beside the static one).

The commands compared on one image run in turn, round after round (vhdx-check,
qemu-img check, qemu-img info, vhdx-check, ...), so a change in the load of the machine
falls on all of them alike. Each command runs twice first (warm-up: the page cache holds
the images, on tmpfs they are in memory anyway; bytes read and peak RSS), then RUNS times (default 5; SMALL_RUNS,
default 50, on the three small images, whose runs take milliseconds); the medians are
reported.
  wall                  elapsed time from spawning the command to reaping it
                        (time.perf_counter; the command is spawned directly, with no
                        shell or /usr/bin/time in between)
  cpu                   user + system time of the command, from the rusage that wait4
                        returns (microsecond resolution)
  peak RSS              /usr/bin/time -f %M, in a further warm-up run (wait4's maxrss
                        would report this Python driver's size: Linux keeps the
                        pre-exec high-water mark of a spawned child)
  bytes read            `rchar` of /proc/PID/io (bytes the child read through read and
                        pread system calls, page cache included, every thread), taken in
                        the warm-up run: this driver waits for the child's exit without
                        reaping it (waitid WNOWAIT) and reads the file
A pipeline of two commands (qemu-img convert, then sha256sum) adds the walls, CPU
times and bytes read of both and takes the larger peak RSS.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

QUIET = [
    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
]


def spawn(argv):
    return os.posix_spawnp(argv[0], argv, os.environ, file_actions=QUIET)


def bytes_read(argv):
    """rchar of one run of argv, read from /proc before the child is reaped."""
    pid = spawn(argv)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    rchar = 0
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                rchar = int(line.split()[1])
    os.wait4(pid, 0)
    return rchar


def peak_rss(argv):
    """Maximum resident set size (KiB) of one run of argv, from /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r") as t:
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", t.name, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        # "Command exited with non-zero status" may precede the measurement line.
        return int(t.read().strip().splitlines()[-1])


def measure(argv):
    """(wall s, cpu s) of one run of argv."""
    t0 = time.perf_counter()
    pid = spawn(argv)
    _, _, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    return wall, ru.ru_utime + ru.ru_stime


def sample(cmds):
    parts = [measure(c) for c in cmds]
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def compare(group, runs):
    """Runs the commands of `group` ([(label, [argv, ...])]) in turn, `runs` rounds after
    warm-up rounds; returns {label: (wall, cpu, bytes read, rss)} of medians."""
    read = {label: sum(bytes_read(c) for c in cmds) for label, cmds in group}
    rss = {label: max(peak_rss(c) for c in cmds) for label, cmds in group}
    samples = {label: [] for label, _ in group}
    for _ in range(runs):
        for label, cmds in group:
            samples[label].append(sample(cmds))
    out = {}
    for label, _ in group:
        s = samples[label]
        wall, cpu = (statistics.median(x[i] for x in s) for i in range(2))
        out[label] = (wall, cpu, read[label], rss[label])
    return out


def fmt_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def main():
    vc, d = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    small_runs = int(sys.argv[4]) if len(sys.argv) > 4 else 50
    baseline = os.environ.get("BASELINE")
    base_label = f"vhdx-check check ({os.environ.get('BASELINE_LABEL', 'baseline')})"
    img = lambda n: os.path.join(d, n)
    raw = img("out.raw")
    rows = []
    check_images = ["dyn64t.vhdx", "full64t.vhdx", "dyn2t.vhdx", "fixed1g.vhdx", "log.vhdx"]
    small = {"dyn2t.vhdx", "fixed1g.vhdx", "log.vhdx"}
    # Whole virtual disks are hashed: only the 1 GiB ones are practical (a 64 TiB disk of
    # zeros is 64 TiB of SHA-256 input for both tools).
    hash_images = ["fixed1g.vhdx", "log.vhdx"]
    for name in check_images:
        group = [
            ("vhdx-check check", [[vc, "check", img(name)]]),
            ("qemu-img check", [["qemu-img", "check", img(name)]]),
            ("qemu-img info", [["qemu-img", "info", img(name)]]),
        ]
        if baseline:
            group.append((base_label, [[baseline, "check", img(name)]]))
        res = compare(group, small_runs if name in small else runs)
        rows += [(name, label, res[label]) for label, _ in group]
    for name in hash_images:
        group = [
            ("vhdx-check check --hash sha256", [[vc, "check", "--hash", "sha256", img(name)]]),
            (
                "qemu-img convert -O raw + sha256sum",
                [["qemu-img", "convert", "-O", "raw", img(name), raw], ["sha256sum", raw]],
            ),
        ]
        res = compare(group, runs)
        rows += [(name, label, res[label]) for label, _ in group]
        os.remove(raw)
    # What starting a process costs each tool, for scale.
    floor = compare(
        [("vhdx-check --version", [[vc, "--version"]]), ("qemu-img --version", [["qemu-img", "--version"]])],
        small_runs,
    )
    print("| image | command | wall s | CPU s (user+sys) | bytes read | peak RSS |")
    print("|---|---|---:|---:|---:|---:|")
    for name, label, (wall, cpu, rd, rss) in rows:
        print(f"| {name} | {label} | {wall:.4f} | {cpu:.4f} | {fmt_bytes(rd)} | {rss / 1024:.1f} MiB |")
    print()
    print("Start-up alone: " + ", ".join(f"`{l}` {w * 1e3:.2f} ms" for l, (w, *_) in floor.items()))
    print()
    print("Ratios (vhdx-check wall / qemu-img wall; < 1 is faster):")
    by = {(n, l): r for n, l, r in rows}
    for name in check_images:
        a, b = by[(name, "vhdx-check check")][0], by[(name, "qemu-img check")][0]
        line = f"- {name}: check {a / b:.2f}x of qemu-img check"
        if baseline:
            line += f" ({base_label[len('vhdx-check check ('):-1]} {by[(name, base_label)][0] / b:.2f}x)"
        print(line)
    for name in hash_images:
        a = by[(name, "vhdx-check check --hash sha256")][0]
        b = by[(name, "qemu-img convert -O raw + sha256sum")][0]
        print(f"- {name}: --hash is {b / a:.2f}x faster than convert + sha256sum")


if __name__ == "__main__":
    main()
