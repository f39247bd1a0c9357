//! The command-line contract: exit codes, formats, read-only access.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary under test; `VHDX_CHECK_BIN` names another one (to see a new test fail
/// against an older build).
pub fn bin() -> Command {
    Command::new(
        std::env::var_os("VHDX_CHECK_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_vhdx-check").into()),
    )
}

pub fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/images")
        .join(name)
}

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("vhdx-check-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// Path of `name` inside the directory, as a string for command lines.
    pub fn path(&self, name: &str) -> String {
        self.0
            .join(name)
            .to_str()
            .expect("UTF-8 temp path")
            .to_string()
    }

    /// Writes `text` to `name` and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().expect("run vhdx-check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clean_qemu_image_exits_0() {
    let p = corpus("qemu-dynamic-1M.vhdx");
    let (code, out, _) = run(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ACCEPT") && out.contains("0 errors"), "{out}");
}

#[test]
fn damaged_image_exits_1_and_names_each_fault_with_offset() {
    let p = corpus("damaged-multi.vhdx");
    let (code, out, _) = run(&["check", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(v["schema"], 1);
    let img = &v["images"][0];
    assert_eq!(img["verdict"], "reject");
    let findings = img["findings"].as_array().unwrap();
    let at = |rule: &str| -> Vec<u64> {
        findings
            .iter()
            .filter(|f| f["rule"] == rule)
            .filter_map(|f| f["offset"].as_u64())
            .collect()
    };
    // See tests/data/make_damaged.py for the faults planted.
    assert_eq!(at("HDR-002"), vec![0x10000]);
    assert_eq!(at("HDR-006"), vec![0x10000]);
    assert_eq!(at("RGN-001"), vec![0x40000]);
    assert_eq!(at("RGN-005"), vec![0x40000]);
    assert_eq!(at("LAYOUT-006"), vec![0x60000]);
    assert_eq!(at("BAT-014"), vec![4000 << 20]);
    assert_eq!(at("BAT-013").len(), 1);
    assert_eq!(at("BAT-002").len(), 1);
    assert_eq!(at("LAYOUT-001").len(), 1);
    assert_eq!(at("META-028").len(), 1);
    assert_eq!(
        img["summary"]["error"].as_u64().unwrap(),
        findings.iter().filter(|f| f["severity"] == "error").count() as u64
    );
}

#[test]
fn fail_on_levels() {
    let p = corpus("qemu-dynamic-1M.vhdx");
    let p = p.to_str().unwrap();
    // qemu-img images carry RGN-020 warnings (Required = 0 on BAT and metadata entries).
    assert_eq!(run(&["check", "--fail-on", "warning", p]).0, 1);
    assert_eq!(
        run(&[
            "check",
            "--fail-on",
            "never",
            corpus("damaged-multi.vhdx").to_str().unwrap()
        ])
        .0,
        0
    );
}

#[test]
fn unreadable_file_and_bad_usage_exit_2() {
    let (code, _, err) = run(&["check", "/nonexistent/disk.vhdx"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
    assert_eq!(run(&["check"]).0, 2);
    assert_eq!(run(&["frobnicate"]).0, 2);
    assert_eq!(run(&["explain", "XYZ-999"]).0, 2);
    let empty = Scratch::new("empty-dir");
    let (code, _, err) = run(&["check", empty.0.to_str().unwrap()]);
    assert_eq!(code, 2, "a directory without images");
    assert!(err.contains("no *.vhdx"), "{err}");
}

#[test]
fn garbage_and_empty_files_are_findings_not_crashes() {
    let dir = std::env::temp_dir().join(format!("vhdx-check-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in [
        ("empty", vec![]),
        (
            "garbage",
            (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let (code, out, err) = run(&["check", p.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        // An empty file is not a VHDX at all; garbage may be a damaged one.
        let want: &[&str] = if bytes.is_empty() {
            &["FTI-007"]
        } else {
            &["FTI-001", "FTI-002", "HDR-003"]
        };
        assert!(want.iter().all(|id| out.contains(id)), "{out}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Reading the evidence does not update its access time (O_NOATIME: the test owns the
/// file). The control read shows the file system would have updated it: an access time
/// older than the modification time is updated by any read under relatime and strictatime.
#[test]
fn check_leaves_the_access_time_as_it_was() {
    use std::fs::FileTimes;
    use std::time::{Duration, SystemTime};
    let dir = std::env::temp_dir().join(format!("vhdx-check-atime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("image.vhdx");
    std::fs::copy(corpus("qemu-dynamic-1M.vhdx"), &p).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let age = |p: &std::path::Path| {
        let times = FileTimes::new()
            .set_accessed(old)
            .set_modified(SystemTime::now());
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_times(times)
            .unwrap();
    };
    let atime = |p: &std::path::Path| std::fs::metadata(p).unwrap().accessed().unwrap();
    age(&p);
    std::fs::read(&p).unwrap();
    let updates = atime(&p) != old;
    age(&p);
    for cmd in ["check", "info"] {
        run(&[cmd, p.to_str().unwrap()]);
        assert_eq!(atime(&p), old, "{cmd} changed the access time");
    }
    std::fs::remove_dir_all(&dir).ok();
    if !updates {
        eprintln!("this file system does not update access times: the test shows nothing here");
    }
}

#[test]
fn check_never_modifies_the_image() {
    let p = corpus("damaged-multi.vhdx");
    let before = std::fs::read(&p).unwrap();
    let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
    for args in [
        vec!["check"],
        vec!["info"],
        vec!["check", "--format", "json"],
    ] {
        let mut a = args.clone();
        a.push(p.to_str().unwrap());
        run(&a);
    }
    assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), mtime);
    assert!(std::fs::read(&p).unwrap() == before, "image bytes changed");
}

#[test]
fn info_rules_and_explain() {
    let p = corpus("qemu-dynamic-1M.vhdx");
    let (code, out, _) = run(&["info", "--format", "json", p.to_str().unwrap()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["disk_type"], "dynamic");
    assert_eq!(v["parameters"]["block_size"], 1 << 20);
    assert_eq!(v["creator"], "QEMU v10.0.2");
    assert!(
        v["bat"]["payload_states"]["PAYLOAD_BLOCK_FULLY_PRESENT (6)"]
            .as_u64()
            .unwrap()
            > 0
    );
    let (code, out, _) = run(&["info", p.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("sequence_number"), "{out}");

    let (code, out, _) = run(&["rules", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "BAT-013")
    );
    let (code, out, _) = run(&["explain", "hdr-002"]);
    assert_eq!(code, 0);
    assert!(out.contains("HDR-002") && out.contains("2.2.2"), "{out}");
    assert!(
        out.contains("docs/rules/HDR-002.md") && out.contains("What to do:"),
        "explain names the rule page: {out}"
    );
}
