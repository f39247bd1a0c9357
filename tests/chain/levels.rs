//! Loops, three-level chains, and `info` on a chain.

use super::*;

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
pub(super) fn three_levels(
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
