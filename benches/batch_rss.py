#!/usr/bin/env python3
"""Peak RSS of large batches and of a report at the highest --max-per-rule (BENCHMARKS.md,
"Batch memory").

    python3 benches/batch_rss.py DIR BINARY [BINARY...]

Makes in DIR (never committed): many/ with 20,000 hard links to one 4 MiB dynamic image
written by qemu-img, cut/ with 20,000 hard links to the first 1 MiB of a qemu-img image
(a truncated file: the BAT and metadata past its end, a few dozen findings each), and
crafted.vhdx: a 1 TiB dynamic image (1 MiB blocks) whose every
payload entry is FULLY_PRESENT at its own offset past the end of the file (one BAT finding
per entry: about 1,000,000). Each BINARY runs `check --format json|sarif many/` and
`check --format json --max-per-rule 100000 crafted.vhdx`, output to /dev/null; peak RSS
from /usr/bin/time -f %M, wall time from the same.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from make_images import populate, qemu_img  # noqa: E402

COUNT = 20_000


def make(d):
    many = os.path.join(d, "many")
    if not os.path.isdir(many):
        os.makedirs(many)
        seed = os.path.join(d, "seed.vhdx")
        qemu_img("create", "-f", "vhdx", "-o", "block_size=1M", seed, "4M")
        for i in range(COUNT):
            os.link(seed, os.path.join(many, f"img{i:05}.vhdx"))
    cut = os.path.join(d, "cut")
    if not os.path.isdir(cut):
        os.makedirs(cut)
        seed = os.path.join(d, "cut-seed.vhdx")
        qemu_img("create", "-f", "vhdx", "-o", "block_size=1M", seed, "4M")
        os.truncate(seed, 1 << 20)
        for i in range(COUNT):
            os.link(seed, os.path.join(cut, f"cut{i:05}.vhdx"))
    crafted = os.path.join(d, "crafted.vhdx")
    if not os.path.exists(crafted):
        qemu_img("create", "-f", "vhdx", "-o", "block_size=1M", crafted, "1T")
        size = os.path.getsize(crafted)
        populate(crafted, 1 << 40)
        os.truncate(crafted, size)  # every block now lies past the end of the file
    return many, cut, crafted


def measure(binary, args):
    r = subprocess.run(
        ["/usr/bin/time", "-f", "%M %e", binary, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    rss_kib, wall = r.stderr.strip().splitlines()[-1].split()
    return int(rss_kib) / 1024, float(wall), r.returncode


def main():
    d, binaries = sys.argv[1], sys.argv[2:]
    many, cut, crafted = make(d)
    cases = [
        ("json, 20,000 images", ["check", "--format", "json", many]),
        ("sarif, 20,000 images", ["check", "--format", "sarif", many]),
        ("text, 20,000 images", ["check", many]),
        ("json, 20,000 truncated images", ["check", "--format", "json", cut]),
        ("sarif, 20,000 truncated images", ["check", "--format", "sarif", cut]),
        ("json, crafted, --max-per-rule 100000",
         ["check", "--format", "json", "--max-per-rule", "100000", crafted]),
        ("sarif, crafted, --max-per-rule 100000",
         ["check", "--format", "sarif", "--max-per-rule", "100000", crafted]),
    ]
    print("| case | binary | peak RSS MiB | wall s | exit |")
    print("|---|---|---|---|---|")
    for name, args in cases:
        for b in binaries:
            rss, wall, code = measure(b, args)
            print(f"| {name} | {b} | {rss:.1f} | {wall:.2f} | {code} |", flush=True)


if __name__ == "__main__":
    main()
