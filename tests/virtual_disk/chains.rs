//! Virtual disks read through built chains, in the library and through the binary.

use super::*;

// ---- built chains ---------------------------------------------------------------------

/// Bytes of sector `s` of a layer: a pattern naming the layer.
fn pattern(tag: u8, len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| tag ^ (i as u64).wrapping_mul(31).wrapping_add(seed) as u8)
        .collect()
}

/// A three-level chain in `dir`: parent.vhdx (dynamic, BS 2 MiB), mid.avhdx (BS 1 MiB,
/// locator `.\parent.vhdx`), child.avhdx (BS 4 MiB, locator `.\mid.avhdx`), with full and
/// partial blocks at every level; partial writes are `grain` sectors long and aligned.
/// Returns (child, mid, parent) as built.
fn three_level(lss: u32, grain: usize) -> (Built, Built, Built) {
    let size = 24 * MIB;
    let l = lss as usize * grain;
    let parent = ImageBuilder::dynamic(size)
        .block_size(2 * MIB as u32)
        .logical_sector(lss)
        .seed(1)
        .write(0, &pattern(0x10, 3 * MIB as usize, 1))
        .write(9 * MIB, &pattern(0x11, 64 << 10, 2))
        .write(20 * MIB + 4096, &pattern(0x12, 8192, 3))
        .build();
    let mid = ImageBuilder::differencing(size)
        .block_size(MIB as u32)
        .logical_sector(lss)
        .seed(2)
        .parent_linkage(parent.layout.data_write_guid)
        .parent_locator(&[
            (
                "parent_linkage",
                &guid_braced(&parent.layout.data_write_guid),
            ),
            ("relative_path", r".\parent.vhdx"),
        ])
        .write_sectors(0, &pattern(0x20, 2 * l, 4))
        .write_sectors(4 * l as u64, &pattern(0x21, l, 5))
        .write(5 * MIB, &pattern(0x22, 4096, 6))
        .write_sectors(9 * MIB + 16 * l as u64, &pattern(0x23, 3 * l, 7))
        .build();
    let child = ImageBuilder::differencing(size)
        .block_size(4 * MIB as u32)
        .logical_sector(lss)
        .seed(3)
        .parent_linkage(mid.layout.data_write_guid)
        .parent_locator(&[
            ("parent_linkage", &guid_braced(&mid.layout.data_write_guid)),
            ("relative_path", r".\mid.avhdx"),
        ])
        .write_sectors(l as u64, &pattern(0x30, l, 8))
        .write(8 * MIB, &pattern(0x31, 100, 9))
        .write_sectors(20 * MIB + 8 * l as u64, &pattern(0x32, 2 * l, 10))
        .build();
    (child, mid, parent)
}

/// What the guest reads, from the builder's writes: later layers over earlier ones, whole
/// blocks of FULLY_PRESENT writes (zeros elsewhere in them), sectors of partial ones.
fn expected(lss: u32, grain: usize) -> Vec<u8> {
    let size = 24 * MIB as usize;
    let l = lss as usize * grain;
    let mut v = vec![0u8; size];
    let put = |v: &mut Vec<u8>, at: u64, d: &[u8]| {
        v[at as usize..at as usize + d.len()].copy_from_slice(d)
    };
    let full = |v: &mut Vec<u8>, bs: u64, at: u64, d: &[u8]| {
        let b0 = at / bs * bs;
        let b1 = (at + d.len() as u64).div_ceil(bs) * bs;
        v[b0 as usize..b1 as usize].fill(0);
        v[at as usize..at as usize + d.len()].copy_from_slice(d);
    };
    put(&mut v, 0, &pattern(0x10, 3 * MIB as usize, 1));
    put(&mut v, 9 * MIB, &pattern(0x11, 64 << 10, 2));
    put(&mut v, 20 * MIB + 4096, &pattern(0x12, 8192, 3));
    put(&mut v, 0, &pattern(0x20, 2 * l, 4));
    put(&mut v, 4 * l as u64, &pattern(0x21, l, 5));
    full(&mut v, MIB, 5 * MIB, &pattern(0x22, 4096, 6));
    put(&mut v, 9 * MIB + 16 * l as u64, &pattern(0x23, 3 * l, 7));
    put(&mut v, l as u64, &pattern(0x30, l, 8));
    full(&mut v, 4 * MIB, 8 * MIB, &pattern(0x31, 100, 9));
    put(&mut v, 20 * MIB + 8 * l as u64, &pattern(0x32, 2 * l, 10));
    v
}

fn put_chain(tmp: &Scratch, (child, mid, parent): &(Built, Built, Built)) -> [String; 3] {
    let paths = [
        tmp.path("child.avhdx"),
        tmp.path("mid.avhdx"),
        tmp.path("parent.vhdx"),
    ];
    for (img, p) in [child, mid, parent].into_iter().zip(&paths) {
        img.write_to(Path::new(p)).unwrap();
    }
    paths
}

/// The chain read through the library equals the builder's contents, with 512- and
/// 4096-byte sectors, partial blocks at two levels and three block sizes.
#[test]
fn built_three_level_chains_read_as_written() {
    for lss in [512u32, 4096] {
        let (child, mid, parent) = three_level(lss, 1);
        let want = expected(lss, 1);
        let srcs: [&dyn vhdx_check::io::ReadAt; 3] = [&child, &mid, &parent];
        let got = vhdx_check::model::virtual_disk::with_disk(
            &srcs,
            vhdx_check::model::virtual_disk::ViewChoice::Replayed,
            |vd| {
                let vd = vd.unwrap();
                assert_eq!(vd.unreadable(), None);
                let mut got = Vec::new();
                let mut buf = Vec::new();
                vhdx_check::hash::walk_bytes(vd, &mut buf, &mut |_| {}, &mut |at, p| {
                    assert_eq!(at, got.len() as u64);
                    match p {
                        vhdx_check::hash::Piece::Data(b) => got.extend_from_slice(b),
                        vhdx_check::hash::Piece::Zeros(n) => got.resize(got.len() + n as usize, 0),
                    }
                    Ok(())
                })
                .unwrap();
                got
            },
        );
        assert_bytes_eq(&format!("lss {lss}: the chain as read"), &got, &want);
        // The same through the binary: --find-parents follows the locators.
        let tmp = Scratch::new(&format!("chain3-{lss}"));
        let paths = put_chain(&tmp, &(child, mid, parent));
        let dg = digest_json(&["--find-parents".into(), paths[0].clone()]);
        assert_eq!(dg["virtual_disk"], sha256(&want), "lss {lss}");
    }
}

/// `map --format json`: contiguous extents over the whole disk, each state where the
/// builder put it; without the parents the deferred ranges are `parent` with no source.
#[test]
fn map_of_a_built_chain() {
    let lss = 512u64;
    let tmp = Scratch::new("map");
    let paths = put_chain(&tmp, &three_level(lss as u32, 1));
    let (code, out, err) = run(&["map", "--format", "json", "--find-parents", &paths[0]]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["virtual_size"], 24 * MIB);
    assert_eq!(v["chain"].as_array().unwrap().len(), 3);
    let ext = v["extents"].as_array().unwrap();
    let mut pos = 0;
    for e in ext {
        assert_eq!(e["offset"], pos, "{e}");
        pos += e["length"].as_u64().unwrap();
        let src = e["source"]
            .as_str()
            .map(|s| Path::new(s).file_name().unwrap().to_owned());
        match e["state"].as_str().unwrap() {
            "data" | "partial" => assert!(e["file_offset"].is_u64() && src.is_some(), "{e}"),
            "zero" | "unallocated" => assert!(e["file_offset"].is_null() && src.is_some()),
            s => panic!("state {s} with the whole chain: {e}"),
        }
    }
    assert_eq!(pos, 24 * MIB);
    let find = |off: u64| {
        ext.iter()
            .find(|e| {
                let o = e["offset"].as_u64().unwrap();
                o <= off && off < o + e["length"].as_u64().unwrap()
            })
            .unwrap()
    };
    let name = |e: &Value| {
        Path::new(e["source"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    // Sector 0: the mid's partial block; sector 1: the child's; sector 2: the parent's data.
    assert_eq!(
        (find(0)["state"].as_str(), name(find(0)).as_str()),
        (Some("partial"), "mid.avhdx")
    );
    assert_eq!(
        (find(lss)["state"].as_str(), name(find(lss)).as_str()),
        (Some("partial"), "child.avhdx")
    );
    assert_eq!(
        (
            find(2 * lss)["state"].as_str(),
            name(find(2 * lss)).as_str()
        ),
        (Some("data"), "parent.vhdx")
    );
    assert_eq!(find(8 * MIB + 200)["state"], "data");
    assert_eq!(name(find(8 * MIB + 200)), "child.avhdx");
    assert_eq!(find(15 * MIB)["state"], "unallocated");

    // The child alone: what it does not hold is deferred to a parent not given.
    let (code, out, _) = run(&["map", "--format", "json", &paths[0]]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let ext = v["extents"].as_array().unwrap();
    assert!(
        ext.iter()
            .any(|e| e["state"] == "parent" && e["source"].is_null())
    );
    assert_eq!(ext[0]["state"], "parent");
    assert_eq!(ext[1]["state"], "partial");
    // Text: a header line, a column line, one line per extent.
    let (code, out, _) = run(&["map", "--find-parents", &paths[0]]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("25165824 bytes"), "{out}");
    assert!(
        lines[2].contains("partial") && lines[2].contains("mid.avhdx"),
        "{out}"
    );
}

/// export: OUT must be new, the image must be readable, findings are mentioned; `-`
/// streams the same bytes.
#[test]
fn export_contract() {
    let tmp = Scratch::new("export-contract");
    let paths = put_chain(&tmp, &three_level(512, 1));
    let want = sha256(&expected(512, 1));
    let out = tmp.path("disk.raw");
    let (code, err) = export(&["--find-parents".into(), paths[0].clone()], &out);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&want), "{err}");
    assert_eq!(file_sha256(Path::new(&out)), want);
    // Sparse: only the written sectors take space.
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(&out).unwrap();
    assert_eq!(md.len(), 24 * MIB);
    assert!(
        md.blocks() * 512 < 8 * MIB,
        "{} bytes allocated",
        md.blocks() * 512
    );
    // OUT exists: exit 2, nothing touched.
    let (code, err) = export(&["--find-parents".into(), paths[0].clone()], &out);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists"), "{err}");
    assert_eq!(file_sha256(Path::new(&out)), want);
    // stdout.
    let o = bin()
        .args(["export", "--find-parents", &paths[0], "-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(sha256(&o.stdout), want);
    // Without parents: refused with the reason.
    let (code, err) = export(&[paths[0].clone()], &tmp.path("x.raw"));
    assert_eq!(code, 2);
    assert!(err.contains("parent"), "{err}");
    // Not a VHDX at all.
    let junk = tmp.file("junk.vhdx", "not a disk");
    let (code, err) = export(&[junk], &tmp.path("y.raw"));
    assert_eq!(code, 2);
    assert!(err.contains("no valid header"), "{err}");
    // An image with findings is exported, and says so.
    let mut img = ImageBuilder::dynamic(8 * MIB)
        .block_size(MIB as u32)
        .write(0, b"x")
        .build();
    img.set_payload_entry(3, bat::entry(bat::NOT_PRESENT, 4000));
    let p = tmp.path("findings.vhdx");
    img.write_to(Path::new(&p)).unwrap();
    let (code, err) = export(&[p], &tmp.path("z.raw"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("exported;") && err.contains("warning"),
        "{err}"
    );
}

/// A child with a pending log that turns its partial block 0 into PAYLOAD_BLOCK_ZERO.
fn pending_child(grain: usize) -> (Built, Built, Built) {
    let (mut child, mid, parent) = three_level(512, grain);
    let at = child
        .layout
        .bat_entry_offset(child.layout.payload_entry_index(0));
    let entry = bat::entry(bat::ZERO, 0).to_le_bytes();
    let e = child.log_entry(&[(at, &entry)]);
    child.write_log(&[e]);
    (child, mid, parent)
}

#[test]
fn pending_log_in_the_child_is_read_replayed_by_default() {
    let tmp = Scratch::new("pending-chain");
    let paths = put_chain(&tmp, &pending_child(1));
    let raw_want = sha256(&expected(512, 1));
    let mut replayed = expected(512, 1);
    replayed[..4 * MIB as usize].fill(0);
    let chain = |view: &str| {
        let out = tmp.path(&format!("{view}.raw"));
        let (code, err) = export(
            &[
                "--find-parents".into(),
                "--view".into(),
                view.into(),
                paths[0].clone(),
            ],
            &out,
        );
        assert_eq!(code, 0, "{err}");
        file_sha256(Path::new(&out))
    };
    assert_eq!(chain("raw"), raw_want);
    assert_eq!(chain("replayed"), sha256(&replayed));
    let dg = digest_json(&["--find-parents".into(), paths[0].clone()]);
    assert_eq!(dg["virtual_disk"], sha256(&replayed));
}

/// Python with dissect.hypervisor (an independent VHDX reader that follows relative_path
/// locators), or None.
fn dissect() -> Option<String> {
    for py in ["python3", "python"] {
        let ok = Command::new(py)
            .args(["-c", "import dissect.hypervisor.disk.vhdx"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py.to_string());
        }
    }
    None
}

/// SHA-256 of the virtual disk of `image` as dissect.hypervisor reads it.
fn dissect_sha256(py: &str, image: &str) -> String {
    let script = r#"
import hashlib, sys
from dissect.hypervisor.disk.vhdx import VHDX
d = VHDX(sys.argv[1])
h = hashlib.sha256()
left = d.size
d.seek(0)
while left:
    b = d.read(min(left, 1 << 20))
    assert b, "short read"
    h.update(b)
    left -= len(b)
print(h.hexdigest())
"#;
    let o = Command::new(py)
        .args(["-c", script, image])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// An independent reader agrees on built chains: 512 and 4096-byte sectors, partial
/// blocks, three block sizes in one chain, and a child with a pending log (dissect ignores
/// logs: it agrees with the raw view, and with the replayed view once the log is
/// replayed into a copy).
#[test]
fn independent_reader_agrees_on_built_chains() {
    let Some(py) = dissect() else {
        eprintln!(
            "SKIP independent_reader_agrees_on_built_chains: python module dissect.hypervisor is absent (pip install dissect.hypervisor)"
        );
        return;
    };
    for lss in [512u32, 4096] {
        let tmp = Scratch::new(&format!("dissect-{lss}"));
        // Runs of whole bitmap bytes: dissect.hypervisor 3.21 drops sectors of runs that
        // start or end inside a bitmap byte (its _iter_partial_runs), so 8-sector grains.
        let paths = put_chain(&tmp, &three_level(lss, 8));
        let out = tmp.path("ours.raw");
        let (code, err) = export(&["--find-parents".into(), paths[0].clone()], &out);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            dissect_sha256(&py, &paths[0]),
            file_sha256(Path::new(&out)),
            "lss {lss}"
        );
        // The middle of the chain too.
        let out = tmp.path("mid.raw");
        let (code, err) = export(&["--find-parents".into(), paths[1].clone()], &out);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            dissect_sha256(&py, &paths[1]),
            file_sha256(Path::new(&out)),
            "lss {lss} mid"
        );
    }
    let tmp = Scratch::new("dissect-pending");
    let paths = put_chain(&tmp, &pending_child(8));
    let out = tmp.path("raw.raw");
    let (code, err) = export(
        &[
            "--find-parents".into(),
            "--view".into(),
            "raw".into(),
            paths[0].clone(),
        ],
        &out,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(dissect_sha256(&py, &paths[0]), file_sha256(Path::new(&out)));
    // Replay into a copy beside the parents, then read the copy.
    let copy: PathBuf = tmp.0.join("replayed.avhdx");
    let (code, _, err) = run(&["replay", &paths[0], copy.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let out = tmp.path("replayed.raw");
    let (code, err) = export(&["--find-parents".into(), paths[0].clone()], &out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        dissect_sha256(&py, copy.to_str().unwrap()),
        file_sha256(Path::new(&out))
    );
}

/// A PARTIALLY_PRESENT block whose chunk has no sector bitmap cannot be read (openvmm
/// refuses such a file): map and export stop with exit 2 and the block's number.
#[test]
fn partial_block_without_a_sector_bitmap_is_unreadable() {
    let tmp = Scratch::new("no-bitmap");
    let (mut child, mid, parent) = three_level(512, 1);
    child.set_bitmap_entry(0, bat::entry(bat::SB_NOT_PRESENT, 0));
    let paths = put_chain(&tmp, &(child, mid, parent));
    let (code, _, err) = run(&["map", "--find-parents", &paths[0]]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("payload block 0 is PARTIALLY_PRESENT"),
        "{err}"
    );
    let (code, err) = export(
        &["--find-parents".into(), paths[0].clone()],
        &tmp.path("o.raw"),
    );
    assert_eq!(code, 2, "{err}");
    assert!(!Path::new(&tmp.path("o.raw")).exists());
}

/// A PARTIALLY_PRESENT block in a dynamic disk (invalid there: no sector bitmaps; QEMU
/// refuses the read) and one at the end of the last chunk, whose bitmap entry the BAT does
/// not have: the check reports it (exit 1), the virtual digest is unavailable with the
/// reason — not a tool failure, not zeros, not a panic — and export refuses it.
#[test]
fn partially_present_block_in_a_dynamic_disk_has_no_virtual_digest() {
    let tmp = Scratch::new("dyn-partial");
    for block in [0u64, 7] {
        let mut img = ImageBuilder::dynamic(8 * MIB)
            .block_size(MIB as u32)
            .write(block * MIB, b"data")
            .build();
        let off = img.layout.block_offset(block);
        img.set_payload_entry(block, bat::entry(bat::PARTIALLY_PRESENT, off / MIB));
        let p = tmp.path(&format!("partial{block}.vhdx"));
        img.write_to(Path::new(&p)).unwrap();
        let out = crate::cli::bin()
            .args(["check", "--hash", "sha256", "--format", "json", &p])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let d = &doc["images"][0]["digests"];
        assert_eq!(d["virtual_disk"], Value::Null, "{d}");
        let why = d["virtual_unavailable"].as_str().unwrap();
        assert!(why.contains(&format!("block {block}")), "{why}");
        let (code, err) = export(&[p], &tmp.path(&format!("o{block}.raw")));
        assert_eq!(code, 2, "{err}");
        assert!(!Path::new(&tmp.path(&format!("o{block}.raw"))).exists());
    }
}
