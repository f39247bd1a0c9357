//! Chains of two levels, and where discovery may look for a parent.

use super::*;

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
