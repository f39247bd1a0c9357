"""The README's examples: VirtualDisk handed to consumers of file objects (hashlib) and to
The Sleuth Kit through pytsk3's Img_Info (as dfvfs and plaso do); skipped without pytsk3,
mkfs.ext4 or qemu-img."""

import hashlib
import shutil
import subprocess

import pytest

import vhdx_check
from conftest import ROOT, cli_virtual_digest


def test_hashlib_reads_the_file_object():
    image = ROOT / "corpus" / "images" / "qemu-log-pending.vhdx"
    with vhdx_check.VirtualDisk(image) as disk:
        if not hasattr(hashlib, "file_digest"):
            pytest.skip("hashlib.file_digest needs Python 3.11")
        assert hashlib.file_digest(disk, "sha256").hexdigest() == cli_virtual_digest(image)


def test_sleuth_kit_reads_a_file_system_through_the_virtual_disk(tmp_path):
    pytsk3 = pytest.importorskip("pytsk3")
    for tool in ("mkfs.ext4", "qemu-img"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "note.txt").write_bytes(b"evidence inside\n")
    raw, image = tmp_path / "fs.raw", tmp_path / "fs.vhdx"
    with open(raw, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-d", str(tree), str(raw)], check=True)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", str(raw), str(image)], check=True)

    # As in the README.
    class VhdxImgInfo(pytsk3.Img_Info):
        def __init__(self, disk):
            self._disk = disk
            super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

        def read(self, offset, size):
            return self._disk.pread(size, offset)

        def get_size(self):
            return self._disk.size

    with vhdx_check.VirtualDisk(image) as disk:
        assert disk.report["images"][0]["verdict"] == "accept"
        fs = pytsk3.FS_Info(VhdxImgInfo(disk))
        note = fs.open("/note.txt")
        assert note.read_random(0, note.info.meta.size) == b"evidence inside\n"
        names = {e.info.name.name for e in fs.open_dir("/")}
        assert b"note.txt" in names
