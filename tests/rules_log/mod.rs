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

mod entry;
mod log_level;
mod sequences;
mod severities;
mod targets;
mod views;

pub use entry::wrapped;
use log_level::{past_eof, structural};
use targets::active_with;

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
    let source = [
        include_str!("mod.rs"),
        include_str!("log_level.rs"),
        include_str!("entry.rs"),
        include_str!("targets.rs"),
        include_str!("sequences.rs"),
        include_str!("severities.rs"),
        include_str!("views.rs"),
    ]
    .concat();
    assert_family_tested("LOG", &source);
    // Independent of the embedded catalogue: every id in rules/log.toml.
    let toml = include_str!("../../rules/log.toml");
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
