//! Per-rule tests for the differencing-disk families: PLOC (parent locator, CATALOGUE 2.8),
//! SBM (sector bitmap contents, 2.6) and CHAIN (child against parent, 2.9). Each test builds
//! a clean differencing image (and a parent where the rule needs one), checks that the clean
//! image does not fire the rule and that the damaged one fires it at the right file offset:
//! the locator header field, the 12-byte key/value entry, the key or value string, the
//! bitmap slice, or (for CHAIN) the child's locator item.
//!
//! Also: a valid differencing disk checked without its parent is clean (no error, no
//! warning) for every block-size / logical-sector-size combination.

use crate::builder::*;
use crate::rules_metadata::{fires, listing, of, one, report, silent, with};
use vhdx_check::check::check_with_parent;
use vhdx_check::model::{Model, ParentLink};
use vhdx_check::{CheckOptions, ImageReport, Severity};

/// 1 MiB blocks: with 512-byte sectors C = 4096 and a block's bitmap slice is 256 bytes.
const BS: u32 = MIB as u32;
/// Bytes of sector bitmap per 1 MiB payload block at 512-byte sectors: BS / (8·LSS).
const SLICE: u64 = MIB / (8 * 512);

const LINKAGE: &str = "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}";
const REL: &str = r".\parent.vhdx";
const ABS: &str = r"\\?\C:\vhdx-check\parent.vhdx";
const VOL: &str = r"\\?\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\vhdx-check\parent.vhdx";

// ---- baselines and places -------------------------------------------------------------

/// The baseline child: a 64 MiB differencing disk with 1 MiB blocks whose first sector is
/// written (block 0 PARTIALLY_PRESENT, chunk 0's sector bitmap present), and the builder's
/// default locator: parent_linkage (entry 0), relative_path (1), absolute_win32_path (2).
fn child() -> ImageBuilder {
    ImageBuilder::differencing(64 * MIB)
        .block_size(BS)
        .write_sectors(0, &[0x5A; 512])
}

fn clean() -> Built {
    child().build()
}

/// The baseline child with the locator key/value list `entries`.
fn with_locator(entries: &[(&str, &str)]) -> Built {
    child().parent_locator(entries).build()
}

/// The three default keys (with a fixed linkage) followed by `extra`.
fn default_plus(extra: &[(&str, &str)]) -> Built {
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
fn raw_locator(bytes: &[u8]) -> Built {
    let mut img = clean();
    let old = img.layout.item(&ITEM_PARENT_LOCATOR).length as usize;
    let mut data = bytes.to_vec();
    data.resize(bytes.len().max(old), 0);
    img.patch(loc(&img), &data);
    set_item_length(&mut img, bytes.len() as u32);
    img
}

/// The default locator item bytes (as `default_plus(&[])` stores them).
fn default_item() -> Vec<u8> {
    parent_locator_item(&[
        ("parent_linkage", LINKAGE),
        ("relative_path", REL),
        ("absolute_win32_path", ABS),
    ])
}

/// File offset of the locator item.
fn loc(img: &Built) -> u64 {
    img.layout.item(&ITEM_PARENT_LOCATOR).data_offset
}

/// File offset of key/value entry `i` (20 + 12·i into the item).
fn entry_at(img: &Built, i: u64) -> u64 {
    loc(img) + 20 + 12 * i
}

/// File offset of the key of entry `i`, from its KeyOffset as stored.
fn key_at(img: &Built, i: u64) -> u64 {
    loc(img) + img.read_u32(entry_at(img, i)) as u64
}

/// File offset of the value of entry `i`, from its ValueOffset as stored.
fn value_at(img: &Built, i: u64) -> u64 {
    loc(img) + img.read_u32(entry_at(img, i) + 4) as u64
}

/// Entry fields (CATALOGUE 1.4.13), relative to the entry.
const KEY_OFFSET: u64 = 0;
const VALUE_OFFSET: u64 = 4;
const KEY_LENGTH: u64 = 8;
const VALUE_LENGTH: u64 = 10;

fn set_u32(img: &mut Built, i: u64, field: u64, v: u32) {
    let at = entry_at(img, i) + field;
    img.patch_u32(at, v);
}

fn set_u16(img: &mut Built, i: u64, field: u64, v: u16) {
    let at = entry_at(img, i) + field;
    img.patch_u16(at, v);
}

/// Sets the Length of the locator's metadata table entry.
fn set_item_length(img: &mut Built, len: u32) {
    img.metadata_entry_mut(&ITEM_PARENT_LOCATOR, |e| put_u32(e, meta::E_LENGTH, len));
}

/// Asserts that the PLOC rules other than `allowed` stay silent on `r`.
fn only_ploc(r: &ImageReport, allowed: &[&str]) {
    let extra: Vec<&str> = r
        .findings
        .iter()
        .map(|f| f.rule)
        .filter(|id| id.starts_with("PLOC-") && *id != "PLOC-027" && !allowed.contains(id))
        .collect();
    assert!(extra.is_empty(), "unexpected {extra:?}:{}", listing(r));
}

#[test]
fn baseline_is_clean() {
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

// ---- sector bitmaps (SBM-001..005) ----------------------------------------------------

/// File offset of chunk 0's sector bitmap in `img`.
fn bitmap(img: &Built) -> u64 {
    img.layout.bitmap_offset(0)
}

/// Keeps the FileOffsetMB of payload block `block`, replaces its state.
fn restate(img: &mut Built, block: u64, state: u64) {
    let i = img.layout.payload_entry_index(block);
    let e = img.bat_entry(i);
    img.set_bat_entry(i, (e & !7) | state);
}

#[test]
fn sbm_001_bits_beyond_disk_end() {
    let clean = clean();
    // 64 MiB = 131072 sectors: bit 131072 is byte 16384, bit 0 (block 64's slice, padding).
    let at = bitmap(&clean) + 131072 / 8;
    let img = with(&clean, |b| b.patch(at, &[0x01]));
    let r = fires(&clean, &img, "SBM-001", &[at]);
    assert_eq!(one(&r, "SBM-001").severity, Severity::Warning);
    assert_eq!(one(&r, "SBM-001").length, Some(MIB - 131072 / 8));
    // The very last bit of the bitmap block.
    let last = bitmap(&clean) + MIB - 1;
    let img = with(&clean, |b| b.patch(last, &[0x80]));
    fires(&clean, &img, "SBM-001", &[last]);
}

#[test]
fn sbm_001_boundary_inside_a_byte() {
    // 64 MiB + 512: 131073 sectors, so bit 0 of byte 16384 is a real sector and bit 1 is not.
    let shape = || {
        ImageBuilder::differencing(64 * MIB + 512)
            .block_size(BS)
            .write_sectors(0, &[0x5A; 512])
    };
    let clean = shape().write_sectors(64 * MIB, &[1; 512]).build();
    let at = bitmap(&clean) + 16384;
    assert_eq!(clean.read(at, 1), vec![0x01]);
    silent(&clean, "SBM-001");
    let img = with(&clean, |b| b.patch(at, &[0x03]));
    fires(&clean, &img, "SBM-001", &[at]);
}

#[test]
fn sbm_001_only_the_last_bitmap_block() {
    // Two chunks (C = 4096 blocks of 1 MiB = 4 GiB each); the disk ends 8 MiB into chunk 1.
    let clean = ImageBuilder::differencing(4096 * MIB + 8 * MIB)
        .block_size(BS)
        .write_sectors(0, &[1; 512])
        .write_sectors(4096 * MIB, &[2; 512])
        .build();
    silent(&clean, "SBM-001");
    // Chunk 0 is full: setting its last bit describes a real sector.
    let img = with(&clean, |b| b.patch(bitmap(&clean) + MIB - 1, &[0x80]));
    silent(&img, "SBM-001");
    // Chunk 1 covers 8 MiB = 16384 sectors = 2048 bitmap bytes.
    let at = clean.layout.bitmap_offset(1) + 2048;
    let img = with(&clean, |b| b.patch(at, &[0x10]));
    fires(&clean, &img, "SBM-001", &[at]);
}

#[test]
fn sbm_002_partial_block_fully_mapped() {
    let clean = clean();
    // Block 3 written sector by sector, all of it: PARTIALLY_PRESENT with a full slice.
    let img = child()
        .write_sectors(3 * MIB, &vec![7; MIB as usize])
        .build();
    let r = fires(&clean, &img, "SBM-002", &[bitmap(&img) + 3 * SLICE]);
    assert_eq!(one(&r, "SBM-002").length, Some(SLICE));
    assert_eq!(one(&r, "SBM-002").severity, Severity::Info);
}

#[test]
fn sbm_003_partial_block_no_sector_mapped() {
    let clean = clean();
    let img = with(&clean, |b| b.patch(bitmap(&clean), &[0]));
    let r = fires(&clean, &img, "SBM-003", &[bitmap(&clean)]);
    // The block's own bytes in this file are named: no reader shows them.
    let m = &one(&r, "SBM-003").message;
    let data = format!(
        "its data at {:#x} in this file is not part of the disk",
        clean.layout.block_offset(0)
    );
    assert!(m.contains(&data), "{m}");
}

#[test]
fn sbm_004_full_block_with_clear_bits() {
    let clean = clean();
    let img = with(&clean, |b| restate(b, 0, bat::FULLY_PRESENT));
    let r = fires(&clean, &img, "SBM-004", &[bitmap(&clean)]);
    // Some bits set (the first sector's), the rest clear: counted, not called stale.
    let m = &one(&r, "SBM-004").message;
    assert!(
        m.contains("2047 of 2048 bits are clear") && !m.contains("stale"),
        "{m}"
    );
    // A writer that writes the whole block need not set its bits: none set is not stale.
    let never = with(&img, |b| b.patch(bitmap(&clean), &[0]));
    let r = fires(&clean, &never, "SBM-004", &[bitmap(&clean)]);
    let m = &one(&r, "SBM-004").message;
    assert!(m.contains("no bit is set") && !m.contains("stale"), "{m}");
    // A full block whose slice is all ones is consistent.
    let img = with(&img, |b| b.patch(bitmap(&clean), &[0xFF; SLICE as usize]));
    silent(&img, "SBM-004");
}

#[test]
fn sbm_005_absent_block_with_set_bits() {
    let clean = clean();
    for state in [bat::NOT_PRESENT, bat::UNDEFINED, bat::ZERO, bat::UNMAPPED] {
        let img = with(&clean, |b| {
            b.set_payload_entry(5, bat::entry(state, 0));
            b.patch(bitmap(&clean) + 5 * SLICE + 17, &[0x40]);
        });
        fires(&clean, &img, "SBM-005", &[bitmap(&clean) + 5 * SLICE]);
    }
}

#[test]
fn sbm_slices_at_4096_byte_sectors() {
    // LSS 4096, BS 1 MiB: C = 32768 and a block's slice is 32 bytes.
    let shape = || {
        ImageBuilder::differencing(64 * MIB)
            .block_size(BS)
            .logical_sector(4096)
    };
    let clean = shape().write_sectors(2 * MIB, &[1; 4096]).build();
    silent(&clean, "SBM-005");
    silent(&clean, "SBM-001");
    let base = bitmap(&clean);
    assert_eq!(clean.read(base + 2 * 32, 1), vec![1]);
    // Bit for block 5's first sector.
    let img = with(&clean, |b| b.patch(base + 5 * 32, &[1]));
    fires(&clean, &img, "SBM-005", &[base + 5 * 32]);
    // 64 MiB = 16384 sectors: bit 16384 is byte 2048.
    let img = with(&clean, |b| b.patch(base + 2048, &[1]));
    fires(&clean, &img, "SBM-001", &[base + 2048]);
    let full = shape()
        .write_sectors(7 * MIB, &vec![1; MIB as usize])
        .build();
    fires(&clean, &full, "SBM-002", &[bitmap(&full) + 7 * 32]);
}

#[test]
fn sbm_slices_at_32_mib_blocks() {
    // BS 32 MiB, LSS 512: C = 128 and a block's slice is 8192 bytes.
    let bs = 32 * MIB;
    let slice = bs / (8 * 512);
    let shape = || ImageBuilder::differencing(256 * MIB).block_size(bs as u32);
    let clean = shape().write_sectors(bs + 512, &[1; 512]).build();
    let base = bitmap(&clean);
    // Sector 1 of block 1.
    assert_eq!(clean.read(base + slice, 1), vec![0x02]);
    let img = with(&clean, |b| b.patch(base + 3 * slice + slice - 1, &[0x80]));
    fires(&clean, &img, "SBM-005", &[base + 3 * slice]);
    let img = with(&clean, |b| b.patch(base + slice, &[0]));
    fires(&clean, &img, "SBM-003", &[base + slice]);
    // 256 MiB = 2^19 sectors: the first bit beyond the disk is byte 2^16.
    let img = with(&clean, |b| b.patch(base + (1 << 16), &[1]));
    fires(&clean, &img, "SBM-001", &[base + (1 << 16)]);
}

// ---- chain (CHAIN-001..005) -----------------------------------------------------------

/// A parent of `shape` with 1 MiB blocks and seed 7 unless `shape` sets another one (the
/// child uses seed 1: the two have different DataWriteGuids and VirtualDiskIds).
fn parent_of(shape: ImageBuilder) -> Built {
    shape.block_size(BS).build()
}

/// A dynamic 64 MiB parent.
fn parent() -> Built {
    parent_of(ImageBuilder::dynamic(64 * MIB).seed(7))
}

/// The baseline child linked to `parent` (parent_linkage = its DataWriteGuid).
fn child_of(parent: &Built) -> Built {
    child()
        .parent_linkage(parent.layout.data_write_guid)
        .build()
}

/// Checks `child` with `parent` as its parent, found through `via`.
fn against(child: &Built, parent: &Built, via: Option<&'static str>) -> ImageReport {
    let link = ParentLink::of("parent.vhdx".into(), &Model::build(parent), via);
    check_with_parent(child, Some(link), &CheckOptions::default())
}

/// Asserts that `id` is silent in `clean` and fires once in `bad`, at `offset`.
#[track_caller]
fn chain_fires(clean: &ImageReport, bad: &ImageReport, id: &str, offset: Option<u64>) {
    assert!(
        !clean.has(id),
        "{id} fires on the clean chain:{}",
        listing(clean)
    );
    assert_eq!(one(bad, id).offset, offset, "{}", listing(bad));
}

#[test]
fn chain_baseline_is_clean() {
    let p = parent();
    let c = child_of(&p);
    let r = against(&c, &p, None);
    let chain: Vec<&str> = r
        .findings
        .iter()
        .map(|f| f.rule)
        .filter(|id| id.starts_with("CHAIN-"))
        .collect();
    assert!(chain.is_empty(), "{}", listing(&r));
    assert_eq!(r.worst(), Some(Severity::Info), "{}", listing(&r));
    // Without a parent no CHAIN rule runs at all, even for a wrong linkage.
    let r = report(&child().build());
    assert!(!r.ids().iter().any(|id| id.starts_with("CHAIN-")));
}

#[test]
fn chain_001_linkage_does_not_match_parent() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, None);
    // Another parent (the parent rewritten, or the wrong file).
    let other = parent_of(ImageBuilder::dynamic(64 * MIB).seed(8));
    let r = against(&c, &other, None);
    chain_fires(&clean, &r, "CHAIN-001", Some(loc(&c)));
    assert_eq!(one(&r, "CHAIN-001").severity, Severity::Error);
    // The parent's current header counts: the child matches header 1's DataWriteGuid only.
    let stale = with(&p, |b| {
        b.edit_header(2, |h| h[hdr::DATA_WRITE_GUID] ^= 0xFF)
    });
    let r = against(&c, &stale, None);
    chain_fires(&clean, &r, "CHAIN-001", Some(loc(&c)));
}

#[test]
fn chain_001_parent_linkage2_matches() {
    let p = parent();
    let linkage = guid_braced(&p.layout.data_write_guid);
    let c = child()
        .parent_locator(&[
            ("parent_linkage", LINKAGE),
            ("parent_linkage2", &linkage),
            ("relative_path", REL),
        ])
        .build();
    let r = against(&c, &p, None);
    assert!(!r.has("CHAIN-001"), "{}", listing(&r));
    // And uppercase text names the same GUID.
    let c = child()
        .parent_locator(&[
            ("parent_linkage", &linkage.to_uppercase()),
            ("relative_path", REL),
        ])
        .build();
    let r = against(&c, &p, None);
    assert!(!r.has("CHAIN-001"), "{}", listing(&r));
}

#[test]
fn chain_002_logical_sector_size_differs() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, None);
    let p4k = parent_of(ImageBuilder::dynamic(64 * MIB).seed(7).logical_sector(4096));
    let c4k = child().parent_linkage(p4k.layout.data_write_guid).build();
    let r = against(&c4k, &p4k, None);
    // At the child's Logical Sector Size item.
    let at = c4k.layout.item(&ITEM_LOGICAL_SECTOR_SIZE).data_offset;
    chain_fires(&clean, &r, "CHAIN-002", Some(at));
    assert_eq!(one(&r, "CHAIN-002").severity, Severity::Error);
    assert!(!r.has("CHAIN-001"), "{}", listing(&r));
}

#[test]
fn chain_003_virtual_size_differs() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, None);
    let big = parent_of(ImageBuilder::dynamic(128 * MIB).seed(7));
    let big_child = child_of(&big);
    let r = against(&big_child, &big, None);
    let at = big_child.layout.item(&ITEM_VIRTUAL_DISK_SIZE).data_offset;
    chain_fires(&clean, &r, "CHAIN-003", Some(at));
    assert_eq!(one(&r, "CHAIN-003").severity, Severity::Warning);
    // The child is the smaller: only the parent's tail is outside the child's disk.
    let m = &one(&r, "CHAIN-003").message;
    let tail = format!(
        "the parent's bytes past byte {} are not part of the child's disk",
        64 * MIB
    );
    assert!(m.contains(&tail), "{m}");
}

#[test]
fn chain_004_same_virtual_disk_id() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, None);
    let same = with(&c, |b| {
        b.metadata_item_mut(&ITEM_VIRTUAL_DISK_ID, |d| {
            d.copy_from_slice(&p.layout.virtual_disk_id)
        })
    });
    let r = against(&same, &p, None);
    let at = same.layout.item(&ITEM_VIRTUAL_DISK_ID).data_offset;
    chain_fires(&clean, &r, "CHAIN-004", Some(at));
    assert_eq!(one(&r, "CHAIN-004").severity, Severity::Info);
}

#[test]
fn chain_005_found_through_lower_priority_key() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, Some("relative_path"));
    assert!(!against(&c, &p, None).has("CHAIN-005"));
    for via in ["volume_path", "absolute_win32_path"] {
        let r = against(&c, &p, Some(via));
        chain_fires(&clean, &r, "CHAIN-005", Some(loc(&c)));
        assert!(
            one(&r, "CHAIN-005").message.contains(via),
            "{}",
            listing(&r)
        );
    }
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
