//! Entry functions of the fuzz targets, shared with the plain replay test
//! (`tests/replay.rs`), so every corpus and regression input also runs under `cargo test`.
//!
//! Every entry ends in [`check_image`], which runs the whole engine and its oracles:
//! - `check` twice on the same bytes gives identical findings (determinism);
//! - `check` with a per-rule cap of 1 fires the same rule ids, the same worst severity and
//!   the same total number of instances as with the default cap;
//! - the JSON report parses back with `serde_json` and holds every shown finding;
//! - the text report and the `info` dump render.
//! Any panic inside the engine (index out of range, overflow: fuzz builds have debug
//! assertions on, so a debug_assert in the sink fires too) is a crash.

pub mod generate;
pub mod sparse;

use std::cell::RefCell;
use vhdx_check::format::{header, metadata, region};
use vhdx_check::io::{MemReader, ReadAt};
use vhdx_check::model::Model;
use vhdx_check::report::{self, Checked, FailOn};
use vhdx_check::{CheckOptions, ImageReport, Severity, check};

/// Findings of every instance, shown or suppressed.
fn total(r: &ImageReport) -> u64 {
    r.findings.len() as u64 + r.suppressed.values().map(|s| s.count).sum::<u64>()
}

/// Runs the engine and the report renderers over `src`, asserting the oracles:
/// `check` with the default cap and with a cap of 1 (the capped findings must be among the
/// default ones, with the same rule ids, worst severity and instance count), the JSON
/// report parses back, the text report and the `info` dump render.
pub fn check_image(src: &dyn ReadAt) -> ImageReport {
    let r = check(src, &CheckOptions::default());
    let capped = check(src, &CheckOptions { max_per_rule: 1 });
    assert_eq!(
        r.ids(),
        capped.ids(),
        "the per-rule cap changed which rules fire"
    );
    assert_eq!(
        r.worst(),
        capped.worst(),
        "the per-rule cap changed the worst severity"
    );
    assert_eq!(
        total(&r),
        total(&capped),
        "the per-rule cap changed the number of instances"
    );
    for f in &capped.findings {
        assert!(
            r.findings.contains(f),
            "finding shown with cap 1 but not with cap 100 (nondeterminism?): {f:?}"
        );
    }
    for (id, s) in &r.suppressed {
        assert!(s.count > 0, "{id} suppressed with count 0");
    }

    let rejected = FailOn::Error.rejects(&r);
    let checked = [Checked {
        path: "fuzz.vhdx",
        outcome: Ok(&r),
        rejected,
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
    r
}

/// [`check_image`] plus a second default run that must give identical findings.
pub fn check_image_twice(src: &dyn ReadAt) -> ImageReport {
    let r = check_image(src);
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
}

thread_local! {
    static BASE: RefCell<Base> = RefCell::new({
        let img = sparse::SparseImage::decode(BASE_SEED);
        let mut bytes = vec![0u8; img.len as usize];
        vhdx_check::io::read_padded(&img.reader(), 0, &mut bytes);
        let rt = region::parse(&bytes[region::OFFSETS[0] as usize..][..region::SIZE]);
        let metadata_offset = rt
            .entries
            .iter()
            .find(|e| e.guid == vhdx_check::format::guid::REGION_METADATA)
            .expect("base image has a metadata region")
            .file_offset;
        Base { pristine: bytes.clone(), bytes, metadata_offset }
    });
}

/// Runs [`check_image`] on the base image with `patches` (offset, bytes) applied, then
/// restores it.
fn with_patches(patches: &[(u64, &[u8])]) {
    BASE.with(|b| {
        let mut b = b.borrow_mut();
        for &(off, data) in patches {
            let off = off as usize;
            b.bytes[off..off + data.len()].copy_from_slice(data);
        }
        check_image(&MemReader(&b.bytes));
        let Base {
            bytes, pristine, ..
        } = &mut *b;
        for &(off, data) in patches {
            let off = off as usize;
            bytes[off..off + data.len()].copy_from_slice(&pristine[off..off + data.len()]);
        }
    })
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
    let (flags, body) = split_flags(data);
    let mut b = padded::<{ header::SIZE }>(body);
    let h = header::parse(&b[..]);
    let sum = header::computed_checksum(&b[..]);
    let _ = serde_json::to_string(&h).expect("header serializes");
    if flags & RESEAL != 0 {
        b[header::CHECKSUM_FIELD..header::CHECKSUM_FIELD + 4].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(
            header::computed_checksum(&b[..]),
            sum,
            "checksum ignores its own field"
        );
    }
    let patches: Vec<(u64, &[u8])> = placements(flags)
        .iter()
        .map(|&i| (header::OFFSETS[i], &b[..]))
        .collect();
    with_patches(&patches);
}

/// `parse_region_table`: byte 0 flags (as `parse_header`, copies 1/2), then the 64 KiB
/// region table (zero-padded).
pub fn parse_region_table(data: &[u8]) {
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
    let _ = serde_json::to_string(&t).expect("region table serializes");
    let sum = region::computed_checksum(&b[..]);
    if flags & RESEAL != 0 {
        b[region::CHECKSUM_FIELD..region::CHECKSUM_FIELD + 4].copy_from_slice(&sum.to_le_bytes());
    }
    let patches: Vec<(u64, &[u8])> = placements(flags)
        .iter()
        .map(|&i| (region::OFFSETS[i], &b[..]))
        .collect();
    with_patches(&patches);
}

/// `parse_metadata_table`: the 64 KiB metadata table (zero-padded), no flag byte; placed
/// at the start of the base image's metadata region (its items stay in place).
pub fn parse_metadata_table(data: &[u8]) {
    let b = padded::<{ metadata::TABLE_SIZE }>(data);
    let t = metadata::parse_table(&b[..]);
    assert!(t.entries.len() <= metadata::MAX_ENTRIES);
    for e in &t.entries {
        let _ = (e.end(), e.is_user(), e.is_required(), e.is_virtual_disk());
        let _ = metadata::KnownItem::from_guid(&e.item_id)
            .map(|k| (k.size(), k.name(), k.expected_flags()));
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
    let r = check_image_twice(&src);
    if desc.corruptions.is_empty() && r.count(Severity::Error) > 0 {
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
