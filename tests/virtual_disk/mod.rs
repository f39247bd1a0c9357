//! The virtual disk through a chain (model::virtual_disk): `--hash` chain digests, `export`
//! and `map`, checked against openvmm's digests (../shared/corpus/openvmm), qemu-img
//! convert, an independent reader (dissect.hypervisor) and the builder's own contents.

mod chains;

use crate::builder::*;
use crate::cli::{Scratch, bin, corpus, run};
use crate::util::{assert_bytes_eq, hex};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vhdx_check::model::Model;

fn file_sha256(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `--parent` arguments for `parents` (nearest first).
fn parent_args(parents: &[String]) -> Vec<String> {
    parents
        .iter()
        .flat_map(|p| ["--parent".to_string(), p.clone()])
        .collect()
}

fn digest_json(args: &[String]) -> Value {
    let mut a = vec!["check", "--format", "json", "--hash", "sha256"];
    a.extend(args.iter().map(String::as_str));
    let (_, out, err) = run(&a);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    v["images"][0]["digests"].clone()
}

/// `export ARGS OUT`: (exit code, stderr).
fn export(args: &[String], out: &str) -> (i32, String) {
    let mut a = vec!["export"];
    a.extend(args.iter().map(String::as_str));
    a.push(out);
    let (code, _, err) = run(&a);
    (code, err)
}

const CORPUS: &str = "../shared/corpus/openvmm";

/// Every openvmm image with a recorded virtual digest: the chain digest of each
/// differencing image (through the parents images.jsonl lists) and the SHA-256 of what
/// `export` writes equal openvmm's `resolve_read` result, pending logs included.
#[test]
fn openvmm_corpus_digests_and_exports() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    let Ok(list) = std::fs::read_to_string(dir.join("images.jsonl")) else {
        eprintln!("SKIP openvmm_corpus_digests_and_exports: {CORPUS} is absent");
        return;
    };
    if Command::new("xz").arg("--version").output().is_err() {
        eprintln!("SKIP openvmm_corpus_digests_and_exports: xz not installed");
        return;
    }
    let tmp = Scratch::new("openvmm-chain");
    let unpack = |name: &str| {
        let out = tmp.path(name);
        if !Path::new(&out).exists() {
            let f = std::fs::File::create(&out).unwrap();
            let ok = Command::new("xz")
                .arg("-dc")
                .arg(dir.join(format!("{name}.xz")))
                .stdout(f)
                .status()
                .unwrap();
            assert!(ok.success(), "xz -dc {name}.xz");
        }
        out
    };
    let mut chains = 0;
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let d: Value = serde_json::from_str(line).unwrap();
        let name = d["name"].as_str().unwrap();
        let want = d["openvmm"]["virtual_sha256"].as_str().unwrap_or("");
        if want.len() != 64 {
            continue; // not hashed (64 TiB) or refused by openvmm
        }
        let parents: Vec<String> = (d["parents"].as_array().unwrap().iter())
            .map(|p| unpack(p.as_str().unwrap()))
            .collect();
        let image = unpack(name);
        let mut args = parent_args(&parents);
        args.push(image.clone());
        if !parents.is_empty() {
            chains += 1;
            let dg = digest_json(&args);
            assert_eq!(dg["virtual_disk"], want, "{name}: {dg}");
        }
        let size = d["openvmm"]["disk_size"].as_u64().unwrap();
        if size > 8 << 30 {
            eprintln!("{name}: export not checked here (a {size}-byte virtual disk)");
            continue;
        }
        let out = tmp.path(&format!("{name}.raw"));
        let (code, err) = export(&args, &out);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        // What export printed is of what it wrote: read back where that is quick (the
        // larger files are sparse runs of zeros, gigabytes to read in the test).
        if size <= 1 << 30 {
            assert_eq!(file_sha256(Path::new(&out)), want, "{name}");
        }
        assert_eq!(std::fs::metadata(&out).unwrap().len(), size, "{name}");
        std::fs::remove_file(&out).unwrap();
    }
    // chain-child1, -child2, -child-bs1M, diff4k-child, diff-nolocator, pend-diff,
    // pend-unapplied-diff.
    assert!(
        chains >= 7,
        "only {chains} differencing images in the corpus"
    );
}

/// `export` writes exactly what `qemu-img convert -f vhdx -O raw` writes.
#[test]
fn export_equals_qemu_img_convert() {
    if Command::new("qemu-img").arg("--version").output().is_err() {
        eprintln!("SKIP export_equals_qemu_img_convert: qemu-img not installed");
        return;
    }
    let tmp = Scratch::new("export-qemu");
    let names: Vec<String> = std::fs::read_dir(corpus(""))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        // qemu-img refuses to read qemu-log-pending.vhdx without replaying it in place.
        .filter(|n| n.starts_with("qemu-") && n.ends_with(".vhdx") && !n.contains("pending"))
        .collect();
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        let img = corpus(&name);
        let (want, got) = (tmp.path("qemu.raw"), tmp.path("ours.raw"));
        let _ = std::fs::remove_file(&want);
        let ok = Command::new("qemu-img")
            .args(["convert", "-f", "vhdx", "-O", "raw"])
            .arg(&img)
            .arg(&want)
            .status()
            .unwrap();
        assert!(ok.success(), "qemu-img convert {name}");
        let (code, err) = export(&[img.to_str().unwrap().to_string()], &got);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(
            std::fs::read(&want).unwrap() == std::fs::read(&got).unwrap(),
            "{name}: export differs from qemu-img convert"
        );
        std::fs::remove_file(&got).unwrap();
    }
}

/// A dynamic disk whose last data block lies past the end of the truncated file.
fn truncated() -> Built {
    let mut img = ImageBuilder::dynamic(8 * MIB)
        .block_size(MIB as u32)
        .write(0, b"first block")
        .write(5 * MIB, b"sixth block")
        .build();
    img.len = img.layout.block_offset(5) + 4096;
    img
}

/// Exact or absent: a block past the end of the file gives no virtual digest (it used to
/// be hashed as zeros), with the reason; export refuses the image.
#[test]
fn data_past_the_end_of_the_file_has_no_virtual_digest() {
    let img = truncated();
    let d = vhdx_check::hash::digests(&Model::build(&img)).unwrap();
    assert_eq!(d.virtual_disk, None);
    assert_eq!(
        d.virtual_unavailable.as_deref(),
        Some("1 block lies past the end of the file")
    );
    let tmp = Scratch::new("truncated");
    let p = tmp.path("t.vhdx");
    img.write_to(Path::new(&p)).unwrap();
    let dg = digest_json(std::slice::from_ref(&p));
    assert_eq!(dg["virtual_disk"], Value::Null);
    assert_eq!(
        dg["virtual_unavailable"],
        "1 block lies past the end of the file"
    );
    let (code, err) = export(&[p], &tmp.path("out.raw"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("past the end of the file"), "{err}");
    assert!(!Path::new(&tmp.path("out.raw")).exists());
    assert_eq!(std::fs::read_dir(&tmp.0).unwrap().count(), 1, "temp left");
}

/// map refuses what export refuses: a data block past the end of the file is not listed
/// as `data` (exit 2, the reason, nothing on stdout), in text and JSON.
#[test]
fn map_refuses_data_past_the_end_of_the_file() {
    let tmp = Scratch::new("map-truncated");
    let p = tmp.path("t.vhdx");
    truncated().write_to(Path::new(&p)).unwrap();
    for format in ["text", "json"] {
        let (code, out, err) = run(&["map", "--format", format, &p]);
        assert_eq!(code, 2, "{format}: {out}{err}");
        assert!(
            err.contains("cannot map") && err.contains("1 block lies past the end of the file"),
            "{err}"
        );
        assert_eq!(out, "", "{format}");
    }
}

/// A structure found unreadable part-way (a PARTIALLY_PRESENT block in a dynamic disk,
/// after seven readable blocks) prints nothing: no half JSON document, no partial table.
#[test]
fn map_that_fails_part_way_prints_nothing() {
    let tmp = Scratch::new("map-partway");
    let mut img = ImageBuilder::dynamic(8 * MIB)
        .block_size(MIB as u32)
        .write(0, b"data")
        .write(7 * MIB, b"data")
        .build();
    let off = img.layout.block_offset(7);
    img.set_payload_entry(7, bat::entry(bat::PARTIALLY_PRESENT, off / MIB));
    let p = tmp.path("p.vhdx");
    img.write_to(Path::new(&p)).unwrap();
    for format in ["text", "json"] {
        let (code, out, err) = run(&["map", "--format", format, &p]);
        assert_eq!(code, 2, "{format}: {err}");
        assert!(err.contains("payload block 7"), "{err}");
        assert_eq!(out, "", "{format}");
    }
}

/// A source truncated while `export IMAGE -` streams it (the export blocked on a full
/// pipe): exit 2 "evidence changed during the check", not exit 0 with zeros for the lost
/// blocks.
#[test]
fn export_notices_the_source_changing_under_it() {
    let tmp = Scratch::new("export-changed");
    let img = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .write(0, b"first block")
        .write(63 * MIB, b"last block")
        .build();
    let p = tmp.path("chg.vhdx");
    img.write_to(Path::new(&p)).unwrap();
    let mut child = bin()
        .args(["export", &p, "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The pipe fills after 64 KiB: the export waits on it, the last block not yet read.
    std::thread::sleep(Duration::from_millis(500));
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(img.layout.block_offset(63)).unwrap();
    drop(f);
    let mut sink = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut sink).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("chg.vhdx: evidence changed during the check (size"),
        "{err}"
    );
    assert!(!err.contains("sha256"), "{err}");
}

/// Runs the binary, sends SIGINT after `after`, and returns (exit code, stdout, stderr).
fn interrupt(args: &[&str], after: Duration) -> (i32, String, String) {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    assert!(
        child.try_wait().unwrap().is_none(),
        "{args:?} ended before SIGINT"
    );
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{args:?} did not stop within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Hashing an empty 64 TiB dynamic disk (a small sparse file) takes hours of SHA-256 over
/// zeros: `check --hash` announces it, and SIGINT stops it with exit 130 and nothing on
/// stdout; `export` stops the same way and leaves neither OUT nor its temporary file.
#[test]
fn sigint_stops_a_long_hash_and_export() {
    let tmp = Scratch::new("sigint");
    let p = tmp.path("huge.vhdx");
    ImageBuilder::dynamic(64 << 40)
        .write(0, b"boot")
        .build()
        .write_to(Path::new(&p))
        .unwrap();
    let (code, out, err) = interrupt(
        &["check", "--hash", "sha256", "--format", "json", &p],
        Duration::from_millis(1500),
    );
    assert_eq!(code, 130, "{err}");
    assert_eq!(out, "");
    assert!(err.contains("64 TiB virtual disk"), "{err}");
    let o = tmp.path("out.raw");
    let (code, out, err) = interrupt(&["export", &p, &o], Duration::from_millis(1500));
    assert_eq!(code, 130, "{err}");
    assert_eq!(out, "");
    assert_eq!(std::fs::read_dir(&tmp.0).unwrap().count(), 1, "left behind");
    // A batch interrupted after its first report: that report, whole, in a closed
    // document (a valid prefix of the run); with --output no file at all.
    let small = tmp.path("small.vhdx");
    ImageBuilder::dynamic(8 * MIB)
        .write(0, b"boot")
        .build()
        .write_to(Path::new(&small))
        .unwrap();
    let (code, out, err) = interrupt(
        &["check", "--hash", "sha256", "--format", "json", &small, &p],
        Duration::from_millis(2500),
    );
    assert_eq!(code, 130, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{out}");
    assert_eq!(images[0]["path"], small.as_str());
    assert!(images[0]["digests"]["virtual_disk"].is_string(), "{out}");
    let report = tmp.path("r.json");
    let (code, _, err) = interrupt(
        &["check", "--hash", "sha256", "-o", &report, &small, &p],
        Duration::from_millis(2500),
    );
    assert_eq!(code, 130, "{err}");
    assert_eq!(
        std::fs::read_dir(&tmp.0).unwrap().count(),
        2,
        "report or temp left"
    );
}

/// SIGKILL and SIGTERM part-way through an export to a file leave nothing in OUT's
/// directory (an unnamed O_TMPFILE file, not `.OUT.vhdx-check-PID.tmp`).
#[test]
fn a_killed_export_leaves_no_file() {
    let tmp = Scratch::new("export-killed");
    let p = tmp.path("huge.vhdx");
    ImageBuilder::dynamic(64 << 40)
        .write(0, b"boot")
        .build()
        .write_to(Path::new(&p))
        .unwrap();
    for signal in ["-KILL", "-TERM"] {
        let mut child = bin()
            .args(["export", &p, &tmp.path("out.raw")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        assert!(child.try_wait().unwrap().is_none(), "export ended early");
        let ok = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        child.wait().unwrap();
        let left: Vec<_> = std::fs::read_dir(&tmp.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("huge.vhdx")],
            "{signal}"
        );
    }
}

/// Paths that are not one line of UTF-8 (a newline, a 0xff byte) are escaped losslessly
/// in map's text (`\n`, `\xff`), given with their bytes in map's JSON (`image_bytes`,
/// `path_bytes`, `source_bytes`), escaped on export's stderr and in replay's summary.
#[test]
fn paths_in_map_export_and_replay_are_escaped_losslessly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = Scratch::new("odd-names");
    let mut img = ImageBuilder::dynamic(8 * MIB)
        .block_size(MIB as u32)
        .write(0, b"data")
        .build();
    let at = img
        .layout
        .bat_entry_offset(img.layout.payload_entry_index(3));
    let entry = bat::entry(bat::ZERO, 0).to_le_bytes();
    let e = img.log_entry(&[(at, &entry)]);
    img.write_log(&[e]);
    let p = tmp.0.join(OsStr::from_bytes(b"a\nb\xff.vhdx"));
    img.write_to(&p).unwrap();
    let hex = hex(p.as_os_str().as_bytes());
    let o = bin()
        .args([OsStr::new("map"), p.as_os_str()])
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("a\\nb\\xff.vhdx: virtual disk"), "{text}");
    assert!(lines[2].ends_with("a\\nb\\xff.vhdx"), "{text}");
    let o = bin()
        .args(["map", "--format", "json"])
        .arg(&p)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["image"].as_str().unwrap().ends_with("a\nb\\xff.vhdx"),
        "{v}"
    );
    assert_eq!(v["image_bytes"], hex.as_str());
    assert_eq!(v["chain"][0]["path_bytes"], hex.as_str());
    assert_eq!(v["extents"][0]["source_bytes"], hex.as_str());
    let odd_out = tmp.0.join(OsStr::from_bytes(b"o\xff.raw"));
    for (code, what) in [(0, ": 8388608 bytes, sha256"), (2, " exists")] {
        let o = bin()
            .args(["export", "--view", "raw"])
            .arg(&p)
            .arg(&odd_out)
            .output()
            .unwrap();
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!("o\\xff.raw{what}")) && !err.contains('\u{fffd}'),
            "{err}"
        );
    }
    let o = bin()
        .args(["export", "--parent"])
        .arg(&p)
        .arg(&p)
        .arg(tmp.0.join("x.raw"))
        .output()
        .unwrap();
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a\\nb\\xff.vhdx") && !err.contains('\u{fffd}'),
        "{err}"
    );
    let copy = tmp.0.join(OsStr::from_bytes(b"r\nc.vhdx"));
    let o = bin().arg("replay").arg(&p).arg(&copy).output().unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("r\\nc.vhdx"), "{out}");
}
