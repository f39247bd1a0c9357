//! Entry functions of the fuzz targets, shared with the plain replay test
//! (`tests/replay.rs`), so every corpus and regression input also runs under `cargo test`.
//!
//! Every entry ends in [`check_image`], which runs the whole engine and its oracles:
//! - `check` twice on the same bytes gives identical findings (determinism);
//! - `check` with a per-rule cap of 1 fires the same rule ids, the same worst severity and
//!   the same total number of instances as with the default cap;
//! - the JSON report parses back with `serde_json` and holds every shown finding;
//! - the text report and the `info` dump render.
//!
//! Any panic inside the engine (index out of range, overflow: fuzz builds have debug
//! assertions on, so a debug_assert in the sink fires too) is a crash.

pub mod generate;
pub mod sparse;

use std::cell::RefCell;
use std::thread::LocalKey;
use vhdx_check::format::{header, log as fmt_log, metadata, region};
use vhdx_check::io::{self as vio, MemReader, ReadAt};
use vhdx_check::model::Model;
use vhdx_check::model::log::{MAX_DESCRIPTORS, Mode};
use vhdx_check::model::replay::ReplayedView;
use vhdx_check::policy::FailOn;
use vhdx_check::report::{self, Checked};
use vhdx_check::{CheckOptions, ImageReport, Severity, check};

/// Rules left out of the cap-1 count comparison, whose output depends on the cap by design.
/// LOG-007 (findings in one view only): a rule beyond the cap in either view is compared
/// by its counts, one summary finding instead of one claim per differing finding (since
/// main 4748ca1, the fix of the bug run 11a found: the views' *shown* samples were
/// compared, so an instance suppressed in one view read as "only in the other view";
/// inputs `corpus/regressions/image_{structured,sparse}-log007-*`). What still holds is
/// checked by [`log007_consistent`].
pub const CAP_EXEMPT: &[&str] = &["LOG-007"];

/// Findings of every instance, shown or suppressed, of the rules not in `exempt`.
fn total(r: &ImageReport, exempt: &[&str]) -> u64 {
    let shown = r
        .findings
        .iter()
        .filter(|f| !exempt.contains(&f.rule))
        .count() as u64;
    let hidden: u64 = (r.suppressed.iter())
        .filter(|(id, _)| !exempt.contains(id))
        .map(|(_, s)| s.count)
        .sum();
    shown + hidden
}

/// Rule ids that fired, and the worst severity, of the rules not in `exempt`.
fn summary(
    r: &ImageReport,
    exempt: &[&str],
) -> (std::collections::BTreeSet<&'static str>, Option<Severity>) {
    let ids = r
        .ids()
        .into_iter()
        .filter(|id| !exempt.contains(id))
        .collect();
    let shown = (r.findings.iter())
        .filter(|f| !exempt.contains(&f.rule))
        .map(|f| f.severity);
    let hidden = (r.suppressed.iter())
        .filter(|(id, _)| !exempt.contains(id))
        .filter_map(|(_, s)| s.severity);
    (ids, shown.chain(hidden).max())
}

/// Runs the engine and the report renderers over `src`, asserting the oracles:
/// `check` with the default cap and with a cap of 1 (the capped findings must be among the
/// default ones, with the same rule ids, worst severity and instance count), the JSON
/// report parses back, the text report and the `info` dump render.
pub fn check_image(src: &dyn ReadAt) -> ImageReport {
    check_image_exempt(src, CAP_EXEMPT)
}

/// [`check_image`] with the rules in `exempt` left out of the cap comparison.
pub fn check_image_exempt(src: &dyn ReadAt, exempt: &[&str]) -> ImageReport {
    check_image_then(src, exempt, |_| {})
}

/// [`check_image_exempt`], then `after` on the model the `info` dump was made from (the
/// replay checks use it rather than building the same model once more).
pub fn check_image_then(
    src: &dyn ReadAt,
    exempt: &[&str],
    after: impl FnOnce(&Model),
) -> ImageReport {
    let r = check(src, &CheckOptions::default());
    let capped = check(src, &CheckOptions { max_per_rule: 1 });
    let (ids, worst) = summary(&r, exempt);
    let (capped_ids, capped_worst) = summary(&capped, exempt);
    assert_eq!(ids, capped_ids, "the per-rule cap changed which rules fire");
    assert_eq!(
        worst, capped_worst,
        "the per-rule cap changed the worst severity"
    );
    assert_eq!(
        total(&r, exempt),
        total(&capped, exempt),
        "the per-rule cap changed the number of instances"
    );
    for f in capped.findings.iter().filter(|f| !exempt.contains(&f.rule)) {
        assert!(
            r.findings.contains(f),
            "finding shown with cap 1 but not with cap 100 (nondeterminism?): {f:?}"
        );
    }
    for (id, s) in &r.suppressed {
        assert!(s.count > 0, "{id} suppressed with count 0");
    }
    log007_consistent(&r, &capped);

    let rejected = FailOn::Error.rejects(&r);
    let checked = [Checked {
        path: std::path::Path::new("fuzz.vhdx"),
        outcome: report::Status::Report(&r),
        rejected,
        parts: None,
    }];
    let json = report::json::render(&checked);
    let v: serde_json::Value =
        serde_json::from_str(&json).expect("JSON report does not parse back");
    let img = &v["images"][0];
    assert_eq!(
        img["findings"].as_array().map(Vec::len),
        Some(r.findings.len()),
        "JSON findings"
    );
    assert_eq!(
        img["summary"]["error"].as_u64(),
        Some(r.count(Severity::Error)),
        "JSON error count"
    );
    assert_eq!(
        img["verdict"].as_str(),
        Some(if rejected { "reject" } else { "accept" })
    );
    let text = report::text::render(&checked);
    assert!(!text.is_empty());

    let model = Model::build(src);
    let info = report::info::collect(&model);
    assert!(!info.is_null(), "info dump failed to serialize");
    let _ = report::info::to_text(&info);
    after(&model);
    r
}

/// LOG-007 under a cap of 1 against the default cap: a per-finding claim ("RAW view only",
/// "REPLAYED view only") is made for a rule with at most one instance per view, so the
/// default run makes it too; a rule compared by its counts under cap 1 is named by a
/// LOG-007 of the default run as well (its totals differ whatever the cap). Skipped when
/// the default run suppresses LOG-007 instances itself.
fn log007_consistent(r: &ImageReport, capped: &ImageReport) {
    if r.suppressed.contains_key("LOG-007") {
        return;
    }
    let ours: Vec<&vhdx_check::Finding> =
        r.findings.iter().filter(|f| f.rule == "LOG-007").collect();
    for f in capped.findings.iter().filter(|f| f.rule == "LOG-007") {
        if f.message.contains(" view only (") {
            assert!(
                ours.contains(&f),
                "LOG-007 claim made with cap 1 but not with cap 100: {f:?}"
            );
        } else if let Some((id, _)) = f.message.split_once(": ") {
            assert!(
                ours.iter().any(|g| g.message.contains(&format!("{id} "))
                    || g.message.starts_with(&format!("{id}:"))),
                "LOG-007 on {id} with cap 1 but none with cap 100: {f:?}"
            );
        }
    }
}

/// [`check_image`] plus a second default run that must give identical findings.
pub fn check_image_twice(src: &dyn ReadAt) -> ImageReport {
    check_image_twice_then(src, |_| {})
}

/// [`check_image_twice`], with `after` as in [`check_image_then`].
pub fn check_image_twice_then(src: &dyn ReadAt, after: impl FnOnce(&Model)) -> ImageReport {
    let r = check_image_then(src, CAP_EXEMPT, after);
    let again = check(src, &CheckOptions::default());
    assert_eq!(r.findings, again.findings, "check is not deterministic");
    assert_eq!(
        format!("{:?}", r.suppressed),
        format!("{:?}", again.suppressed),
        "suppression not deterministic"
    );
    r
}

// ---------------------------------------------------------------------------------------
// Parser targets: the input is a structure; it is parsed on its own and also placed into a
// real qemu-img image so every rule sees it.

/// The base image: `corpus/image_sparse/qemu-dyn-bs1m-64m-w3m-compact`, i.e. qemu-img's
/// 64 MiB dynamic image with 1 MiB blocks and 3 MiB of 0xab written, with its three blocks
/// moved from 8..11 MiB down to 4..7 MiB and the file cut at 7 MiB (materialized). The
/// engine scans free space byte by byte, and under coverage instrumentation every byte
/// compare is a callback: the 4 MiB of free space qemu leaves cost half the run time.
const BASE_SEED: &[u8] = include_bytes!("../../corpus/image_sparse/qemu-dyn-bs1m-64m-w3m-compact");

struct Base {
    bytes: Vec<u8>,
    pristine: Vec<u8>,
    metadata_offset: u64,
    /// The log of header 2 (the current header of both bases).
    log_offset: u64,
    log_length: usize,
}

impl Base {
    fn load(bytes: Vec<u8>) -> Base {
        let rt = region::parse(&bytes[region::OFFSETS[0] as usize..][..region::SIZE]);
        let metadata_offset = rt
            .entries
            .iter()
            .find(|e| e.guid == vhdx_check::format::guid::REGION_METADATA)
            .expect("base image has a metadata region")
            .file_offset;
        let h = header::parse(&bytes[header::OFFSETS[1] as usize..][..header::SIZE]);
        Base {
            pristine: bytes.clone(),
            bytes,
            metadata_offset,
            log_offset: h.log_offset,
            log_length: h.log_length as usize,
        }
    }

    /// Header `i` as stored (4 KiB).
    fn header(&self, i: usize) -> Vec<u8> {
        self.pristine[header::OFFSETS[i] as usize..][..header::SIZE].to_vec()
    }
}

fn materialize(img: &sparse::SparseImage) -> Vec<u8> {
    let mut bytes = vec![0u8; img.len as usize];
    vio::read_padded(&img.reader(), 0, &mut bytes);
    bytes
}

/// The second base of `log_ring`: a generated 64 MiB dynamic image (1 MiB blocks, three
/// allocated) with a 2 MiB log at 1 MiB, the BAT at 3 MiB and the metadata at 4 MiB.
pub fn big_log_desc() -> generate::Desc {
    use generate::{Alloc, AllocState, Desc, Kind};
    Desc {
        kind: Kind::Dynamic,
        block_size_log2: 0,
        logical_4k: false,
        physical_4k: true,
        size_exp: 26,
        size_mant: 1,
        log_mib: 2,
        bat_first: true,
        sequence: 0x5EED,
        blocks: (0..3)
            .map(|k| Alloc {
                block: k * 7,
                state: AllocState::FullyPresent,
                fill: 0x60 + k as u8,
            })
            .collect(),
        corruptions: vec![],
        reseal: false,
        log: None,
        log_corruptions: vec![],
    }
}

thread_local! {
    static BASE: RefCell<Base> =
        RefCell::new(Base::load(materialize(&sparse::SparseImage::decode(BASE_SEED))));
    static BIG_LOG_BASE: RefCell<Base> =
        RefCell::new(Base::load(materialize(&big_log_desc().build().to_sparse())));
}

/// Runs `f` on `base` with `patches` (offset, bytes) applied, then restores it.
fn with_patches_in(
    base: &'static LocalKey<RefCell<Base>>,
    patches: &[(u64, &[u8])],
    f: impl FnOnce(&MemReader),
) {
    base.with(|b| {
        let mut b = b.borrow_mut();
        for &(off, data) in patches {
            let off = off as usize;
            b.bytes[off..off + data.len()].copy_from_slice(data);
        }
        f(&MemReader(&b.bytes));
        let Base {
            bytes, pristine, ..
        } = &mut *b;
        for &(off, data) in patches {
            let off = off as usize;
            bytes[off..off + data.len()].copy_from_slice(&pristine[off..off + data.len()]);
        }
    })
}

/// Runs [`check_image`] on the base image with `patches` (offset, bytes) applied, then
/// restores it.
fn with_patches(patches: &[(u64, &[u8])]) {
    with_patches_in(&BASE, patches, |src| {
        check_image(src);
    })
}

/// The parser targets run the whole engine on one input in `ENGINE_EVERY`, picked by a
/// hash of the input (so a crash reproduces from the input alone): the parse, its
/// invariants and the re-seal take microseconds, the engine over the base image ~7 ms
/// instrumented, so judging every input with it held the targets at 25-150 exec/s; the
/// JSON serialization of the parsed structure goes with it (up to 2,047 region entries'
/// GUIDs formatted: 70 % of `parse_region_table` without the engine). The
/// sampled inputs still put each structure before every rule; `cargo test`
/// (tests/replay.rs) runs the engine on every committed input ([`Engine::Always`]).
pub const ENGINE_EVERY: u32 = 256;

/// Whether a parser-target input also runs the whole engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// One input in [`ENGINE_EVERY`] (the fuzz targets).
    Sampled,
    /// Every input (the replay test).
    Always,
}

impl Engine {
    fn runs(self, data: &[u8]) -> bool {
        self == Engine::Always || crc32c::crc32c(data).is_multiple_of(ENGINE_EVERY)
    }
}

/// Byte 0 of the header and region-table inputs: placement flags.
const RESEAL: u8 = 1;
const SECOND_COPY: u8 = 2;
const BOTH_COPIES: u8 = 4;

fn split_flags(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&f, rest)) => (f, rest),
        None => (0, &[]),
    }
}

fn padded<const N: usize>(data: &[u8]) -> Box<[u8; N]> {
    let mut b = Box::new([0u8; N]);
    let n = data.len().min(N);
    b[..n].copy_from_slice(&data[..n]);
    b
}

/// Which copies (0, 1) the flags place the structure in.
fn placements(flags: u8) -> &'static [usize] {
    if flags & BOTH_COPIES != 0 {
        &[0, 1]
    } else if flags & SECOND_COPY != 0 {
        &[1]
    } else {
        &[0]
    }
}

/// `parse_header`: byte 0 flags (bit 0 re-seal the checksum, bit 1 header 2 instead of
/// header 1, bit 2 both), then the 4 KiB header (zero-padded).
pub fn parse_header(data: &[u8]) {
    parse_header_with(data, Engine::Sampled)
}

/// [`parse_header`], with the engine on every input or on a sample.
pub fn parse_header_with(data: &[u8], engine: Engine) {
    let (flags, body) = split_flags(data);
    let mut b = padded::<{ header::SIZE }>(body);
    let h = header::parse(&b[..]);
    let sum = header::computed_checksum(&b[..]);
    if flags & RESEAL != 0 {
        b[header::CHECKSUM_FIELD..header::CHECKSUM_FIELD + 4].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(
            header::computed_checksum(&b[..]),
            sum,
            "checksum ignores its own field"
        );
    }
    if !engine.runs(data) {
        return;
    }
    let _ = serde_json::to_string(&h).expect("header serializes");
    let patches: Vec<(u64, &[u8])> = placements(flags)
        .iter()
        .map(|&i| (header::OFFSETS[i], &b[..]))
        .collect();
    with_patches(&patches);
}

/// `parse_region_table`: byte 0 flags (as `parse_header`, copies 1/2), then the 64 KiB
/// region table (zero-padded).
pub fn parse_region_table(data: &[u8]) {
    parse_region_table_with(data, Engine::Sampled)
}

/// [`parse_region_table`], with the engine on every input or on a sample.
pub fn parse_region_table_with(data: &[u8], engine: Engine) {
    let (flags, body) = split_flags(data);
    let mut b = padded::<{ region::SIZE }>(body);
    let t = region::parse(&b[..]);
    assert!(t.entries.len() <= region::MAX_ENTRIES);
    assert_eq!(
        t.entries.len() as u64,
        (t.entry_count as u64).min(region::MAX_ENTRIES as u64)
    );
    for e in &t.entries {
        let _ = e.end();
    }
    let sum = region::computed_checksum(&b[..]);
    if flags & RESEAL != 0 {
        b[region::CHECKSUM_FIELD..region::CHECKSUM_FIELD + 4].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(
            region::computed_checksum(&b[..]),
            sum,
            "checksum ignores its own field"
        );
    }
    if !engine.runs(data) {
        return;
    }
    let _ = serde_json::to_string(&t).expect("region table serializes");
    let patches: Vec<(u64, &[u8])> = placements(flags)
        .iter()
        .map(|&i| (region::OFFSETS[i], &b[..]))
        .collect();
    with_patches(&patches);
}

/// `parse_metadata_table`: the 64 KiB metadata table (zero-padded), no flag byte; placed
/// at the start of the base image's metadata region (its items stay in place).
pub fn parse_metadata_table(data: &[u8]) {
    parse_metadata_table_with(data, Engine::Sampled)
}

/// [`parse_metadata_table`], with the engine on every input or on a sample.
pub fn parse_metadata_table_with(data: &[u8], engine: Engine) {
    let b = padded::<{ metadata::TABLE_SIZE }>(data);
    let t = metadata::parse_table(&b[..]);
    assert!(t.entries.len() <= metadata::MAX_ENTRIES);
    for e in &t.entries {
        let _ = (e.end(), e.is_user(), e.is_required(), e.is_virtual_disk());
        let _ = metadata::KnownItem::from_guid(&e.item_id)
            .map(|k| (k.size(), k.name(), k.expected_flags()));
    }
    if !engine.runs(data) {
        return;
    }
    let _ = serde_json::to_string(&t).expect("metadata table serializes");
    let off = BASE.with(|b| b.borrow().metadata_offset);
    with_patches(&[(off, &b[..])]);
}

// ---------------------------------------------------------------------------------------
// Whole-image targets.

/// `image_sparse`: a sparse image (see [`sparse`]) fed to the engine via `SparseReader`.
pub fn image_sparse(img: &sparse::SparseImage) {
    check_image(&img.reader());
}

/// `image_structured`: a valid image from a description, corrupted (see [`generate`]).
/// Without corruptions the image must be free of errors.
pub fn image_structured(desc: &generate::Desc) {
    let built = desc.build();
    let src = vhdx_check::io::SparseReader::new(built.len, built.extents());
    let r = check_image_twice_then(&src, |m| replay_oracle_on(&src, m, desc.sequence));
    // The generated log is valid and its writes keep both views valid (see
    // `generate::Write`), so log-bearing images stay under this oracle.
    let pristine = desc.corruptions.is_empty() && desc.log_corruptions.is_empty();
    if pristine && r.count(Severity::Error) > 0 {
        let errors: Vec<String> = r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| {
                format!(
                    "  {} @{:?} {}: {}",
                    f.rule, f.offset, f.structure, f.message
                )
            })
            .collect();
        panic!(
            "a valid generated image has {} error finding(s):\n{}\nparams: {:?}",
            r.count(Severity::Error),
            errors.join("\n"),
            desc.params()
        );
    }
}

// ---------------------------------------------------------------------------------------
// The log.

/// Byte 0 of a `log_ring` input: bit 0 re-seal the CRC-32C of every 4 KiB ring position
/// starting with "loge" (over its EntryLength in ring order, clamped to the ring; later
/// positions first, so an entry holding another's header is sealed over the final bytes);
/// bit 1 set the current header's LogGuid to the first entry's (input order) and re-seal
/// the header; bit 2 make header 1 current (SequenceNumber = header 2's + 1) instead of
/// header 2; bit 3 use the base with a 2 MiB log; bits 4-5 place the input at ring offset
/// 0, LogLength / 2, LogLength - 16 KiB or LogLength - 4 KiB (ring order: a short input
/// wraps the ring end); bit 6 stamp the first entry's LogGuid into every entry before
/// re-sealing.
pub const LOG_RESEAL: u8 = 1;
pub const LOG_SET_GUID: u8 = 2;
pub const LOG_HEADER_1: u8 = 4;
pub const LOG_BIG: u8 = 8;
pub const LOG_STAMP_GUID: u8 = 0x40;
/// Ring bytes taken from an input at most.
pub const MAX_RING_INPUT: usize = 1 << 20;
const SECTOR: usize = fmt_log::SECTOR as usize;

/// `log_ring`: byte 0 flags (above), then the ring (at most 1 MiB, zero-padded to the
/// base's LogLength). The format parsers run on every entry signature, then the whole
/// engine ([`check_image`]) and the replay checks ([`replay_oracle`]) on the base image
/// with that ring and header in place.
pub fn log_ring(data: &[u8]) {
    let (base, patches) = log_ring_patches(data);
    let seed = crc32c::crc32c(data) as u64;
    let patches: Vec<(u64, &[u8])> = patches.iter().map(|(o, b)| (*o, &b[..])).collect();
    with_patches_in(base, &patches, |src| {
        check_image_then(src, CAP_EXEMPT, |m| replay_oracle_on(src, m, seed));
    });
}

/// The image a `log_ring` input stands for (for the replay test and for inspection).
pub fn log_ring_image(data: &[u8]) -> Vec<u8> {
    let (base, patches) = log_ring_patches(data);
    base.with(|b| {
        let mut bytes = b.borrow().pristine.clone();
        for (off, p) in &patches {
            bytes[*off as usize..][..p.len()].copy_from_slice(p);
        }
        bytes
    })
}

type Patches = [(u64, Vec<u8>); 2];

/// The base and the ring and header patches of a `log_ring` input.
fn log_ring_patches(data: &[u8]) -> (&'static LocalKey<RefCell<Base>>, Patches) {
    let (flags, body) = split_flags(data);
    let body = &body[..body.len().min(MAX_RING_INPUT)];
    let base: &'static LocalKey<RefCell<Base>> = if flags & LOG_BIG != 0 {
        &BIG_LOG_BASE
    } else {
        &BASE
    };
    let (log_offset, ring_len, headers) = base.with(|b| {
        let b = b.borrow();
        (b.log_offset, b.log_length, [b.header(0), b.header(1)])
    });
    let mut ring = vec![0u8; ring_len];
    let start =
        [0, ring_len / 2, ring_len - 4 * SECTOR, ring_len - SECTOR][(flags >> 4) as usize & 3];
    let first = body.len().min(ring_len - start);
    ring[start..start + first].copy_from_slice(&body[..first]);
    ring[..body.len() - first].copy_from_slice(&body[first..]);

    let positions: Vec<usize> = (0..ring_len)
        .step_by(SECTOR)
        .filter(|&p| ring[p..].starts_with(fmt_log::ENTRY_SIGNATURE))
        .collect();
    let first_entry = (positions.iter())
        .min_by_key(|&&p| (p + ring_len - start) % ring_len)
        .copied();
    let guid: Option<[u8; 16]> = first_entry.map(|p| ring[p + 32..p + 48].try_into().unwrap());
    if let (true, Some(g)) = (flags & LOG_STAMP_GUID != 0, guid) {
        for &p in &positions {
            ring[p + 32..p + 48].copy_from_slice(&g);
        }
    }
    if flags & LOG_RESEAL != 0 {
        for &p in positions.iter().rev() {
            generate::seal_entry(&mut ring, p);
        }
    }
    parse_entries(&ring, &positions);

    let cur = if flags & LOG_HEADER_1 != 0 { 0 } else { 1 };
    let mut h = headers[cur].clone();
    if flags & (LOG_SET_GUID | LOG_HEADER_1) != 0 {
        if let (true, Some(g)) = (flags & LOG_SET_GUID != 0, guid) {
            h[48..64].copy_from_slice(&g);
        }
        if cur == 0 {
            let other = header::parse(&headers[1]).sequence_number;
            h[8..16].copy_from_slice(&other.wrapping_add(1).to_le_bytes());
        }
        let sum = header::computed_checksum(&h);
        h[header::CHECKSUM_FIELD..header::CHECKSUM_FIELD + 4].copy_from_slice(&sum.to_le_bytes());
    }
    (base, [(log_offset, ring), (header::OFFSETS[cur], h)])
}

/// The format layer on every entry signature: header, descriptor slots (clipped to the
/// ring), data sectors and the reconstructed writes.
fn parse_entries(ring: &[u8], positions: &[usize]) {
    for &p in positions {
        let h = fmt_log::parse_header(&ring[p..p + fmt_log::HEADER_SIZE]);
        let _ = serde_json::to_string(&h).expect("entry header serializes");
        let d = fmt_log::descriptor_sectors(h.descriptor_count);
        assert!(d >= 1);
        let slots = (h.descriptor_count as usize)
            .min((ring.len() - p - 64) / 32)
            .min(256);
        let mut data = 0u64;
        for i in 0..slots {
            let s = p + 64 + 32 * i;
            let desc = fmt_log::Descriptor::parse(&ring[s..s + 32]);
            let _ = (desc.target(), desc.sequence_number());
            if let fmt_log::Descriptor::Data {
                leading_bytes,
                trailing_bytes,
                ..
            } = desc
            {
                let at = p as u64 + (d + data) * fmt_log::SECTOR;
                data += 1;
                if let Some(sec) = ring.get(at as usize..at as usize + SECTOR) {
                    let _ = fmt_log::parse_data_sector(sec);
                    let w = fmt_log::reconstruct(&leading_bytes, sec, &trailing_bytes);
                    assert_eq!(&w[..8], &leading_bytes[..]);
                    assert_eq!(&w[8..4092], &sec[8..4092]);
                }
            }
        }
    }
}

/// A small deterministic generator (the replay checks' offsets, `examples/materialize`).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The REPLAYED bytes of `[a, a + len)` computed independently of the view's interval map:
/// the file (zeros past its end), then every applied descriptor in replay order.
fn expected_view(
    src: &dyn ReadAt,
    log: &vhdx_check::model::log::Log,
    a: u64,
    len: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; len];
    vio::read_padded(src, a, &mut out);
    let end = a + len as u64;
    for ap in &log.applied {
        match (ap.descriptor, ap.sector) {
            (
                fmt_log::Descriptor::Data {
                    file_offset,
                    leading_bytes,
                    trailing_bytes,
                    ..
                },
                Some(sector),
            ) => {
                let t1 = file_offset.saturating_add(fmt_log::SECTOR);
                let (lo, hi) = (a.max(file_offset), end.min(t1));
                if lo < hi {
                    let mut raw = [0u8; SECTOR];
                    vio::read_padded(src, sector, &mut raw);
                    let w = fmt_log::reconstruct(&leading_bytes, &raw, &trailing_bytes);
                    out[(lo - a) as usize..(hi - a) as usize].copy_from_slice(
                        &w[(lo - file_offset) as usize..(hi - file_offset) as usize],
                    );
                }
            }
            (
                fmt_log::Descriptor::Zero {
                    file_offset,
                    zero_length,
                    ..
                },
                _,
            ) => {
                let (lo, hi) = (
                    a.max(file_offset),
                    end.min(file_offset.saturating_add(zero_length)),
                );
                if lo < hi {
                    out[(lo - a) as usize..(hi - a) as usize].fill(0);
                }
            }
            _ => {}
        }
    }
    out
}

/// What `vhdx-check replay` relies on, without writing a file: the log model's
/// invariants (runs, active sequence, replayed entries, applied descriptors, plan, changed
/// ranges), the REPLAYED view read in windows (one big read = many small reads at random
/// offsets = the bytes computed independently from the applied descriptors; hole
/// information consistent with the bytes), and the replay command's copy loop run into a
/// sink (it must visit at most the file's data and the data sectors it applies).
pub fn replay_oracle(src: &dyn ReadAt, seed: u64) {
    replay_oracle_on(src, &Model::build(src), seed)
}

/// [`replay_oracle`] on `model`, built from `src`.
pub fn replay_oracle_on(src: &dyn ReadAt, model: &Model, seed: u64) {
    let Some(log) = model.log() else {
        return;
    };
    assert!(log.length > 0 && log.offset + log.length <= src.len());
    for (k, e) in log.entries.iter().enumerate() {
        assert!(
            e.pos % fmt_log::SECTOR == 0 && e.pos < log.length,
            "entry at {:#x}",
            e.pos
        );
        assert!(
            k == 0 || log.entries[k - 1].pos < e.pos,
            "entries out of ring order"
        );
    }
    if log.log_guid.is_zero() {
        assert!(log.scans.is_empty() && log.plan.is_none() && log.applied.is_empty());
        return;
    }
    assert_eq!(log.scans.len(), 3, "one scan per mode");
    // The lenient reading is QEMU 10's (model::qemu): runs with a second entry of any
    // SequenceNumber, padded entries and unchecked data sectors are its normal output, so
    // the scan invariants below hold for the strict and no-wrap readings only; QEMU's is
    // checked against qemu-img (tests/qemu_differential.rs).
    for scan in log.scans.iter().filter(|sc| sc.mode != Mode::Lenient) {
        let mode = scan.mode;
        for run in &scan.runs {
            assert!(!run.entries.is_empty(), "{mode:?}: empty run");
            let mut bytes = 0u64;
            for (k, &i) in run.entries.iter().enumerate() {
                let e = &log.entries[i];
                assert!(
                    e.valid(mode),
                    "{mode:?}: invalid entry {:#x} in a run",
                    e.pos
                );
                bytes += e.length();
                if k > 0 {
                    let p = &log.entries[run.entries[k - 1]];
                    assert_eq!(
                        p.seq().checked_add(1),
                        Some(e.seq()),
                        "{mode:?}: sequence gap"
                    );
                    assert_eq!(
                        (p.pos + p.length()) % log.length,
                        e.pos,
                        "{mode:?}: not end to end"
                    );
                }
            }
            assert!(bytes <= log.length, "{mode:?}: run longer than the ring");
            let tail = log.entries[run.head()].header.tail as u64;
            assert!(
                run.entries.iter().any(|&i| log.entries[i].pos == tail),
                "{mode:?}: a run without its tail"
            );
        }
        match scan.active_run() {
            None => assert!(scan.replayed.is_empty()),
            Some(run) => {
                let head = |r: &vhdx_check::model::log::Run| log.entries[r.head()].seq();
                let best = scan.runs.iter().map(head).max().unwrap_or(0);
                assert_eq!(head(run), best, "{mode:?}: active run is not the greatest");
                let first_best = scan.runs.iter().position(|r| head(r) == best);
                assert_eq!(
                    scan.active, first_best,
                    "{mode:?}: tie not resolved to the first"
                );
                assert!(
                    run.entries.ends_with(&scan.replayed),
                    "{mode:?}: replayed not a suffix"
                );
                assert!(!scan.replayed.is_empty());
                let tail = log.entries[run.head()].header.tail as u64;
                assert_eq!(
                    log.entries[scan.replayed[0]].pos, tail,
                    "{mode:?}: replay not from the Tail"
                );
            }
        }
    }
    let strict = log.scan(Mode::Strict).expect("strict scan");
    assert_eq!(
        log.plan.is_some(),
        !strict.replayed.is_empty(),
        "plan iff a replayed entry"
    );
    let Some(plan) = log.plan.as_ref() else {
        assert!(log.applied.is_empty() && log.changes.is_empty());
        return;
    };
    // The applied descriptors: those of the replayed entries, in order.
    assert!(log.applied.len() <= MAX_DESCRIPTORS);
    let mut expected_applied = 0u64;
    for &i in &strict.replayed {
        expected_applied += log.entries[i].descriptors as u64;
    }
    let mut order = strict.replayed.iter();
    let mut cur = order.next();
    for a in &log.applied {
        while cur.is_some_and(|&i| i != a.entry) {
            cur = order.next();
        }
        assert!(
            cur.is_some(),
            "applied descriptor of a non-replayed entry, or out of order"
        );
    }
    if log.bound.is_empty() {
        assert_eq!(
            log.applied.len() as u64,
            expected_applied,
            "applied descriptors"
        );
    }
    let ranges: Vec<(u64, u64, bool)> = plan.ranges().collect();
    for (k, &(s, e, _)) in ranges.iter().enumerate() {
        assert!(
            s < e && e <= plan.size,
            "plan range [{s:#x}, {e:#x}) size {:#x}",
            plan.size
        );
        assert!(k == 0 || ranges[k - 1].1 <= s, "plan ranges overlap");
    }
    assert_eq!(log.file_size, src.len());
    assert!(plan.size >= src.len());
    assert_eq!(plan.size, log.replayed_size);
    let view = ReplayedView::new(src, plan);
    assert_eq!(view.len(), plan.size);
    let byte = |r: &dyn ReadAt, at: u64| {
        let mut b = [0u8; 1];
        vio::read_padded(r, at, &mut b);
        b[0]
    };
    let mut total = 0u64;
    for (k, c) in log.changes.iter().enumerate() {
        assert!(c.length > 0);
        assert!(k == 0 || log.changes[k - 1].offset + log.changes[k - 1].length <= c.offset);
        let last = c.offset + c.length - 1;
        assert_ne!(
            byte(src, c.offset),
            byte(&view, c.offset),
            "change at {:#x} changes nothing",
            c.offset
        );
        assert_ne!(
            byte(src, last),
            byte(&view, last),
            "change ends at {last:#x} unchanged"
        );
        total += c.length;
    }
    let _ = total;
    assert_eq!(
        log.dirty(),
        !log.changes.is_empty() || plan.size != src.len()
    );

    // Windows: range edges, changes, the file end, the view end, random offsets.
    let mut rng = Rng(seed | 1);
    let mut offs = vec![
        0,
        src.len().saturating_sub(61),
        plan.size.saturating_sub(61),
    ];
    let n = ranges.len();
    for k in [0, 1, n / 2, n.saturating_sub(2), n.saturating_sub(1)] {
        if let Some(&(s, e, _)) = ranges.get(k) {
            offs.extend([s.saturating_sub(37), e.saturating_sub(37), s + (e - s) / 2]);
        }
    }
    for c in log.changes.iter().take(3) {
        offs.push(c.offset.saturating_sub(11));
    }
    for _ in 0..4 {
        offs.push(rng.below(plan.size));
    }
    for off in offs {
        if off >= plan.size {
            continue;
        }
        let want = (plan.size - off).min(64 + rng.below(12 * 1024)) as usize;
        let mut big = vec![0u8; want];
        let got = view.read_at(off, &mut big).expect("view read");
        assert_eq!(got, want, "short read at {off:#x}");
        let exp = expected_view(src, log, off, want);
        if big != exp {
            let i = (0..want).find(|&i| big[i] != exp[i]).unwrap_or(0);
            panic!(
                "REPLAYED view at {:#x}: {:#04x}, applying the descriptors gives {:#04x}",
                off + i as u64,
                big[i],
                exp[i]
            );
        }
        let mut pos = 0usize;
        while pos < want {
            let k = (1 + rng.below(5000) as usize).min(want - pos);
            let mut small = vec![0xEEu8; k];
            let got = view
                .read_at(off + pos as u64, &mut small)
                .expect("view read");
            assert_eq!(got, k);
            assert_eq!(
                small,
                big[pos..pos + k],
                "small read at {:#x} differs",
                off + pos as u64
            );
            pos += k;
        }
        let zero_until = |from: u64, to: Option<u64>| {
            let to = to.unwrap_or(u64::MAX).min(off + want as u64);
            if from < to {
                let z = &big[(from - off) as usize..(to - off) as usize];
                assert!(
                    z.iter().all(|&b| b == 0),
                    "non-zero bytes in a hole [{from:#x}, {to:#x})"
                );
            }
        };
        let d = view.data_from(off);
        assert!(
            d.is_none_or(|d| d >= off && d < plan.size),
            "data_from({off:#x}) = {d:?}"
        );
        zero_until(off, d);
        let h = view.hole_from(off);
        assert!(h >= off && h <= plan.size, "hole_from({off:#x}) = {h:#x}");
        if h < off + want as u64 {
            let d2 = view.data_from(h);
            assert!(d2.is_none_or(|d2| d2 >= h), "data_from({h:#x}) = {d2:?}");
            zero_until(h, d2);
        }
    }

    // `vhdx-check replay`'s copy loop (src/replay.rs copy_data), into a sink.
    let limit = src.len() + fmt_log::SECTOR * log.applied.len() as u64;
    let mut buf = vec![0u8; vio::CHUNK];
    let (mut pos, mut copied, mut steps) = (0u64, 0u64, 0u64);
    while let Some(d) = view.data_from(pos) {
        assert!(d >= pos, "data_from went back: {d:#x} < {pos:#x}");
        let end = view.hole_from(d).max(d + 1).min(view.len());
        copied += end - d;
        steps += 1;
        assert!(
            copied <= limit + steps,
            "replay would copy {copied:#x} bytes: more than the file and the data sectors ({limit:#x})"
        );
        let mut at = d;
        while at < end {
            let k = ((end - at) as usize).min(buf.len());
            vio::read_padded(&view, at, &mut buf[..k]);
            at += k as u64;
        }
        pos = end;
    }
}
