//! Differencing chains end to end: builder-made parents and children written to a temporary
//! directory and checked through the binary with `--parent`, `--find-parents` and
//! `--search-dir` (CATALOGUE 2.9; discovery order relative_path → volume_path →
//! absolute_win32_path, 1.4.13). Discovery must stay inside the child's directory tree
//! unless a search directory is named, and must terminate on locator loops.

use crate::builder::*;
use crate::cli::bin;
use crate::util::assert_fires_json;
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

// ---- two-level chain ------------------------------------------------------------------

#[test]
fn explicit_parent_checks_both_files() {
    let dir = TempDir::new("explicit");
    let p = parent(7);
    let pp = dir.put("parent.vhdx", &p);
    let cp = dir.put(
        "child.vhdx",
        &child_of(&p, 1, &refs(&next_to("parent.vhdx"))),
    );
    let (code, out) = run(&["check", "--parent", s(&pp), s(&cp)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(s(&pp)) && out.contains(s(&cp)), "{out}");
    assert!(!out.contains("CHAIN-"), "{out}");
    let (code, images) = check_json(&["--parent", s(&pp), s(&cp)]);
    assert_eq!(code, 0);
    assert_eq!(paths(&images), vec![canon(&cp), canon(&pp)]);
    all_clean(&images);
}

#[test]
fn find_parents_follows_relative_path() {
    let dir = TempDir::new("find");
    let p = parent(7);
    let pp = dir.put("parent.vhdx", &p);
    let cp = dir.put(
        "child.vhdx",
        &child_of(&p, 1, &refs(&next_to("parent.vhdx"))),
    );
    let (code, out) = run(&["check", "--find-parents", s(&cp)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("parent.vhdx: ACCEPT"), "{out}");
    let (code, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(code, 0);
    assert_eq!(paths(&images), vec![canon(&cp), canon(&pp)]);
    all_clean(&images);
    // Also when the child is named relative to the working directory.
    let out = bin()
        .current_dir(&dir.0)
        .args(["check", "--format", "json", "--find-parents", "child.vhdx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["images"].as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn wrong_parent_gives_chain_001() {
    let dir = TempDir::new("wrong");
    let p = parent(7);
    let other = dir.put("other.vhdx", &parent(8));
    let cp = dir.put(
        "child.vhdx",
        &child_of(&p, 1, &refs(&next_to("parent.vhdx"))),
    );
    let (code, out) = run(&["check", "--parent", s(&other), s(&cp)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CHAIN-001"), "{out}");
    let (_, images) = check_json(&["--parent", s(&other), s(&cp)]);
    assert!(has(&images[0], "CHAIN-001") && !has(&images[1], "CHAIN-001"));
    // No reader shows the disk this chain would read as: no virtual digest of the child.
    let (_, images) = check_json(&["--hash", "sha256", "--parent", s(&other), s(&cp)]);
    let d = &images[0]["digests"];
    assert_eq!(d["virtual_disk"], Value::Null, "{d}");
    assert!(
        d["virtual_unavailable"]
            .as_str()
            .is_some_and(|w| w.contains("CHAIN-001")),
        "{d}"
    );
    assert!(
        images[1]["digests"]["virtual_disk"].is_string(),
        "{}",
        images[1]
    );
    // The parent changed after the child was made: a new DataWriteGuid in its current header.
    let mut changed = p.clone();
    changed.edit_header(2, |h| h[hdr::DATA_WRITE_GUID + 15] ^= 1);
    let pp = dir.put("parent.vhdx", &changed);
    let (code, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(code, 1);
    assert_eq!(paths(&images), vec![canon(&cp), canon(&pp)]);
    assert!(has(&images[0], "CHAIN-001"));
}

#[test]
fn parent_with_other_sector_size_gives_chain_002() {
    let dir = TempDir::new("lss");
    let p = ImageBuilder::dynamic(64 * MIB)
        .block_size(BS)
        .logical_sector(4096)
        .seed(7)
        .build();
    let pp = dir.put("parent.vhdx", &p);
    let cp = dir.put(
        "child.vhdx",
        &child_of(&p, 1, &refs(&next_to("parent.vhdx"))),
    );
    let (code, out) = run(&["check", "--parent", s(&pp), s(&cp)]);
    assert_eq!(code, 1, "{out}");
    let (_, images) = check_json(&["--parent", s(&pp), s(&cp)]);
    assert!(has(&images[0], "CHAIN-002"), "{:?}", rules(&images[0]));
    assert!(!has(&images[0], "CHAIN-001"), "{:?}", rules(&images[0]));
}

// ---- where discovery may look ---------------------------------------------------------

#[test]
fn discovery_stays_in_the_child_tree_unless_a_search_dir_is_named() {
    let dir = TempDir::new("tree");
    let p = parent(7);
    let pp = dir.put("parent.vhdx", &p);
    let locator = [
        ("relative_path", r"..\parent.vhdx"),
        ("absolute_win32_path", r"\\?\C:\vms\parent.vhdx"),
    ];
    let cp = dir.put("sub/child.vhdx", &child_of(&p, 1, &locator));
    let (code, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(code, 1, "the chain is incomplete");
    assert_eq!(paths(&images), vec![canon(&cp)], "the parent is outside");
    assert!(has(&images[0], "CHAIN-006"), "{:?}", rules(&images[0]));
    let (code, images) = check_json(&["--find-parents", "--search-dir", s(&dir.0), s(&cp)]);
    assert_eq!(code, 0);
    assert_eq!(paths(&images), vec![canon(&cp), canon(&pp)]);
    all_clean(&images);
    // info shows the same resolution.
    let (_, out) = run(&["info", "--format", "json", "--find-parents", s(&cp)]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["chain"].as_array().unwrap().len(), 1, "{}", v["chain"]);
    assert_eq!(
        v["chain"][0]["broken"]["rule"], "CHAIN-006",
        "{}",
        v["chain"]
    );
}

#[cfg(unix)]
#[test]
fn discovery_does_not_follow_a_symlink_out_of_the_tree() {
    let dir = TempDir::new("symlink");
    let p = parent(7);
    dir.put("outside/parent.vhdx", &p);
    let cp = dir.put(
        "sub/child.vhdx",
        &child_of(&p, 1, &[("relative_path", r".\link.vhdx")]),
    );
    std::os::unix::fs::symlink(dir.path("outside/parent.vhdx"), dir.path("sub/link.vhdx")).unwrap();
    let (code, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(paths(&images), vec![canon(&cp)]);
    assert_eq!(code, 1);
    assert!(has(&images[0], "CHAIN-006"), "{:?}", rules(&images[0]));
}

#[cfg(unix)]
#[test]
fn discovery_does_not_enter_a_symlinked_directory_out_of_the_tree() {
    // sub/disks is a symlink to a directory outside the child's tree: neither the relative
    // path through it nor the file-name search of the absolute path reaches the parent.
    // (Discovery opens the name below the opened root with no symlink followed and checks
    // that handle, so a directory swapped for such a link after a check cannot be used.)
    let dir = TempDir::new("symlink-dir");
    let p = parent(7);
    let outside = dir.put("outside/parent.vhdx", &p);
    let locator = [
        ("relative_path", r".\disks\parent.vhdx"),
        ("absolute_win32_path", r"\\?\C:\vms\parent.vhdx"),
    ];
    let cp = dir.put("sub/child.vhdx", &child_of(&p, 1, &locator));
    std::os::unix::fs::symlink(dir.path("outside"), dir.path("sub/disks")).unwrap();
    let (code, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(paths(&images), vec![canon(&cp)]);
    assert_eq!(code, 1);
    assert!(has(&images[0], "CHAIN-006"), "{:?}", rules(&images[0]));
    // A real directory in its place is followed.
    std::fs::remove_file(dir.path("sub/disks")).unwrap();
    let inside = dir.put("sub/disks/parent.vhdx", &p);
    let (code, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(paths(&images), vec![canon(&cp), canon(&inside)]);
    assert_eq!(code, 0, "{:?}", rules(&images[0]));
    assert_ne!(canon(&inside), canon(&outside));
}

#[test]
fn parent_found_by_absolute_path_name_gives_chain_005() {
    let dir = TempDir::new("absolute");
    let p = parent(7);
    let pp = dir.put("parent.vhdx", &p);
    // relative_path names a directory that no longer exists; the file name of
    // absolute_win32_path is found next to the child.
    let locator = [
        ("relative_path", r".\old-place\parent.vhdx"),
        ("absolute_win32_path", r"\\?\D:\old-place\parent.vhdx"),
    ];
    let cp = dir.put("child.vhdx", &child_of(&p, 1, &locator));
    let (code, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(code, 0, "CHAIN-005 is info");
    assert_eq!(paths(&images), vec![canon(&cp), canon(&pp)]);
    assert!(has(&images[0], "CHAIN-005"), "{:?}", rules(&images[0]));
    assert!(!has(&images[0], "CHAIN-001"));
    // With the relative path working, CHAIN-005 stays silent.
    let (_, images) = check_json(&[
        "--find-parents",
        s(&dir.put(
            "child2.vhdx",
            &child_of(&p, 2, &refs(&next_to("parent.vhdx"))),
        )),
    ]);
    assert!(!has(&images[0], "CHAIN-005"));
}

#[test]
fn parent_found_by_volume_path_name_in_a_subdirectory() {
    let dir = TempDir::new("volume");
    let p = parent(7);
    let pp = dir.put("disks/base.vhdx", &p);
    let locator = [
        ("relative_path", r".\base.vhdx"),
        (
            "volume_path",
            r"\\?\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\disks\base.vhdx",
        ),
        ("absolute_win32_path", r"\\?\E:\disks\base.vhdx"),
    ];
    let cp = dir.put("child.vhdx", &child_of(&p, 1, &locator));
    let (code, out) = run(&["info", "--format", "json", "--find-parents", s(&cp)]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["chain"][1]["found_via"], "volume_path", "{}", v["chain"]);
    let (_, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(paths(&images), vec![canon(&cp), canon(&pp)]);
    assert!(has(&images[0], "CHAIN-005"));
}

// ---- loops ----------------------------------------------------------------------------

#[test]
fn locator_naming_the_child_itself_terminates() {
    let dir = TempDir::new("self");
    let p = parent(7);
    let locator = [
        ("relative_path", r".\self.vhdx"),
        ("absolute_win32_path", r"\\?\C:\vms\self.vhdx"),
    ];
    let cp = dir.put("self.vhdx", &child_of(&p, 1, &locator));
    let (code, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(code, 1, "a loop: the chain has no end");
    assert_eq!(paths(&images), vec![canon(&cp)]);
    assert!(has(&images[0], "CHAIN-007"), "{:?}", rules(&images[0]));
}

#[test]
fn locator_cycle_of_two_children_terminates() {
    let dir = TempDir::new("cycle");
    // a → b → a. Each one's linkage names the other's DataWriteGuid, so the step a → b
    // is a proper link; the step back to a is where the loop is cut.
    let seed_a = ImageBuilder::differencing(64 * MIB).seed(11).build();
    let seed_b = ImageBuilder::differencing(64 * MIB).seed(12).build();
    let a = child_of(&seed_b, 11, &[("relative_path", r".\b.vhdx")]);
    // b reaches a through another spelling of the same file.
    let back = r"..\cycle-dir\a.vhdx";
    let b = child_of(&seed_a, 12, &[("relative_path", back)]);
    assert_eq!(a.layout.data_write_guid, seed_a.layout.data_write_guid);
    let ap = dir.put("cycle-dir/a.vhdx", &a);
    let bp = dir.put("cycle-dir/b.vhdx", &b);
    let (code, images) = check_json(&["--find-parents", s(&ap)]);
    assert_eq!(code, 1, "a loop: the chain has no end");
    assert_eq!(paths(&images), vec![canon(&ap), canon(&bp)]);
    // The loop is reported on b, whose locator leads back to a; a's link to b is sound.
    assert_eq!(
        rules(&images[0])
            .iter()
            .filter(|(r, _)| r.starts_with("CHAIN-"))
            .count(),
        0
    );
    assert!(has(&images[1], "CHAIN-007"), "{:?}", rules(&images[1]));
    let msg = message(&images[1], "CHAIN-007");
    assert!(
        msg.contains("relative_path") && msg.contains("a.vhdx"),
        "{msg}"
    );
    assert!(
        msg.contains("the chain is a loop, so no base disk is reached"),
        "{msg}"
    );
    // The same from b's side.
    let (_, images) = check_json(&["--find-parents", s(&bp)]);
    assert_eq!(paths(&images), vec![canon(&bp), canon(&ap)]);
    assert!(has(&images[1], "CHAIN-007"), "{:?}", rules(&images[1]));
}

// ---- three levels ---------------------------------------------------------------------

/// A grandparent, a differencing parent of it and a child of that parent, at the given
/// places; each locator's relative_path is `rel_to_gp` / `rel_to_parent`.
fn three_levels(
    dir: &TempDir,
    places: [&str; 3],
    rel_to_gp: &str,
    rel_to_parent: &str,
) -> [PathBuf; 3] {
    let gp = parent(5);
    let mid = child_of(&gp, 6, &[("relative_path", rel_to_gp)]);
    let child = child_of(&mid, 1, &[("relative_path", rel_to_parent)]);
    [
        dir.put(places[0], &child),
        dir.put(places[1], &mid),
        dir.put(places[2], &gp),
    ]
}

#[test]
fn three_level_chain_checks_all_files() {
    let dir = TempDir::new("three");
    let [c, p, g] = three_levels(
        &dir,
        ["child.vhdx", "parent.vhdx", "grandparent.vhdx"],
        r".\grandparent.vhdx",
        r".\parent.vhdx",
    );
    let (code, out) = run(&["check", "--find-parents", s(&c)]);
    assert_eq!(code, 0, "{out}");
    for f in [&c, &p, &g] {
        assert!(
            out.contains(&format!("{}: ACCEPT", canon(f).display()))
                || out.contains(&format!("{}: ACCEPT", f.display())),
            "{out}"
        );
    }
    let (code, images) = check_json(&["--find-parents", s(&c)]);
    assert_eq!(code, 0);
    assert_eq!(paths(&images), vec![canon(&c), canon(&p), canon(&g)]);
    all_clean(&images);
    // The explicit form, nearest first, checks the same three.
    let (code, images) = check_json(&["--parent", s(&p), "--parent", s(&g), s(&c)]);
    assert_eq!(code, 0);
    assert_eq!(paths(&images), vec![canon(&c), canon(&p), canon(&g)]);
    all_clean(&images);
    // Nearest first matters: in the other order the base comes before another parent, a
    // --parent list longer than the chain (exit 2, nothing checked).
    let (code, out) = run(&["check", "--parent", s(&g), "--parent", s(&p), s(&c)]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("is not a differencing disk, so it has no parent"),
        "{out}"
    );
}

#[test]
fn grandparent_beside_the_child_is_inside_the_child_tree() {
    // child and grandparent in the top directory, the parent in a subdirectory: the
    // grandparent lies inside the child's tree, so discovery reaches it.
    let dir = TempDir::new("three-tree");
    let [c, p, g] = three_levels(
        &dir,
        ["child.vhdx", "base/parent.vhdx", "grandparent.vhdx"],
        r"..\grandparent.vhdx",
        r".\base\parent.vhdx",
    );
    let (code, images) = check_json(&["--find-parents", s(&c)]);
    assert_eq!(code, 0);
    assert_eq!(paths(&images), vec![canon(&c), canon(&p), canon(&g)]);
    all_clean(&images);
}

// ---- info -----------------------------------------------------------------------------

#[test]
fn info_find_parents_lists_locator_and_chain() {
    let dir = TempDir::new("info");
    let p = parent(7);
    let pp = dir.put("parent.vhdx", &p);
    let paths_kv = next_to("parent.vhdx");
    let cp = dir.put("child.vhdx", &child_of(&p, 1, &refs(&paths_kv)));
    let (code, out) = run(&["info", "--find-parents", s(&cp), "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["disk_type"], "differencing");
    let entries = v["parent_locator"]["entries"].as_array().unwrap();
    let kv: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["key"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect();
    let linkage = guid_braced(&p.layout.data_write_guid);
    assert_eq!(
        kv,
        vec![
            ("parent_linkage", linkage.as_str()),
            ("relative_path", r".\parent.vhdx"),
            ("absolute_win32_path", r"\\?\C:\vms\parent.vhdx"),
        ]
    );
    assert_eq!(v["parent_locator"]["key_value_count"], 3);
    let chain = v["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "{}", v["chain"]);
    assert_eq!(
        canon(Path::new(chain[0]["path"].as_str().unwrap())),
        canon(&cp)
    );
    assert_eq!(chain[0]["found_via"], Value::Null);
    assert_eq!(
        canon(Path::new(chain[1]["path"].as_str().unwrap())),
        canon(&pp)
    );
    assert_eq!(chain[1]["found_via"], "relative_path");
    // With --parent the chain is the one named, nothing found through a key.
    let (code, out) = run(&["info", "--format", "json", "--parent", s(&pp), s(&cp)]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let chain = v["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "{}", v["chain"]);
    assert_eq!(chain[1]["found_via"], Value::Null);
    // Text form names the chain too.
    let (code, out) = run(&["info", "--find-parents", s(&cp)]);
    assert_eq!(code, 0);
    assert!(
        out.contains("relative_path") && out.contains("parent.vhdx"),
        "{out}"
    );
}

// ---- incomplete chains ----------------------------------------------------------------

#[test]
fn missing_parent_gives_chain_006_in_every_format() {
    let dir = TempDir::new("missing");
    let p = parent(7);
    let locator = [
        ("relative_path", r".\gone.vhdx"),
        ("absolute_win32_path", r"\\?\C:\vms\gone-too.vhdx"),
    ];
    let cp = dir.put("child.vhdx", &child_of(&p, 1, &locator));
    dir.put("unrelated.vhdx", &parent(9));
    // Checked alone, without chain options: as before, nothing about the parent.
    let (code, images) = check_json(&[s(&cp)]);
    assert_eq!(code, 0);
    assert!(!has(&images[0], "CHAIN-006"));
    let (code, images) = check_json(&["--find-parents", s(&cp)]);
    assert_eq!(code, 1, "the chain is incomplete");
    assert_eq!(paths(&images), vec![canon(&cp)]);
    let f = finding(&images[0], "CHAIN-006");
    assert_eq!(f["severity"], "error");
    let msg = f["message"].as_str().unwrap();
    for want in [
        "relative_path",
        r".\gone.vhdx",
        "absolute_win32_path",
        "gone-too.vhdx",
        s(&canon(&dir.0)),
        // What follows, and the way on.
        "the virtual disk cannot be read without it: give the parent with --parent, or a --search-dir",
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    // Where the locator is: the parent locator item's offset, as info shows it.
    let (_, out) = run(&["info", "--format", "json", "--find-parents", s(&cp)]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        f["offset"], v["parent_locator"]["offset"],
        "{f} / {}",
        v["parent_locator"]
    );
    assert_eq!(v["chain"][0]["broken"]["rule"], "CHAIN-006");
    let (_, text) = run(&["info", "--find-parents", s(&cp)]);
    assert!(
        text.contains("CHAIN-006") && text.contains("gone.vhdx"),
        "{text}"
    );
    let (code, text) = run(&["check", "--find-parents", s(&cp)]);
    assert_eq!(code, 1);
    assert!(
        text.contains("CHAIN-006") && text.contains("REJECT"),
        "{text}"
    );
    let (code, sarif) = run(&["check", "--format", "sarif", "--find-parents", s(&cp)]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&sarif).unwrap_or_else(|e| panic!("{e}: {sarif}"));
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "CHAIN-006" && r["level"] == "error"),
        "{sarif}"
    );
}

#[test]
fn explicit_parents_that_end_at_a_differencing_disk_give_chain_006() {
    let dir = TempDir::new("short-explicit");
    let [c, p, g] = three_levels(
        &dir,
        ["child.vhdx", "parent.vhdx", "grandparent.vhdx"],
        r".\grandparent.vhdx",
        r".\parent.vhdx",
    );
    let (code, images) = check_json(&["--parent", s(&p), s(&c)]);
    assert_eq!(code, 1, "the parent named is itself differencing");
    assert_eq!(paths(&images), vec![canon(&c), canon(&p)]);
    assert!(!has(&images[0], "CHAIN-006"));
    assert!(message(&images[1], "CHAIN-006").contains("--parent"));
    assert!(message(&images[1], "CHAIN-006").contains("so its virtual disk cannot be read"));
    // With --find-parents as well, the rest is discovered from the last one named.
    let (code, images) = check_json(&["--parent", s(&p), "--find-parents", s(&c)]);
    assert_eq!(code, 0);
    assert_eq!(paths(&images), vec![canon(&c), canon(&p), canon(&g)]);
    all_clean(&images);
}

/// A file named twice in `--parent` is a loop: CHAIN-007 on the member whose parent it
/// would be, the chain cut there (each file listed once); export refuses it. A `--parent`
/// list longer than the chain (a base disk followed by more parents) is a usage error.
#[test]
fn a_parent_named_twice_is_a_loop_and_extra_parents_are_refused() {
    let dir = TempDir::new("dup-parents");
    let [c, p, g] = three_levels(
        &dir,
        ["child.vhdx", "parent.vhdx", "grandparent.vhdx"],
        r".\grandparent.vhdx",
        r".\parent.vhdx",
    );
    let (code, images) = check_json(&["--parent", s(&p), "--parent", s(&p), s(&c)]);
    assert_eq!(code, 1);
    assert_eq!(paths(&images), vec![canon(&c), canon(&p)]);
    assert!(has(&images[1], "CHAIN-007"), "{:?}", rules(&images[1]));
    assert!(message(&images[1], "CHAIN-007").contains("already in the chain"));
    let out = dir.0.join("o.raw");
    let (code, err) = run(&[
        "export",
        "--parent",
        s(&p),
        "--parent",
        s(&p),
        s(&c),
        s(&out),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(!out.exists());
    // The base named twice, and a base followed by another file: exit 2, nothing checked.
    for extra in [&g, &c] {
        let args = [
            "--parent",
            s(&p),
            "--parent",
            s(&g),
            "--parent",
            s(extra),
            s(&c),
        ];
        for cmd in ["check", "info", "map"] {
            let mut a = vec![cmd];
            a.extend_from_slice(&args);
            let (code, out) = run(&a);
            assert_eq!(code, 2, "{cmd}: {out}");
            assert!(
                out.contains("is not a differencing disk, so it has no parent"),
                "{cmd}: {out}"
            );
            assert!(!out.contains("ACCEPT") && !out.contains("REJECT"), "{out}");
        }
    }
}

/// export --find-parents with no parent found gives CHAIN-006's reason (what was looked
/// for), not advice to use the --find-parents that was given.
#[test]
fn export_says_why_discovery_found_no_parent() {
    let dir = TempDir::new("export-no-parent");
    let cp = dir.put(
        "child.vhdx",
        &child_of(&parent(7), 1, &refs(&next_to("missing.vhdx"))),
    );
    let out = dir.0.join("o.raw");
    let (code, err) = run(&["export", "--find-parents", s(&cp), s(&out)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("parent not found: looked for relative_path") && err.contains("(CHAIN-006)"),
        "{err}"
    );
    assert!(!err.contains("or --find-parents"), "{err}");
    assert!(!out.exists());
}

/// A parent whose DataWriteGuid the child does not name (CHAIN-001): export and map
/// refuse the chain with both GUIDs, nothing written or printed; --ignore-linkage reads it.
#[test]
fn export_and_map_refuse_a_wrong_parent_unless_told() {
    let dir = TempDir::new("wrong-export");
    let p = parent(7);
    let other = parent(8);
    let op = dir.put("other.vhdx", &other);
    let cp = dir.put(
        "child.vhdx",
        &child_of(&p, 1, &refs(&next_to("parent.vhdx"))),
    );
    let dwg = guid_braced(&other.layout.data_write_guid);
    let linkage = guid_braced(&p.layout.data_write_guid);
    let bare = |g: &str| g.trim_matches(['{', '}']).to_ascii_lowercase();
    let out = dir.0.join("o.raw");
    let export = ["export", "--parent", s(&op), s(&cp), s(&out)];
    let map = ["map", "--parent", s(&op), s(&cp)];
    for args in [&export[..], &map[..]] {
        let (code, err) = run(args);
        assert_eq!(code, 2, "{err}");
        let low = err.to_ascii_lowercase();
        assert!(
            err.contains("(CHAIN-001)")
                && low.contains(&bare(&dwg))
                && low.contains(&bare(&linkage)),
            "{err}"
        );
        assert!(!err.contains("offset"), "nothing printed: {err}");
    }
    assert!(!out.exists());
    // check --hash: the chain digest through the wrong parent is unavailable, with why.
    let (_, images) = check_json(&["--hash", "sha256", "--parent", s(&op), s(&cp)]);
    let d = &images[0]["digests"];
    assert_eq!(d["virtual_disk"], Value::Null, "{d}");
    assert!(
        d["virtual_unavailable"]
            .as_str()
            .unwrap_or("")
            .contains("(CHAIN-001)"),
        "{d}"
    );
    let mut a = export.to_vec();
    a.insert(1, "--ignore-linkage");
    let (code, err) = run(&a);
    assert_eq!(code, 0, "{err}");
    let mut a = map.to_vec();
    a.insert(1, "--ignore-linkage");
    let (code, err) = run(&a);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_chain_of_65_children_is_cut_with_chain_008() {
    let dir = TempDir::new("deep");
    let size = 8 * MIB;
    let base = ImageBuilder::dynamic(size).block_size(BS).seed(3).build();
    dir.put("base.vhdx", &base);
    // c64 → base, c63 → c64, …, c0 → c1: 65 differencing disks, then the base.
    let mut above = base;
    let mut files = Vec::new();
    for i in (0..65).rev() {
        let linkage = guid_braced(&above.layout.data_write_guid);
        let target = if i == 64 {
            "base.vhdx".to_string()
        } else {
            format!("c{}.vhdx", i + 1)
        };
        let rel = format!(r".\{target}");
        let c = ImageBuilder::differencing(size)
            .block_size(BS)
            .seed(100 + i as u64)
            .parent_locator(&[
                ("parent_linkage", linkage.as_str()),
                ("relative_path", &rel),
            ])
            .build();
        files.push(dir.put(&format!("c{i}.vhdx"), &c));
        above = c;
    }
    files.reverse();
    let (code, images) = check_json(&["--find-parents", s(&files[0])]);
    assert_eq!(code, 1);
    assert_eq!(
        images.len(),
        65,
        "the child and 64 parents; the base is past the cut"
    );
    assert_eq!(
        paths(&images),
        files.iter().map(|f| canon(f)).collect::<Vec<_>>()
    );
    assert!(has(&images[64], "CHAIN-008"), "{:?}", rules(&images[64]));
    let msg = message(&images[64], "CHAIN-008");
    assert!(msg.contains("the parents beyond are not checked"), "{msg}");
    for i in &images[..64] {
        assert!(
            !rules(i).iter().any(|(r, _)| r.starts_with("CHAIN-")),
            "{:?}",
            rules(i)
        );
    }
    // One level shorter, the chain reaches the base and is complete.
    let (code, images) = check_json(&["--find-parents", s(&files[1])]);
    assert_eq!(code, 0);
    assert_eq!(images.len(), 65);
    all_clean(&images);
}
