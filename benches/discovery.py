#!/usr/bin/env python3
"""Cost of parent discovery in a batch (BENCHMARKS.md, "Parent discovery"). Never part
of the tests.

    python3 benches/discovery.py VHDX_CHECK [CHILDREN:FILES ...] [--runs N]

For each CHILDREN:FILES (default 200:20000 400:40000) a fresh directory gets CHILDREN
copies of the openvmm differencing child chain-child1.avhdx (read from
../shared/corpus/openvmm, relative to the crate root; skipped when absent) whose parent
chain-base.vhdx is nowhere (orphans: relative_path fails, and the file name of
absolute_win32_path is searched below the directory), and FILES empty files `f*.bin`
beside them. Then `VHDX_CHECK check --find-parents --format json DIR` runs RUNS times
(default 3) and the median wall time is printed, with the same run without
--find-parents (the checks alone) for comparison.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "shared", "corpus", "openvmm", "chain-child1.avhdx.xz")


def wall(cmd, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = 3
    if "--runs" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1])
        args = [a for a in args if a != str(runs)]
    if not args:
        sys.exit(__doc__)
    exe, sizes = args[0], args[1:] or ["200:20000", "400:40000"]
    if not os.path.exists(CORPUS):
        print(f"SKIPPED: {CORPUS} not found")
        return
    with tempfile.TemporaryDirectory(prefix="vhdx-check-discovery-") as tmp:
        template = os.path.join(tmp, "template.avhdx")
        with open(template, "wb") as out:
            subprocess.run(["xz", "-dc", CORPUS], stdout=out, check=True)
        print("| children | other files | check --find-parents | check alone | discovery (difference) |")
        print("|---:|---:|---:|---:|---:|")
        for size in sizes:
            children, files = (int(x) for x in size.split(":"))
            d = os.path.join(tmp, f"d{children}")
            os.mkdir(d)
            for i in range(files):
                open(os.path.join(d, f"f{i:06}.bin"), "wb").close()
            for i in range(children):
                subprocess.run(["cp", "--sparse=always", template, os.path.join(d, f"c{i:04}.avhdx")], check=True)
            find = wall([exe, "check", "--find-parents", "--format", "json", d], runs)
            alone = wall([exe, "check", "--format", "json", d], runs)
            print(f"| {children} | {files} | {find:.2f} s | {alone:.2f} s | {find - alone:.2f} s |")
            shutil.rmtree(d)


if __name__ == "__main__":
    main()
