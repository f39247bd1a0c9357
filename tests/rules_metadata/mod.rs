//! Per-rule tests for the META family (CATALOGUE 2.7). Each test damages a clean image,
//! checks that the clean image does not fire the rule and that the damaged one fires it
//! at the right file offset (the metadata table, the 32-byte entry, or the item value).
//!
//! The first block holds helpers shared with the other rule-test modules.

mod entries;
mod items;

use crate::builder::*;
use crate::util::assert_fires;
use vhdx_check::{CheckOptions, Finding, ImageReport, Severity, check};

// ---- shared helpers -------------------------------------------------------------------

pub fn report(img: &Built) -> ImageReport {
    check(img, &CheckOptions::default())
}

/// One line per finding, for assertion messages.
pub fn listing(r: &ImageReport) -> String {
    r.findings
        .iter()
        .map(|f| {
            let at = f.offset.map_or("-".into(), |o| format!("{o:#x}"));
            format!(
                "\n  {} {} @{at} {}: {}",
                f.rule, f.severity, f.structure, f.message
            )
        })
        .collect()
}

/// A copy of `clean` with `damage` applied.
pub fn with(clean: &Built, damage: impl FnOnce(&mut Built)) -> Built {
    let mut img = clean.clone();
    damage(&mut img);
    img
}

/// The shown findings of rule `id`.
pub fn of<'r>(r: &'r ImageReport, id: &str) -> Vec<&'r Finding> {
    r.findings.iter().filter(|f| f.rule == id).collect()
}

/// The only finding of rule `id`.
#[track_caller]
pub fn one<'r>(r: &'r ImageReport, id: &str) -> &'r Finding {
    let v = assert_fires(r, id);
    assert_eq!(v.len(), 1, "expected one {id}:{}", listing(r));
    v[0]
}

/// Asserts that `id` does not fire on `img`.
#[track_caller]
pub fn silent(img: &Built, id: &str) {
    let r = report(img);
    assert!(!r.has(id), "{id} fires:{}", listing(&r));
}

/// Asserts that `id` is silent on `clean` and fires on `img` once per offset in `offsets`
/// (file offsets, any order) and nowhere else. Returns the report of `img`.
#[track_caller]
pub fn fires(clean: &Built, img: &Built, id: &str, offsets: &[u64]) -> ImageReport {
    silent(clean, id);
    let r = report(img);
    let mut got: Vec<Option<u64>> = assert_fires(&r, id).iter().map(|f| f.offset).collect();
    let mut want: Vec<Option<u64>> = offsets.iter().map(|&o| Some(o)).collect();
    got.sort();
    want.sort();
    assert_eq!(
        got,
        want,
        "{id} offsets (want {offsets:#x?}):{}",
        listing(&r)
    );
    r
}

/// Asserts that each `(id, offset)` has a finding of `id` at file offset `offset`
/// (several planted faults in one image: the checker must report them all).
#[track_caller]
pub fn all_at(r: &ImageReport, planted: &[(&str, u64)]) {
    let missing: Vec<_> = planted
        .iter()
        .filter(|(id, at)| !of(r, id).iter().any(|f| f.offset == Some(*at)))
        .map(|(id, at)| format!("{id}@{at:#x}"))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?}:{}", listing(r));
    // Each through the one positive assertion (what the catalogue test counts).
    for (id, _) in planted {
        assert_fires(r, id);
    }
}

// ---- metadata helpers -----------------------------------------------------------------

/// The baseline: a 64 MiB dynamic disk with 1 MiB blocks.
fn dynamic() -> Built {
    ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .build()
}

/// The baseline with extra metadata items `(id, entry flags, data)`.
fn dynamic_with_items(items: &[(Guid, u32, &[u8])]) -> Built {
    items
        .iter()
        .fold(
            ImageBuilder::dynamic(64 * MIB).block_size(MIB as u32),
            |b, (id, flags, data)| b.metadata_item(*id, *flags, data),
        )
        .build()
}

/// An id no specification item uses.
fn unknown_id(n: u64) -> Guid {
    pseudo_guid(0x5EED_0000 + n)
}

fn md(img: &Built) -> u64 {
    img.layout.metadata_offset
}

/// File offset of the table entry of item `id`.
fn entry_at(img: &Built, id: &Guid) -> u64 {
    img.layout.item(id).entry_offset
}

/// File offset of the value of item `id`.
fn value_at(img: &Built, id: &Guid) -> u64 {
    img.layout.item(id).data_offset
}

/// Sets a u32 field of the table entry of item `id`.
fn set_entry(img: &mut Built, id: &Guid, field: usize, v: u32) {
    img.metadata_entry_mut(id, |e| put_u32(e, field, v));
}

/// Sets a u32 field of the last table entry (an extra item).
fn set_last_entry(img: &mut Built, field: usize, v: u32) {
    let at = img.layout.items.last().unwrap().entry_offset;
    img.patch_u32(at + field as u64, v);
}

fn last_entry_at(img: &Built) -> u64 {
    img.layout.items.last().unwrap().entry_offset
}

/// Overwrites the start of item `id`'s value.
fn set_value(img: &mut Built, id: &Guid, bytes: &[u8]) {
    img.metadata_item_mut(id, |d| d[..bytes.len()].copy_from_slice(bytes));
}

/// Asserts that damaging a value of item `id` fires `rule` at the item value.
#[track_caller]
fn value_fires(clean: &Built, id: &Guid, bytes: &[u8], rule: &str) -> ImageReport {
    let img = with(clean, |b| set_value(b, id, bytes));
    fires(clean, &img, rule, &[value_at(clean, id)])
}

// ---- table header (META-001..005, 036) ------------------------------------------------

#[test]
fn meta_001_region_smaller_than_table() {
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.edit_region_tables(|t| {
            put_u32(t, rgn::entry(rgn::METADATA_ENTRY) + rgn::E_LENGTH, 0x8000)
        })
    });
    let r = fires(&clean, &img, "META-001", &[md(&clean)]);
    assert_eq!(one(&r, "META-001").length, Some(0x8000));
}

#[test]
fn meta_002_bad_table_signature() {
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.metadata_table_mut(|t| t[..8].copy_from_slice(b"METADATA"))
    });
    let r = fires(&clean, &img, "META-002", &[md(&clean)]);
    // Item parsing stops: no consequential entry findings.
    assert!(!r.has("META-020") && !r.has("META-017"), "{}", listing(&r));
    // The message says what follows, and it is true: the BAT is not checked.
    let msg = &one(&r, "META-002").message;
    assert!(msg.contains("readers refuse the image"), "{msg}");
    assert!(
        msg.contains("the BAT is not checked") && r.has("BAT-023"),
        "{msg}"
    );
}

#[test]
fn meta_003_table_reserved_nonzero() {
    let clean = dynamic();
    let img = with(&clean, |b| b.metadata_table_mut(|t| t[meta::RESERVED] = 1));
    fires(&clean, &img, "META-003", &[md(&clean) + 8]);
}

#[test]
fn meta_004_entry_count_above_2047() {
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.metadata_table_mut(|t| put_u16(t, meta::ENTRY_COUNT, 2048))
    });
    fires(&clean, &img, "META-004", &[md(&clean) + 10]);
}

#[test]
fn meta_005_table_reserved2_nonzero() {
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.metadata_table_mut(|t| t[meta::RESERVED2 + 19] = 1)
    });
    fires(&clean, &img, "META-005", &[md(&clean) + 12]);
}

#[test]
fn meta_036_stale_entry_after_entry_count() {
    // EntryCount 5 → 4: the Physical Sector Size entry becomes a stale row, its value
    // free space, and the item is missing.
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.metadata_table_mut(|t| put_u16(t, meta::ENTRY_COUNT, 4))
    });
    let pss = &ITEM_PHYSICAL_SECTOR_SIZE;
    let r = fires(&clean, &img, "META-036", &[entry_at(&clean, pss)]);
    // Free-space findings point at the first non-zero byte: 4096 is 00 10 00 00.
    assert_eq!(one(&r, "META-037").offset, Some(value_at(&clean, pss) + 1));
    assert_eq!(one(&r, "META-020").offset, Some(md(&clean)));
}
