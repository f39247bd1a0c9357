//! Per-rule tests for the LOG family (CATALOGUE 2.4 and §3; the implementation contract is
//! notes/log-semantics.md). Every test starts from a baseline that does not fire the rule —
//! the clean image (empty log, LogGuid 0) or the *dirty baseline* (one valid pending entry
//! at ring offset 0 that maps payload block 5 as PAYLOAD_BLOCK_ZERO: LOG-003, and LOG-007
//! only for the BAT statistics) — and checks that the damaged copy fires it with the
//! contract's place:
//!
//! * entry predicates at the entry's file offset (LogOffset + ring offset), structure
//!   `log.entry[0x…]`; descriptor and data-sector predicates inside the entry, structure
//!   `log.entry[0x…].descriptor[i]` / `.data_sector[j]`;
//! * entry predicates are info on entries outside the lenient active sequence (here: a
//!   stale entry with a lower sequence number at ring offset 0x80000, which must not disturb
//!   the active sequence) and warnings for strict-only failures inside it;
//! * replay results (LOG-003 offsets and structures) where the contract names them.

use crate::builder::*;
use crate::rules_header::assert_family_tested;
use crate::rules_metadata::{listing, of, one, report, silent, with};
use crate::util::assert_fires;
use vhdx_check::Severity::{self, Error, Info, Warning};
use vhdx_check::{Finding, ImageReport, View};

// ---- helpers ---------------------------------------------------------------------------

/// The payload block whose BAT entry the dirty baseline's log changes.
const BLOCK: u64 = 5;
/// Ring offset of the stale entry the entry-predicate tests damage.
const STALE: u64 = 0x80000;
/// Its sequence number: below the active entry's, so never the active sequence.
const OLD: u64 = LOG_SEQUENCE - 0x100;

/// A 64 MiB dynamic disk with 1 MiB blocks, block 0 written, empty log (LogGuid 0).
pub fn clean() -> Built {
    ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .write_block(0, &[0xA5; 4096])
        .build()
}

/// File offset of the BAT entry of payload block `block`.
pub fn bat_at(img: &Built, block: u64) -> u64 {
    img.layout
        .bat_entry_offset(img.layout.payload_entry_index(block))
}

/// An entry (sequence [`LOG_SEQUENCE`], tail 0, current LogGuid) whose one data descriptor
/// makes payload block `block` PAYLOAD_BLOCK_ZERO: a real change that is valid in both views.
pub fn zero_block(img: &Built, block: u64) -> LogEntry {
    let value = bat::entry(bat::ZERO, 0).to_le_bytes();
    img.log_entry(&[(bat_at(img, block), &value)])
}

/// The dirty baseline: [`clean`] with [`zero_block`]`(BLOCK)` pending at ring offset 0.
pub fn dirty() -> (Built, LogEntry, LogPlace) {
    let mut img = clean();
    let entry = zero_block(&img, BLOCK);
    let place = img.write_log(std::slice::from_ref(&entry))[0];
    (img, entry, place)
}

/// Entries changing `blocks` one after the other, each built on the file as the previous
/// ones leave it (they all rewrite the same BAT sector).
pub fn chained(img: &Built, blocks: &[u64]) -> Vec<LogEntry> {
    let mut scratch = img.clone();
    blocks
        .iter()
        .map(|&b| {
            let e = zero_block(&scratch, b);
            scratch.apply_log_entry(&e);
            e
        })
        .collect()
}

/// A stale entry: valid on its own (tail = itself), lower sequence number, changes block 7.
fn stale(img: &Built) -> LogEntry {
    zero_block(img, 7).seq(OLD).tail(STALE as u32)
}

/// The dirty baseline with `bytes` written at ring offset [`STALE`].
fn dirty_with_stale(bytes: &[u8]) -> (Built, Built, LogPlace) {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let place = img.put_log_bytes(STALE, bytes);
    (base, img, place)
}

fn entry_path(p: &LogPlace) -> String {
    format!("log.entry[{:#x}]", p.ring_offset)
}

/// Where a finding must be.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    /// At the entry: offset = its file offset, structure `log.entry[0x…]`.
    Entry,
    /// Inside the entry, structure `log.entry[0x…].<part>`.
    Part(&'a str),
    /// Inside the entry, structure starting `log.entry[0x…]`.
    Within,
}

fn matches(f: &Finding, p: &LogPlace, at: At) -> bool {
    let path = entry_path(p);
    let inside = |o: u64| (p.file_offset..p.file_offset + p.length).contains(&o);
    match at {
        At::Entry => f.offset == Some(p.file_offset) && f.structure.starts_with(&path),
        At::Part(part) => {
            f.structure.starts_with(&format!("{path}.{part}")) && f.offset.is_some_and(inside)
        }
        At::Within => f.structure.starts_with(&path) && f.offset.is_some_and(inside),
    }
}

/// Asserts `id` fires on `r` exactly once per `want`, each at its place with severity `sev`.
#[track_caller]
fn expect_at(r: &ImageReport, id: &str, sev: Severity, want: &[(LogPlace, At)]) {
    let got = of(r, id);
    assert_eq!(
        got.len(),
        want.len(),
        "{id}: want {} finding(s):{}",
        want.len(),
        listing(r)
    );
    for (p, at) in want {
        assert!(
            got.iter().any(|f| matches(f, p, *at) && f.severity == sev),
            "{id} ({sev}) missing at {} {at:?}:{}",
            entry_path(p),
            listing(r)
        );
    }
}

/// Asserts `id` is silent on `base` and fires on `img` as [`expect_at`] says.
#[track_caller]
fn fires_at(
    base: &Built,
    img: &Built,
    id: &str,
    sev: Severity,
    want: &[(LogPlace, At)],
) -> ImageReport {
    silent(base, id);
    let r = report(img);
    assert_fires(&r, id);
    expect_at(&r, id, sev, want);
    r
}

/// LOG-007 findings other than those about the BAT statistics (BAT-019: its state counts
/// change with any BAT update, so a replay that changes a BAT entry differs there in both
/// views).
fn view_diffs(r: &ImageReport) -> Vec<&Finding> {
    of(r, "LOG-007")
        .into_iter()
        .filter(|f| !f.message.contains("BAT-019"))
        .collect()
}

/// The LOG rule ids that fired.
fn log_ids(r: &ImageReport) -> Vec<&'static str> {
    r.ids()
        .into_iter()
        .filter(|id| id.starts_with("LOG-"))
        .collect()
}

/// Asserts the dirty baseline's active sequence is still what replay uses: LOG-003 at block
/// [`BLOCK`]'s BAT entry only, no LOG-002 and no LOG-070.
fn undisturbed(img: &Built, r: &ImageReport) {
    replay_changes(r, &bat_entries(img, &[BLOCK]));
    assert!(
        !r.has("LOG-002") && !r.has("LOG-070"),
        "active sequence disturbed:{}",
        listing(r)
    );
}

/// Like [`undisturbed`], but QEMU 10 refuses the image (an entry whose header it accepts
/// has a descriptor it rejects, even a stale one): LOG-070 says so, with `why`.
fn qemu_refuses(img: &Built, r: &ImageReport, why: &str) {
    replay_changes(r, &bat_entries(img, &[BLOCK]));
    assert!(!r.has("LOG-002"), "{}", listing(r));
    let m = &one(r, "LOG-070").message;
    assert!(
        m.contains("QEMU refuses to open the image") && m.contains(why),
        "{}",
        listing(r)
    );
}

/// The 8-byte BAT entries of payload blocks `blocks`, as (offset, length) ranges.
fn bat_entries(img: &Built, blocks: &[u64]) -> Vec<(u64, u64)> {
    blocks.iter().map(|&b| (bat_at(img, b), 8)).collect()
}

/// Asserts replay changes bytes inside each of `ranges` and nowhere else: every LOG-003
/// finding (one per changed byte range; nearby changes may be reported as one range) spans
/// bytes of some range in `ranges`, and every range in `ranges` is met by a LOG-003 span.
fn replay_changes(r: &ImageReport, ranges: &[(u64, u64)]) {
    let found = of(r, "LOG-003");
    let meets = |f: &Finding, (at, len): (u64, u64)| {
        let start = f.offset.expect("LOG-003 has an offset");
        let end = start + f.length.unwrap_or(1).max(1);
        start < at + len && at < end
    };
    for f in &found {
        assert!(
            ranges.iter().any(|&range| meets(f, range)),
            "LOG-003 outside {ranges:#x?}:{}",
            listing(r)
        );
        assert_eq!(f.severity, Warning);
    }
    for &range in ranges {
        assert!(
            found.iter().any(|f| meets(f, range)),
            "no LOG-003 in {range:#x?}:{}",
            listing(r)
        );
    }
    assert!(!r.has("LOG-004"), "LOG-004 beside LOG-003:{}", listing(r));
}

fn u32_at(e: &mut [u8], at: usize, v: u32) {
    put_u32(e, at, v);
}

// ---- coverage and baselines ------------------------------------------------------------

#[test]
fn every_log_rule_has_a_test() {
    let source = include_str!("rules_log.rs");
    assert_family_tested("LOG", source);
    // Independent of the embedded catalogue: every id in rules/log.toml.
    let toml = include_str!("../rules/log.toml");
    let untested: Vec<&str> = toml
        .lines()
        .filter_map(|l| l.strip_prefix("id = \""))
        .map(|l| l.trim_end_matches('"'))
        .filter(|id| !source.contains(&format!("fn {}_", id.to_lowercase().replace('-', "_"))))
        .collect();
    assert!(
        untested.is_empty(),
        "LOG rules without a test: {untested:?}"
    );
}

#[test]
fn clean_image_fires_no_log_rule() {
    let r = report(&clean());
    assert!(log_ids(&r).is_empty(), "{}", listing(&r));
    assert!(r.findings.iter().all(|f| f.view == View::Raw));
}

#[test]
fn dirty_baseline_is_one_pending_change() {
    let (img, _, _) = dirty();
    let r = report(&img);
    assert!(
        log_ids(&r)
            .iter()
            .all(|id| ["LOG-003", "LOG-007", "LOG-070"].contains(id)),
        "{}",
        listing(&r)
    );
    assert!(view_diffs(&r).is_empty(), "{}", listing(&r));
    let f = one(&r, "LOG-003");
    assert_eq!(f.severity, Warning);
    assert_eq!(f.offset, Some(bat_at(&img, BLOCK)), "{}", listing(&r));
    assert!(f.structure.starts_with("bat["), "{}", listing(&r));
    assert_eq!(f.view, View::Raw, "LOG rules judge the RAW bytes");
    assert!(
        r.findings
            .iter()
            .all(|f| f.severity == Info || f.rule == "LOG-003"),
        "{}",
        listing(&r)
    );
}

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
fn structural(r: &ImageReport) -> Vec<&Finding> {
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
fn past_eof() -> u64 {
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

// ---- entry header predicates --------------------------------------------------------------

#[test]
fn log_010_damaged_header_right_after_the_head() {
    let (base, _, head) = dirty();
    let mut junk = b"junk".to_vec();
    junk.resize(4096, 0xEE);
    let mut img = base.clone();
    let after = img.put_log_bytes(head.length, &junk);
    // Far from any head: not reported.
    img.put_log_bytes(0x90000, &junk);
    let r = fires_at(&base, &img, "LOG-010", Info, &[(after, At::Entry)]);
    undisturbed(&img, &r);
    // "data" (a data sector) right after the head is no damaged header.
    let mut data = b"data".to_vec();
    data.resize(4096, 0xEE);
    silent(
        &with(&base, |img| {
            img.put_log_bytes(head.length, &data);
        }),
        "LOG-010",
    );
}

#[test]
fn log_011_bad_entry_length() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let e = stale(&img);
    let ring = img.layout.log_length as u32;
    let places: Vec<LogPlace> = [0, 4097, ring + 4096]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let at = STALE + 0x10000 * i as u64;
            let bytes = e
                .clone()
                .tail(at as u32)
                .encode_with(|b| u32_at(b, log::ENTRY_LENGTH, len));
            img.put_log_bytes(at, &bytes)
        })
        .collect();
    let want: Vec<(LogPlace, At)> = places.iter().map(|p| (*p, At::Entry)).collect();
    let r = fires_at(&base, &img, "LOG-011", Info, &want);
    undisturbed(&img, &r);
}

#[test]
fn log_012_torn_entry() {
    let (base, _, _) = dirty();
    let e = stale(&base);
    let (base, img, p) = dirty_with_stale(&e.encode_torn());
    let r = fires_at(&base, &img, "LOG-012", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
    assert!(!r.has("LOG-065"), "not after the head:{}", listing(&r));
}

#[test]
fn log_013_sequence_number_zero() {
    let e = stale(&dirty().0).seq(0);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(&base, &img, "LOG-013", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_014_entry_of_another_session() {
    let e = stale(&dirty().0).guid(pseudo_guid(77));
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(&base, &img, "LOG-014", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
    assert!(!r.has("LOG-001"), "{}", listing(&r));
}

#[test]
fn log_015_tail_misaligned_or_past_the_ring() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let e = stale(&img);
    let a = img.put_log_entry(STALE, &e.clone().tail(STALE as u32 + 0x123));
    let ring = img.layout.log_length as u32;
    let b = img.put_log_entry(STALE + 0x10000, &e.clone().tail(ring));
    let r = fires_at(
        &base,
        &img,
        "LOG-015",
        Info,
        &[(a, At::Entry), (b, At::Entry)],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_015_in_the_lenient_active_sequence_is_a_warning() {
    // The only entry: the lenient scan replays it, the strict scan finds nothing.
    let mut img = clean();
    let e = zero_block(&img, BLOCK).tail(0x123);
    let p = img.write_log(&[e])[0];
    let r = report(&img);
    expect_at(&r, "LOG-015", Warning, &[(p, At::Entry)]);
    assert_eq!(one(&r, "LOG-070").severity, Warning);
    assert_eq!(one(&r, "LOG-002").severity, Error);
    assert!(
        !r.has("LOG-003"),
        "findings come from the strict scan{}",
        listing(&r)
    );
}

#[test]
fn log_016_reserved_nonzero() {
    let e = stale(&dirty().0);
    let bytes = e.encode_with(|b| u32_at(b, log::RESERVED, 1));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(&base, &img, "LOG-016", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_017_flushed_file_offset_not_mib_aligned() {
    let base = dirty().0;
    let e = stale(&base).file_offsets(base.len + 4096, base.len + MIB);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(&base, &img, "LOG-017", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_018_last_file_offset_not_mib_aligned() {
    let base = dirty().0;
    let e = stale(&base).file_offsets(base.len, base.len + 4096);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(&base, &img, "LOG-018", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_019_entry_too_short_for_its_descriptors() {
    // One data descriptor needs 8 KiB; EntryLength says 4 KiB (the data sector cut off).
    let e = stale(&dirty().0);
    assert_eq!(e.length(), 8192);
    let bytes = e.encode_with(|b| {
        b.truncate(4096);
        u32_at(b, log::ENTRY_LENGTH, 4096);
    });
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(&base, &img, "LOG-019", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_020_entry_padded_past_its_content() {
    let e = stale(&dirty().0);
    let bytes = e.encode_padded(1);
    assert_eq!(get_u32(&bytes, log::ENTRY_LENGTH), 3 * 4096);
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(&base, &img, "LOG-020", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_020_padded_active_entry_splits_strict_and_lenient() {
    let mut img = clean();
    let e = zero_block(&img, BLOCK);
    let p = img.put_log_bytes(0, &e.encode_padded(2));
    img.set_log_guid(e.log_guid);
    let r = report(&img);
    expect_at(&r, "LOG-020", Warning, &[(p, At::Entry)]);
    assert!(r.has("LOG-070") && r.has("LOG-002"), "{}", listing(&r));
}

/// Entries E1 (2 sectors at ring end − 12 KiB) and E2 (2 sectors at ring end − 4 KiB, so its
/// data sector wraps to ring offset 0), one sequence with tail E1, changing blocks 5 and 6.
pub fn wrapped() -> (Built, Vec<LogEntry>, Vec<LogPlace>) {
    let mut img = clean();
    let start = img.layout.log_length - 0x3000;
    let entries = chained(&img, &[BLOCK, 6]);
    let (entries, places) = img.write_sequence(start, LOG_SEQUENCE, &entries);
    assert_eq!(places[1].ring_offset, img.layout.log_length - 0x1000);
    assert_eq!(places[1].length, 0x2000);
    (img, entries, places)
}

#[test]
fn log_021_entry_wraps_the_ring_end() {
    let (img, _, places) = wrapped();
    let r = fires_at(&dirty().0, &img, "LOG-021", Info, &[(places[1], At::Entry)]);
    // Strict and lenient wrap and replay both entries; the no-wrap scan stops at E1.
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6]));
    assert_eq!(one(&r, "LOG-070").severity, Warning);
    assert!(!r.has("LOG-002"), "{}", listing(&r));
    for id in ["LOG-010", "LOG-012", "LOG-036", "LOG-060", "LOG-061"] {
        assert!(!r.has(id), "{id}:{}", listing(&r));
    }
}

#[test]
fn log_022_file_offsets_below_1_mib() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let e = stale(&img);
    let len = img.len;
    let a = img.put_log_entry(STALE, &e.clone().file_offsets(0, len));
    let at = STALE + 0x10000;
    let b = img.put_log_entry(at, &e.clone().tail(at as u32).file_offsets(len, 0));
    let r = fires_at(
        &base,
        &img,
        "LOG-022",
        Info,
        &[(a, At::Entry), (b, At::Entry)],
    );
    undisturbed(&img, &r);
}

// ---- descriptor and data-sector predicates ----------------------------------------------------

/// The stale entry with a second descriptor: zero 4 KiB inside the BAT region.
fn stale2(img: &Built) -> LogEntry {
    stale(img).zero(img.layout.bat_offset + 0x10000, 4096)
}

#[test]
fn log_030_descriptor_signature() {
    let e = stale2(&dirty().0);
    let bytes = e.encode_with(|b| b[log::descriptor(1)..][..4].copy_from_slice(b"xxxx"));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(
        &base,
        &img,
        "LOG-030",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    qemu_refuses(&img, &r, "descriptor 1 of the entry at ring offset 0x80000");
}

#[test]
fn log_031_descriptor_sequence_number() {
    let e = stale2(&dirty().0);
    let bytes = e.encode_with(|b| put_u64(b, log::descriptor(1) + log::D_SEQUENCE_NUMBER, OLD + 1));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(
        &base,
        &img,
        "LOG-031",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    qemu_refuses(&img, &r, "descriptor 1 of the entry at ring offset 0x80000");
}

#[test]
fn log_032_descriptor_file_offset_misaligned() {
    let base = dirty().0;
    let e = stale(&base).data(base.layout.bat_offset + 0x10008, vec![0; 4096]);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(
        &base,
        &img,
        "LOG-032",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    qemu_refuses(&img, &r, "descriptor 1 of the entry at ring offset 0x80000");
}

#[test]
fn log_033_zero_length_misaligned() {
    let base = dirty().0;
    let e = stale(&base).zero(base.layout.bat_offset + 0x10000, 100);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(
        &base,
        &img,
        "LOG-033",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    qemu_refuses(&img, &r, "descriptor 1 of the entry at ring offset 0x80000");
}

#[test]
fn log_034_zero_descriptor_reserved() {
    let e = stale2(&dirty().0);
    let bytes = e.encode_with(|b| u32_at(b, log::descriptor(1) + log::D_RESERVED, 1));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(
        &base,
        &img,
        "LOG-034",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_035_target_overflows_u64() {
    let e = stale(&dirty().0).zero(0xFFFF_FFFF_FFFF_F000, 0x2000);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(
        &base,
        &img,
        "LOG-035",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_036_data_sector_signature() {
    let e = stale(&dirty().0);
    let s = e.data_sector(0);
    let bytes = e.encode_with(|b| b[s..s + 4].copy_from_slice(b"xxxx"));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(
        &base,
        &img,
        "LOG-036",
        Info,
        &[(p, At::Part("data_sector[0]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_037_data_sector_sequence_halves() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let e = stale(&img);
    let s = e.data_sector(0);
    let high = e.encode_with(|b| u32_at(b, s + log::S_SEQUENCE_HIGH, 0xDEAD));
    let at = STALE + 0x10000;
    let low = e
        .clone()
        .tail(at as u32)
        .encode_with(|b| u32_at(b, s + log::S_SEQUENCE_LOW, 0xBEEF));
    let a = img.put_log_bytes(STALE, &high);
    let b = img.put_log_bytes(at, &low);
    let r = fires_at(
        &base,
        &img,
        "LOG-037",
        Info,
        &[
            (a, At::Part("data_sector[0]")),
            (b, At::Part("data_sector[0]")),
        ],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_038_unused_descriptor_slots_not_zero_is_slack() {
    // In the active entry: reported, the entry stays valid and is replayed.
    let mut img = clean();
    let e = zero_block(&img, BLOCK);
    let bytes = e.encode_with(|b| b[4000] = 0x77);
    let p = img.put_log_bytes(0, &bytes);
    img.set_log_guid(e.log_guid);
    let r = fires_at(&dirty().0, &img, "LOG-038", Info, &[(p, At::Within)]);
    undisturbed(&img, &r);
}

#[test]
fn log_038_slack_in_the_second_descriptor_sector() {
    // 127 descriptors: D = 2; the slack after descriptor 126 runs to the end of sector 2.
    let mut img = clean();
    let bat = img.layout.bat_offset;
    let e = (1..127).fold(zero_block(&img, BLOCK), |e, i| e.zero(bat + 4096 * i, 4096));
    assert_eq!(e.descriptors.len(), 127);
    let last = log::descriptor(126) + log::DESCRIPTOR_SIZE;
    assert!(last > 4096 && e.data_sector(0) == 8192);
    let bytes = e.encode_with(|b| b[8000] = 0x77);
    let p = img.put_log_bytes(0, &bytes);
    img.set_log_guid(e.log_guid);
    let r = fires_at(&dirty().0, &img, "LOG-038", Info, &[(p, At::Within)]);
    qemu_refuses(&img, &r, "has 127 descriptors");
}

#[test]
fn multi_sector_entry_is_valid_and_replayed() {
    // 200 zero descriptors (over already-zero BAT sectors) then the data descriptor: two
    // descriptor sectors, the data sector at entry offset 8 KiB.
    let mut img = clean();
    let bat = img.layout.bat_offset;
    let value = bat::entry(bat::ZERO, 0).to_le_bytes();
    let e = (1..=200).fold(img.log_entry(&[]), |e, i| e.zero(bat + 4096 * i, 4096));
    let sector = bat_at(&img, BLOCK) / 4096 * 4096;
    let mut data = img.read(sector, 4096);
    data[(bat_at(&img, BLOCK) - sector) as usize..][..8].copy_from_slice(&value);
    let e = e.data(sector, data);
    assert_eq!((e.length(), e.data_sector(0)), (3 * 4096, 2 * 4096));
    img.write_log(&[e]);
    let r = report(&img);
    qemu_refuses(&img, &r, "has 201 descriptors");
    assert!(
        log_ids(&r)
            .iter()
            .all(|id| ["LOG-003", "LOG-007", "LOG-070"].contains(id)),
        "{}",
        listing(&r)
    );
}

/// Stale entries of 3, 5, 9, 18, 2, 15, 4, 30 and 1 sectors (0 to 29 data descriptors)
/// laid end to end from ring offset `start`, LogGuid zero.
fn stale_ring_across_windows(start: u64) -> (Built, Vec<LogPlace>) {
    const SECTORS: [u64; 9] = [3, 5, 9, 18, 2, 15, 4, 30, 1];
    let mut img = clean();
    let bat = img.layout.bat_offset;
    let entries: Vec<LogEntry> = (SECTORS.iter())
        .map(|&k| {
            let e = (1..k).fold(img.log_entry(&[]), |e, i| {
                e.data(bat + 4096 * i, img.read(bat + 4096 * i, 4096))
            });
            assert_eq!(e.length(), k * 4096);
            e
        })
        .collect();
    let (_, places) = img.write_sequence(start, OLD, &entries);
    img.set_log_guid([0; 16]);
    (img, places)
}

/// The ring is read in windows (64 KiB): entries that run past a window's end, entries
/// longer than a window and entries that wrap the ring end are each checksummed whole —
/// every one is a stale entry with a correct CRC (LOG-001), and a byte changed near the end
/// of any one of them takes its LOG-001 away and no other.
#[test]
fn entries_across_read_windows_are_checksummed_whole() {
    let ring = clean().layout.log_length;
    for start in [0, ring - 40 * 1024] {
        let (img, places) = stale_ring_across_windows(start);
        let all: Vec<(LogPlace, At)> = places.iter().map(|&p| (p, At::Entry)).collect();
        expect_at(&report(&img), "LOG-001", Info, &all);
        for (n, p) in places.iter().enumerate() {
            let mut bad = img.clone();
            let at = (p.ring_offset + p.length - 8) % ring;
            let byte = bad.read_log(at, 1)[0];
            bad.put_log_bytes(at, &[byte ^ 0xFF]);
            let rest: Vec<(LogPlace, At)> = (all.iter().enumerate())
                .filter(|&(m, _)| m != n)
                .map(|(_, &w)| w)
                .collect();
            expect_at(&report(&bad), "LOG-001", Info, &rest);
        }
    }
}

/// The targets LOG-001 names are kept by the sweep (no second read of the ring), and they
/// are the ones the entries' descriptors hold: asked of an empty file, the kept targets
/// still equal those read from the image.
#[test]
fn targets_named_for_stale_entries_are_kept_from_the_sweep() {
    let (img, places) = stale_ring_across_windows(0);
    let model = vhdx_check::model::Model::build(&img);
    let log = model.log().expect("the ring is analysed");
    assert_eq!(log.entries.len(), places.len());
    let nothing = vhdx_check::io::MemReader(&[]);
    for (i, e) in log.entries.iter().enumerate() {
        let read = log.read_named_targets(&img, i);
        assert_eq!(read.len() as u32, e.descriptors.min(4), "entry {i}");
        assert_eq!(log.named_targets(&nothing, i), read, "entry {i}");
    }
}

#[test]
fn stale_damage_is_not_a_target_finding() {
    // LOG-040..047 judge the active sequence only.
    let e = stale(&dirty().0).zero(0, 4096);
    let (_, img, _) = dirty_with_stale(&e.encode());
    let r = report(&img);
    assert!(!r.has("LOG-040"), "{}", listing(&r));
    undisturbed(&img, &r);
}

// ---- descriptor targets (active sequence) ------------------------------------------------------

/// The dirty baseline's entry plus `extra` descriptors, written as the only (active) entry.
fn active_with(extra: impl FnOnce(&Built, LogEntry) -> LogEntry) -> (Built, LogPlace) {
    let mut img = clean();
    let e = extra(&img, zero_block(&img, BLOCK));
    let p = img.write_log(&[e])[0];
    (img, p)
}

#[test]
fn log_040_target_in_the_file_type_identifier() {
    let (img, p) = active_with(|img, e| e.data(0, img.read(0, 4096)));
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-040",
        Error,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_041_target_in_the_header_slots() {
    let (img, p) =
        active_with(|img, e| e.data(0x10000, img.read(0x10000, 4096)).zero(0x2F000, 4096));
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-041",
        Error,
        &[
            (p, At::Part("descriptor[1]")),
            (p, At::Part("descriptor[2]")),
        ],
    );
    assert!(!r.has("LOG-040"), "{}", listing(&r));
}

#[test]
fn log_042_target_in_the_log() {
    let (img, p) = active_with(|img, e| e.zero(img.layout.log_offset + 0x80000, 4096));
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-042",
        Error,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_043_target_in_an_allocated_payload_block() {
    let (img, p) = active_with(|img, e| {
        let block0 = img.layout.block_offset(0);
        e.data(block0 + 0x1000, img.read(block0 + 0x1000, 4096))
    });
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-043",
        Warning,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_043_uses_the_replayed_bat() {
    // Block 0 unmapped by the same entry: its old place is no payload block any more.
    let mut img = clean();
    let block0 = img.layout.block_offset(0);
    let e = img
        .log_entry(&[(bat_at(&img, 0), &0u64.to_le_bytes())])
        .zero(block0, 4096);
    img.write_log(&[e]);
    let r = report(&img);
    assert!(!r.has("LOG-043"), "{}", listing(&r));
}

#[test]
fn log_044_target_outside_every_structure() {
    let (img, p) = active_with(|img, e| {
        let len = img.len;
        e.zero(0x60000, 4096).zero(len + 4 * MIB, 4096)
    });
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-044",
        Warning,
        &[
            (p, At::Part("descriptor[1]")),
            (p, At::Part("descriptor[2]")),
        ],
    );
    assert!(!r.has("LOG-002"), "{}", listing(&r));
}

#[test]
fn log_045_target_past_last_file_offset() {
    let (img, p) = active_with(|img, e| {
        let bat = img.layout.bat_offset;
        e.file_offsets(bat, bat)
    });
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-045",
        Warning,
        &[(p, At::Part("descriptor[0]"))],
    );
    assert!(!r.has("LOG-002") && !r.has("LOG-005"), "{}", listing(&r));
}

#[test]
fn log_046_zero_descriptor_of_length_zero() {
    let (img, p) = active_with(|img, e| e.zero(img.layout.bat_offset + 0x10000, 0));
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-046",
        Warning,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_047_descriptors_of_one_entry_overlap() {
    let (img, p) = active_with(|img, e| {
        let bat = img.layout.bat_offset;
        e.zero(bat + 0x1000, 0x2000)
            .data(bat + 0x2000, vec![0; 4096])
    });
    let r = fires_at(&dirty().0, &img, "LOG-047", Info, &[(p, At::Within)]);
    undisturbed(&img, &r);
}

// ---- sequences -------------------------------------------------------------------------------

#[test]
fn log_060_sequence_number_gap_stops_the_run() {
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let b_at = a.length;
    let b = zero_block(&img, 6).seq(LOG_SEQUENCE + 5).tail(b_at as u32);
    let b = img.put_log_entry(b_at, &b);
    let r = fires_at(&base, &img, "LOG-060", Info, &[(b, At::Entry)]);
    // Two valid sequences; B has the higher head and is replayed alone.
    assert!(r.has("LOG-063"), "{}", listing(&r));
    replay_changes(&r, &bat_entries(&img, &[6]));
}

#[test]
fn log_061_head_tail_outside_its_run() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    // A two-entry run whose head names a tail that is no entry start: one finding.
    let bogus = (STALE + 0x10000) as u32;
    let c1 = img.put_log_entry(STALE, &stale(&img).tail(bogus));
    let c2 = stale(&img).seq(OLD + 1).tail(bogus);
    let c2 = img.put_log_entry(STALE + c1.length, &c2);
    silent(&base, "LOG-061");
    let r = report(&img);
    let f = one(&r, "LOG-061");
    assert_eq!(f.severity, Info);
    let head = f.offset.expect("LOG-061 offset");
    assert!(
        (c2.file_offset..=c2.file_offset + c2.length).contains(&head),
        "LOG-061 should point at the run's head (entry or position):{}",
        listing(&r)
    );
    undisturbed(&img, &r);
}

#[test]
fn log_062_older_entries_before_the_tail() {
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let b_at = a.length;
    let b = zero_block(&img, 6).seq(LOG_SEQUENCE + 1).tail(b_at as u32);
    img.put_log_entry(b_at, &b);
    silent(&base, "LOG-062");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-062").severity, Info);
    // The strict scan replays B only; QEMU replays A and B of the same run, with the same
    // head: LOG-062's subject, not a disagreement on the head (LOG-070).
    replay_changes(&r, &bat_entries(&img, &[6]));
    assert!(!r.has("LOG-070"), "{}", listing(&r));
}

/// The dirty baseline plus a second valid sequence at [`STALE`] with head sequence `seq`.
fn two_sequences(seq: u64) -> (Built, Built) {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let d = stale(&img).seq(seq);
    img.put_log_entry(STALE, &d);
    (base, img)
}

#[test]
fn log_063_more_than_one_valid_sequence() {
    let (base, img) = two_sequences(OLD);
    silent(&base, "LOG-063");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-063").severity, Info);
    assert!(!r.has("LOG-064"), "{}", listing(&r));
    undisturbed(&img, &r);
}

#[test]
fn log_064_two_sequences_with_equal_heads() {
    let (base, img) = two_sequences(LOG_SEQUENCE);
    silent(&base, "LOG-064");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-064").severity, Warning);
    assert!(r.has("LOG-063"), "{}", listing(&r));
    // The first found (ring offset 0) stays the active one.
    undisturbed(&img, &r);
}

#[test]
fn log_065_torn_entry_right_after_the_head() {
    let (base, _, a) = dirty();
    let next = zero_block(&base, 6).seq(LOG_SEQUENCE + 1).tail(0);
    let mut img = base.clone();
    let b = img.put_log_bytes(a.length, &next.encode_torn());
    let r = fires_at(&base, &img, "LOG-065", Info, &[(b, At::Entry)]);
    assert_eq!(one(&r, "LOG-065").length, Some(4096));
    expect_at(&r, "LOG-012", Info, &[(b, At::Entry)]);
    undisturbed(&img, &r);
    // Not the next sequence number, or another session: no evidence of a torn write.
    for e in [
        next.clone().seq(LOG_SEQUENCE + 2),
        next.clone().guid(pseudo_guid(77)),
    ] {
        let img = with(&base, |img| {
            img.put_log_bytes(a.length, &e.encode_torn());
        });
        silent(&img, "LOG-065");
    }
    // The signature itself torn: still the header of the next entry (LogGuid and
    // SequenceNumber match), also a damaged would-be header (LOG-010).
    let mut bytes = next.encode();
    bytes[..4].copy_from_slice(b"lo\0\0");
    let img = with(&base, |img| {
        img.put_log_bytes(a.length, &bytes);
    });
    let r = report(&img);
    expect_at(&r, "LOG-065", Info, &[(b, At::Entry)]);
    expect_at(&r, "LOG-010", Info, &[(b, At::Entry)]);
}

#[test]
fn log_066_file_offsets_decrease_along_the_sequence() {
    let base = dirty().0;
    let mut img = clean();
    let len = img.len;
    let ab = chained(&img, &[BLOCK, 6]);
    let a = ab[0].clone().file_offsets(len + 2 * MIB, len + 2 * MIB);
    let b = ab[1].clone().file_offsets(len, len);
    img.write_sequence(0, LOG_SEQUENCE, &[a, b]);
    silent(&base, "LOG-066");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-066").severity, Info);
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6]));
    assert!(!r.has("LOG-005") && !r.has("LOG-006"), "{}", listing(&r));

    // Either offset alone decreasing is enough; both growing is not a finding.
    for ((fa, la), (fb, lb), fires) in [
        ((len + MIB, len), (len, len), true),
        ((len, len + MIB), (len, len), true),
        ((len, len), (len + MIB, len + MIB), false),
    ] {
        let mut img = clean();
        let a = ab[0].clone().file_offsets(fa, la);
        let b = ab[1].clone().file_offsets(fb, lb);
        img.write_sequence(0, LOG_SEQUENCE, &[a, b]);
        let r = report(&img);
        assert_eq!(
            r.has("LOG-066"),
            fires,
            "{:?}:{}",
            (fa, la, fb, lb),
            listing(&r)
        );
    }
}

#[test]
fn log_067_tail_regresses() {
    let base = dirty().0;
    let mut img = clean();
    let entries = chained(&img, &[BLOCK, 6, 7]);
    let (written, places) = img.write_sequence(0, LOG_SEQUENCE, &entries);
    // B names itself as tail, C goes back to A.
    let b = written[1].clone().tail(places[1].ring_offset as u32);
    img.put_log_entry(places[1].ring_offset, &b);
    silent(&base, "LOG-067");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-067").severity, Info);
    assert!(!r.has("LOG-062") && !r.has("LOG-061"), "{}", listing(&r));
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6, 7]));
}

#[test]
fn log_067_oldest_tail_in_the_previous_lap_is_no_regression() {
    // A wrapped ring: E1 at 0x10000 still names a Tail of the previous lap (0xf0000, the
    // entries there long applied), E2 and E3 name E1. The tails advance: no LOG-067.
    let mut img = clean();
    let entries = chained(&img, &[BLOCK, 6, 7]);
    let (written, places) = img.write_sequence(0x10000, LOG_SEQUENCE, &entries);
    let e1 = written[0].clone().tail(0xf0000);
    img.put_log_entry(places[0].ring_offset, &e1);
    let r = report(&img);
    assert!(!r.has("LOG-067"), "{}", listing(&r));
    // E2 going back into the previous lap, behind E1's Tail, is a regression.
    let e2 = written[1].clone().tail(0xe0000);
    img.put_log_entry(places[1].ring_offset, &e2);
    let r = report(&img);
    assert_eq!(one(&r, "LOG-067").severity, Info);
}

#[test]
fn log_070_strict_and_lenient_disagree() {
    let mut img = clean();
    let e = zero_block(&img, BLOCK);
    let p = img.put_log_bytes(0, &e.encode_with(|b| u32_at(b, log::RESERVED, 1)));
    img.set_log_guid(e.log_guid);
    silent(&dirty().0, "LOG-070");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-070").severity, Warning);
    assert_eq!(one(&r, "LOG-002").severity, Error);
    expect_at(&r, "LOG-016", Warning, &[(p, At::Entry)]);
}

/// LOG-070's message when QEMU opens the image and leaves other bytes than the strict
/// replay: `qemu` is how it reads the log.
fn qemu_differs(r: &ImageReport, qemu: &str) {
    let m = &one(r, "LOG-070").message;
    assert!(
        m.contains(qemu) && m.contains("differs from the strict replay"),
        "{}",
        listing(r)
    );
}

#[test]
fn log_070_qemu_takes_the_run_whose_first_entry_is_greater() {
    // The dirty baseline's [A] (SequenceNumber S, block 5) and a run [S-2, S-1, S, S+1] at
    // STALE: the specification takes the greater head (S+1), QEMU the greater first entry.
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let entries = chained(&img, &[6, 7, 8, 9]);
    let mut at = STALE;
    for (k, e) in entries.into_iter().enumerate() {
        let e = e.seq(LOG_SEQUENCE - 2 + k as u64).tail(STALE as u32);
        at += img.put_log_entry(at, &e).length;
    }
    let r = report(&img);
    replay_changes(&r, &bat_entries(&img, &[6, 7, 8, 9]));
    qemu_differs(&r, "QEMU replays 1 entry from 0x100000");
    silent(&base, "LOG-070");
}

#[test]
fn log_070_qemu_takes_a_second_entry_of_the_same_sequence_number() {
    // [A, B] with B's SequenceNumber equal to A's: the run ends at A (LOG-060) and [B] has
    // no Tail of its own; QEMU never compares a run's second entry and replays both.
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let b = zero_block(&img, 6).seq(LOG_SEQUENCE).tail(0);
    img.put_log_entry(a.length, &b);
    let r = report(&img);
    replay_changes(&r, &bat_entries(&img, &[BLOCK]));
    qemu_differs(&r, "QEMU replays 2 entries from 0x100000");
}

#[test]
fn log_070_qemu_replays_entries_before_the_tail() {
    // [A, B], B's Tail names B: the specification replays B alone; QEMU A and B, and only A
    // changes block 5.
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let b = LogEntry {
        descriptors: vec![],
        ..zero_block(&img, 6)
    }
    .zero(img.layout.bat_offset + 0x10000, 4096)
    .seq(LOG_SEQUENCE + 1)
    .tail(a.length as u32);
    img.put_log_entry(a.length, &b);
    let r = report(&img);
    assert!(r.has("LOG-062") && !r.has("LOG-003"), "{}", listing(&r));
    qemu_differs(&r, "QEMU replays 2 entries from 0x100000");
    assert!(
        one(&r, "LOG-062")
            .message
            .contains("QEMU replays 2 entries")
    );
}

#[test]
fn log_072_replay_no_file_can_undergo() {
    let (base, entry, _) = dirty();
    silent(&base, "LOG-072");
    let len = base.len;
    // The head's LastFileOffset at 2^63, or a zero descriptor of 2^62 bytes.
    for (e, why) in [
        (
            entry.clone().file_offsets(len, 1 << 63),
            "LastFileOffset is 0x8000000000000000",
        ),
        (
            entry.clone().zero(8 * MIB, 1 << 62),
            "writes 0x4000000000000000 bytes at 0x800000",
        ),
    ] {
        let mut img = clean();
        img.write_log(std::slice::from_ref(&e));
        let r = report(&img);
        let f = one(&r, "LOG-072");
        assert_eq!(f.severity, Error);
        assert!(
            f.message.contains(why) && f.message.contains("cannot open the image"),
            "{}",
            listing(&r)
        );
    }
}

/// LOG-072 decides the readers too: no replayed export, no virtual digest, no `replay`
/// (the reason, not an internal error, and nothing written); the raw view still exports.
#[test]
fn log_072_images_have_no_replayed_disk() {
    let (base, entry, _) = dirty();
    let len = base.len;
    let tmp = crate::cli::Scratch::new("log072-readers");
    for (k, e) in [
        entry.clone().file_offsets(len, 1 << 63),
        entry.clone().zero(8 * MIB, 1 << 62),
    ]
    .into_iter()
    .enumerate()
    {
        let mut img = clean();
        img.write_log(std::slice::from_ref(&e));
        let p = tmp.path(&format!("i{k}.vhdx"));
        img.write_to(std::path::Path::new(&p)).unwrap();
        let out = tmp.path(&format!("o{k}.raw"));
        let (code, _, err) = crate::cli::run(&["export", &p, &out]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("replay cannot be performed") && err.contains("(LOG-072)"),
            "{err}"
        );
        assert!(!std::path::Path::new(&out).exists());
        let (code, _, err) = crate::cli::run(&["export", "--view", "raw", &p, &out]);
        assert_eq!(code, 0, "{err}");
        let (code, doc, err) =
            crate::cli::run(&["check", "--hash", "sha256", "--format", "json", &p]);
        assert_eq!(code, 1, "{err}");
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let d = &v["images"][0]["digests"];
        assert_eq!(d["virtual_disk"], serde_json::Value::Null, "{d}");
        assert!(
            d["virtual_unavailable"]
                .as_str()
                .unwrap()
                .contains("LOG-072"),
            "{d}"
        );
        let copy = tmp.path(&format!("r{k}.vhdx"));
        let (code, _, err) = crate::cli::run(&["replay", &p, &copy]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("replay cannot be performed") && err.contains("(LOG-072)"),
            "{err}"
        );
        assert!(!std::path::Path::new(&copy).exists());
    }
}

#[test]
fn log_071_descriptor_bound() {
    // One entry of 2^20 + 64 zero descriptors (all of length 0, so replay is cheap and the
    // descriptors do not overlap): more than the 1 Mi descriptors analysis applies.
    let n = (1usize << 20) + 64;
    let sectors = log::descriptor_sectors(n) as u64;
    let ring = (sectors * 4096).div_ceil(MIB) * MIB + MIB;
    let mut img = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .write_block(0, &[0xA5; 4096])
        .log_length(ring as u32)
        .build();
    let target = img.layout.bat_offset + 0x10000;
    let mut e = zero_block(&img, BLOCK);
    e.descriptors.extend((0..n).map(|_| Descriptor::Zero {
        file_offset: target,
        length: 0,
    }));
    img.write_log(&[e]);
    silent(&dirty().0, "LOG-071");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-071").severity, Warning, "{}", listing(&r));
}

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

// ---- more on sequences, structures and views ---------------------------------------------------

/// E1 at ring end − 12 KiB, E2 wrapping, E3 after the wrap, every entry its own tail: in
/// ring order from E1 the tails advance (0xfd000, 0xff000, 0x1000), although 0x1000 <
/// 0xff000 as numbers. E3 (tail E3) is met twice by the scan: alone from ring offset 0,
/// and at the end of the run E1..E3 — the same sequence (E3 only is replayed either way).
fn self_tailed_across_the_ring_end() -> Built {
    let mut img = clean();
    let start = img.layout.log_length - 0x3000;
    let entries = chained(&img, &[BLOCK, 6, 7]);
    let (written, places) = img.write_sequence(start, LOG_SEQUENCE, &entries);
    assert_eq!(places[2].ring_offset, 0x1000);
    for (e, p) in written.iter().zip(&places) {
        img.put_log_entry(p.ring_offset, &e.clone().tail(p.ring_offset as u32));
    }
    img
}

#[test]
fn tail_advancing_across_the_ring_end_is_no_regression() {
    let img = self_tailed_across_the_ring_end();
    silent(&dirty().0, "LOG-067");
    let r = report(&img);
    assert!(!r.has("LOG-067"), "{}", listing(&r));
    // E3 was built on E1 and E2's result: replaying E3 alone changes all three entries.
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6, 7]));
}

#[test]
fn same_head_met_twice_is_one_sequence() {
    // Two runs ending at the same head entry are one sequence (tail..head is the same):
    // neither "more than one valid sequence" nor a tie to break.
    let img = self_tailed_across_the_ring_end();
    let r = report(&img);
    for id in ["LOG-063", "LOG-064"] {
        assert!(!r.has(id), "{id}:{}", listing(&r));
    }
}

#[test]
fn sequence_across_the_ring_end_is_replayed_whole() {
    // A writer's normal state after wrapping: E1, E2 (wrapping) and E3, all with tail E1.
    // One valid sequence E1..E3 (the strict scan meets E3 first from ring offset 0, but the
    // run [E3] alone is no valid sequence). QEMU keeps the run [E3] it meets first (equal
    // head SequenceNumber is not "greater"): the same head, so no disagreement there; but a
    // reader that does not wrap (DiscUtils) stops at E1: LOG-070.
    let mut img = clean();
    let start = img.layout.log_length - 0x3000;
    let entries = chained(&img, &[BLOCK, 6, 7]);
    img.write_sequence(start, LOG_SEQUENCE, &entries);
    let r = report(&img);
    for id in ["LOG-062", "LOG-063", "LOG-064", "LOG-067", "LOG-002"] {
        assert!(!r.has(id), "{id}:{}", listing(&r));
    }
    assert_eq!(one(&r, "LOG-070").severity, Warning);
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6, 7]));
}

#[test]
fn log_007_reports_only_the_structural_families() {
    // LOG-007 compares the RGN/META/PLOC/BAT/SBM/LAYOUT/CHAIN findings of the two views;
    // the target findings (LOG-040..047) are about the log itself, not view differences.
    let (img, _) = active_with(|img, e| {
        e.data(0x10000, img.read(0x10000, 4096))
            .zero(img.layout.log_offset + 0x80000, 4096)
            .zero(0x60000, 4096)
    });
    let r = report(&img);
    assert!(
        r.has("LOG-041") && r.has("LOG-042") && r.has("LOG-044"),
        "{}",
        listing(&r)
    );
    for f in of(&r, "LOG-007") {
        assert!(
            !f.message.contains("LOG-0"),
            "LOG-007 re-reports a LOG finding:{}",
            listing(&r)
        );
    }
    let targets = [
        "LOG-040", "LOG-041", "LOG-042", "LOG-043", "LOG-044", "LOG-045",
    ];
    for f in r
        .findings
        .iter()
        .filter(|f| f.rule.starts_with("LOG-") && f.rule != "LOG-007" && !targets.contains(&f.rule))
    {
        assert_eq!(f.view, View::Raw, "{} view:{}", f.rule, listing(&r));
    }
}

#[test]
fn log_010_only_after_the_active_head() {
    // Contract update 13:55: the position after the ACTIVE head (offset = that position).
    // A non-active valid sequence followed by junk is not reported.
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let d = img.put_log_entry(STALE, &stale(&img));
    let mut junk = b"junk".to_vec();
    junk.resize(4096, 0xEE);
    let after_a = img.put_log_bytes(a.length, &junk);
    img.put_log_bytes(STALE + d.length, &junk);
    let r = fires_at(&base, &img, "LOG-010", Info, &[(after_a, At::Entry)]);
    assert!(r.has("LOG-063"), "{}", listing(&r));
    assert_eq!(one(&r, "LOG-010").length, Some(4), "the signature");
}

#[test]
fn log_003_names_the_structure_it_changes() {
    let mut img = clean();
    let len = img.len;
    let mark = [0xEE; 16];
    let md = img.layout.metadata_offset;
    let targets: Vec<(u64, &str)> = vec![
        (REGION_TABLE_OFFSETS[0] + 0x800, "region_table["),
        (md + 0x8000, "metadata.table"),
        (0x11000, "header"),
        (img.layout.log_offset + 0x80000, "log"),
        (0x60000, "unowned"),
        (len + MIB, "beyond EOF"),
    ];
    let writes: Vec<(u64, &[u8])> = targets.iter().map(|&(at, _)| (at, &mark[..])).collect();
    let e = img.log_entry(&writes).file_offsets(len, len + 2 * MIB);
    img.write_log(&[e]);
    let r = report(&img);
    let wrong: Vec<String> = targets
        .iter()
        .filter_map(|(at, name)| {
            let f = of(&r, "LOG-003")
                .into_iter()
                .find(|f| f.offset == Some(*at));
            match f {
                None => Some(format!("no LOG-003 at {at:#x}")),
                Some(f) if !f.structure.starts_with(name) => Some(format!(
                    "LOG-003 at {at:#x} names {:?}, contract: {name}",
                    f.structure
                )),
                Some(_) => None,
            }
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}{}", listing(&r));
}

#[test]
fn log_003_names_the_sector_bitmap() {
    let mut img = ImageBuilder::differencing(64 * MIB)
        .block_size(MIB as u32)
        .write_sectors(0, &[0x5A; 512])
        .build();
    let at = img.layout.bitmap_offset(0) + 0x100;
    let e = img.log_entry(&[(at, &[0xFF])]);
    img.write_log(&[e]);
    let r = report(&img);
    let f = one(&r, "LOG-003");
    assert_eq!(f.offset, Some(at));
    assert!(f.structure.starts_with("sector_bitmap"), "{}", listing(&r));
}

#[test]
fn findings_in_both_views_are_reported_once_as_replayed() {
    // RAW and REPLAYED share block 9's error; the log changes block 5 only.
    let mut img = clean();
    img.patch_u64(bat_at(&img, 9), past_eof());
    let reference = report(&img);
    let shared = structural(&reference);
    assert!(!shared.is_empty());
    let e = zero_block(&img, BLOCK);
    img.write_log(&[e]);
    let r = report(&img);
    replay_changes(&r, &bat_entries(&img, &[BLOCK]));
    for f in &shared {
        let both: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|g| g.rule == f.rule && g.offset == f.offset)
            .collect();
        assert_eq!(both.len(), 1, "{} @{:?}:{}", f.rule, f.offset, listing(&r));
        assert_eq!(both[0].view, View::Replayed, "{}", listing(&r));
    }
    assert!(view_diffs(&r).is_empty(), "{}", listing(&r));
}

#[test]
fn log_071_entry_byte_bound() {
    // A crafted 4 MiB ring: at every 4 KiB position an entry (no descriptors, padded) that
    // runs to the ring end, all CRC-valid (sealed from the last to the first, each CRC
    // covering the later entries as finally written). Examining every candidate would read
    // ~2 GiB of entry bytes, far beyond 8 x LogLength + 256 MiB.
    let ring = 4 * MIB;
    let mut img = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .write_block(0, &[0xA5; 4096])
        .log_length(ring as u32)
        .build();
    let guid = img.layout.log_guid;
    let len = img.len;
    let mut bytes = vec![0u8; ring as usize];
    for k in (0..ring / 4096).rev() {
        let p = (k * 4096) as usize;
        let e = &mut bytes[p..];
        e[..4].copy_from_slice(SIG_LOG_ENTRY);
        put_u32(e, log::ENTRY_LENGTH, (ring as usize - p) as u32);
        put_u32(e, log::TAIL, p as u32);
        put_u64(e, log::SEQUENCE_NUMBER, 1 + k);
        e[log::LOG_GUID..][..16].copy_from_slice(&guid);
        put_u64(e, log::FLUSHED_FILE_OFFSET, len);
        put_u64(e, log::LAST_FILE_OFFSET, len);
        seal(e, log::CHECKSUM);
    }
    img.put_log_bytes(0, &bytes);
    img.set_log_guid(guid);
    let r = report(&img);
    assert_eq!(one(&r, "LOG-071").severity, Warning, "{}", listing(&r));
}
