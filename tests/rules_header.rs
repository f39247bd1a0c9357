//! Per-rule tests of the HDR (header) family, the clean-image matrix, and the helpers the
//! other `rules_*` modules share (the FTI tests are in `rules_identifier`).
//!
//! Each test damages a valid built image and asserts the rule fires by id, at the byte
//! offset the rule is about, with the catalogue severity; [`fires`] also asserts the
//! undamaged baseline does not fire it.

use crate::builder::*;
use crate::util::assert_fires;
use vhdx_check::rules::catalogue::catalogue;
use vhdx_check::{CheckOptions, ImageReport, Severity, check};

use Severity::{Error, Info, Warning};

// ---------------------------------------------------------------------------------------
// Shared helpers.

/// The usual baseline: dynamic 64 MiB, 1 MiB blocks, blocks 0 and 5 written. Layout:
/// log at 1 MiB, metadata at 2 MiB, BAT at 3 MiB, blocks 0 and 5 at 4 and 5 MiB, 6 MiB long.
pub fn base() -> Built {
    ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .write(0, b"block zero")
        .write(5 * MIB + 100, b"block five")
        .build()
}

pub fn run(img: &Built) -> ImageReport {
    check(img, &CheckOptions::default())
}

/// Checks `base` (which must not fire `id`) and a copy damaged by `damage` (which must),
/// and returns the damaged copy's report.
#[track_caller]
pub fn fires(base: &Built, id: &str, damage: impl FnOnce(&mut Built)) -> ImageReport {
    let clean = run(base);
    assert!(
        !clean.has(id),
        "{id} fires on the undamaged baseline: {:#?}",
        of(&clean, id)
    );
    let mut img = base.clone();
    damage(&mut img);
    let r = run(&img);
    assert_fires(&r, id);
    r
}

/// The findings of rule `id`.
pub fn of<'a>(r: &'a ImageReport, id: &str) -> Vec<&'a vhdx_check::Finding> {
    r.findings.iter().filter(|f| f.rule == id).collect()
}

/// Asserts the findings of `id` are exactly at `offsets` (any order) and all have `sev`.
#[track_caller]
pub fn expect(r: &ImageReport, id: &str, sev: Severity, offsets: &[u64]) {
    let found = of(r, id);
    let mut got: Vec<Option<u64>> = found.iter().map(|f| f.offset).collect();
    let mut want: Vec<Option<u64>> = offsets.iter().map(|&o| Some(o)).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{id} offsets: {found:#?}");
    for f in found {
        assert_eq!(f.severity, sev, "{id} severity: {f:#?}");
    }
}

/// The message of the single finding of `id`.
#[track_caller]
pub fn message(r: &ImageReport, id: &str) -> String {
    let found = assert_fires(r, id);
    assert_eq!(found.len(), 1, "{id}: {found:#?}");
    found[0].message.clone()
}

/// Asserts every id in `ids` fired.
#[track_caller]
pub fn assert_all(r: &ImageReport, ids: &[&str]) {
    let missing: Vec<_> = ids.iter().filter(|id| !r.has(id)).collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}; fired {:?}",
        r.ids()
    );
    // Each through the one positive assertion (what the catalogue test counts).
    for id in ids {
        assert_fires(r, id);
    }
}

/// Catalogue ids of `family` that have a check (not deferred), for the coverage tests.
pub fn family_ids(family: &str) -> Vec<String> {
    catalogue()
        .rules()
        .filter(|r| r.deferred.is_none() && r.id.starts_with(&format!("{family}-")))
        .map(|r| r.id.to_string())
        .collect()
}

/// Asserts every rule of `family` has a `fn family_nnn_…` test in `source`.
#[track_caller]
pub fn assert_family_tested(family: &str, source: &str) {
    let untested: Vec<String> = family_ids(family)
        .into_iter()
        .filter(|id| !source.contains(&format!("fn {}_", id.to_lowercase().replace('-', "_"))))
        .collect();
    assert!(untested.is_empty(), "rules without a test: {untested:?}");
}

// ---------------------------------------------------------------------------------------
// Header helpers: header 2 carries the higher sequence number and is current.

const CUR: usize = 2;
const OLD: usize = 1;

fn hoff(copy: usize) -> u64 {
    HEADER_OFFSETS[copy - 1]
}

/// Damage: writes `bytes` at `at` in header `copy` and reseals it (a valid, odd header).
fn set_hdr(copy: usize, at: usize, bytes: &[u8]) -> impl FnOnce(&mut Built) + '_ {
    move |img| img.edit_header(copy, |h| h[at..at + bytes.len()].copy_from_slice(bytes))
}

/// Damage: writes `bytes` at `at` in header `copy` without resealing (checksum breaks).
fn break_hdr(copy: usize, at: usize, bytes: &[u8]) -> impl FnOnce(&mut Built) + '_ {
    move |img| img.header_mut(copy, |h| h[at..at + bytes.len()].copy_from_slice(bytes))
}

fn u16le(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}
fn u32le(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}
fn u64le(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

// ---------------------------------------------------------------------------------------
// Coverage and the clean matrix.

#[test]
fn every_hdr_rule_has_a_test() {
    assert_family_tested("HDR", include_str!("rules_header.rs"));
}

#[test]
fn valid_images_have_no_errors_or_warnings_across_the_matrix() {
    for kind in [DiskKind::Dynamic, DiskKind::Fixed] {
        for bs in [MIB, 32 * MIB, 256 * MIB] {
            for lss in [512, 4096] {
                // Three blocks, the last one partial (VDS not a multiple of BS).
                let vds = 2 * bs + bs / 2;
                let img = ImageBuilder::new(kind, vds)
                    .block_size(bs as u32)
                    .logical_sector(lss)
                    .write(0, b"first block")
                    .write(2 * bs + 4096, b"last, partial block")
                    .build();
                let r = run(&img);
                let bad: Vec<_> = r.findings.iter().filter(|f| f.severity > Info).collect();
                assert!(
                    bad.is_empty() && r.count(Error) + r.count(Warning) == 0,
                    "{kind:?} BS={bs} LSS={lss}: {bad:#?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// HDR: each copy.

#[test]
fn hdr_001_header_signature_not_head() {
    let r = fires(&base(), "HDR-001", set_hdr(OLD, hdr::SIGNATURE, b"HEAD"));
    expect(&r, "HDR-001", Warning, &[hoff(OLD)]);
    assert!(!r.has("HDR-002"), "the checksum was resealed");
    expect(&r, "HDR-006", Warning, &[hoff(OLD)]);
}

#[test]
fn hdr_002_header_checksum_mismatch() {
    let r = fires(&base(), "HDR-002", break_hdr(CUR, 200, b"\x01"));
    expect(&r, "HDR-002", Warning, &[hoff(CUR)]);
    assert!(!r.has("HDR-001"));
    // Header 1 is now the only valid one, and is used: nothing else goes wrong.
    expect(&r, "HDR-006", Warning, &[hoff(CUR)]);
    assert_eq!(r.count(Error), 0, "{:#?}", r.findings);
    // The message says what follows: the other copy still opens the image.
    let m = message(&r, "HDR-002");
    let other = 3 - CUR;
    assert!(
        m.contains(&format!("the image still opens from header {other}")),
        "{m}"
    );
}

#[test]
fn hdr_002_names_a_non_conforming_checksum_span() {
    // A writer that checksums the 64 KiB slot, or only the 80 defined bytes (A4).
    let reseal_span = |len: usize| {
        move |img: &mut Built| {
            img.header_mut(CUR, |h| h[300] = 1);
            img.reseal(hoff(CUR), len);
        }
    };
    let r = fires(&base(), "HDR-002", reseal_span(0x10000));
    assert!(message(&r, "HDR-002").contains("64 KiB slot"));
    let r = fires(&base(), "HDR-002", reseal_span(80));
    assert!(message(&r, "HDR-002").contains("80 defined bytes"));
}

#[test]
fn hdr_008_non_current_header_version_not_1() {
    let r = fires(&base(), "HDR-008", set_hdr(OLD, hdr::VERSION, &u16le(2)));
    expect(&r, "HDR-008", Warning, &[hoff(OLD) + 66]);
    assert!(!r.has("HDR-007"));
}

#[test]
fn hdr_017_header_reserved_bytes_not_zero() {
    let r = fires(&base(), "HDR-017", |img| {
        set_hdr(OLD, 4095, b"\x01")(img);
        set_hdr(CUR, 80, b"\x01")(img);
    });
    expect(&r, "HDR-017", Warning, &[hoff(OLD) + 4095, hoff(CUR) + 80]);
}

#[test]
fn hdr_017_only_for_valid_headers() {
    // An invalid copy's reserved bytes are not judged (its checksum already failed).
    let r = fires(&base(), "HDR-002", break_hdr(OLD, 500, b"\x01"));
    assert!(!r.has("HDR-017"), "{:#?}", of(&r, "HDR-017"));
}

#[test]
fn hdr_018_header_slot_padding_not_zero() {
    let r = fires(&base(), "HDR-018", |img| {
        img.patch(hoff(OLD) + 4096, b"\x01");
        img.patch(hoff(CUR) + 0xFFFF, b"\x01");
    });
    expect(&r, "HDR-018", Info, &[hoff(OLD) + 4096, hoff(CUR) + 0xFFFF]);
    // Outside the checksum: both headers stay valid.
    assert!(!r.has("HDR-002") && !r.has("HDR-006"));
}

// ---------------------------------------------------------------------------------------
// HDR: the pair and the choice of the current header.

#[test]
fn hdr_003_neither_header_valid() {
    let r = fires(&base(), "HDR-003", |img| {
        break_hdr(OLD, 0, b"x")(img);
        break_hdr(CUR, 100, b"x")(img);
    });
    expect(&r, "HDR-003", Error, &[hoff(OLD)]);
    expect(&r, "HDR-001", Warning, &[hoff(OLD)]);
    expect(&r, "HDR-002", Warning, &[hoff(OLD), hoff(CUR)]);
    assert!(!r.has("HDR-006"));
    assert!(message(&r, "HDR-003").contains("no reader can open this image"));
    assert!(of(&r, "HDR-002").iter().all(|f| {
        f.message
            .contains("invalid too, so no reader can open this image")
    }));
}

#[test]
fn hdr_004_equal_sequence_numbers_different_headers() {
    let r = fires(&base(), "HDR-004", |img| {
        set_hdr(OLD, hdr::SEQUENCE_NUMBER, &u64le(2))(img);
        set_hdr(OLD, hdr::DATA_WRITE_GUID, &pseudo_guid(77))(img);
    });
    expect(&r, "HDR-004", Error, &[hoff(OLD)]);
    assert!(!r.has("HDR-005"));
}

#[test]
fn hdr_005_equal_sequence_numbers_identical_headers() {
    // The downgrade of HDR-004: identical copies are tolerated (as QEMU does).
    let r = fires(
        &base(),
        "HDR-005",
        set_hdr(OLD, hdr::SEQUENCE_NUMBER, &u64le(2)),
    );
    expect(&r, "HDR-005", Warning, &[hoff(OLD)]);
    assert!(!r.has("HDR-004"));
    assert_eq!(r.count(Error), 0, "{:#?}", r.findings);
}

#[test]
fn hdr_006_exactly_one_header_valid() {
    for bad in [OLD, CUR] {
        let r = fires(&base(), "HDR-006", break_hdr(bad, 8, b"\x09"));
        expect(&r, "HDR-006", Warning, &[hoff(bad)]);
        assert!(!r.has("HDR-003"));
    }
}

#[test]
fn hdr_021_sequence_gap_not_1() {
    let r = fires(
        &base(),
        "HDR-021",
        set_hdr(CUR, hdr::SEQUENCE_NUMBER, &u64le(10)),
    );
    expect(&r, "HDR-021", Info, &[hoff(OLD)]);
    assert!(message(&r, "HDR-021").contains("differ by 9"));
}

#[test]
fn hdr_022_log_location_differs_between_headers() {
    let r = fires(&base(), "HDR-022", set_hdr(OLD, hdr::LOG_LENGTH, &u32le(0)));
    expect(&r, "HDR-022", Warning, &[hoff(OLD)]);
    // Only the current copy locates the log.
    assert!(!r.has("HDR-015"));
}

#[test]
fn hdr_023_write_guids_differ_between_headers() {
    let r = fires(
        &base(),
        "HDR-023",
        set_hdr(OLD, hdr::DATA_WRITE_GUID, &pseudo_guid(99)),
    );
    expect(&r, "HDR-023", Info, &[hoff(OLD)]);
    let msg = message(&r, "HDR-023");
    assert!(msg.contains("DataWriteGuid") && !msg.contains("FileWriteGuid"));
}

// ---------------------------------------------------------------------------------------
// HDR: the current header. Each test damages header 2 (current); header 1 keeps the
// same fields when the rule is about the current copy only.

#[test]
fn hdr_007_current_version_not_1() {
    let r = fires(&base(), "HDR-007", set_hdr(CUR, hdr::VERSION, &u16le(2)));
    expect(&r, "HDR-007", Error, &[hoff(CUR) + 66]);
    assert!(!r.has("HDR-008"));
}

#[test]
fn hdr_007_follows_the_current_copy() {
    // Header 1 made current (sequence 3) with Version 0: HDR-007 on header 1.
    let r = fires(&base(), "HDR-007", |img| {
        set_hdr(OLD, hdr::SEQUENCE_NUMBER, &u64le(3))(img);
        set_hdr(OLD, hdr::VERSION, &u16le(0))(img);
    });
    expect(&r, "HDR-007", Error, &[hoff(OLD) + 66]);
}

#[test]
fn hdr_009_log_version_with_active_log() {
    let r = fires(&base(), "HDR-009", |img| {
        set_hdr(CUR, hdr::LOG_VERSION, &u16le(1))(img);
        set_hdr(CUR, hdr::LOG_GUID, &pseudo_guid(5))(img);
    });
    expect(&r, "HDR-009", Error, &[hoff(CUR) + 64]);
    assert!(!r.has("HDR-010"));
}

#[test]
fn hdr_010_log_version_with_empty_log() {
    let r = fires(
        &base(),
        "HDR-010",
        set_hdr(CUR, hdr::LOG_VERSION, &u16le(1)),
    );
    expect(&r, "HDR-010", Warning, &[hoff(CUR) + 64]);
    assert!(!r.has("HDR-009"));
}

#[test]
fn hdr_011_log_length_not_mib_multiple() {
    let r = fires(
        &base(),
        "HDR-011",
        set_hdr(CUR, hdr::LOG_LENGTH, &u32le(MIB as u32 - 4096)),
    );
    expect(&r, "HDR-011", Error, &[hoff(CUR) + 68]);
}

#[test]
fn hdr_012_log_offset_not_mib_multiple() {
    let r = fires(
        &base(),
        "HDR-012",
        set_hdr(CUR, hdr::LOG_OFFSET, &u64le(MIB + 4096)),
    );
    expect(&r, "HDR-012", Error, &[hoff(CUR) + 72]);
}

#[test]
fn hdr_013_log_inside_header_section() {
    // LogOffset 0 is a multiple of 1 MiB (no HDR-012) but lies in the header section.
    let r = fires(&base(), "HDR-013", set_hdr(CUR, hdr::LOG_OFFSET, &u64le(0)));
    expect(&r, "HDR-013", Error, &[hoff(CUR) + 72]);
    assert!(!r.has("HDR-012"));
    // The log now overlaps the header section.
    assert!(r.has("LAYOUT-001"));
}

#[test]
fn hdr_014_active_log_with_zero_length() {
    let r = fires(&base(), "HDR-014", |img| {
        set_hdr(CUR, hdr::LOG_LENGTH, &u32le(0))(img);
        set_hdr(CUR, hdr::LOG_GUID, &pseudo_guid(5))(img);
    });
    expect(&r, "HDR-014", Error, &[hoff(CUR) + 48]);
    assert!(!r.has("HDR-015"));
}

#[test]
fn hdr_015_no_log_space() {
    let r = run(&ImageBuilder::dynamic(64 * MIB).log_length(0).build());
    expect(&r, "HDR-015", Warning, &[hoff(CUR) + 68]);
    assert!(!r.has("HDR-014") && !r.has("HDR-013"));
    let r = fires(&base(), "HDR-015", set_hdr(CUR, hdr::LOG_LENGTH, &u32le(0)));
    expect(&r, "HDR-015", Warning, &[hoff(CUR) + 68]);
}

#[test]
fn hdr_016_log_past_end_of_file() {
    let base = base();
    let end = base.len;
    let r = fires(&base, "HDR-016", set_hdr(CUR, hdr::LOG_OFFSET, &u64le(end)));
    expect(&r, "HDR-016", Error, &[end]);
    // Ending exactly at EOF is fine.
    let r = run(&{
        let mut img = base.clone();
        img.len += MIB;
        set_hdr(CUR, hdr::LOG_OFFSET, &u64le(end))(&mut img);
        img
    });
    assert!(!r.has("HDR-016"));
}

#[test]
fn hdr_016_log_end_overflows() {
    let top = !(MIB - 1);
    let r = fires(
        &base(),
        "HDR-016",
        set_hdr(CUR, hdr::LOG_OFFSET, &u64le(top)),
    );
    expect(&r, "HDR-016", Error, &[hoff(CUR) + 68]);
    assert!(message(&r, "HDR-016").contains("overflow"));
}

#[test]
fn hdr_019_file_write_guid_zero() {
    let r = fires(
        &base(),
        "HDR-019",
        set_hdr(CUR, hdr::FILE_WRITE_GUID, &[0; 16]),
    );
    expect(&r, "HDR-019", Warning, &[hoff(CUR) + 16]);
    // In the non-current copy only: not judged.
    let r = fires(
        &base(),
        "HDR-023",
        set_hdr(OLD, hdr::FILE_WRITE_GUID, &[0; 16]),
    );
    assert!(!r.has("HDR-019"));
}

#[test]
fn hdr_020_data_write_guid_zero() {
    let r = fires(
        &base(),
        "HDR-020",
        set_hdr(CUR, hdr::DATA_WRITE_GUID, &[0; 16]),
    );
    expect(&r, "HDR-020", Warning, &[hoff(CUR) + 32]);
}

#[test]
fn hdr_024_log_guid_set() {
    let r = fires(&base(), "HDR-024", |img| img.set_log_guid(pseudo_guid(5)));
    expect(&r, "HDR-024", Info, &[hoff(CUR) + 48]);
}

#[test]
fn hdr_025_write_guids_not_independent() {
    let g = base().layout.file_write_guid;
    let r = fires(&base(), "HDR-025", set_hdr(CUR, hdr::DATA_WRITE_GUID, &g));
    expect(&r, "HDR-025", Info, &[hoff(CUR) + 16]);
    let r = fires(&base(), "HDR-025", set_hdr(CUR, hdr::LOG_GUID, &g));
    expect(&r, "HDR-025", Info, &[hoff(CUR) + 16]);
    // Two all-zero GUIDs are HDR-019/020, not "equal ids".
    let r = fires(&base(), "HDR-019", |img| {
        set_hdr(CUR, hdr::FILE_WRITE_GUID, &[0; 16])(img);
        set_hdr(CUR, hdr::DATA_WRITE_GUID, &[0; 16])(img);
    });
    assert!(!r.has("HDR-025"));
}

// ---------------------------------------------------------------------------------------
// Several faults at once: the checker must report each, not stop at the first.

#[test]
fn fti_and_hdr_faults_all_reported_together() {
    let r = fires(&base(), "FTI-002", |img| {
        img.patch(0, b"vhdxFILE");
        img.patch(8, &utf16le("a\0b"));
        img.patch(0x1234, b"\x01");
        set_hdr(OLD, hdr::SIGNATURE, b"daeh")(img);
        img.patch(hoff(OLD) + 0x5000, b"\x01");
        set_hdr(CUR, hdr::LOG_VERSION, &u16le(3))(img);
        set_hdr(CUR, hdr::FILE_WRITE_GUID, &[0; 16])(img);
        set_hdr(CUR, 1000, b"\x01")(img);
    });
    expect(&r, "FTI-002", Error, &[0]);
    expect(&r, "FTI-005", Info, &[10]);
    expect(&r, "FTI-006", Info, &[0x1234]);
    expect(&r, "HDR-001", Warning, &[hoff(OLD)]);
    expect(&r, "HDR-006", Warning, &[hoff(OLD)]);
    expect(&r, "HDR-018", Info, &[hoff(OLD) + 0x5000]);
    expect(&r, "HDR-010", Warning, &[hoff(CUR) + 64]);
    expect(&r, "HDR-019", Warning, &[hoff(CUR) + 16]);
    expect(&r, "HDR-017", Warning, &[hoff(CUR) + 1000]);
}

#[test]
fn no_valid_header_still_checks_everything_else() {
    let r = fires(&base(), "HDR-003", |img| {
        img.patch(0, b"garbage!");
        break_hdr(OLD, 0, b"x")(img);
        break_hdr(CUR, 0, b"x")(img);
        img.region_table_mut(2, |t| t[100] = 1);
        img.patch(0x60000, b"\x01");
    });
    assert_all(&r, &["FTI-002", "HDR-001", "HDR-002", "HDR-003"]);
    expect(&r, "RGN-002", Warning, &[0x40000]);
    expect(&r, "RGN-005", Warning, &[0x40000]);
    expect(&r, "LAYOUT-006", Info, &[0x60000]);
}
