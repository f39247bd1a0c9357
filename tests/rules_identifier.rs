//! Per-rule tests of the FTI family (file type identifier, CATALOGUE 2.1): each damages
//! a valid built image and asserts the rule fires at the byte offset it is about.

use crate::builder::*;
use crate::rules_header::{
    assert_all, assert_family_tested, base, expect, fires, message, of, run,
};
use vhdx_check::Severity::{Error, Info, Warning};

#[test]
fn every_fti_rule_has_a_test() {
    assert_family_tested("FTI", include_str!("rules_identifier.rs"));
}

#[test]
fn fti_001_file_shorter_than_header_section() {
    let r = fires(&base(), "FTI-001", |img| img.len = 0x30000);
    expect(&r, "FTI-001", Error, &[0]);
    // The structure walk goes on: the region tables are missing, the headers are not.
    assert_all(&r, &["RGN-003"]);
    assert!(!r.has("HDR-003"), "{:?}", r.ids());
}

#[test]
fn fti_001_truncated_inside_the_header_section() {
    // The identifier and header 1 are there, the rest is cut off: still walked as a VHDX.
    let r = fires(&base(), "FTI-001", |img| img.len = 100_000);
    expect(&r, "FTI-001", Error, &[0]);
    assert_all(&r, &["FTI-004", "HDR-006", "RGN-003"]);
    assert!(!r.has("FTI-007"));
}

#[test]
fn fti_007_not_a_vhdx() {
    // An empty file, and a QCOW2 header over a VHDX: one finding naming the format.
    let r = fires(&base(), "FTI-007", |img| img.len = 0);
    expect(&r, "FTI-007", Error, &[0]);
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert!(message(&r, "FTI-007").contains("empty"));
    let r = fires(&base(), "FTI-007", |img| img.patch(0, b"QFI\xfb\0\0\0\x02"));
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert!(message(&r, "FTI-007").contains("QCOW2 image"));
}

#[test]
fn fti_002_signature_not_vhdxfile() {
    let r = fires(&base(), "FTI-002", |img| img.patch(7, b"E"));
    expect(&r, "FTI-002", Error, &[0]);
    // "Forced" mode: everything else is still checked and the image is otherwise clean.
    assert_eq!(r.count(Error), 1, "{:#?}", r.findings);
}

#[test]
fn fti_003_creator_with_unpaired_surrogate() {
    // 'Q', a lone high surrogate, 'Q': not well-formed UTF-16LE.
    let r = fires(&base(), "FTI-003", |img| {
        img.patch(8, &[b'Q', 0, 0x00, 0xD8, b'Q', 0, 0, 0])
    });
    expect(&r, "FTI-003", Warning, &[8]);
}

#[test]
fn fti_003_surrogate_pair_is_well_formed() {
    let img = ImageBuilder::dynamic(8 * MIB)
        .creator("disk \u{1F4BE}")
        .build();
    assert!(!run(&img).has("FTI-003"));
}

#[test]
fn fti_003_lone_surrogate_after_nul_is_not_creator() {
    // Only code units up to the first NUL are the Creator (the rest is FTI-005 residue).
    let base = ImageBuilder::dynamic(8 * MIB).creator("ab").build();
    let r = fires(&base, "FTI-005", |img| img.patch(14, &[0x00, 0xD8]));
    assert!(!r.has("FTI-003"), "{:#?}", of(&r, "FTI-003"));
}

#[test]
fn fti_004_reports_the_creator() {
    // An always-on provenance note: no baseline can lack it, so check its content.
    let r = run(&ImageBuilder::dynamic(8 * MIB)
        .creator("QEMU v9.2.0")
        .build());
    expect(&r, "FTI-004", Info, &[8]);
    assert!(message(&r, "FTI-004").contains("QEMU v9.2.0"));
    let r = run(&ImageBuilder::dynamic(8 * MIB).creator("").build());
    expect(&r, "FTI-004", Info, &[8]);
    assert!(message(&r, "FTI-004").contains("empty"));
}

#[test]
fn fti_005_residue_after_creator_nul() {
    let base = ImageBuilder::dynamic(8 * MIB).creator("abc").build();
    // "abc" NUL "xyz": the NUL code unit is at 8 + 2·3.
    let r = fires(&base, "FTI-005", |img| {
        img.patch(8, &utf16le("abc\0xyz"));
    });
    expect(&r, "FTI-005", Info, &[14]);
    assert!(message(&r, "FTI-005").contains("xyz"));
}

#[test]
fn fti_006_reserved_identifier_bytes() {
    for at in [520, 0x8000, 0xFFFF] {
        let r = fires(&base(), "FTI-006", |img| img.patch(at, b"\x01"));
        expect(&r, "FTI-006", Info, &[at]);
    }
    // The last Creator byte is not reserved.
    let r = run(&{
        let mut img = base();
        img.patch(519, b"\x01");
        img
    });
    assert!(!r.has("FTI-006"));
}
