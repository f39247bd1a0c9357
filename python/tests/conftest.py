"""Shared fixtures: the command-line tool the bindings are compared with, the corpus
images, exported raw images, and the openvmm corpus (../shared/corpus/openvmm beside the
checkout, decompressed to a temporary directory; its tests skip when it is absent)."""

import json
import lzma
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = sorted((ROOT / "corpus" / "images").glob("*.vhdx"))
OPENVMM = Path(os.environ.get("VHDX_CHECK_OPENVMM", ROOT.parent / "shared" / "corpus" / "openvmm"))


def cli_path():
    path = Path(os.environ.get("VHDX_CHECK_BIN", ROOT / "target" / "release" / "vhdx-check"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `cargo build --release` first (or set VHDX_CHECK_BIN)")
    return path


def cli(*args, check=True):
    """Runs vhdx-check; returns (exit code, stdout bytes, stderr text)."""
    r = subprocess.run([str(cli_path()), *map(str, args)], capture_output=True)
    if check and r.returncode not in (0, 1):
        raise AssertionError(f"vhdx-check {args} exited {r.returncode}: {r.stderr.decode()}")
    return r.returncode, r.stdout, r.stderr.decode()


def cli_json(*args):
    return json.loads(cli(*args)[1])


def cli_error(*args):
    """The one-line reason the command line prints (without its "vhdx-check: " prefix)."""
    code, _, err = cli(*args, check=False)
    assert code == 2, (args, code, err)
    line = err.strip().splitlines()[-1]
    return line.removeprefix("vhdx-check: ")


def cli_virtual_digest(image, *chain_args):
    doc = cli_json("check", "--hash", "sha256", "--format", "json", *chain_args, image)
    return doc["images"][0]["digests"]["virtual_disk"]


def cli_export_digest(image, *args):
    """The SHA-256 `export` prints on stderr for the stream it writes."""
    code, _, err = cli("export", *args, image, "-")
    assert code == 0, err
    return re.search(r"sha256 ([0-9a-f]{64})", err).group(1)


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """exported(image, *args) -> the raw file `vhdx-check export [args] IMAGE OUT` wrote."""
    out_dir = tmp_path_factory.mktemp("exported")
    done = {}

    def get(image, *args):
        key = (str(image), args)
        if key not in done:
            out = out_dir / f"{len(done)}.raw"
            code, _, err = cli("export", *args, image, out)
            assert code == 0, err
            done[key] = out
        return done[key]

    return get


@pytest.fixture(scope="session")
def openvmm(tmp_path_factory):
    """openvmm(name) -> (path of the decompressed image, its images.jsonl entry); the
    parents named by the entry are decompressed beside it."""
    manifest = OPENVMM / "images.jsonl"
    if not manifest.is_file():
        pytest.skip(f"the openvmm corpus is absent ({OPENVMM}); set VHDX_CHECK_OPENVMM")
    entries = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            e = json.loads(line)
            entries[e["name"]] = e
    out_dir = tmp_path_factory.mktemp("openvmm")

    def unpack(name):
        out = out_dir / name
        if not out.exists():
            src = OPENVMM / f"{name}.xz"
            if not src.is_file():
                pytest.skip(f"{src} is absent")
            with lzma.open(src) as fin, open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout, 4 << 20)
        return out

    def get(name):
        e = entries[name]
        for p in e["parents"]:
            unpack(p)
        return unpack(name), e

    return get
