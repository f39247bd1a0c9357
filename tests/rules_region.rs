//! Per-rule tests of the RGN (region table) family, and faults of RGN and LAYOUT together
//! (the LAYOUT tests are in `rules_layout`). Helpers shared with the header tests live in
//! `rules_header`.

use crate::builder::*;
use crate::rules_header::{assert_all, assert_family_tested, base, expect, fires, message, of};
use vhdx_check::Severity::{Error, Info, Warning};

// ---------------------------------------------------------------------------------------
// Region-table helpers. Copy 1 is the working table when valid; the builder writes the BAT
// entry first and the metadata entry second.

pub(crate) fn roff(copy: usize) -> u64 {
    REGION_TABLE_OFFSETS[copy - 1]
}

/// File offset of entry `n` of region table `copy`.
pub(crate) fn eoff(copy: usize, n: usize) -> u64 {
    roff(copy) + rgn::entry(n) as u64
}

pub(crate) fn unknown_guid() -> Guid {
    pseudo_guid(4242)
}

/// Writes a whole 32-byte entry `n` into a table.
pub(crate) fn put_entry(
    t: &mut [u8],
    n: usize,
    guid: &Guid,
    offset: u64,
    length: u32,
    required: u32,
) {
    let e = rgn::entry(n);
    t[e..e + 16].copy_from_slice(guid);
    put_u64(t, e + rgn::E_FILE_OFFSET, offset);
    put_u32(t, e + rgn::E_LENGTH, length);
    put_u32(t, e + rgn::E_REQUIRED, required);
}

/// Damage: writes `bytes` at `at` in both region tables and reseals them (they stay equal).
pub(crate) fn set_rgn(at: usize, bytes: &[u8]) -> impl FnOnce(&mut Built) + '_ {
    move |img| img.edit_region_tables(|t| t[at..at + bytes.len()].copy_from_slice(bytes))
}

/// Damage: a third region entry (unknown GUID) in both tables.
pub(crate) fn add_region(offset: u64, length: u32, required: u32) -> impl Fn(&mut Built) {
    move |img| {
        img.edit_region_tables(|t| {
            put_u32(t, rgn::ENTRY_COUNT, 3);
            put_entry(t, 2, &unknown_guid(), offset, length, required);
        })
    }
}

/// `base()` grown by 1 MiB that holds a third, optional region of an unknown type: clean
/// except for RGN-017 (info). Returns the image and the region's offset.
pub(crate) fn with_extra_region() -> (Built, u64) {
    let mut img = base();
    let at = img.len;
    img.len += MIB;
    add_region(at, MIB as u32, 0)(&mut img);
    (img, at)
}

/// Damage to the extra region's entry (index 2): `bytes` at entry field `field`.
pub(crate) fn set_extra(field: usize, bytes: &[u8]) -> impl FnOnce(&mut Built) + '_ {
    set_rgn(rgn::entry(2) + field, bytes)
}

// ---------------------------------------------------------------------------------------
// Coverage.

#[test]
fn every_rgn_rule_has_a_test() {
    assert_family_tested("RGN", include_str!("rules_region.rs"));
}

// ---------------------------------------------------------------------------------------
// RGN: each copy and the pair.

#[test]
fn rgn_001_region_signature_not_regi() {
    let r = fires(&base(), "RGN-001", |img| {
        img.edit_region_table(1, |t| t[..4].copy_from_slice(b"REGI"))
    });
    expect(&r, "RGN-001", Warning, &[roff(1)]);
    assert!(!r.has("RGN-002"), "the checksum was resealed");
    // What readers are left with: copy 2, except QEMU.
    let msg = message(&r, "RGN-001");
    assert!(msg.contains("\"REGI\" instead of \"regi\""), "{msg}");
    assert!(
        msg.contains("through region table 2 (QEMU reads only table 1"),
        "{msg}"
    );
}

#[test]
fn rgn_002_region_checksum_mismatch() {
    let r = fires(&base(), "RGN-002", |img| {
        img.region_table_mut(2, |t| t[0x8000] = 1)
    });
    expect(&r, "RGN-002", Warning, &[roff(2)]);
    assert!(!r.has("RGN-001"));
    let msg = message(&r, "RGN-002");
    assert!(
        msg.contains("the image still opens from region table 1"),
        "{msg}"
    );
}

#[test]
fn rgn_002_names_a_header_and_entries_only_checksum() {
    // A writer that checksums 16 + 32·EntryCount bytes instead of 64 KiB.
    let r = fires(&base(), "RGN-002", |img| {
        img.region_table_mut(2, |t| t[0x8000] = 1);
        img.reseal(roff(2), rgn::entry(2));
    });
    assert!(message(&r, "RGN-002").contains("header + entries"));
}

#[test]
fn rgn_003_neither_region_table_valid() {
    let r = fires(&base(), "RGN-003", |img| {
        img.region_table_mut(1, |t| t[0] = 0);
        img.region_table_mut(2, |t| t[9] ^= 1);
    });
    expect(&r, "RGN-003", Error, &[roff(1)]);
    assert!(!r.has("RGN-004") && !r.has("RGN-005"));
    assert!(message(&r, "RGN-003").contains("no reader can open the image"));
    // Each copy's finding says the other one is no way out either.
    let bad: Vec<_> = ["RGN-001", "RGN-002"]
        .iter()
        .flat_map(|id| of(&r, id))
        .collect();
    assert_eq!(bad.len(), 3, "{bad:#?}");
    for f in bad {
        let msg = &f.message;
        assert!(
            msg.contains("invalid too, so no reader can locate the BAT or metadata"),
            "{msg}"
        );
    }
    // Without a table nothing is "missing" from one.
    assert!(!r.has("RGN-018") && !r.has("RGN-019"));
}

#[test]
fn rgn_004_copy_1_invalid_copy_2_used() {
    // Copy 2 carries an entry fault of its own: it must be found at copy 2's offsets.
    let r = fires(&base(), "RGN-004", |img| {
        img.region_table_mut(1, |t| t[100] = 1);
        img.edit_region_table(2, |t| {
            put_u32(t, rgn::entry(rgn::BAT_ENTRY) + rgn::E_REQUIRED, 0)
        });
    });
    expect(&r, "RGN-004", Warning, &[roff(1)]);
    expect(&r, "RGN-002", Warning, &[roff(1)]);
    expect(&r, "RGN-020", Warning, &[eoff(2, 0) + 28]);
    assert_eq!(r.count(Error), 0, "{:#?}", r.findings);
}

#[test]
fn rgn_005_copy_2_invalid() {
    let r = fires(&base(), "RGN-005", |img| {
        img.edit_region_table(2, |t| t[..4].copy_from_slice(b"xxxx"))
    });
    expect(&r, "RGN-005", Warning, &[roff(2)]);
    expect(&r, "RGN-001", Warning, &[roff(2)]);
}

#[test]
fn rgn_006_both_valid_but_different() {
    let r = fires(&base(), "RGN-006", |img| {
        img.edit_region_table(2, |t| {
            put_u32(
                t,
                rgn::entry(rgn::BAT_ENTRY) + rgn::E_LENGTH,
                2 * MIB as u32,
            )
        })
    });
    expect(&r, "RGN-006", Warning, &[roff(1)]);
    assert!(message(&r, "RGN-006").contains("entry[0]"));
    assert!(message(&r, "RGN-006").contains("a reader that uses copy 2 finds the BAT"));
    // Copy 1 is used: copy 2's BAT length (overlapping block 0) changes nothing.
    assert!(!r.has("LAYOUT-001"));
    // Differences in unused space only.
    let r = fires(&base(), "RGN-006", |img| {
        img.edit_region_table(2, |t| t[0x9000] = 1)
    });
    assert!(message(&r, "RGN-006").contains("only unused bytes"));
    assert!(message(&r, "RGN-006").contains("so readers see the same disk"));
}

#[test]
fn rgn_007_entry_count_above_2047() {
    let r = fires(
        &base(),
        "RGN-007",
        set_rgn(rgn::ENTRY_COUNT, &2048u32.to_le_bytes()),
    );
    // Both copies: the copy in use keeps the error, the other copy's is a warning.
    let found = of(&r, "RGN-007");
    assert_eq!(found.len(), 2, "{found:#?}");
    for f in found {
        let want = if f.offset == Some(roff(1) + 8) {
            Error
        } else {
            Warning
        };
        assert_eq!(f.severity, want, "{f:#?}");
        // In use: readers refuse it; not in use: only redundancy is lost.
        let follows = if want == Error {
            "refuse the table"
        } else {
            "redundancy is lost"
        };
        assert!(f.message.contains(follows), "{f:#?}");
    }
    // Only copy 2 (not in use: copy 1 is valid): a warning, so the image is accepted.
    let r = fires(&base(), "RGN-007", |img| {
        img.edit_region_table(2, |t| put_u32(t, rgn::ENTRY_COUNT, 2048))
    });
    expect(&r, "RGN-007", Warning, &[roff(2) + 8]);
    assert!(message(&r, "RGN-007").contains("not the one in use"));
    assert!(!message(&r, "RGN-007").contains("QEMU"));
    assert_eq!(r.count(Error), 0, "{:#?}", r.findings);
}

/// Entry faults of the copy not in use are found on that copy, at its offsets, as
/// warnings (only redundancy is lost): an unaligned and a past-EOF BAT entry in copy 2.
#[test]
fn rgn_entry_faults_of_copy_2_are_reported_on_copy_2() {
    let r = fires(&base(), "RGN-010", |img| {
        img.edit_region_table(2, |t| {
            put_u64(
                t,
                rgn::entry(rgn::BAT_ENTRY) + rgn::E_FILE_OFFSET,
                3 * MIB + 4096,
            )
        })
    });
    expect(&r, "RGN-010", Warning, &[eoff(2, 0) + 16]);
    assert_eq!(of(&r, "RGN-010")[0].structure, "region_table[2].entry[0]");
    assert!(message(&r, "RGN-010").contains("not the one in use"));
    assert!(r.has("RGN-006"));
    assert_eq!(r.count(Error), 0, "{:#?}", r.findings);
    let r = fires(&base(), "RGN-014", |img| {
        img.edit_region_table(2, |t| {
            put_u64(t, rgn::entry(rgn::BAT_ENTRY) + rgn::E_FILE_OFFSET, 64 * MIB)
        })
    });
    expect(&r, "RGN-014", Warning, &[64 * MIB]);
    assert_eq!(r.count(Error), 0, "{:#?}", r.findings);
    // The same fault in copy 1 while copy 2 is clean: copy 1 is in use, an error.
    let r = fires(&base(), "RGN-014", |img| {
        img.edit_region_table(1, |t| {
            put_u64(t, rgn::entry(rgn::BAT_ENTRY) + rgn::E_FILE_OFFSET, 64 * MIB)
        })
    });
    expect(&r, "RGN-014", Error, &[64 * MIB]);
    // Copy 1 invalid: copy 2 is in use and its faults keep their severity; copy 1's
    // entries are not judged.
    let r = fires(&base(), "RGN-014", |img| {
        img.edit_region_table(1, |t| {
            put_u64(t, rgn::entry(rgn::BAT_ENTRY) + rgn::E_FILE_OFFSET, 32 * MIB)
        });
        img.region_table_mut(1, |t| t[100] = 1);
        img.edit_region_table(2, |t| {
            put_u64(t, rgn::entry(rgn::BAT_ENTRY) + rgn::E_FILE_OFFSET, 64 * MIB)
        });
    });
    expect(&r, "RGN-014", Error, &[64 * MIB]);
    // A copy 2 identical to copy 1 is not judged twice.
    let r = fires(&base(), "RGN-020", |img| {
        img.edit_region_tables(|t| put_u32(t, rgn::entry(rgn::BAT_ENTRY) + rgn::E_REQUIRED, 0))
    });
    expect(&r, "RGN-020", Warning, &[eoff(1, 0) + 28]);
}

#[test]
fn rgn_008_region_reserved_not_zero() {
    let r = fires(&base(), "RGN-008", set_rgn(rgn::RESERVED, &[0, 0, 0, 1]));
    expect(&r, "RGN-008", Warning, &[roff(1) + 12, roff(2) + 12]);
}

#[test]
fn rgn_021_unused_table_space_not_zero() {
    let r = fires(&base(), "RGN-021", set_rgn(0x9000, b"\x01"));
    expect(&r, "RGN-021", Info, &[roff(1) + 0x9000, roff(2) + 0x9000]);
    // The first byte after the last entry counts; the last entry's bytes do not.
    let r = fires(&base(), "RGN-021", set_rgn(rgn::entry(2), b"\x01"));
    expect(&r, "RGN-021", Info, &[eoff(1, 2), eoff(2, 2)]);
}

// ---------------------------------------------------------------------------------------
// RGN: entries of the working table. Most use a third region of an unknown type so the
// BAT and metadata stay intact.

#[test]
fn rgn_009_duplicate_region_guid() {
    let r = fires(&base(), "RGN-009", |img| {
        img.edit_region_tables(|t| {
            put_u32(t, rgn::ENTRY_COUNT, 3);
            put_entry(t, 2, &REGION_BAT, 3 * MIB, MIB as u32, 1);
        })
    });
    expect(&r, "RGN-009", Error, &[eoff(1, 2)]);
    assert!(message(&r, "RGN-009").contains("also used by entry[0]: QEMU refuses the file"));
}

#[test]
fn rgn_010_region_offset_not_mib_aligned() {
    let (img, at) = with_extra_region();
    let r = fires(
        &img,
        "RGN-010",
        set_extra(rgn::E_FILE_OFFSET, &(at + 4096).to_le_bytes()),
    );
    expect(&r, "RGN-010", Error, &[eoff(1, 2) + 16]);
    assert!(!r.has("RGN-011"));
}

#[test]
fn rgn_011_region_inside_header_section() {
    let (img, _) = with_extra_region();
    let r = fires(
        &img,
        "RGN-011",
        set_extra(rgn::E_FILE_OFFSET, &0u64.to_le_bytes()),
    );
    expect(&r, "RGN-011", Error, &[eoff(1, 2) + 16]);
    assert!(!r.has("RGN-010"));
    expect(&r, "LAYOUT-001", Error, &[0]);
}

#[test]
fn rgn_012_region_length_not_mib_multiple() {
    let (img, _) = with_extra_region();
    let r = fires(
        &img,
        "RGN-012",
        set_extra(rgn::E_LENGTH, &4096u32.to_le_bytes()),
    );
    expect(&r, "RGN-012", Error, &[eoff(1, 2) + 24]);
    assert!(!r.has("RGN-013"));
}

#[test]
fn rgn_013_region_length_zero() {
    let (img, _) = with_extra_region();
    let r = fires(
        &img,
        "RGN-013",
        set_extra(rgn::E_LENGTH, &0u32.to_le_bytes()),
    );
    expect(&r, "RGN-013", Warning, &[eoff(1, 2) + 24]);
    assert!(!r.has("RGN-012") && !r.has("LAYOUT-001"));
}

#[test]
fn rgn_014_region_past_end_of_file() {
    let (img, at) = with_extra_region();
    let r = fires(
        &img,
        "RGN-014",
        set_extra(rgn::E_FILE_OFFSET, &(at + MIB).to_le_bytes()),
    );
    expect(&r, "RGN-014", Error, &[at + MIB]);
    expect(&r, "LAYOUT-002", Error, &[at + MIB]);
}

#[test]
fn rgn_014_region_end_overflows() {
    let (img, _) = with_extra_region();
    let top = !(MIB - 1);
    let r = fires(
        &img,
        "RGN-014",
        set_extra(rgn::E_FILE_OFFSET, &top.to_le_bytes()),
    );
    expect(&r, "RGN-014", Error, &[top]);
    assert!(message(&r, "RGN-014").contains("overflow"));
}

#[test]
fn rgn_015_required_reserved_bits() {
    let (img, _) = with_extra_region();
    let r = fires(
        &img,
        "RGN-015",
        set_extra(rgn::E_REQUIRED, &2u32.to_le_bytes()),
    );
    expect(&r, "RGN-015", Warning, &[eoff(1, 2) + 28]);
    // Bit 0 is clear: still an optional region.
    assert!(!r.has("RGN-016") && r.has("RGN-017"));
}

#[test]
fn rgn_016_unknown_required_region() {
    let (img, _) = with_extra_region();
    let r = fires(
        &img,
        "RGN-016",
        set_extra(rgn::E_REQUIRED, &1u32.to_le_bytes()),
    );
    expect(&r, "RGN-016", Error, &[eoff(1, 2)]);
    assert!(!r.has("RGN-017"));
}

#[test]
fn rgn_017_unknown_optional_region() {
    let base = base();
    let at = base.len;
    let r = fires(&base, "RGN-017", |img| {
        img.len += MIB;
        add_region(at, MIB as u32, 0)(img);
    });
    expect(&r, "RGN-017", Info, &[at]);
    assert_eq!(r.count(Error) + r.count(Warning), 0, "{:#?}", r.findings);
}

#[test]
fn rgn_018_no_bat_region() {
    // The metadata entry moved to slot 0, one entry: the stale copy stays in slot 1.
    let r = fires(&base(), "RGN-018", |img| {
        img.edit_region_tables(|t| {
            put_u32(t, rgn::ENTRY_COUNT, 1);
            t.copy_within(rgn::entry(1)..rgn::entry(2), rgn::entry(0));
        })
    });
    expect(&r, "RGN-018", Error, &[roff(1)]);
    assert!(!r.has("RGN-019"));
    assert!(message(&r, "RGN-018").contains("readers refuse the image; the BAT is not checked"));
    assert!(r.has("BAT-023"));
    assert!(
        of(&r, "RGN-021")[0]
            .message
            .contains("stale entries: Metadata region")
    );
}

#[test]
fn rgn_019_no_metadata_region() {
    let r = fires(
        &base(),
        "RGN-019",
        set_rgn(rgn::ENTRY_COUNT, &1u32.to_le_bytes()),
    );
    expect(&r, "RGN-019", Error, &[roff(1)]);
    assert!(!r.has("RGN-018"));
}

#[test]
fn rgn_020_known_region_not_required() {
    let r = fires(&base(), "RGN-020", |img| {
        set_rgn(rgn::entry(0) + rgn::E_REQUIRED, &0u32.to_le_bytes())(img);
        set_rgn(rgn::entry(1) + rgn::E_REQUIRED, &3u32.to_le_bytes())(img);
    });
    expect(&r, "RGN-020", Warning, &[eoff(1, 0) + 28, eoff(1, 1) + 28]);
    expect(&r, "RGN-015", Warning, &[eoff(1, 1) + 28]);
}

// ---------------------------------------------------------------------------------------
// Several faults at once.

#[test]
fn rgn_and_layout_faults_all_reported_together() {
    let r = fires(&base(), "RGN-016", |img| {
        img.edit_region_table(1, |t| {
            put_u32(t, rgn::RESERVED, 7);
            put_u32(t, rgn::ENTRY_COUNT, 3);
            // Unknown, required, on top of the log.
            put_entry(t, 2, &unknown_guid(), MIB, MIB as u32, 1);
        });
        img.region_table_mut(2, |t| t[0x9000] = 1);
        img.patch(0x70000, b"\x01");
        img.len = 5 * MIB + 512;
    });
    expect(&r, "RGN-002", Warning, &[roff(2)]);
    expect(&r, "RGN-005", Warning, &[roff(2)]);
    expect(&r, "RGN-008", Warning, &[roff(1) + 12]);
    expect(&r, "RGN-016", Error, &[eoff(1, 2)]);
    expect(&r, "LAYOUT-001", Error, &[MIB]);
    expect(&r, "LAYOUT-002", Error, &[5 * MIB]);
    expect(&r, "LAYOUT-003", Warning, &[5 * MIB]);
    expect(&r, "LAYOUT-006", Info, &[0x70000]);
    assert_all(&r, &["BAT-014"]);
}

#[test]
fn region_faults_in_every_entry_are_each_reported() {
    // Four extra entries, each with its own fault: none hides another.
    let base = base();
    let end = base.len;
    let r = fires(&base, "RGN-010", |img| {
        img.len += 4 * MIB;
        img.edit_region_tables(|t| {
            put_u32(t, rgn::ENTRY_COUNT, 6);
            put_entry(t, 2, &pseudo_guid(1), end + 4096, MIB as u32, 0);
            put_entry(t, 3, &pseudo_guid(2), end + MIB, 4096, 0);
            put_entry(t, 4, &pseudo_guid(3), end + 2 * MIB, 0, 1);
            put_entry(t, 5, &pseudo_guid(4), end + 3 * MIB, 2 * MIB as u32, 6);
        });
    });
    expect(&r, "RGN-010", Error, &[eoff(1, 2) + 16]);
    expect(&r, "RGN-012", Error, &[eoff(1, 3) + 24]);
    expect(&r, "RGN-013", Warning, &[eoff(1, 4) + 24]);
    expect(&r, "RGN-016", Error, &[eoff(1, 4)]);
    expect(&r, "RGN-014", Error, &[end + 3 * MIB]);
    expect(&r, "RGN-015", Warning, &[eoff(1, 5) + 28]);
    expect(&r, "RGN-017", Info, &[end + 4096, end + MIB, end + 3 * MIB]);
}
