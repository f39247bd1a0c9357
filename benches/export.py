#!/usr/bin/env python3
"""`vhdx-check export` against `qemu-img convert -f vhdx -O raw`, and `vhdx-check map`
against `qemu-img map` on 64 TiB images (BENCHMARKS.md, "export and map").

    python3 benches/export.py VHDX_CHECK DIR [RUNS]

DIR (tmpfs: /dev/shm) receives the images and the outputs:
  fixed1g.vhdx   fixed 1 GiB, every byte written by qemu-io (pattern 0xa5)
  dyn2g.vhdx     dynamic 2 GiB, 32 MiB blocks, 512 MiB written in 8 MiB pieces every 32 MiB
  dyn64t.vhdx    64 TiB dynamic, 1 MiB blocks, empty (make_images.py)
  full64t.vhdx   the same with every payload entry FULLY_PRESENT (make_images.populate)
The commands run in turn, round after round; each prints wall time (median and min over
RUNS) and the peak RSS of the process (wait4 ru_maxrss). Outputs are removed between runs.
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import make_images  # noqa: E402


def measure(cmd):
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, ru.ru_maxrss  # KiB


def main():
    vc, d = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    os.makedirs(d, exist_ok=True)
    j = lambda n: os.path.join(d, n)
    qi = shutil.which("qemu-io") or "qemu-io"
    if not os.path.exists(j("fixed1g.vhdx")):
        make_images.qemu_img("create", "-f", "vhdx", "-o", "subformat=fixed", j("fixed1g.vhdx"), "1G")
        subprocess.run([qi, "-f", "vhdx", "-c", "write -q -P 0xa5 0 1G", j("fixed1g.vhdx")], check=True)
    if not os.path.exists(j("dyn2g.vhdx")):
        make_images.qemu_img("create", "-f", "vhdx", "-o", "block_size=32M", j("dyn2g.vhdx"), "2G")
        cmds = []
        for n in range(0, 2048, 32):
            cmds += ["-c", f"write -q -P {n % 251 + 1} {n}M 8M"]
        subprocess.run([qi, "-f", "vhdx", *cmds, j("dyn2g.vhdx")], check=True)
    if not os.path.exists(j("full64t.vhdx")):
        make_images.qemu_img("create", "-f", "vhdx", "-o", "block_size=1M", j("dyn64t.vhdx"), "64T")
        shutil.copyfile(j("dyn64t.vhdx"), j("full64t.vhdx"))
        make_images.populate(j("full64t.vhdx"), 64 << 40)
    out = j("out.raw")
    cases = []
    for img in ["fixed1g", "dyn2g"]:
        src = j(img + ".vhdx")
        cases.append((img, [
            ("vhdx-check export (writes + SHA-256)", [vc, "export", src, out]),
            ("qemu-img convert -O raw", ["qemu-img", "convert", "-f", "vhdx", "-O", "raw", src, out]),
        ]))
    for img in ["dyn64t", "full64t"]:
        src = j(img + ".vhdx")
        cases.append((img, [
            ("vhdx-check map --format json", [vc, "map", "--format", "json", src]),
            ("vhdx-check map (text)", [vc, "map", src]),
            ("qemu-img map --output=json", ["qemu-img", "map", "-f", "vhdx", "--output=json", src]),
        ]))
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()}")
    for img, cmds in cases:
        results = {name: [] for name, _ in cmds}
        rss = {name: 0 for name, _ in cmds}
        for r in range(runs + 1):  # the first round warms the page cache
            for name, cmd in cmds:
                if os.path.exists(out):
                    os.remove(out)
                wall, maxrss = measure(cmd)
                if r:
                    results[name].append(wall)
                    rss[name] = max(rss[name], maxrss)
        print(f"\n{img}:")
        for name, _ in cmds:
            w = results[name]
            print(f"  {name:<40} median {statistics.median(w):8.3f} s  min {min(w):8.3f} s  peak RSS {rss[name] / 1024:7.1f} MiB")
    if os.path.exists(out):
        os.remove(out)


if __name__ == "__main__":
    main()
