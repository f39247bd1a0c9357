//! Chains that cannot be completed: missing, wrong or unreadable parents.

use super::*;

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
