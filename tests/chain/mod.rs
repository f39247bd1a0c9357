//! Differencing chains end to end: builder-made parents and children written to a temporary
//! directory and checked through the binary with `--parent`, `--find-parents` and
//! `--search-dir` (CATALOGUE 2.9; discovery order relative_path → volume_path →
//! absolute_win32_path, 1.4.13). Discovery must stay inside the child's directory tree
//! unless a search directory is named, and must terminate on locator loops.

mod discovery;
mod incomplete;
mod levels;

use crate::builder::*;
use crate::cli::bin;
use crate::util::assert_fires_json;
use levels::three_levels;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const BS: u32 = MIB as u32;

/// A fresh, empty temporary directory for one test; removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("vhdx-check-chain-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// Writes `img` at `rel` (creating directories) and returns its path.
    fn put(&self, rel: &str, img: &Built) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        img.write_to(&p).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs the binary with a time limit (a locator loop must not hang it): (exit code, stdout).
/// The output is read while the binary runs (a report larger than a pipe would block it).
fn run(args: &[&str]) -> (i32, String) {
    let child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vhdx-check");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(120)) else {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        panic!("vhdx-check {args:?} did not finish in 120 s");
    };
    let out = out.unwrap();
    let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), stdout)
}

/// Runs `check --format json` with `args` before the image: (exit code, images).
fn check_json(args: &[&str]) -> (i32, Vec<Value>) {
    let mut a = vec!["check", "--format", "json"];
    a.extend_from_slice(args);
    let (code, out) = run(&a);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (code, v["images"].as_array().unwrap().clone())
}

/// The image paths of a JSON report, canonicalised.
fn paths(images: &[Value]) -> Vec<PathBuf> {
    images
        .iter()
        .map(|i| {
            Path::new(i["path"].as_str().unwrap())
                .canonicalize()
                .unwrap()
        })
        .collect()
}

/// Rule ids (with severity) of one JSON image.
fn rules(image: &Value) -> Vec<(String, String)> {
    image["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(image: &Value, id: &str) -> bool {
    rules(image).iter().any(|(r, _)| r == id)
}

/// No CHAIN finding and no error or warning in any image.
fn all_clean(images: &[Value]) {
    for i in images {
        for (rule, sev) in rules(i) {
            assert!(
                !rule.starts_with("CHAIN-") && sev == "info",
                "{rule} {sev} in {}",
                i["path"]
            );
        }
    }
}

/// The message and offset of the first `id` finding of one JSON image.
#[track_caller]
fn message(image: &Value, id: &str) -> String {
    assert_fires_json(image, id)[0]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[track_caller]
fn finding<'a>(image: &'a Value, id: &str) -> &'a Value {
    assert_fires_json(image, id)[0]
}

fn canon(p: &Path) -> PathBuf {
    p.canonicalize().unwrap()
}

// ---- images ---------------------------------------------------------------------------

/// A 64 MiB dynamic parent with some data; `seed` makes its GUIDs distinct.
fn parent(seed: u64) -> Built {
    ImageBuilder::dynamic(64 * MIB)
        .block_size(BS)
        .seed(seed)
        .write(0, b"parent data")
        .write(5 * MIB, &[7; 4096])
        .build()
}

/// A 64 MiB differencing child of `parent` (parent_linkage = its DataWriteGuid) with the
/// locator `paths` after parent_linkage; `seed` makes its own GUIDs distinct.
fn child_of(parent: &Built, seed: u64, paths: &[(&str, &str)]) -> Built {
    let linkage = guid_braced(&parent.layout.data_write_guid);
    let mut entries = vec![("parent_linkage", linkage.as_str())];
    entries.extend_from_slice(paths);
    ImageBuilder::differencing(64 * MIB)
        .block_size(BS)
        .seed(seed)
        .parent_locator(&entries)
        .write_sectors(0, &[0xC1; 512])
        .write_sectors(3 * MIB + 4096, &[0xC2; 1024])
        .build()
}

/// The builder's default locator paths for a parent called `name` next to the child.
fn next_to(name: &str) -> Vec<(String, String)> {
    vec![
        ("relative_path".into(), format!(r".\{name}")),
        ("absolute_win32_path".into(), format!(r"\\?\C:\vms\{name}")),
    ]
}

fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
