//! BAT tests of many findings: the per-rule cap, several faults at once, runs of blocks.

use super::*;

// ---- per-rule cap ---------------------------------------------------------------------

#[test]
fn per_rule_cap_shows_100_and_counts_the_rest() {
    // 256 payload entries in reserved state 4: 256 BAT-003 instances.
    let clean = dynamic(256, &[]);
    let img = with(&clean, |b| {
        let bytes: Vec<u8> = (0..256).flat_map(|_| 4u64.to_le_bytes()).collect();
        b.patch(b.layout.bat_offset, &bytes);
    });
    let r = report(&img);
    let shown = of(&r, "BAT-003");
    assert_eq!(shown.len(), 100);
    // The first 100 entries are the ones shown.
    let first: Vec<_> = (0..100).map(|i| Some(entry_at(&clean, i))).collect();
    assert_eq!(shown.iter().map(|f| f.offset).collect::<Vec<_>>(), first);
    let hidden = r.suppressed["BAT-003"];
    assert_eq!(
        (hidden.count, hidden.severity),
        (156, Some(Severity::Error))
    );
    assert!(r.count(Severity::Error) >= 256);
    // A smaller cap.
    let r = check(&img, &CheckOptions { max_per_rule: 10 });
    assert_eq!(of(&r, "BAT-003").len(), 10);
    assert_eq!(r.suppressed["BAT-003"].count, 246);
}

// ---- several faults at once -----------------------------------------------------------

#[test]
fn several_metadata_and_bat_faults_all_reported() {
    let clean = dynamic(64, &[0, 1]);
    let l = &clean.layout;
    let vds_entry = l.item(&ITEM_VIRTUAL_DISK_SIZE).entry_offset;
    let stray = l.metadata_offset + 0x8_0000;
    let img = with(&clean, |b| {
        let mb0 = mb_of(b, 0);
        b.metadata_table_mut(|t| t[meta::RESERVED] = 1);
        b.patch_u32(vds_entry + meta::E_RESERVED2 as u64, 1);
        b.metadata_item_mut(&ITEM_VIRTUAL_DISK_ID, |d| d.fill(0));
        b.metadata_item_mut(&ITEM_FILE_PARAMETERS, |d| put_u32(d, 4, 0x10));
        b.patch(stray, b"stray");
        b.set_payload_entry(1, bat::entry(bat::FULLY_PRESENT, mb0));
        b.set_payload_entry(2, 1 << 5);
        b.set_payload_entry(3, 4);
        b.set_payload_entry(4, bat::entry(bat::ZERO, 33));
        b.set_payload_entry(5, bat::entry(bat::FULLY_PRESENT, 999));
        b.set_payload_entry(6, bat::entry(bat::FULLY_PRESENT, 0));
        b.set_bat_entry(64, 1);
    });
    let r = report(&img);
    all_at(
        &r,
        &[
            ("META-003", l.metadata_offset + 8),
            ("META-014", vds_entry),
            ("META-032", l.item(&ITEM_VIRTUAL_DISK_ID).data_offset),
            ("META-024", l.item(&ITEM_FILE_PARAMETERS).data_offset),
            ("META-037", stray),
            ("BAT-013", payload_at(&clean, 1)),
            ("BAT-002", payload_at(&clean, 2)),
            ("BAT-003", payload_at(&clean, 3)),
            ("BAT-010", payload_at(&clean, 4)),
            ("BAT-014", 999 * MIB),
            ("BAT-008", payload_at(&clean, 6)),
            ("BAT-016", entry_at(&clean, 64)),
        ],
    );
}

#[test]
fn several_differencing_faults_all_reported() {
    // 8191 MiB: P = 8191, two chunks (T = 8194); chunk 1 ends with one padding entry.
    let clean = ImageBuilder::differencing(8191 * MIB)
        .block_size(BS)
        .write_sectors(0, &[1; 512])
        .write_sectors(4096 * MIB, &[2; 512])
        .build();
    let l = &clean.layout;
    assert_eq!(l.bat_entries, 8194);
    let (sb0, sb1, pad) = (l.bitmap_entry_index(0), l.bitmap_entry_index(1), 8192);
    let img = with(&clean, |b| {
        b.metadata_item_mut(&ITEM_FILE_PARAMETERS, |d| put_u32(d, 4, 3));
        b.metadata_item_mut(&ITEM_VIRTUAL_DISK_ID, |d| d.fill(0));
        b.set_bitmap_entry(0, 0);
        restate(b, 4096, bat::FULLY_PRESENT);
        b.set_bat_entry(pad, bat::entry(bat::ZERO, 0));
        b.set_payload_entry(9, bat::entry(bat::FULLY_PRESENT, 0));
    });
    let r = report(&img);
    all_at(
        &r,
        &[
            ("META-025", l.item(&ITEM_FILE_PARAMETERS).data_offset),
            ("META-032", l.item(&ITEM_VIRTUAL_DISK_ID).data_offset),
            ("BAT-007", entry_at(&clean, sb0)),
            ("BAT-018", entry_at(&clean, sb1)),
            ("BAT-017", entry_at(&clean, pad)),
            ("BAT-008", payload_at(&clean, 9)),
        ],
    );
    assert!(!r.has("BAT-004") && !r.has("BAT-006"), "{}", listing(&r));
}

// ---- runs of blocks laid end to end (walked in bulk) ----------------------------------

/// A dynamic disk of `n` MiB with every 1 MiB block allocated; blocks in `written` hold
/// data, the others are allocated zeros.
fn allocated(n: u64, written: &[u64]) -> Built {
    (0..n)
        .fold(ImageBuilder::dynamic(n * MIB).block_size(BS), |b, k| {
            if written.contains(&k) {
                b.write_block(k, &[0xA5; 512])
            } else {
                b.allocate_block(k)
            }
        })
        .build()
}

#[test]
fn bat_020_counts_every_zero_block_of_a_long_run() {
    let img = allocated(256, &[7, 200]);
    let zero_blocks = 254;
    let r = report(&img);
    let shown = of(&r, "BAT-020");
    assert_eq!(shown.len(), 100, "{}", listing(&r));
    let written = [img.layout.block_offset(7), img.layout.block_offset(200)];
    assert!(shown.iter().all(|f| !written.contains(&f.offset.unwrap())));
    assert_eq!(
        (
            r.suppressed["BAT-020"].count,
            r.suppressed["BAT-020"].severity
        ),
        (zero_blocks - 100, Some(of(&r, "BAT-020")[0].severity))
    );
    let r = check(&img, &CheckOptions { max_per_rule: 1000 });
    assert_eq!(of(&r, "BAT-020").len() as u64, zero_blocks);
    assert!(!r.suppressed.contains_key("BAT-020"));
    let r = check(&img, &CheckOptions { max_per_rule: 0 });
    assert_eq!(r.suppressed["BAT-020"].count, zero_blocks);
}

#[test]
fn a_run_reusing_an_earlier_offset_is_still_judged_entry_by_entry() {
    let clean = allocated(64, &[]);
    let img = with(&clean, |b| {
        let mb2 = mb_of(b, 2);
        b.set_payload_entry(40, bat::entry(bat::FULLY_PRESENT, mb2));
    });
    fires(&clean, &img, "BAT-013", &[entry_at(&clean, 40)]);
    let r = report(&img);
    assert!(r.has("LAYOUT-001"), "{}", listing(&r));
}
