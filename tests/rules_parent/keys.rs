//! PLOC tests of the locator keys and values (PLOC-013..027).

use super::*;

// ---- keys (PLOC-013..027) -------------------------------------------------------------

#[test]
fn ploc_013_duplicate_key() {
    let img = default_plus(&[("relative_path", r".\other\parent.vhdx")]);
    let r = fires(&default_plus(&[]), &img, "PLOC-013", &[entry_at(&img, 3)]);
    // An exact duplicate is not also a case-folded one.
    assert!(!r.has("PLOC-014"), "{}", listing(&r));
}

#[test]
fn ploc_014_keys_equal_ignoring_case() {
    let img = default_plus(&[("Relative_Path", r".\parent.vhdx")]);
    let r = fires(&default_plus(&[]), &img, "PLOC-014", &[entry_at(&img, 3)]);
    assert_eq!(one(&r, "PLOC-014").severity, Severity::Warning);
    assert!(!r.has("PLOC-013"), "{}", listing(&r));
}

#[test]
fn ploc_015_parent_linkage_missing() {
    let img = with_locator(&[("relative_path", REL), ("absolute_win32_path", ABS)]);
    fires(&default_plus(&[]), &img, "PLOC-015", &[loc(&img)]);
    // parent_linkage2 alone does not stand in for it.
    let img = with_locator(&[("parent_linkage2", LINKAGE), ("relative_path", REL)]);
    fires(&default_plus(&[]), &img, "PLOC-015", &[loc(&img)]);
}

#[test]
fn ploc_016_linkage_not_braced_guid() {
    let clean = default_plus(&[]);
    for bad in [
        "83ed0ec3-24c8-49a6-a959-5e4bf1288bfb",
        "{83ed0ec3-24c8-49a6-a959-5e4bf1288bf}",
        "{83ed0ec324c849a6a9595e4bf1288bfb}",
        "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfg}",
        "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb",
        "{+3ed0ec3-24c8-49a6-a959-5e4bf1288bfb}",
        "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb} ",
        "",
    ] {
        let img = with_locator(&[
            ("parent_linkage", bad),
            ("relative_path", REL),
            ("absolute_win32_path", ABS),
        ]);
        // An empty value has ValueLength 0: PLOC-006, and nothing to decode.
        if bad.is_empty() {
            fires(&clean, &img, "PLOC-006", &[entry_at(&img, 0)]);
            continue;
        }
        fires(&clean, &img, "PLOC-016", &[value_at(&img, 0)]);
    }
    // parent_linkage2 is held to the same form.
    let img = default_plus(&[("parent_linkage2", "not-a-guid")]);
    fires(&clean, &img, "PLOC-016", &[value_at(&img, 3)]);
}

#[test]
fn ploc_017_linkage_uppercase() {
    let clean = default_plus(&[]);
    let upper = LINKAGE.to_uppercase();
    let img = with_locator(&[
        ("parent_linkage", &upper),
        ("relative_path", REL),
        ("absolute_win32_path", ABS),
    ]);
    let r = fires(&clean, &img, "PLOC-017", &[value_at(&img, 0)]);
    assert_eq!(one(&r, "PLOC-017").severity, Severity::Info);
    assert!(!r.has("PLOC-016"), "{}", listing(&r));
    let img = default_plus(&[("parent_linkage2", "{83ED0EC3-24c8-49a6-a959-5e4bf1288bfb}")]);
    fires(&clean, &img, "PLOC-017", &[value_at(&img, 3)]);
}

#[test]
fn ploc_018_parent_linkage2_present() {
    let img = default_plus(&[("parent_linkage2", "{11111111-2222-4333-8444-555555555555}")]);
    let r = fires(&default_plus(&[]), &img, "PLOC-018", &[value_at(&img, 3)]);
    assert_eq!(r.worst(), Some(Severity::Info), "{}", listing(&r));
    assert!(
        one(&r, "PLOC-018").message.contains("alternative parent"),
        "{}",
        listing(&r)
    );
    // Windows writes an all-zero parent_linkage2 on a fresh checkpoint: no merge is implied.
    let img = default_plus(&[("parent_linkage2", "{00000000-0000-0000-0000-000000000000}")]);
    let r = fires(&default_plus(&[]), &img, "PLOC-018", &[value_at(&img, 3)]);
    let f = one(&r, "PLOC-018");
    assert_eq!(f.severity, Severity::Info);
    assert!(
        f.message.contains("zero GUID") && !f.message.contains("merge was"),
        "{}",
        listing(&r)
    );
    assert_eq!(r.worst(), Some(Severity::Info), "{}", listing(&r));
    // A value that is no GUID names no alternative parent (PLOC-016 says what is wrong).
    let img = default_plus(&[("parent_linkage2", "not-a-guid")]);
    let r = fires(&default_plus(&[]), &img, "PLOC-018", &[value_at(&img, 3)]);
    let m = &one(&r, "PLOC-018").message;
    assert!(
        m.contains("so it matches no parent") && !m.contains("alternative"),
        "{m}"
    );
    assert!(r.has("PLOC-016"));
}

#[test]
fn ploc_019_no_path_key() {
    let clean = default_plus(&[]);
    let img = with_locator(&[("parent_linkage", LINKAGE)]);
    let r = fires(&clean, &img, "PLOC-019", &[loc(&img)]);
    // The way on: name the parent.
    let m = &one(&r, "PLOC-019").message;
    assert!(
        m.contains("cannot find the parent file; give it with --parent"),
        "{m}"
    );
    // Keys are case-sensitive: a differently-cased path key is not a path key.
    let img = with_locator(&[("parent_linkage", LINKAGE), ("Relative_Path", REL)]);
    fires(&clean, &img, "PLOC-019", &[loc(&img)]);
    // Any one of the three is enough.
    for key in ["relative_path", "volume_path", "absolute_win32_path"] {
        let value = match key {
            "relative_path" => REL,
            "volume_path" => VOL,
            _ => ABS,
        };
        silent(
            &with_locator(&[("parent_linkage", LINKAGE), (key, value)]),
            "PLOC-019",
        );
    }
}

#[test]
fn ploc_020_volume_path_malformed() {
    let clean = default_plus(&[("volume_path", VOL)]);
    silent(&clean, "PLOC-020");
    for bad in [
        r"\\?\C:\vhdx-check\parent.vhdx",
        r"\\?\Volume{26a21bda-a627-11d7-9931-806e6f6e696}\parent.vhdx",
        r"\\?\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}",
        r"\\?\Volume26a21bda-a627-11d7-9931-806e6f6e6963\parent.vhdx",
        r"\\.\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\parent.vhdx",
        r"Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\parent.vhdx",
    ] {
        let img = default_plus(&[("volume_path", bad)]);
        fires(&clean, &img, "PLOC-020", &[value_at(&img, 3)]);
    }
}

#[test]
fn ploc_021_absolute_path_not_extended() {
    let clean = default_plus(&[]);
    // Plain absolute paths (Hyper-V writes drive-letter paths): information, not a fault.
    for plain in [r"C:\vhdx-check\parent.vhdx", r"\\server\share\parent.vhdx"] {
        let img = with_locator(&[
            ("parent_linkage", LINKAGE),
            ("relative_path", REL),
            ("absolute_win32_path", plain),
        ]);
        let r = fires(&clean, &img, "PLOC-021", &[value_at(&img, 2)]);
        let f = one(&r, "PLOC-021");
        assert_eq!(f.severity, Severity::Info);
        assert!(f.message.contains("plain absolute path"), "{}", listing(&r));
        assert_eq!(r.worst(), Some(Severity::Info), "{}", listing(&r));
    }
    // Not absolute at all: said so (still information: relative_path locates the parent).
    let img = with_locator(&[
        ("parent_linkage", LINKAGE),
        ("relative_path", REL),
        ("absolute_win32_path", "parent.vhdx"),
    ]);
    let r = fires(&clean, &img, "PLOC-021", &[value_at(&img, 2)]);
    assert!(
        one(&r, "PLOC-021").message.contains("neither"),
        "{}",
        listing(&r)
    );
    // UNC in extended form is fine.
    let unc = with_locator(&[
        ("parent_linkage", LINKAGE),
        ("relative_path", REL),
        ("absolute_win32_path", r"\\?\UNC\server\share\parent.vhdx"),
    ]);
    silent(&unc, "PLOC-021");
}

/// A checkpoint's locator as Hyper-V writes it: parent_linkage, an all-zero
/// parent_linkage2, a relative file name, the volume path and a plain drive-letter
/// absolute_win32_path (no `\\?\` prefix). It must pass a CI gate: no error, no warning.
#[test]
fn hyper_v_checkpoint_locator_is_accepted() {
    let img = with_locator(&[
        ("parent_linkage", LINKAGE),
        ("parent_linkage2", "{00000000-0000-0000-0000-000000000000}"),
        ("relative_path", r"Windows10.vhdx"),
        (
            "volume_path",
            r"\\?\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\Users\Public\Documents\Hyper-V\Virtual hard disks\Windows10.vhdx",
        ),
        (
            "absolute_win32_path",
            r"C:\Users\Public\Documents\Hyper-V\Virtual hard disks\Windows10.vhdx",
        ),
    ]);
    let r = report(&img);
    assert!(r.worst() <= Some(Severity::Info), "{}", listing(&r));
    assert!(r.has("PLOC-021") && r.has("PLOC-018"), "{}", listing(&r));
}

#[test]
fn ploc_022_relative_path_absolute_or_slashes() {
    let clean = default_plus(&[]);
    for bad in [
        r"C:\vhdx-check\parent.vhdx",
        r"\vhdx-check\parent.vhdx",
        r"\\?\C:\vhdx-check\parent.vhdx",
        "./parent.vhdx",
        r"..\disks/parent.vhdx",
    ] {
        let img = with_locator(&[
            ("parent_linkage", LINKAGE),
            ("relative_path", bad),
            ("absolute_win32_path", ABS),
        ]);
        let r = fires(&clean, &img, "PLOC-022", &[value_at(&img, 1)]);
        assert_eq!(one(&r, "PLOC-022").severity, Severity::Warning);
    }
    for good in ["parent.vhdx", r"..\parent.vhdx", r".\disks\parent.vhdx"] {
        let img = with_locator(&[
            ("parent_linkage", LINKAGE),
            ("relative_path", good),
            ("absolute_win32_path", ABS),
        ]);
        silent(&img, "PLOC-022");
    }
}

#[test]
fn ploc_023_unknown_key() {
    let img = default_plus(&[("absolute_path", ABS)]);
    let r = fires(&default_plus(&[]), &img, "PLOC-023", &[entry_at(&img, 3)]);
    assert!(
        one(&r, "PLOC-023").message.contains("absolute_path"),
        "{}",
        listing(&r)
    );
    assert!(!r.has("PLOC-024"), "{}", listing(&r));
}

#[test]
fn ploc_024_key_not_lowercase() {
    let img = default_plus(&[("Comment", "moved from host A")]);
    let r = fires(&default_plus(&[]), &img, "PLOC-024", &[entry_at(&img, 3)]);
    // Unknown as well (keys are case-sensitive).
    assert_eq!(of(&r, "PLOC-023").len(), 1, "{}", listing(&r));
    assert!(!one(&r, "PLOC-024").message.contains("not read as"));
    // A known key in another case is not that key.
    let img = default_plus(&[("Volume_Path", VOL)]);
    let r = fires(&default_plus(&[]), &img, "PLOC-024", &[entry_at(&img, 3)]);
    let m = &one(&r, "PLOC-024").message;
    assert!(m.contains("so it is not read as volume_path"), "{m}");
}

#[test]
fn ploc_025_paths_name_different_files() {
    let clean = default_plus(&[("volume_path", VOL)]);
    let img = with_locator(&[
        ("parent_linkage", LINKAGE),
        ("relative_path", r".\base.vhdx"),
        ("absolute_win32_path", ABS),
    ]);
    fires(&clean, &img, "PLOC-025", &[loc(&img)]);
    let img = default_plus(&[(
        "volume_path",
        r"\\?\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\old.vhdx",
    )]);
    fires(&clean, &img, "PLOC-025", &[loc(&img)]);
    // Windows file names compare without case.
    let img = with_locator(&[
        ("parent_linkage", LINKAGE),
        ("relative_path", r".\PARENT.VHDX"),
        ("absolute_win32_path", ABS),
    ]);
    silent(&img, "PLOC-025");
}

#[test]
fn ploc_026_data_in_locator_slack() {
    let mut item = default_item();
    let end = item.len() as u64;
    item.extend([0, 0, 0, 0, 0xAB, 0xCD, 0, 0]);
    let zero_tail = raw_locator(&item[..end as usize + 4]);
    silent(&zero_tail, "PLOC-026");
    let img = raw_locator(&item);
    let r = fires(&zero_tail, &img, "PLOC-026", &[loc(&img) + end + 4]);
    assert_eq!(one(&r, "PLOC-026").length, Some(4));
    // A gap between two strings.
    let mut item = default_item();
    let at = 20 + 12 * 3;
    let entries: Vec<u8> = item[20..at].to_vec();
    // Shift all strings 8 bytes further, leaving a gap holding "junk".
    let strings = item.split_off(at);
    item.extend(b"junk\0\0\0\0");
    item.extend(strings);
    for i in 0..3 {
        for field in [0, 4] {
            let o = 20 + 12 * i + field;
            let v = u32::from_le_bytes(entries[o - 20..o - 16].try_into().unwrap()) + 8;
            item[o..o + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    let img = raw_locator(&item);
    let r = fires(&zero_tail, &img, "PLOC-026", &[loc(&img) + at as u64]);
    only_ploc(&r, &["PLOC-026"]);
}

#[test]
fn ploc_027_paths_reported_with_attribution() {
    // Reported for every path key present (a forensic listing, not a fault): silent only
    // where there is no locator.
    silent(
        &ImageBuilder::dynamic(64 * MIB).block_size(BS).build(),
        "PLOC-027",
    );
    let img = with_locator(&[
        ("parent_linkage", LINKAGE),
        ("relative_path", r"..\alice\parent.vhdx"),
        (
            "volume_path",
            r"\\?\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\Users\alice\parent.vhdx",
        ),
        (
            "absolute_win32_path",
            r"\\?\UNC\fileserver\vms\Users\alice\parent.vhdx",
        ),
    ]);
    let r = report(&img);
    let mut got: Vec<Option<u64>> = of(&r, "PLOC-027").iter().map(|f| f.offset).collect();
    got.sort();
    let want: Vec<Option<u64>> = (1..4).map(|i| Some(value_at(&img, i))).collect();
    assert_eq!(got, want, "{}", listing(&r));
    let text: String = of(&r, "PLOC-027")
        .iter()
        .map(|f| f.message.clone())
        .collect();
    for part in [
        "volume {26a21bda-a627-11d7-9931-806e6f6e6963}",
        "host fileserver",
        "user profile alice",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let img = with_locator(&[
        ("parent_linkage", LINKAGE),
        ("absolute_win32_path", r"\\?\D:\Users\bob\parent.vhdx"),
    ]);
    let r = report(&img);
    let m = &one(&r, "PLOC-027").message;
    assert!(
        m.contains("drive D:") && m.contains("user profile bob"),
        "{m}"
    );
}

/// PLOC-026 is the locator's hidden-data sweep: the text report states the range it swept,
/// as for the other sweeps (HIDDEN_DATA_RULES named PLOC-027, the attribution rule, instead).
#[test]
fn ploc_026_text_report_states_the_swept_range() {
    let mut item = default_item();
    let end = item.len() as u64;
    item.extend([0, 0, 0, 0, 0xAB, 0xCD, 0, 0]);
    let img = raw_locator(&item);
    let dir = std::env::temp_dir().join(format!("vc-ploc026-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("slack.avhdx");
    img.write_to(&path).unwrap();
    let out = crate::cli::bin().arg("check").arg(&path).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("PLOC-026"))
        .unwrap_or_else(|| panic!("no PLOC-026 line in:\n{text}"));
    let start = loc(&img) + end + 4;
    assert!(
        line.contains(&format!("; range {start:#x}..{:#x} (4 bytes)", start + 4)),
        "{line}"
    );
    let attribution: Vec<&str> = text.lines().filter(|l| l.contains("PLOC-027")).collect();
    assert!(
        attribution.iter().all(|l| !l.contains("; range ")),
        "{attribution:?}"
    );
}
