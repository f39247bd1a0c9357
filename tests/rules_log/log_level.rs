//! LOG tests of the log region as a whole: its placement, size, LogGuid and the head.

use super::*;

// ---- log level ---------------------------------------------------------------------------

#[test]
fn log_001_entries_in_an_inactive_log() {
    let base = clean();
    let mut img = base.clone();
    let e = zero_block(&img, BLOCK);
    let a = img.put_log_entry(0, &e);
    let b = img.put_log_entry(0x10000, &e.clone().guid(pseudo_guid(77)).tail(0x10000));
    // Torn (bad CRC): not an entry with a correct CRC.
    img.put_log_bytes(0x20000, &e.clone().tail(0x20000).encode_torn());
    let r = fires_at(
        &base,
        &img,
        "LOG-001",
        Info,
        &[(a, At::Entry), (b, At::Entry)],
    );
    assert_eq!(
        log_ids(&r),
        ["LOG-001"],
        "LogGuid 0: LOG-001 only{}",
        listing(&r)
    );
    // With LogGuid set the same ring is a pending log, not stale history.
    silent(&dirty().0, "LOG-001");
}

#[test]
fn log_002_log_guid_without_a_valid_sequence() {
    let base = dirty().0;
    silent(&base, "LOG-002");
    // Empty ring.
    let mut img = clean();
    img.set_log_guid(img.layout.log_guid);
    let r = report(&img);
    assert_eq!(one(&r, "LOG-002").severity, Error);
    assert!(!r.has("LOG-003") && !r.has("LOG-004"), "{}", listing(&r));
    assert!(
        r.findings.iter().all(|f| f.view == View::Raw),
        "no active sequence: one view{}",
        listing(&r)
    );
    // Only a torn entry.
    let mut img = clean();
    let e = zero_block(&img, BLOCK);
    let p = img.put_log_bytes(0, &e.encode_torn());
    img.set_log_guid(e.log_guid);
    let r = report(&img);
    assert_eq!(one(&r, "LOG-002").severity, Error);
    expect_at(&r, "LOG-012", Info, &[(p, At::Entry)]);
    // Only an entry of another session.
    let mut img = clean();
    let p = img.put_log_entry(0, &e.clone().guid(pseudo_guid(77)));
    img.set_log_guid(e.log_guid);
    let r = report(&img);
    assert_eq!(one(&r, "LOG-002").severity, Error);
    expect_at(&r, "LOG-014", Info, &[(p, At::Entry)]);
    assert!(!r.has("LOG-003") && !r.has("LOG-004"), "{}", listing(&r));
}

#[test]
fn log_003_one_finding_per_changed_range_with_its_structure() {
    let base = clean();
    silent(&base, "LOG-003");
    let mut img = base.clone();
    let id_at = img.layout.item(&ITEM_VIRTUAL_DISK_ID).data_offset;
    let new_id: Vec<u8> = img.read(id_at, 16).iter().map(|b| !b).collect();
    let value = bat::entry(bat::ZERO, 0).to_le_bytes();
    let e = img.log_entry(&[(bat_at(&img, BLOCK), &value), (id_at, &new_id)]);
    img.write_log(&[e]);
    let r = report(&img);
    // Every byte of the id changes: one range; the BAT entry's first byte: one range.
    let mut got: Vec<Option<u64>> = of(&r, "LOG-003").iter().map(|f| f.offset).collect();
    got.sort();
    let mut want = [Some(bat_at(&img, BLOCK)), Some(id_at)];
    want.sort();
    assert_eq!(got, want, "{}", listing(&r));
    for f in of(&r, "LOG-003") {
        assert_eq!(f.severity, Warning);
        let want = if f.offset == Some(id_at) {
            "metadata.item["
        } else {
            "bat["
        };
        assert!(f.structure.starts_with(want), "{}", listing(&r));
        // What follows, and the next step.
        assert!(
            f.message
                .contains("readers that ignore the log see a different disk")
                && f.message
                    .contains("`vhdx-check replay` writes the replayed copy"),
            "{}",
            f.message
        );
    }
    assert!(!r.has("LOG-002"), "{}", listing(&r));
}

#[test]
fn log_003_file_shorter_than_last_file_offset() {
    // No descriptor changes a byte, but the replayed file is 1 MiB longer.
    let mut img = clean();
    let len = img.len;
    let e = img.log_entry(&[]).file_offsets(len, len + MIB);
    img.write_log(&[e]);
    let r = report(&img);
    assert!(!r.has("LOG-004"), "{}", listing(&r));
    // Contract update 13:55: the size change is a LOG-003 at offset = file size.
    let f = one(&r, "LOG-003");
    assert_eq!(
        (f.offset, f.severity),
        (Some(len), Warning),
        "{}",
        listing(&r)
    );
}

#[test]
fn log_004_log_already_applied() {
    let (base, entry, _) = dirty();
    silent(&base, "LOG-004");
    let img = with(&base, |img| img.apply_log_entry(&entry));
    let r = report(&img);
    let f = one(&r, "LOG-004");
    assert_eq!(f.severity, Info);
    assert!(!r.has("LOG-003") && !r.has("LOG-002"), "{}", listing(&r));
    assert!(
        r.findings.iter().all(|f| f.view == View::Raw),
        "a no-op replay: one view{}",
        listing(&r)
    );
}

#[test]
fn log_004_entry_without_descriptors() {
    // DescriptorCount 0: a valid entry that changes nothing.
    let mut img = clean();
    let e = img.log_entry(&[]);
    assert!(e.descriptors.is_empty() && e.length() == 4096);
    img.write_log(&[e]);
    let r = report(&img);
    assert_eq!(log_ids(&r), ["LOG-004"], "{}", listing(&r));
}

#[test]
fn log_005_file_shorter_than_flushed_file_offset() {
    let (base, _, _) = dirty();
    let mut img = clean();
    let len = img.len;
    let e = zero_block(&img, BLOCK).file_offsets(len + MIB, len + MIB);
    img.write_log(&[e]);
    silent(&base, "LOG-005");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-005").severity, Error);
    assert_eq!(one(&r, "LOG-006").severity, Warning);
    assert!(!r.has("LOG-002"), "{}", listing(&r));
}

#[test]
fn log_006_file_shorter_than_last_file_offset() {
    let (base, _, _) = dirty();
    let mut img = clean();
    let len = img.len;
    let e = zero_block(&img, BLOCK).file_offsets(len, len + MIB);
    img.write_log(&[e]);
    silent(&base, "LOG-006");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-006").severity, Warning);
    assert!(!r.has("LOG-005") && !r.has("LOG-002"), "{}", listing(&r));
    assert!(r.has("LOG-003"), "{}", listing(&r));
}

/// Findings of the structural families (the ones judged on both views) that the clean
/// image does not have.
pub(super) fn structural(r: &ImageReport) -> Vec<&Finding> {
    const FAMILIES: [&str; 7] = [
        "RGN-", "META-", "PLOC-", "BAT-", "SBM-", "LAYOUT-", "CHAIN-",
    ];
    let clean = report(&clean());
    r.findings
        .iter()
        .filter(|f| FAMILIES.iter().any(|p| f.rule.starts_with(p)))
        .filter(|f| {
            !clean
                .findings
                .iter()
                .any(|c| c.rule == f.rule && c.offset == f.offset)
        })
        .collect()
}

/// Block [`BLOCK`] mapped FULLY_PRESENT far past the end of the file.
pub(super) fn past_eof() -> u64 {
    bat::entry(bat::FULLY_PRESENT, 999)
}

#[test]
fn log_007_raw_error_fixed_by_the_log() {
    // Reference: the damage without any log, judged on RAW alone.
    let mut damaged = clean();
    damaged.patch_u64(bat_at(&damaged, BLOCK), past_eof());
    let reference = report(&damaged);
    let raw_only = structural(&reference);
    assert!(
        raw_only.iter().any(|f| f.severity == Error),
        "reference has no error:{}",
        listing(&reference)
    );

    // The same file with a pending log that writes the BAT sector back as it was.
    let mut img = damaged.clone();
    let bat_sector = bat_at(&img, 0) / 4096 * 4096;
    let fixed = clean().read(bat_sector, 4096);
    let e = img.log_entry(&[]).data(bat_sector, fixed);
    img.write_log(&[e]);
    let r = report(&img);
    replay_changes(&r, &bat_entries(&img, &[BLOCK]));
    for f in &raw_only {
        assert!(
            !r.findings
                .iter()
                .any(|g| g.rule == f.rule && g.view == View::Replayed),
            "{} judged on the replayed view although replay fixes it:{}",
            f.rule,
            listing(&r)
        );
        assert!(
            assert_fires(&r, "LOG-007")
                .iter()
                .any(|g| g.view == View::Raw && g.message.contains(f.rule)),
            "no LOG-007 (raw) for {}:{}",
            f.rule,
            listing(&r)
        );
    }
    for g in of(&r, "LOG-007") {
        assert_eq!(g.severity, Info);
    }
    assert!(
        !view_diffs(&r).iter().any(|g| g.view == View::Replayed),
        "nothing is replayed-only:{}",
        listing(&r)
    );
    let base = report(&dirty().0);
    assert!(view_diffs(&base).is_empty(), "{}", listing(&base));
}

#[test]
fn log_007_error_introduced_by_the_log() {
    // Reference: the replayed bytes as a file of their own.
    let mut applied = clean();
    applied.patch_u64(bat_at(&applied, BLOCK), past_eof());
    let reference = report(&applied);
    let replayed_only = structural(&reference);
    assert!(!replayed_only.is_empty(), "{}", listing(&reference));

    let mut img = clean();
    let e = img.log_entry(&[(bat_at(&img, BLOCK), &past_eof().to_le_bytes())]);
    img.write_log(&[e]);
    let r = report(&img);
    replay_changes(&r, &bat_entries(&img, &[BLOCK]));
    for f in &replayed_only {
        assert!(
            r.findings
                .iter()
                .any(|g| g.rule == f.rule && g.offset == f.offset && g.view == View::Replayed),
            "{} @{:?} not reported on the replayed view:{}",
            f.rule,
            f.offset,
            listing(&r)
        );
        assert!(
            of(&r, "LOG-007")
                .iter()
                .any(|g| g.view == View::Replayed && g.message.contains(f.rule)),
            "no LOG-007 (replayed) for {}:{}",
            f.rule,
            listing(&r)
        );
    }
    assert!(
        r.findings.iter().any(|f| f.severity == Error),
        "the replayed view is authoritative: its error counts{}",
        listing(&r)
    );
}

#[test]
fn log_007_not_reported_when_replay_is_a_no_op() {
    // The raw error stays (the log re-writes it): one view, no LOG-007, findings raw.
    let mut img = clean();
    img.patch_u64(bat_at(&img, BLOCK), past_eof());
    let e = img.log_entry(&[(bat_at(&img, BLOCK), &past_eof().to_le_bytes())]);
    img.write_log(&[e]);
    let r = report(&img);
    assert!(r.has("LOG-004") && !r.has("LOG-007"), "{}", listing(&r));
    assert!(!structural(&r).is_empty(), "{}", listing(&r));
    assert!(
        r.findings.iter().all(|f| f.view == View::Raw),
        "{}",
        listing(&r)
    );
}
