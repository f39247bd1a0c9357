//! Per-rule tests for the PLOC family (parent locator, CATALOGUE 2.8), and the baselines
//! the other differencing-disk families share (SBM in `rules_sector_bitmap`, CHAIN in
//! `rules_chain`). Each test builds a clean differencing image, checks that the clean image
//! does not fire the rule and that the damaged one fires it at the right file offset: the
//! locator header field, the 12-byte key/value entry, or the key or value string (the keys
//! in `keys`).
//!
//! Also: a valid differencing disk checked without its parent is clean (no error, no
//! warning) for every block-size / logical-sector-size combination.

mod keys;

use crate::builder::*;
use crate::rules_metadata::{fires, listing, of, one, report, silent, with};
use vhdx_check::{ImageReport, Severity};

/// 1 MiB blocks: with 512-byte sectors C = 4096 and a block's bitmap slice is 256 bytes.
pub(crate) const BS: u32 = MIB as u32;
/// Bytes of sector bitmap per 1 MiB payload block at 512-byte sectors: BS / (8·LSS).
pub(crate) const SLICE: u64 = MIB / (8 * 512);

pub(crate) const LINKAGE: &str = "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}";
pub(crate) const REL: &str = r".\parent.vhdx";
pub(crate) const ABS: &str = r"\\?\C:\vhdx-check\parent.vhdx";
pub(crate) const VOL: &str =
    r"\\?\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\vhdx-check\parent.vhdx";

// ---- baselines and places -------------------------------------------------------------

/// The baseline child: a 64 MiB differencing disk with 1 MiB blocks whose first sector is
/// written (block 0 PARTIALLY_PRESENT, chunk 0's sector bitmap present), and the builder's
/// default locator: parent_linkage (entry 0), relative_path (1), absolute_win32_path (2).
pub(crate) fn child() -> ImageBuilder {
    ImageBuilder::differencing(64 * MIB)
        .block_size(BS)
        .write_sectors(0, &[0x5A; 512])
}

pub(crate) fn clean() -> Built {
    child().build()
}

/// The baseline child with the locator key/value list `entries`.
pub(crate) fn with_locator(entries: &[(&str, &str)]) -> Built {
    child().parent_locator(entries).build()
}

/// The three default keys (with a fixed linkage) followed by `extra`.
pub(crate) fn default_plus(extra: &[(&str, &str)]) -> Built {
    let mut entries = vec![
        ("parent_linkage", LINKAGE),
        ("relative_path", REL),
        ("absolute_win32_path", ABS),
    ];
    entries.extend_from_slice(extra);
    with_locator(&entries)
}

/// The baseline child with the locator item's bytes replaced by `bytes` (same place, the
/// table entry's Length set to match; bytes of the old item past the new end are zeroed).
pub(crate) fn raw_locator(bytes: &[u8]) -> Built {
    let mut img = clean();
    let old = img.layout.item(&ITEM_PARENT_LOCATOR).length as usize;
    let mut data = bytes.to_vec();
    data.resize(bytes.len().max(old), 0);
    img.patch(loc(&img), &data);
    set_item_length(&mut img, bytes.len() as u32);
    img
}

/// The default locator item bytes (as `default_plus(&[])` stores them).
pub(crate) fn default_item() -> Vec<u8> {
    parent_locator_item(&[
        ("parent_linkage", LINKAGE),
        ("relative_path", REL),
        ("absolute_win32_path", ABS),
    ])
}

/// File offset of the locator item.
pub(crate) fn loc(img: &Built) -> u64 {
    img.layout.item(&ITEM_PARENT_LOCATOR).data_offset
}

/// File offset of key/value entry `i` (20 + 12·i into the item).
pub(crate) fn entry_at(img: &Built, i: u64) -> u64 {
    loc(img) + 20 + 12 * i
}

/// File offset of the key of entry `i`, from its KeyOffset as stored.
pub(crate) fn key_at(img: &Built, i: u64) -> u64 {
    loc(img) + img.read_u32(entry_at(img, i)) as u64
}

/// File offset of the value of entry `i`, from its ValueOffset as stored.
pub(crate) fn value_at(img: &Built, i: u64) -> u64 {
    loc(img) + img.read_u32(entry_at(img, i) + 4) as u64
}

/// Entry fields (CATALOGUE 1.4.13), relative to the entry.
pub(crate) const KEY_OFFSET: u64 = 0;
pub(crate) const VALUE_OFFSET: u64 = 4;
pub(crate) const KEY_LENGTH: u64 = 8;
pub(crate) const VALUE_LENGTH: u64 = 10;

pub(crate) fn set_u32(img: &mut Built, i: u64, field: u64, v: u32) {
    let at = entry_at(img, i) + field;
    img.patch_u32(at, v);
}

pub(crate) fn set_u16(img: &mut Built, i: u64, field: u64, v: u16) {
    let at = entry_at(img, i) + field;
    img.patch_u16(at, v);
}

/// Sets the Length of the locator's metadata table entry.
pub(crate) fn set_item_length(img: &mut Built, len: u32) {
    img.metadata_entry_mut(&ITEM_PARENT_LOCATOR, |e| put_u32(e, meta::E_LENGTH, len));
}

/// Asserts that the PLOC rules other than `allowed` stay silent on `r`.
pub(crate) fn only_ploc(r: &ImageReport, allowed: &[&str]) {
    let extra: Vec<&str> = r
        .findings
        .iter()
        .map(|f| f.rule)
        .filter(|id| id.starts_with("PLOC-") && *id != "PLOC-027" && !allowed.contains(id))
        .collect();
    assert!(extra.is_empty(), "unexpected {extra:?}:{}", listing(r));
}

#[test]
pub(crate) fn baseline_is_clean() {
    let r = report(&clean());
    assert_eq!(r.count(Severity::Error), 0, "{}", listing(&r));
    assert_eq!(r.count(Severity::Warning), 0, "{}", listing(&r));
    only_ploc(&r, &[]);
    // The raw-item route gives the same clean locator.
    let r = report(&raw_locator(&default_item()));
    assert_eq!(r.worst(), Some(Severity::Info), "{}", listing(&r));
    only_ploc(&r, &[]);
}

// ---- locator header (PLOC-001..005) ---------------------------------------------------

#[test]
fn ploc_001_item_shorter_than_header() {
    let clean = clean();
    let img = with(&clean, |b| set_item_length(b, 16));
    let r = fires(&clean, &img, "PLOC-001", &[loc(&clean)]);
    assert_eq!(one(&r, "PLOC-001").length, Some(16));
    // Nothing can be parsed from it: no consequential locator findings.
    only_ploc(&r, &["PLOC-001"]);
    assert!(!r.has("PLOC-027"), "{}", listing(&r));
    // Exactly 20 bytes (a header with no entries) is long enough.
    let img = raw_locator(&parent_locator_item(&[]));
    silent(&img, "PLOC-001");
}

#[test]
fn ploc_002_foreign_locator_type() {
    let clean = clean();
    let img = with(&clean, |b| b.patch(loc(&clean), &pseudo_guid(0x10C)));
    let r = fires(&clean, &img, "PLOC-002", &[loc(&clean)]);
    assert_eq!(one(&r, "PLOC-002").severity, Severity::Warning);
    // The VHDX key rules are not applied to another locator type.
    let foreign = with_locator(&[("path", "whatever")]);
    let foreign = with(&foreign, |b| b.patch(loc(&foreign), &pseudo_guid(0x10C)));
    let r = report(&foreign);
    only_ploc(&r, &["PLOC-002"]);
}

#[test]
fn ploc_003_header_reserved_nonzero() {
    let clean = clean();
    let img = with(&clean, |b| b.patch_u16(loc(&clean) + 16, 0x8000));
    let r = fires(&clean, &img, "PLOC-003", &[loc(&clean) + 16]);
    only_ploc(&r, &["PLOC-003"]);
}

#[test]
fn ploc_004_no_entries() {
    let img = raw_locator(&parent_locator_item(&[]));
    let r = fires(&clean(), &img, "PLOC-004", &[loc(&img) + 18]);
    // And therefore the mandatory keys are missing.
    assert!(r.has("PLOC-015") && r.has("PLOC-019"), "{}", listing(&r));
    let m = &one(&r, "PLOC-004").message;
    assert!(
        m.contains("so the parent can be neither found nor verified"),
        "{m}"
    );
}

#[test]
fn ploc_005_entry_table_longer_than_item() {
    let clean = clean();
    let len = clean.layout.item(&ITEM_PARENT_LOCATOR).length as u64;
    // The smallest count whose table no longer fits: 20 + 12·n > len.
    let n = (len - 20) / 12 + 1;
    let img = with(&clean, |b| b.patch_u16(loc(&clean) + 18, n as u16));
    fires(&clean, &img, "PLOC-005", &[loc(&clean) + 18]);
    // A count whose table exactly fills the item is fine: 3 entries, item cut after them.
    let exact = with(&clean, |b| set_item_length(b, 20 + 12 * 3));
    silent(&exact, "PLOC-005");
}

// ---- entries (PLOC-006..012) ----------------------------------------------------------

#[test]
fn ploc_006_zero_offset_or_length() {
    let clean = clean();
    for (field, wide) in [
        (KEY_OFFSET, true),
        (VALUE_OFFSET, true),
        (KEY_LENGTH, false),
        (VALUE_LENGTH, false),
    ] {
        let img = with(&clean, |b| {
            if wide {
                set_u32(b, 1, field, 0)
            } else {
                set_u16(b, 1, field, 0)
            }
        });
        let r = fires(&clean, &img, "PLOC-006", &[entry_at(&clean, 1)]);
        assert_eq!(one(&r, "PLOC-006").length, Some(12));
    }
}

#[test]
fn ploc_007_string_past_item_end() {
    let clean = clean();
    let len = clean.layout.item(&ITEM_PARENT_LOCATOR).length;
    // The last value ends exactly at the item end in the baseline.
    assert_eq!(
        value_at(&clean, 2) - loc(&clean) + 2 * ABS.len() as u64,
        len as u64
    );
    let img = with(&clean, |b| {
        set_u16(b, 2, VALUE_LENGTH, 2 * ABS.len() as u16 + 2)
    });
    fires(&clean, &img, "PLOC-007", &[entry_at(&clean, 2)]);
    // Offset + length beyond u32: computed in u64, not wrapped.
    let img = with(&clean, |b| set_u32(b, 0, KEY_OFFSET, u32::MAX - 4));
    fires(&clean, &img, "PLOC-007", &[entry_at(&clean, 0)]);
}

#[test]
fn ploc_008_string_inside_entry_table() {
    let clean = clean();
    // parent_linkage's value moved to item offset 32: inside entry 1 (table is 56 bytes).
    let img = with(&clean, |b| set_u32(b, 0, VALUE_OFFSET, 32));
    let r = fires(&clean, &img, "PLOC-008", &[loc(&clean) + 32]);
    assert_eq!(one(&r, "PLOC-008").severity, Severity::Warning);
    // A string starting exactly at the table end is outside it (the baseline's first key).
    assert_eq!(key_at(&clean, 0), loc(&clean) + 20 + 12 * 3);
}

#[test]
fn ploc_008_also_for_a_string_running_past_the_end() {
    // Both conditions hold for one value: it starts inside the header and runs past the
    // item end. Each rule reports its own violation.
    let clean = clean();
    let img = with(&clean, |b| {
        set_u32(b, 1, VALUE_OFFSET, 8);
        set_u16(b, 1, VALUE_LENGTH, 0xFFFE);
    });
    fires(&clean, &img, "PLOC-007", &[entry_at(&clean, 1)]);
    fires(&clean, &img, "PLOC-008", &[loc(&clean) + 8]);
}

#[test]
fn ploc_009_strings_overlap() {
    let clean = clean();
    // relative_path now shares the tail "parent.vhdx" of absolute_win32_path's value: still
    // a valid relative path, but two strings overlap.
    let tail = ABS.len() - "parent.vhdx".len();
    let start = value_at(&clean, 2) + 2 * tail as u64;
    let img = with(&clean, |b| {
        set_u32(b, 1, VALUE_OFFSET, (start - loc(&clean)) as u32);
        set_u16(b, 1, VALUE_LENGTH, 2 * "parent.vhdx".len() as u16);
    });
    let r = fires(&clean, &img, "PLOC-009", &[start]);
    assert_eq!(one(&r, "PLOC-009").length, Some(22));
    // The old relative value is now slack.
    assert_eq!(one(&r, "PLOC-026").offset, Some(value_at(&clean, 1)));
    only_ploc(&r, &["PLOC-009", "PLOC-026"]);
}

#[test]
fn ploc_010_odd_string_length() {
    let clean = clean();
    let img = with(&clean, |b| {
        set_u16(b, 1, VALUE_LENGTH, 2 * REL.len() as u16 - 1)
    });
    fires(&clean, &img, "PLOC-010", &[entry_at(&clean, 1)]);
    let img = with(&clean, |b| set_u16(b, 0, KEY_LENGTH, 27));
    fires(&clean, &img, "PLOC-010", &[entry_at(&clean, 0)]);
}

#[test]
fn ploc_011_unpaired_surrogate() {
    let clean = clean();
    // A lone high surrogate as the first code unit of relative_path's value.
    let img = with(&clean, |b| b.patch_u16(value_at(&clean, 1), 0xD800));
    let r = fires(&clean, &img, "PLOC-011", &[value_at(&clean, 1)]);
    assert_eq!(one(&r, "PLOC-011").length, Some(2 * REL.len() as u64));
    // A lone low surrogate in a key.
    let img = with(&clean, |b| b.patch_u16(key_at(&clean, 2) + 4, 0xDC00));
    fires(&clean, &img, "PLOC-011", &[key_at(&clean, 2)]);
    // A proper pair is well-formed.
    let emoji = default_plus(&[("note", "\u{1F600}")]);
    silent(&emoji, "PLOC-011");
}

#[test]
fn ploc_012_nul_in_string() {
    let clean = default_plus(&[]);
    // A terminator counted in the length, and a NUL inside a key.
    let img = with_locator(&[
        ("parent_linkage", LINKAGE),
        ("relative_path", ".\\parent.vhdx\0"),
        ("absolute_win32_path", ABS),
    ]);
    fires(&clean, &img, "PLOC-012", &[value_at(&img, 1)]);
    let img = with_locator(&[
        ("parent_linkage", LINKAGE),
        ("relative_path", REL),
        ("absolute_win32\0path", ABS),
    ]);
    fires(&clean, &img, "PLOC-012", &[key_at(&img, 2)]);
}

// ---- a valid differencing disk without its parent -------------------------------------

#[test]
fn differencing_without_parent_is_clean_for_every_geometry() {
    for bs in [MIB, 32 * MIB] {
        for lss in [512u64, 4096] {
            // Two chunks, the second one partial: chunk = 2^23 · LSS bytes.
            let chunk = (1u64 << 23) * lss;
            let size = chunk + 3 * bs;
            let img = ImageBuilder::differencing(size)
                .block_size(bs as u32)
                .logical_sector(lss as u32)
                .write_sectors(0, &vec![1; lss as usize])
                .write_sectors(bs + 4 * lss, &vec![2; 3 * lss as usize])
                .write(2 * bs, &[3; 4096])
                .write_sectors(chunk + bs, &vec![4; lss as usize])
                .write_sectors(size - lss, &vec![5; lss as usize])
                .build();
            assert_eq!(img.layout.bitmaps.len(), 2);
            let r = report(&img);
            assert_eq!(
                r.count(Severity::Error) + r.count(Severity::Warning),
                0,
                "BS {bs} LSS {lss}:{}",
                listing(&r)
            );
            assert!(!r.has("BAT-023"), "geometry must be known:{}", listing(&r));
            // The written sectors are where the bitmap says: no stale or empty slice.
            for id in ["SBM-001", "SBM-002", "SBM-003", "SBM-005"] {
                assert!(!r.has(id), "BS {bs} LSS {lss}:{}", listing(&r));
            }
        }
    }
}
