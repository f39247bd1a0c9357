//! The input and read edges: only regular files and block devices are images, opening
//! never blocks, and a read error or a file that changes under the check is a tool
//! failure (exit 2), never zeros and never a stale verdict.

use crate::builder::*;
use crate::cli::Scratch;
use crate::rules_header::base;
use crate::util::hex;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vhdx_check::CheckOptions;
use vhdx_check::check::{check_staged, try_check};
use vhdx_check::io::{FileReader, ReadAt, SourceError, Watch};

/// Runs the binary with a deadline: `None` when it had to be killed (it hung).
fn run_within(args: &[&str], secs: u64) -> Option<(i32, String, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vhdx-check"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vhdx-check");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    status.map(|s| (s.code().unwrap_or(-1), out, err))
}

/// `run_within`, failing the test when the binary hung.
fn finishes(args: &[&str]) -> (i32, String, String) {
    run_within(args, 20).unwrap_or_else(|| panic!("vhdx-check {args:?} hung (killed after 20 s)"))
}

fn fifo(dir: &Scratch, name: &str) -> String {
    let p = dir.path(name);
    let ok = Command::new("mkfifo").arg(&p).status().expect("mkfifo");
    assert!(ok.success());
    p
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn fifo_as_image_parent_and_in_a_batch_is_refused_without_hanging() {
    let dir = Scratch::new("edges-fifo");
    let f = fifo(&dir, "pipe.vhdx");
    let good = dir.path("good.vhdx");
    base().write_to(Path::new(&good)).unwrap();

    let (code, _, err) = finishes(&["check", &f]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&f) && err.contains("a FIFO, not an image file"),
        "{err}"
    );

    let (code, _, err) = finishes(&["check", &good, "--parent", &f]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a FIFO, not an image file"), "{err}");

    // In a batch the other image is still checked.
    let (code, out, err) = finishes(&["check", "--format", "json", &good, &f]);
    assert_eq!(code, 2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"][0]["verdict"], "accept", "{out}");
    assert!(err.contains("a FIFO, not an image file"), "{err}");

    let (code, _, err) = finishes(&["info", &f]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a FIFO"), "{err}");
    let out_file = dir.path("out.vhdx");
    let (code, _, err) = finishes(&["replay", &f, &out_file]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("a FIFO") && !Path::new(&out_file).exists(),
        "{err}"
    );
}

#[test]
fn character_devices_and_directories_are_not_images() {
    for dev in ["/dev/zero", "/dev/null"] {
        if !Path::new(dev).exists() {
            eprintln!("skipped {dev}: not present");
            continue;
        }
        for cmd in ["check", "info"] {
            let (code, out, err) = finishes(&[cmd, dev]);
            assert_eq!(code, 2, "{cmd} {dev}: {out}{err}");
            assert!(
                err.contains(&format!("{dev}: a character device, not an image file")),
                "{err}"
            );
            assert!(!out.contains("ACCEPT") && !out.contains("REJECT"), "{out}");
        }
    }
    let dir = Scratch::new("edges-dir");
    let good = dir.path("good.vhdx");
    base().write_to(Path::new(&good)).unwrap();
    let (code, _, err) = finishes(&["check", &good, "--parent", &dir.0.to_string_lossy()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a directory, not an image file"), "{err}");
}

#[test]
fn policy_from_a_device_a_fifo_or_a_huge_file_is_a_clean_failure() {
    let dir = Scratch::new("edges-policy");
    let good = dir.path("good.vhdx");
    base().write_to(Path::new(&good)).unwrap();
    let f = fifo(&dir, "policy.toml");
    let big = dir.path("big.toml");
    // Valid TOML (a comment), larger than any policy may be.
    std::fs::write(&big, format!("#{}\n", "x".repeat(2 << 20))).unwrap();
    for (p, why) in [
        ("/dev/zero", "a character device, not a policy file"),
        (f.as_str(), "a FIFO, not a policy file"),
        (big.as_str(), "more than a policy file may have"),
    ] {
        if !Path::new(p).exists() {
            eprintln!("skipped {p}: not present");
            continue;
        }
        let (code, out, err) = finishes(&["check", "--policy", p, &good]);
        assert_eq!(code, 2, "{p}: {out}{err}");
        assert!(err.contains(p) && err.contains(why), "{p}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // A policy at the cap is read.
    let ok = dir.file("ok.toml", "fail_on = \"error\"\n");
    assert_eq!(finishes(&["check", "--policy", &ok, &good]).0, 0);
}

/// Fails every read that starts inside `[bad, bad + 512)` with EIO; a read running into
/// it stops short there, as a disk returns what it read before the bad sector.
struct Faulty<'a> {
    inner: &'a dyn ReadAt,
    bad: u64,
}

impl ReadAt for Faulty<'_> {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if (self.bad..self.bad + 512).contains(&offset) {
            return Err(std::io::Error::from_raw_os_error(5));
        }
        let end = offset + buf.len() as u64;
        let n = if offset < self.bad && self.bad < end {
            (self.bad - offset) as usize
        } else {
            buf.len()
        };
        self.inner.read_at(offset, &mut buf[..n])
    }
}

#[test]
fn a_read_error_anywhere_voids_the_report_and_names_the_offset() {
    let img = base();
    let l = img.layout.clone();
    let opts = CheckOptions::default();
    assert!(try_check(&img, None, &opts).is_ok());
    // The file identifier's slack, a header, a region table, the metadata, the BAT.
    for bad in [0x2000, 0x10000, 0x30000, l.metadata_offset, l.bat_offset] {
        let src = Faulty { inner: &img, bad };
        // The rules alone would judge the zeros they were given.
        let r = vhdx_check::check(&src, &opts);
        let got = try_check(&src, None, &opts);
        match &got {
            Err(SourceError::Read { offset, error }) => {
                assert_eq!(*offset, bad);
                assert_eq!(error.raw_os_error(), Some(5));
            }
            other => panic!("{bad:#x}: {other:?} (unwatched: {:?})", r.ids()),
        }
        let text = got.unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("read error at offset {bad} ({bad:#x}): ")),
            "{text}"
        );
    }
}

#[test]
fn a_read_error_while_hashing_voids_the_report() {
    let img = base();
    let bad = img.layout.block_offset(5);
    let src = Faulty { inner: &img, bad };
    let opts = CheckOptions::default();
    let got = check_staged(&src, None, &opts, |raw, _, _| {
        vhdx_check::hash::digests(raw).is_ok()
    });
    assert!(
        matches!(got, Err(SourceError::Read { offset, .. }) if offset == bad),
        "{:?}",
        got.map(|(_, hashed)| hashed)
    );
}

/// An image truncated to `to` bytes by the first read at or past `when`.
struct Shrinking<'a> {
    inner: &'a dyn ReadAt,
    len: AtomicU64,
    when: u64,
    to: u64,
}

impl ReadAt for Shrinking<'_> {
    fn len(&self) -> u64 {
        self.len.load(Ordering::SeqCst)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.when {
            self.len.store(self.to, Ordering::SeqCst);
        }
        let len = self.len();
        if offset >= len {
            return Ok(0);
        }
        let n = buf.len().min((len - offset) as usize);
        self.inner.read_at(offset, &mut buf[..n])
    }
}

#[test]
fn an_image_truncated_during_the_check_is_evidence_changed() {
    let img = base();
    let src = Shrinking {
        inner: &img,
        len: AtomicU64::new(img.len),
        when: img.layout.bat_offset,
        to: 2 * MIB,
    };
    let got = try_check(&src, None, &CheckOptions::default());
    match got {
        Err(e @ SourceError::Changed(_)) => {
            let text = e.to_string();
            assert!(
                text.starts_with("evidence changed during the check"),
                "{text}"
            );
            assert!(text.contains(&format!("{} bytes", img.len)), "{text}");
        }
        other => panic!("{:?}", other.map(|r| r.ids())),
    }
}

#[test]
fn a_real_file_that_changes_after_opening_is_caught() {
    let dir = Scratch::new("edges-change");
    let p = dir.path("x.vhdx");
    let img = base();
    img.write_to(Path::new(&p)).unwrap();
    // Truncated.
    let f = FileReader::open(Path::new(&p)).unwrap();
    let w = Watch::new(&f);
    assert!(w.verify().is_ok());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(MIB)
        .unwrap();
    let e = w.verify().unwrap_err().to_string();
    assert!(e.contains("evidence changed") && e.contains("size"), "{e}");
    // Rewritten in place: the same size, another modification time.
    img.write_to(Path::new(&p)).unwrap();
    let f = FileReader::open(Path::new(&p)).unwrap();
    let w = Watch::new(&f);
    let old = std::fs::metadata(&p).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(old + Duration::from_secs(60))
        .unwrap();
    let e = w.verify().unwrap_err().to_string();
    assert!(e.contains("evidence changed") && e.contains("time"), "{e}");
}

/// A read-only loop device over `file`, detached when dropped.
struct Loop(String);

impl Loop {
    fn attach(file: &str) -> Option<Loop> {
        if !is_root() {
            eprintln!("skipped: loop devices need root");
            return None;
        }
        let out = Command::new("losetup")
            .args(["-r", "-f", "--show", file])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                Some(Loop(String::from_utf8_lossy(&o.stdout).trim().to_string()))
            }
            Ok(o) => {
                eprintln!(
                    "skipped: losetup failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: no losetup: {e}");
                None
            }
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn an_image_on_a_block_device_is_checked_like_the_file() {
    let dir = Scratch::new("edges-blk");
    let p = dir.path("x.vhdx");
    let mut img = base();
    img.patch(0x1234, b"SECRET-FTI"); // one finding, at an offset
    img.write_to(Path::new(&p)).unwrap();
    let Some(dev) = Loop::attach(&p) else { return };
    let findings = |path: &str| {
        let (code, out, err) = finishes(&["check", "--format", "json", "--hash", "sha256", path]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{err}"));
        let img = &v["images"][0];
        (
            code,
            img["size"].clone(),
            img["findings"].clone(),
            img["digests"].clone(),
        )
    };
    let (code_file, size_file, file, digests_file) = findings(&p);
    let (code_dev, size_dev, on_dev, digests_dev) = findings(&dev.0);
    assert_eq!(size_dev, img.len, "the device's size, not st_size 0");
    assert_eq!(
        (code_dev, &size_dev, &on_dev),
        (code_file, &size_file, &file)
    );
    assert!(on_dev.to_string().contains("FTI-006"), "{on_dev}");
    let want = hex(&Sha256::digest(std::fs::read(&p).unwrap()));
    assert_eq!(digests_dev["file"], want.as_str());
    assert_eq!(digests_dev, digests_file);
    let (code, out, err) = finishes(&["info", &dev.0]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dynamic") || out.contains("Dynamic"), "{out}");
}

/// A btrfs file system in a file, mounted on `mnt` (its data checksums turn a damaged
/// block into EIO for exactly that block); unmounted when dropped.
struct Btrfs {
    image: String,
    mnt: String,
    mounted: bool,
}

impl Btrfs {
    fn make(dir: &Scratch) -> Option<Btrfs> {
        if !is_root() {
            eprintln!("skipped: mounting btrfs needs root");
            return None;
        }
        let fs = Btrfs {
            image: dir.path("fs.img"),
            mnt: dir.path("mnt"),
            mounted: false,
        };
        std::fs::create_dir_all(&fs.mnt).unwrap();
        let f = std::fs::File::create(&fs.image).unwrap();
        f.set_len(128 * MIB).unwrap();
        let made = Command::new("mkfs.btrfs")
            .args(["-q", "-m", "single", "-d", "single", &fs.image])
            .output();
        match made {
            Ok(o) if o.status.success() => Some(fs),
            Ok(o) => {
                eprintln!(
                    "skipped: mkfs.btrfs failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: no mkfs.btrfs (btrfs-progs): {e}");
                None
            }
        }
    }

    fn mount(&mut self, opts: &str) -> bool {
        let o = Command::new("mount")
            .args(["-o", opts, &self.image, &self.mnt])
            .output()
            .expect("mount");
        self.mounted = o.status.success();
        if !self.mounted {
            eprintln!(
                "skipped: mount failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        self.mounted
    }

    fn umount(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.mnt).status();
            self.mounted = false;
        }
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        self.umount();
    }
}

/// `img` written to `x.vhdx` on a btrfs file system whose copy of the 4 KiB block holding
/// `marker` (at a 4 KiB-aligned offset of `img`) is damaged: reads of it fail with EIO.
/// `None` (skipped, with a message) without root, btrfs-progs or mount.
fn on_damaged_btrfs(dir: &Scratch, img: &Built, marker: &[u8]) -> Option<(Btrfs, String)> {
    let mut fs = Btrfs::make(dir)?;
    if !fs.mount("loop") {
        return None;
    }
    let p = format!("{}/x.vhdx", fs.mnt);
    img.write_to(Path::new(&p)).unwrap();
    fs.umount();
    let mut raw = std::fs::read(&fs.image).unwrap();
    let at = raw
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("marker in the file system image");
    raw[at] ^= 0xff;
    std::fs::write(&fs.image, &raw).unwrap();
    drop(raw);
    fs.mount("loop,ro").then_some((fs, p))
}

#[test]
fn a_read_error_through_the_cli_is_exit_2_naming_the_offset() {
    let dir = Scratch::new("edges-eio");
    // A marker in the file identifier's slack (swept by FTI-006).
    let marker = b"EDGES-IO-EIO-MARKER-7f3a9c";
    let bad = 0x2000u64;
    let mut img = base();
    img.patch(bad, marker);
    let Some((_fs, p)) = on_damaged_btrfs(&dir, &img, marker) else {
        return;
    };
    for args in [
        vec!["check", p.as_str()],
        vec!["check", "--hash", "sha256", p.as_str()],
        vec!["info", p.as_str()],
    ] {
        let (code, out, err) = finishes(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains(&format!("{p}: read error at offset {bad} ({bad:#x}): ")),
            "{err}"
        );
        assert!(err.contains("os error 5"), "{err}");
        assert!(!out.contains("ACCEPT") && !out.contains("REJECT"), "{out}");
    }
}

#[test]
fn a_read_error_during_replay_leaves_no_copy() {
    let dir = Scratch::new("edges-eio-replay");
    // A pending log; a payload block the copy reads is damaged.
    let (mut img, _, _) = crate::rules_log::dirty();
    let marker = b"EDGES-IO-REPLAY-MARKER-41c2e8";
    let bad = img.layout.block_offset(0);
    img.patch(bad, marker);
    let out = dir.path("out.vhdx");
    let Some((_fs, p)) = on_damaged_btrfs(&dir, &img, marker) else {
        return;
    };
    let (code, stdout, err) = finishes(&["replay", &p, &out]);
    assert_eq!(code, 2, "{stdout}{err}");
    assert!(
        err.contains(&format!("{p}: read error at offset {bad} ({bad:#x}): ")),
        "{err}"
    );
    assert!(!Path::new(&out).exists(), "a copy was left");
}
