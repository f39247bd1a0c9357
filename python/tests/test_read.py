"""vhdx_check.VirtualDisk against the command line's digests, exports and maps."""

import hashlib
import io
import json
import os
import random
import shutil
import threading

import pytest

import vhdx_check
from conftest import (
    IMAGES,
    ROOT,
    cli,
    cli_error,
    cli_export_digest,
    cli_json,
    cli_virtual_digest,
)

PLAIN = ROOT / "corpus" / "images" / "qemu-dynamic-1M.vhdx"
PENDING = ROOT / "corpus" / "images" / "qemu-log-pending.vhdx"
MIB = 1 << 20


def digest(disk, chunk=MIB + 4097):
    """SHA-256 of everything read() gives from the position, in odd-sized chunks that
    cross every block boundary."""
    h = hashlib.sha256()
    total = 0
    while True:
        b = disk.read(chunk)
        if not b:
            return h.hexdigest(), total
        h.update(b)
        total += len(b)


def readable_images():
    """Corpus images the CLI gives a virtual digest for."""
    out = []
    for image in IMAGES:
        d = cli_json("check", "--hash", "sha256", "--format", "json", image)["images"][0]
        if d.get("digests", {}).get("virtual_disk"):
            out.append(image)
    return out


def test_plain_and_pending_log_images_read_as_the_cli_hashes_them():
    for image in (PLAIN, PENDING):
        with vhdx_check.VirtualDisk(image) as disk:
            got, n = digest(disk)
            assert n == disk.size
        assert got == cli_virtual_digest(image), image


def test_every_corpus_image_with_a_virtual_digest_reads_as_hashed():
    images = readable_images()
    assert PLAIN in images and PENDING in images
    for image in images:
        with vhdx_check.VirtualDisk(image) as disk:
            assert digest(disk, chunk=3 * MIB)[0] == cli_virtual_digest(image), image


def test_raw_view_ignores_the_pending_log():
    with vhdx_check.VirtualDisk(PENDING, view="raw") as raw:
        raw_digest = digest(raw)[0]
    assert raw_digest == cli_export_digest(PENDING, "--view", "raw")
    assert raw_digest != cli_virtual_digest(PENDING)


def test_differencing_chain_reads_as_openvmm_and_the_cli(openvmm):
    for name in ("chain-child2.avhdx", "chain-child-bs1M.avhdx", "pend-diff.avhdx"):
        child, entry = openvmm(name)
        parents = [child.parent / p for p in entry["parents"]]
        expected = entry["openvmm"]["virtual_sha256"]
        args = [a for p in parents for a in ("--parent", p)]
        assert cli_virtual_digest(child, *args) == expected
        with vhdx_check.VirtualDisk(child, parents=parents) as disk:
            assert [m[0] for m in disk._disk.members()] == [str(p) for p in [child, *parents]]
            assert digest(disk, chunk=8 * MIB - 512)[0] == expected, name
        with vhdx_check.VirtualDisk(child, find_parents=True) as disk:
            assert digest(disk, chunk=8 * MIB)[0] == expected, name


def boundaries(disk):
    """Offsets worth reading across: every extent boundary and every MiB boundary."""
    edges = {e["offset"] for e in disk.map()} | set(range(0, disk.size, MIB))
    return sorted(edges | {disk.size})


def compare_ranges(disk, raw, rng, count):
    size = disk.size
    edges = boundaries(disk)
    for _ in range(count):
        edge = rng.choice(edges)
        start = max(0, edge - rng.randrange(0, 3 * 4096))
        n = rng.choice([1, 511, 512, 4096, 65537, MIB + 3, rng.randrange(1, 3 * MIB)])
        raw.seek(start)
        want = raw.read(n)
        disk.seek(start)
        assert disk.read(n) == want, (start, n)
        assert disk.tell() == min(start + n, size)
        assert disk.pread(n, start) == want
        buf = bytearray(n)
        disk.seek(start)
        got = disk.readinto(buf)
        assert got == len(want) and bytes(buf[:got]) == want


@pytest.mark.parametrize("image", [PLAIN, PENDING], ids=lambda p: p.name)
def test_seeks_and_partial_reads_across_block_boundaries_match_the_export(image, exported):
    raw_path = exported(image)
    rng = random.Random(18)
    with vhdx_check.VirtualDisk(image) as disk, open(raw_path, "rb") as raw:
        assert os.path.getsize(raw_path) == disk.size
        compare_ranges(disk, raw, rng, 300)
        # whence 1 and 2, and reads at and past the end.
        disk.seek(0)
        disk.seek(MIB - 100)
        assert disk.seek(50, os.SEEK_CUR) == MIB - 50
        raw.seek(MIB - 50)
        assert disk.read(100) == raw.read(100)
        assert disk.seek(-10, os.SEEK_END) == disk.size - 10
        raw.seek(-10, os.SEEK_END)
        assert disk.read() == raw.read()
        assert disk.read(1) == b"" and disk.read() == b""
        assert disk.seek(disk.size + 5) == disk.size + 5
        assert disk.read(10) == b"" and disk.readinto(bytearray(4)) == 0
        assert disk.pread(10, disk.size - 4) == raw_bytes(raw, disk.size - 4, 4)
        with pytest.raises(OSError):
            disk.seek(-1)
        with pytest.raises(ValueError):
            disk.seek(0, 3)


def raw_bytes(f, offset, n):
    f.seek(offset)
    return f.read(n)


def test_chain_partial_reads_match_the_export(openvmm, exported):
    child, entry = openvmm("chain-child2.avhdx")
    parents = [child.parent / p for p in entry["parents"]]
    raw_path = exported(child, *[a for p in parents for a in ("--parent", p)])
    with vhdx_check.VirtualDisk(child, parents=parents) as disk, open(raw_path, "rb") as raw:
        compare_ranges(disk, raw, random.Random(6), 200)


def test_file_object_protocol():
    disk = vhdx_check.VirtualDisk(PLAIN)
    assert isinstance(disk, io.RawIOBase)
    assert disk.readable() and disk.seekable() and not disk.writable()
    assert disk.logical_sector_size in (512, 4096)
    # A consumer that only knows file objects: buffered reading, copyfileobj.
    buffered = io.BufferedReader(disk, buffer_size=MIB)
    h = hashlib.sha256()
    for block in iter(lambda: buffered.read(123457), b""):
        h.update(block)
    assert h.hexdigest() == cli_virtual_digest(PLAIN)
    disk.seek(0)
    sink = io.BytesIO()
    shutil.copyfileobj(disk, sink, 2 * MIB)
    assert len(sink.getvalue()) == disk.size
    disk.close()
    assert disk.closed
    for op in (lambda: disk.read(1), lambda: disk.seek(0), lambda: disk.pread(1, 0), disk.tell):
        with pytest.raises(ValueError):
            op()
    disk.close()


@pytest.mark.parametrize("image", IMAGES, ids=lambda p: p.name)
def test_map_equals_the_cli_map(image):
    code, out, err = cli("map", "--format", "json", image, check=False)
    if code != 0:
        with pytest.raises(vhdx_check.Error):
            vhdx_check.VirtualDisk(image)
        return
    try:
        disk = vhdx_check.VirtualDisk(image)
    except vhdx_check.Error as e:
        # export refuses more than map (a disk map lists but export cannot read).
        assert str(e) == cli_error("export", image, "-").replace("cannot export", "cannot read")
        return
    with disk:
        assert list(disk.map()) == json.loads(out)["extents"]


def test_chain_map_and_report_equal_the_cli(openvmm):
    child, entry = openvmm("chain-child2.avhdx")
    parents = [child.parent / p for p in entry["parents"]]
    args = [a for p in parents for a in ("--parent", p)]
    with vhdx_check.VirtualDisk(child, parents=parents) as disk:
        extents = list(disk.map())
        assert extents == cli_json("map", "--format", "json", *args, child)["extents"]
        assert {e["source"] for e in extents} >= {str(child)}
        assert disk.report == cli_json("check", "--format", "json", *args, child)


def test_report_is_the_check_document():
    with vhdx_check.VirtualDisk(PENDING) as disk:
        assert disk.report == cli_json("check", "--format", "json", PENDING)
        assert disk.report["images"][0]["verdict"] == "accept"


def test_unreadable_images_raise_the_cli_reason(tmp_path, openvmm):
    missing = tmp_path / "missing.vhdx"
    with pytest.raises(vhdx_check.Error) as e:
        vhdx_check.VirtualDisk(missing)
    assert str(e.value) == cli_error("export", missing, "-")
    junk = tmp_path / "junk.vhdx"
    junk.write_bytes(os.urandom(1 << 20))
    with pytest.raises(vhdx_check.Error) as e:
        vhdx_check.VirtualDisk(junk)
    assert str(e.value) == cli_error("export", junk, "-").replace("cannot export", "cannot read")
    assert "no valid header" in str(e.value)
    child, _ = openvmm("chain-child1.avhdx")
    with pytest.raises(vhdx_check.Error) as e:
        vhdx_check.VirtualDisk(child)
    assert str(e.value) == cli_error("export", child, "-").replace("cannot export", "cannot read")
    assert "differencing" in str(e.value)
    with pytest.raises(ValueError):
        vhdx_check.VirtualDisk(PLAIN, view="stale")


def test_a_changed_file_is_an_error_never_stale_bytes(tmp_path):
    copy = tmp_path / "copy.vhdx"
    shutil.copyfile(PLAIN, copy)
    with vhdx_check.VirtualDisk(copy) as disk:
        first = disk.pread(4096, 0)
        # Grown: every byte the disk reads is still there, but the evidence changed.
        with open(copy, "ab") as f:
            f.write(b"\0" * 4096)
        with pytest.raises(vhdx_check.Error) as e:
            disk.pread(4096, 0)
        assert "evidence changed since the disk was opened" in str(e.value)
        with pytest.raises(vhdx_check.Error):
            disk.read(4096)
        assert disk.tell() == 0, "a failed read does not move the position"
    assert len(first) == 4096
    with vhdx_check.VirtualDisk(PLAIN) as plain:
        size = plain.size
    shutil.copyfile(PLAIN, copy)
    with vhdx_check.VirtualDisk(copy) as disk:
        # Truncated: the blocks past the new end cannot be read.
        with open(copy, "r+b") as f:
            f.truncate(os.path.getsize(copy) // 2)
        with pytest.raises(vhdx_check.Error) as e:
            digest(disk)
        assert "the file ends at" in str(e.value)
        assert disk.size == size


def test_concurrent_reads_do_not_corrupt_each_other(exported):
    raw_path = exported(PENDING)
    with open(raw_path, "rb") as f:
        raw = f.read()
    disk = vhdx_check.VirtualDisk(PENDING)
    failures = []

    def worker(seed):
        rng = random.Random(seed)
        try:
            for _ in range(150):
                start = rng.randrange(0, disk.size)
                n = rng.choice([512, 4096, MIB, 5 * MIB + 1])
                got = disk.pread(n, start)
                if got != raw[start : start + n]:
                    failures.append((seed, start, n))
        except Exception as e:  # reported below, not lost in the thread
            failures.append((seed, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    # Sequential reads through the shared position meanwhile.
    h = hashlib.sha256(disk.read())
    for t in threads:
        t.join()
    disk.close()
    assert failures == []
    assert h.hexdigest() == hashlib.sha256(raw).hexdigest()
