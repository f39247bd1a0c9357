//! LOG tests of preconditions and of the severities strict and lenient readers give.

use super::*;

// ---- preconditions and strict/lenient severities ------------------------------------------------

#[test]
fn strict_only_failures_in_the_lenient_active_sequence_are_warnings() {
    // The only entry fails one strict predicate: the lenient scan replays it, the strict
    // scan finds nothing (LOG-002, LOG-070) and the predicate is a warning at the entry.
    let img = clean();
    let len = img.len;
    let e = zero_block(&img, BLOCK);
    let e2 = e.clone().zero(img.layout.bat_offset + 0x10000, 4096);
    let cases: Vec<(&str, Vec<u8>, At)> = vec![
        ("LOG-015", e.clone().tail(0x800).encode(), At::Entry),
        (
            "LOG-016",
            e.encode_with(|b| u32_at(b, log::RESERVED, 9)),
            At::Entry,
        ),
        (
            "LOG-017",
            e.clone().file_offsets(len - 4096, len + MIB).encode(),
            At::Entry,
        ),
        (
            "LOG-018",
            e.clone().file_offsets(len, len + 4096).encode(),
            At::Entry,
        ),
        ("LOG-020", e.encode_padded(1), At::Entry),
        (
            "LOG-022",
            e.clone().file_offsets(0, len).encode(),
            At::Entry,
        ),
        (
            "LOG-034",
            e2.encode_with(|b| u32_at(b, log::descriptor(1) + log::D_RESERVED, 1)),
            At::Part("descriptor[1]"),
        ),
    ];
    for (id, bytes, at) in cases {
        let mut img = clean();
        let p = img.put_log_bytes(0, &bytes);
        img.set_log_guid(e.log_guid);
        let r = report(&img);
        expect_at(&r, id, Warning, &[(p, at)]);
        assert_eq!(one(&r, "LOG-070").severity, Warning, "{id}");
        assert_eq!(one(&r, "LOG-002").severity, Error, "{id}");
        assert!(
            !r.has("LOG-003"),
            "{id}: strict scan replays nothing{}",
            listing(&r)
        );
    }
}

#[test]
fn core_failures_are_info_and_both_scans_agree() {
    // The only entry fails a core predicate: no scan finds a sequence, so no LOG-070.
    let img = clean();
    let e = zero_block(&img, BLOCK);
    let s = e.data_sector(0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("LOG-012", e.encode_torn()),
        ("LOG-013", e.clone().seq(0).encode()),
    ];
    for (id, bytes) in cases {
        let mut img = clean();
        img.put_log_bytes(0, &bytes);
        img.set_log_guid(e.log_guid);
        let r = report(&img);
        assert!(
            of(&r, id).iter().all(|f| f.severity == Info) && r.has(id),
            "{id}:{}",
            listing(&r)
        );
        assert_eq!(one(&r, "LOG-002").severity, Error, "{id}");
        assert!(!r.has("LOG-070"), "{id}:{}", listing(&r));
    }
    // QEMU never looks at a data sector's signature: it replays the entry (seen with
    // qemu-img 10, tests/data/qemu_log_behaviours.py), so the readers disagree.
    let mut img = clean();
    img.put_log_bytes(0, &e.encode_with(|b| b[s..s + 4].copy_from_slice(b"dada")));
    img.set_log_guid(e.log_guid);
    let r = report(&img);
    assert!(of(&r, "LOG-036").iter().all(|f| f.severity == Info) && r.has("LOG-036"));
    let m = &one(&r, "LOG-002").message;
    assert!(m.contains("QEMU replays 1 entry"), "{}", listing(&r));
    assert!(
        one(&r, "LOG-070")
            .message
            .contains("differs from the strict replay")
    );
}

#[test]
fn log_guid_only_in_the_non_current_header_leaves_the_log_inactive() {
    let (mut img, _, p) = dirty();
    img.edit_header(2, |h| h[hdr::LOG_GUID..][..16].fill(0));
    let r = report(&img);
    expect_at(&r, "LOG-001", Info, &[(p, At::Entry)]);
    assert_eq!(log_ids(&r), ["LOG-001"], "{}", listing(&r));
}

#[test]
fn no_current_header_no_log_findings() {
    let (mut img, _, _) = dirty();
    for copy in 1..=2 {
        img.header_mut(copy, |h| h[hdr::RESERVED] ^= 1); // bad checksums
    }
    let r = report(&img);
    assert!(log_ids(&r).is_empty(), "{}", listing(&r));
}

#[test]
fn unusable_log_location_no_log_findings() {
    // LogVersion ≠ 0, LogLength 0, LogOffset inside the header section or past EOF: the HDR
    // rules say it, the log is not judged.
    let (base, _, _) = dirty();
    for (hdr_rule, (at, v, width)) in [
        ("HDR-009", (hdr::LOG_VERSION, 1u64, 2usize)),
        ("HDR-014", (hdr::LOG_LENGTH, 0, 4)),
        ("HDR-013", (hdr::LOG_OFFSET, 0x80000, 8)),
        ("HDR-016", (hdr::LOG_OFFSET, 256 * MIB, 8)),
    ] {
        let img = with(&base, |img| {
            img.edit_header(2, |h| {
                h[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            })
        });
        let r = report(&img);
        assert!(r.has(hdr_rule), "{hdr_rule}:{}", listing(&r));
        assert!(log_ids(&r).is_empty(), "{hdr_rule}:{}", listing(&r));
    }
}
