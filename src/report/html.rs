//! HTML evidence report: one self-contained page (inline CSS, JS and SVG, no network
//! reference) for people who do not read JSON: the verdict, a map of the file, the
//! findings with their rule texts, the log timeline, the chain, the virtual-disk map and
//! the digests. Every string that comes from an image is escaped; a Content-Security-
//! Policy with the hashes of the two inline blocks forbids anything else to run or load.
//!
//! What the page needs from the image beyond its report ([`Parts`]: the info document,
//! the file map, hex previews, the virtual-disk map, the chain) is computed by the batch
//! worker from the models the check judged, never by reading the file again; [`Html`] is
//! a [`Render`] that writes one image section at a time (the index comes last), so a
//! batch streams.

use super::{Checked, HIDDEN_DATA_RULES, Render, Status};
use crate::check::ImageReport;
use crate::findings::{Finding, Severity, View};
use crate::format::MIB;
use crate::format::bat;
use crate::model::virtual_disk::{Extent, State, VirtualDisk};
use crate::model::{Model, ObjectKind};
use crate::rules::catalogue::catalogue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write};

const STYLE: &str = include_str!("html/style.css");
const SCRIPT: &str = include_str!("html/script.js");

/// Bins of the whole-file and virtual-disk bars: each lane has at most this many rects.
pub const BINS: usize = 600;
/// Structures (header section, regions, log) drawn individually.
const MAX_PARTS: usize = 64;
/// Block objects drawn exactly in the zoomed view of the structures' area.
const MAX_ZOOM_BLOCKS: usize = 400;
/// Finding rows per rule and per image; the rest are counted (as with --max-per-rule).
const MAX_ROWS_PER_RULE: usize = 200;
const MAX_ROWS: usize = 5000;
/// Hex previews read per image, and their length.
const MAX_PREVIEWS: usize = 200;
const PREVIEW_BYTES: usize = 64;
/// How far into a hidden-data range the first non-zero byte is looked for.
const PREVIEW_SEARCH: u64 = 4 * MIB;
/// Rows of the log, replay-change and extent tables.
const MAX_TABLE_ROWS: usize = 1024;
/// The info document embedded as JSON, at most.
const MAX_INFO_JSON: usize = 256 * 1024;
const WIDTH: f64 = 1000.0;

/// A run of the virtual disk as the allocation map ([`VirtualDisk::extents`]) gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualExtent {
    pub offset: u64,
    pub length: u64,
    pub state: State,
    /// The chain member the bytes come from (its path), when they come from a file.
    pub source: Option<String>,
    pub file_offset: Option<u64>,
}

/// The virtual-disk map of one image: bytes per state per bin over the whole disk (so a
/// 64 TiB disk draws as at most [`BINS`] rects), and the first extents as rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualMap {
    pub size: u64,
    /// Bytes of each state ([`STATES`] order) per bin of `Scale::linear(size)`.
    pub bins: Vec<[u64; 5]>,
    /// The first [`MAX_TABLE_ROWS`] extents.
    pub rows: Vec<VirtualExtent>,
    /// Extents walked (rows included).
    pub extents: u64,
    /// The walk stopped at this virtual offset after [`MAX_EXTENTS`] extents.
    pub stopped_at: Option<u64>,
    /// Why the walk ended before the end of the disk (the BAT or a bitmap unreadable).
    pub failed: Option<String>,
    /// Why part of the disk cannot be read exactly (a parent not given, blocks past EOF).
    pub unreadable: Option<String>,
}

/// The states of the virtual-disk map, in the order of [`VirtualMap::bins`].
pub const STATES: [State; 5] = [
    State::Data,
    State::Partial,
    State::Zero,
    State::Unallocated,
    State::Parent,
];

/// Extents walked at most for one image's map (a fragmented 64 TiB disk has tens of
/// millions): past this the map says where it stopped.
pub const MAX_EXTENTS: u64 = 1 << 22;

impl VirtualMap {
    /// Aggregates `extents` (of a disk of `size` bytes) as they come: memory bounded by
    /// [`BINS`] and [`MAX_TABLE_ROWS`] whatever their number. `names[i]`: chain member
    /// `i`'s path.
    pub fn collect(
        size: u64,
        extents: impl Iterator<Item = io::Result<Extent>>,
        names: &[String],
        unreadable: Option<String>,
    ) -> VirtualMap {
        let scale = Scale::linear(size.max(1));
        let mut map = VirtualMap {
            size,
            bins: vec![[0; 5]; BINS],
            rows: Vec::new(),
            extents: 0,
            stopped_at: None,
            failed: None,
            unreadable,
        };
        for e in extents {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    map.failed = Some(err.to_string());
                    break;
                }
            };
            if map.extents >= MAX_EXTENTS {
                map.stopped_at = Some(e.offset);
                break;
            }
            map.extents += 1;
            let k = STATES.iter().position(|s| *s == e.state).unwrap_or(4);
            scale.spread(e.offset, e.length, |b, n| {
                map.bins[b][k] = map.bins[b][k].saturating_add(n)
            });
            if map.rows.len() < MAX_TABLE_ROWS {
                map.rows.push(VirtualExtent {
                    offset: e.offset,
                    length: e.length,
                    state: e.state,
                    source: e.member.and_then(|m| names.get(m)).cloned(),
                    file_offset: e.file_offset,
                });
            }
        }
        map
    }
}

/// The virtual-disk map of `vd` (a disk read from `names`, nearest first).
pub fn virtual_map(vd: &VirtualDisk, names: &[String]) -> VirtualMap {
    VirtualMap::collect(vd.size(), vd.extents(), names, vd.unreadable())
}

/// A member of the chain the image was checked in, as the chain resolver found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainMember {
    pub path: String,
    /// The locator key that found it; `None` for the child and for `--parent` files.
    pub found_via: Option<&'static str>,
    /// Why the chain ends here although the member is differencing: rule and message
    /// (CHAIN-006..008).
    pub broken: Option<(&'static str, String)>,
}

/// What the page shows of one image beyond its report, computed where the check's models
/// exist (the batch worker) and owned, so the evidence is never read again by name after
/// the verdict: the page shows the file the verdict is about. Bounded in size whatever
/// the image.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    /// The `info` document ([`crate::report::info::collect`]) of the RAW model.
    pub info: Option<Value>,
    pub map: Option<FileMap>,
    /// Hex previews by finding index.
    pub previews: BTreeMap<usize, HexPreview>,
    /// The virtual-disk map, or why there is none.
    pub virtual_disk: Option<Result<VirtualMap, String>>,
    /// The chain the image was checked in (empty: checked alone), child first.
    pub chain: Vec<ChainMember>,
    /// This image's place in `chain`.
    pub chain_index: usize,
}

impl Parts {
    /// The info document, the file map and the hex previews of `raw` (the RAW model of
    /// the image `report` is of), and the virtual-disk map of `replayed`/`raw` when the
    /// disk is not differencing (a differencing disk's goes through its parents:
    /// [`Parts::virtual_disk`] is filled by the chain's caller).
    pub fn collect(raw: &Model, replayed: Option<&Model>, report: &ImageReport) -> Parts {
        let differencing = raw.disk_type == Some(crate::model::DiskType::Differencing);
        // As a guest reads it: the REPLAYED model when the log is pending.
        let virtual_disk = if differencing {
            Err(NOT_THROUGH_PARENTS.to_string())
        } else {
            VirtualDisk::new(&[(replayed.unwrap_or(raw), raw.src.len())])
                .map(|vd| virtual_map(&vd, &["this file".to_string()]))
        };
        Parts {
            info: Some(super::info::collect(raw)),
            map: Some(file_map(raw)),
            previews: previews(raw, &report.findings),
            virtual_disk: Some(virtual_disk),
            chain: Vec::new(),
            chain_index: 0,
        }
    }
}

/// The virtual-disk map of a differencing disk whose parents were not resolved.
pub const NOT_THROUGH_PARENTS: &str = "a differencing disk: unwritten sectors are read from its parent; check it with --find-parents (or --parent) for its map through the chain, or run `vhdx-check map --find-parents`";

/// One structure of the file map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapPart {
    pub label: String,
    /// CSS class: hdr, rgn-bat, rgn-meta, rgn-unknown, log, payload, sbm, retained.
    pub class: &'static str,
    pub offset: u64,
    pub length: u64,
}

/// What occupies which bytes of the file, bounded whatever the image: the structures
/// exactly, the blocks as bytes per bin of the whole span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMap {
    pub file_size: u64,
    /// Bytes the map covers: the file, or further where an object reaches past its end.
    pub span: u64,
    pub parts: Vec<MapPart>,
    /// Bytes of payload, sector-bitmap and retained blocks per bin of `scale`.
    pub bins: Vec<[u64; 3]>,
    pub scale: Scale,
    /// Payload, sector-bitmap and retained blocks in all.
    pub blocks: [u64; 3],
    /// The area of the structures, drawn exactly: its end and the blocks within it.
    pub zoom: Option<(u64, Vec<MapPart>)>,
}

/// How offsets map onto a bar of [`BINS`] bins: linearly, or, when objects reach far
/// past the end of the file, the file on the first 85 % of the width and the space past
/// its end on the rest (else a block at 4 GiB squeezes a 12 MiB file into one pixel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub file: u64,
    pub span: u64,
}

const SPLIT_X: f64 = 850.0;
const SPLIT_BINS: usize = BINS * 85 / 100;

impl Scale {
    pub fn linear(span: u64) -> Scale {
        Scale { file: span, span }
    }

    /// Whether the bar is split at the end of the file.
    pub fn split(&self) -> bool {
        self.file > 0 && self.span / 5 * 4 > self.file
    }

    fn frac(off: u64, from: u64, to: u64) -> f64 {
        (off.saturating_sub(from)) as f64 / (to - from).max(1) as f64
    }

    pub fn x(&self, off: u64) -> f64 {
        let x = if !self.split() {
            Scale::frac(off, 0, self.span) * WIDTH
        } else if off <= self.file {
            Scale::frac(off, 0, self.file) * SPLIT_X
        } else {
            SPLIT_X + Scale::frac(off, self.file, self.span) * (WIDTH - SPLIT_X)
        };
        x.min(WIDTH)
    }

    fn part(off: u64, from: u64, to: u64, bins: usize) -> usize {
        ((off.saturating_sub(from)) as u128 * bins as u128 / (to - from).max(1) as u128) as usize
    }

    /// The bin holding byte `off`.
    pub fn bin(&self, off: u64) -> usize {
        let b = if !self.split() {
            Scale::part(off, 0, self.span, BINS)
        } else if off < self.file {
            Scale::part(off, 0, self.file, SPLIT_BINS)
        } else {
            SPLIT_BINS + Scale::part(off, self.file, self.span, BINS - SPLIT_BINS)
        };
        b.min(BINS - 1)
    }

    fn edge(from: u64, to: u64, k: usize, bins: usize) -> u64 {
        from + ((to - from) as u128 * k as u128 / bins as u128) as u64
    }

    /// The bytes of bin `b`.
    pub fn range(&self, b: usize) -> (u64, u64) {
        if !self.split() {
            let e = |k| Scale::edge(0, self.span, k, BINS);
            (e(b), e(b + 1))
        } else if b < SPLIT_BINS {
            let e = |k| Scale::edge(0, self.file, k, SPLIT_BINS);
            (e(b), e(b + 1))
        } else {
            let e = |k| Scale::edge(self.file, self.span, k - SPLIT_BINS, BINS - SPLIT_BINS);
            (e(b), e(b + 1))
        }
    }

    /// Adds `[off, off + len)` bin by bin: `f(bin, bytes in it)`.
    fn spread(&self, off: u64, len: u64, mut f: impl FnMut(usize, u64)) {
        let end = off.saturating_add(len).min(self.span);
        if off >= end {
            return;
        }
        for b in self.bin(off)..=self.bin(end - 1) {
            let (from, to) = self.range(b);
            let n = to.min(end).saturating_sub(from.max(off));
            f(b, n);
        }
    }

    /// The offset at horizontal position `x` (for the axis).
    fn at(&self, x: f64) -> u64 {
        let lerp =
            |from: u64, to: u64, t: f64| from + ((to - from) as f64 * t.clamp(0.0, 1.0)) as u64;
        if !self.split() {
            lerp(0, self.span, x / WIDTH)
        } else if x <= SPLIT_X {
            lerp(0, self.file, x / SPLIT_X)
        } else {
            lerp(self.file, self.span, (x - SPLIT_X) / (WIDTH - SPLIT_X))
        }
    }
}

/// Bytes of the file shown under a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexPreview {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

fn region_class(label: &str) -> &'static str {
    match label {
        "BAT" => "rgn-bat",
        "Metadata" => "rgn-meta",
        _ => "rgn-unknown",
    }
}

/// The file map of `m`: one walk of the BAT, memory bounded by [`BINS`].
pub fn file_map(m: &Model) -> FileMap {
    let mut parts = Vec::new();
    for o in m.fixed_objects().into_iter().take(MAX_PARTS) {
        let (label, class) = match o.kind {
            ObjectKind::HeaderSection => ("header section".to_string(), "hdr"),
            ObjectKind::Region { index } => {
                let name = m
                    .regions()
                    .get(index)
                    .map_or("unknown", |r| Model::region_name(&r.guid));
                (format!("region {index}: {name}"), region_class(name))
            }
            ObjectKind::Log => ("log".to_string(), "log"),
            _ => continue,
        };
        parts.push(MapPart {
            label,
            class,
            offset: o.offset,
            length: o.length,
        });
    }
    // First pass: how far objects reach (the span), second: bytes per bin.
    let mut span = m.file_size.max(
        parts
            .iter()
            .map(|p| p.offset.saturating_add(p.length))
            .max()
            .unwrap_or(0),
    );
    let mut blocks = [0u64; 3];
    let walk = |f: &mut dyn FnMut(usize, u64, u64, u64)| {
        let Some(g) = m.geometry else { return };
        let limit = g.total_entries;
        m.for_each_bat_chunk(|first, entries| {
            for (k, &e) in entries.iter().enumerate() {
                let i = first + k as u64;
                if i >= limit {
                    return false;
                }
                // Most entries of a sparse disk allocate nothing: states 0-5 at offset 0.
                if e.file_offset() == 0 && e.state() < bat::PAYLOAD_BLOCK_FULLY_PRESENT {
                    continue;
                }
                if let Some(o) = m.block_object(i, e) {
                    let kind = match o.kind {
                        ObjectKind::PayloadBlock { .. } => 0,
                        ObjectKind::SectorBitmapBlock { .. } => 1,
                        _ => 2,
                    };
                    f(kind, i, o.offset, o.length);
                }
            }
            true
        });
    };
    walk(&mut |kind, _, off, len| {
        blocks[kind] += 1;
        span = span.max(off.saturating_add(len));
    });
    let span = span.max(1);
    let scale = Scale {
        file: m.file_size,
        span,
    };
    let mut bins = vec![[0u64; 3]; BINS];
    // The structures' area: up to the end of the last structure, when that is a small
    // part of the span (a dynamic disk's metadata in front of its blocks).
    let zoom_end = parts
        .iter()
        .map(|p| p.offset.saturating_add(p.length))
        .max()
        .unwrap_or(0)
        .saturating_add(MIB)
        .div_ceil(MIB)
        .saturating_mul(MIB);
    let zoomed = zoom_end.saturating_mul(4) <= span.min(m.file_size.max(1));
    let mut zoom_blocks = Vec::new();
    walk(&mut |kind, i, off, len| {
        scale.spread(off, len, |b, n| {
            bins[b][kind] = bins[b][kind].saturating_add(n)
        });
        if zoomed && off < zoom_end && zoom_blocks.len() < MAX_ZOOM_BLOCKS {
            let (what, class) = match kind {
                0 => ("payload block", "payload"),
                1 => ("sector bitmap block", "sbm"),
                _ => ("retained block", "retained"),
            };
            zoom_blocks.push(MapPart {
                label: format!("{what} bat[{i}]"),
                class,
                offset: off,
                length: len,
            });
        }
    });
    let zoom = zoomed.then(|| {
        let mut v = parts.clone();
        v.extend(zoom_blocks);
        (zoom_end, v)
    });
    FileMap {
        file_size: m.file_size,
        span,
        parts,
        bins,
        scale,
        blocks,
        zoom,
    }
}

/// Bytes at the first non-zero byte of each hidden-data finding's range (bounded count,
/// bounded search), and at the offset of findings with a short range of their own.
fn previews(m: &Model, findings: &[Finding]) -> BTreeMap<usize, HexPreview> {
    let mut out = BTreeMap::new();
    for (i, f) in findings.iter().enumerate() {
        if out.len() >= MAX_PREVIEWS {
            break;
        }
        if f.view != View::Raw || !HIDDEN_DATA_RULES.contains(&f.rule) {
            continue;
        }
        let (Some(off), Some(len)) = (f.offset, f.length) else {
            continue;
        };
        let Some(at) = crate::io::first_nonzero(m.src, off, len.min(PREVIEW_SEARCH)) else {
            continue;
        };
        let n = (off.saturating_add(len).saturating_sub(at)).min(PREVIEW_BYTES as u64) as usize;
        let (bytes, got) = crate::io::read_vec(m.src, at, n);
        if got > 0 {
            out.insert(
                i,
                HexPreview {
                    offset: at,
                    bytes: bytes[..got.min(bytes.len())].to_vec(),
                },
            );
        }
    }
    out
}

/// Text and attribute escaping. Control characters (which the HTML parser reports as
/// errors and a reader cannot see) are written as visible `\u{..}` escapes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control()
                || ('\u{fdd0}'..='\u{fdef}').contains(&c)
                || (c as u32 & 0xfffe) == 0xfffe =>
            {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn csp_hash(block: &str) -> String {
    format!("'sha256-{}'", b64(&Sha256::digest(block.as_bytes())))
}

/// The Content-Security-Policy of every page: nothing loads, only the page's own style and
/// script blocks apply (by hash), no form, no base URL, images only as data: URLs.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src {}; script-src {}; img-src data:; base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn size(v: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = v as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v} B")
    } else {
        format!("{x:.1} {}", UNITS[u])
    }
}

fn family(rule: &str) -> &str {
    rule.split('-').next().unwrap_or(rule)
}

/// Rules whose findings mark an overlap or an object past the end of the file: the map
/// shows them in the error colour.
const MAP_ERROR_RULES: &[&str] = &["LAYOUT-001", "LAYOUT-002", "BAT-013", "BAT-014"];

struct IndexEntry {
    anchor: String,
    path: String,
    verdict: &'static str,
    counts: [u64; 3],
}

/// The HTML report as a [`Render`]: `begin` writes the head, `image` each image's
/// section as it arrives (from the report and its [`Parts`]), `end` the index (moved to
/// the top by CSS) and the texts of the rules that fired. Memory holds one index line per
/// image and the set of rule ids, never a page.
pub struct Html {
    title: String,
    index: Vec<IndexEntry>,
    rules: BTreeSet<&'static str>,
}

impl Html {
    /// `title`: the page's title (what was checked).
    pub fn new(title: &str) -> Html {
        Html {
            title: title.to_string(),
            index: Vec::new(),
            rules: BTreeSet::new(),
        }
    }
}

impl Default for Html {
    fn default() -> Html {
        Html::new("vhdx-check report")
    }
}

impl Render for Html {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
             <header class=\"doc\"><h1>{}</h1><p class=\"muted\">vhdx-check {} evidence \
             report. Offsets are byte offsets in the image file (hex). The index of images \
             and the texts of the rules are at the end of the file.</p></header>\n",
            content_security_policy(),
            esc(&self.title),
            esc(&self.title),
            env!("VHDX_CHECK_VERSION")
        )
    }

    fn image(&mut self, out: &mut dyn Write, c: &Checked) -> io::Result<()> {
        let n = self.index.len();
        let anchor = format!("img-{n}");
        let path = super::path_str(c.path).into_owned();
        let mut s = String::new();
        let (verdict, counts) = match c.outcome {
            Status::Report(r) => (
                if c.rejected { "reject" } else { "accept" },
                [
                    r.count(Severity::Error),
                    r.count(Severity::Warning),
                    r.count(Severity::Info),
                ],
            ),
            Status::Error(_) => ("error", [0; 3]),
            Status::Skipped(_) => ("skipped", [0; 3]),
        };
        let _ = write!(
            s,
            "<section class=\"image\" id=\"{anchor}\" data-verdict=\"{verdict}\">\n<h2>\
             <span class=\"verdict v-{verdict}\">{}</span><span class=\"path\">{}</span></h2>\n",
            verdict.to_ascii_uppercase(),
            esc(&path)
        );
        let none = Parts::default();
        let parts = c.parts.unwrap_or(&none);
        match c.outcome {
            Status::Error(e) => {
                let _ = writeln!(s, "<p class=\"sev-error\">Not checked: {}</p>", esc(e));
            }
            Status::Skipped(why) => {
                let _ = writeln!(
                    s,
                    "<p class=\"muted\">Skipped, not opened: {}</p>",
                    esc(why)
                );
            }
            Status::Report(r) => {
                summary(&mut s, r, parts);
                if let Some(map) = &parts.map {
                    file_map_section(&mut s, n, map, r);
                } else {
                    s.push_str("<h3>File map</h3><p class=\"muted\">not available</p>\n");
                }
                findings_section(&mut s, n, r, parts, &mut self.rules);
                if let Some(info) = &parts.info {
                    log_section(&mut s, n, info);
                }
                chain_section(&mut s, parts, r);
                virtual_section(&mut s, n, parts.virtual_disk.as_ref());
                digests_section(&mut s, r);
                if let Some(info) = &parts.info {
                    structures_section(&mut s, info);
                }
            }
        }
        s.push_str("</section>\n");
        self.index.push(IndexEntry {
            anchor,
            path,
            verdict,
            counts,
        });
        out.write_all(s.as_bytes())
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut s = String::new();
        let _ = write!(
            s,
            "<nav class=\"index\" id=\"index\"><h2>Images ({})</h2><ol>",
            self.index.len()
        );
        for e in &self.index {
            let counts = match e.verdict {
                "error" => "not checked".to_string(),
                "skipped" => "not opened".to_string(),
                _ => format!(
                    "{} errors, {} warnings, {} info",
                    e.counts[0], e.counts[1], e.counts[2]
                ),
            };
            let _ = write!(
                s,
                "<li><a href=\"#{}\"><span class=\"verdict v-{}\">{}</span></a> \
                 <span class=\"path\">{}</span> <span class=\"muted\">{counts}</span></li>",
                e.anchor,
                e.verdict,
                e.verdict.to_ascii_uppercase(),
                esc(&e.path),
            );
        }
        s.push_str(
            "</ol></nav>\n<section class=\"image rules\" id=\"rules\"><h2>Rules that fired</h2>\
            <p class=\"muted\">From the rule catalogue (rules/*.toml; `vhdx-check explain ID`); \
            each rule's page is docs/rules/ID.md in the source tree.</p><dl>",
        );
        for id in &self.rules {
            let Some(r) = catalogue().get(id) else {
                continue;
            };
            let _ = write!(
                s,
                "<dt id=\"rule-{}\">{} <span class=\"sev-{}\">{}</span> <span class=\"muted\">{}</span> \
                 <a href=\"{}\">rule page</a></dt><dd><b>{}</b><br><span class=\"muted\">\
                 applies to: {}</span><br>{}<br><b>What to do:</b> {}</dd>",
                esc(r.id),
                esc(r.id),
                r.severity.as_str(),
                r.severity.as_str(),
                esc(r.spec),
                esc(&r.doc_path()),
                esc(r.title),
                esc(r.applies_to),
                esc(r.rationale),
                esc(r.advice())
            );
        }
        let _ = write!(
            s,
            "</dl></section>\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
        );
        out.write_all(s.as_bytes())
    }
}

/// The whole page for `images` at once (tests, one image).
pub fn render(images: &[Checked]) -> String {
    let title = match images {
        [one] => format!("vhdx-check report: {}", super::path_str(one.path)),
        _ => format!("vhdx-check report: {} images", images.len()),
    };
    super::render_all(&mut Html::new(&title), images)
}

fn summary(s: &mut String, r: &ImageReport, img: &Parts) {
    let _ = writeln!(
        s,
        "<p class=\"counts\"><span class=\"sev-error\">{} errors</span><span class=\"sev-warning\">\
         {} warnings</span><span class=\"sev-info\">{} info</span><span>{} waived</span>\
         <span>{} bytes ({})</span></p>",
        r.count(Severity::Error),
        r.count(Severity::Warning),
        r.count(Severity::Info),
        r.count_waived(),
        r.size,
        size(r.size)
    );
    if let Some(info) = &img.info {
        let dt = info["disk_type"].as_str().unwrap_or("unknown");
        let vsize = info["parameters"]["virtual_disk_size"].as_u64();
        let _ = writeln!(
            s,
            "<dl class=\"kv\"><dt>disk type</dt><dd>{}</dd><dt>virtual size</dt><dd>{}</dd>\
             <dt>creator</dt><dd>{}</dd><dt>current header</dt><dd>{}</dd><dt>log</dt><dd>{}</dd></dl>",
            esc(dt),
            vsize.map_or("unknown".into(), |v| format!("{v} bytes ({})", size(v))),
            esc(info["creator"].as_str().unwrap_or("")),
            esc(info["current_header"].as_str().unwrap_or("")),
            esc(info["log"]["state"].as_str().unwrap_or("no log"))
        );
    }
}

fn rect(s: &mut String, x: f64, y: f64, w: f64, h: f64, class: &str, title: &str) {
    let _ = write!(
        s,
        "<rect x=\"{x:.2}\" y=\"{y}\" width=\"{:.2}\" height=\"{h}\" class=\"{class}\"><title>{}</title></rect>",
        w.max(0.8),
        esc(title)
    );
}

fn axis(s: &mut String, y: f64, scale: &Scale) {
    let xs: &[f64] = if scale.split() {
        &[0.0, 425.0, SPLIT_X, WIDTH]
    } else {
        &[0.0, 250.0, 500.0, 750.0, WIDTH]
    };
    for &x in xs {
        let off = scale.at(x);
        let anchor = if x == 0.0 {
            "start"
        } else if x == WIDTH {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            s,
            "<text class=\"axis\" x=\"{x}\" y=\"{y}\" text-anchor=\"{anchor}\">{} ({})</text>",
            hex(off),
            size(off)
        );
    }
}

fn legend(s: &mut String, items: &[(&str, &str)]) {
    s.push_str("<div class=\"legend\">");
    for (class, label) in items {
        let _ = write!(s, "<span><i class=\"l-{class}\"></i>{}</span>", esc(label));
    }
    s.push_str("</div>\n");
}

/// Finding marks per bin: the first finding's index and the worst kind (err > hid > other).
/// Which findings get a row: at most [`MAX_ROWS_PER_RULE`] per rule and [`MAX_ROWS`] in
/// all, in report order.
fn listed(r: &ImageReport) -> Vec<bool> {
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rows = 0;
    (r.findings.iter())
        .map(|f| {
            let c = per_rule.entry(f.rule).or_default();
            *c += 1;
            let shown = *c <= MAX_ROWS_PER_RULE && rows < MAX_ROWS;
            rows += usize::from(shown);
            shown
        })
        .collect()
}

/// Marks only for listed findings, so that each links to a row.
fn marks(r: &ImageReport, scale: &Scale) -> Vec<Option<(u8, usize, usize)>> {
    let mut out: Vec<Option<(u8, usize, usize)>> = vec![None; BINS];
    let listed = listed(r);
    for (i, f) in r.findings.iter().enumerate() {
        if !listed[i] {
            continue;
        }
        let Some(off) = f.offset else { continue };
        if off >= scale.span {
            continue;
        }
        let kind = if MAP_ERROR_RULES.contains(&f.rule) {
            2
        } else if HIDDEN_DATA_RULES.contains(&f.rule) {
            1
        } else {
            0
        };
        let len = f.length.unwrap_or(1).max(1);
        let mut hit = Vec::new();
        scale.spread(off, len, |b, _| hit.push(b));
        for b in hit {
            let slot = &mut out[b];
            *slot = match *slot {
                None => Some((kind, i, 1)),
                Some((k, j, c)) => Some((k.max(kind), if kind > k { i } else { j }, c + 1)),
            };
        }
    }
    out
}

fn marks_lane(s: &mut String, n: usize, r: &ImageReport, scale: &Scale, y: f64) {
    let bins = BINS;
    let m = marks(r, scale);
    let mut b = 0;
    while b < bins {
        let Some((kind, i, _)) = m[b] else {
            b += 1;
            continue;
        };
        let mut e = b + 1;
        let mut count = m[b].map_or(0, |x| x.2);
        while e < bins && m[e].is_some_and(|(k, j, _)| k == kind && j == i) {
            count += m[e].map_or(0, |x| x.2);
            e += 1;
        }
        let class = ["m-other", "m-hid", "m-err"][kind as usize];
        let f = &r.findings[i];
        let title = format!(
            "{} {} at {}: {} ({} finding marks here)",
            f.rule,
            f.severity.as_str(),
            f.offset.map_or("-".into(), hex),
            f.message,
            count
        );
        let _ = write!(s, "<a href=\"#f-{n}-{i}\">");
        let (x0, x1) = (scale.x(scale.range(b).0), scale.x(scale.range(e - 1).1));
        rect(s, x0, y, x1 - x0, 14.0, class, &title);
        s.push_str("</a>");
        b = e;
    }
}

fn file_map_section(s: &mut String, n: usize, map: &FileMap, r: &ImageReport) {
    let _ = writeln!(
        s,
        "<h3 id=\"mapsec-{n}\">File map</h3><p class=\"muted\">{} bytes of file ({}); the map spans \
         {} ({}){}. Each lane has {BINS} bins at most. Blocks: {} payload, {} sector \
         bitmap, {} retained. The file as stored (before any log replay; the log section \
         lists what replay changes). Hover for offsets; a finding mark links to its row.</p>",
        map.file_size,
        size(map.file_size),
        hex(map.span),
        size(map.span),
        if map.scale.split() {
            "; objects reach past the end of the file, so the last 15 % of the width (right \
             of the red dashed line) shows the space past the end of the file on its own scale"
        } else {
            ""
        },
        map.blocks[0],
        map.blocks[1],
        map.blocks[2]
    );
    legend(
        s,
        &[
            ("hdr", "header section"),
            ("rgn-bat", "BAT region"),
            ("rgn-meta", "metadata region"),
            ("rgn-unknown", "unknown region"),
            ("log", "log"),
            ("payload", "payload blocks"),
            ("sbm", "sector bitmap blocks"),
            ("retained", "retained blocks"),
            ("unowned", "unowned space"),
            ("m-err", "overlap / past EOF"),
            ("m-hid", "hidden data"),
            ("m-other", "other finding"),
        ],
    );
    let h = 92;
    let _ = write!(
        s,
        "<svg class=\"map\" id=\"map-{n}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {h}\" \
         data-span=\"{}\" data-width=\"{WIDTH}\"{} role=\"img\" aria-label=\"file map\">",
        map.span,
        if map.scale.split() {
            format!(" data-file=\"{}\"", map.file_size)
        } else {
            String::new()
        }
    );
    let _ = write!(
        s,
        "<text class=\"lbl\" x=\"2\" y=\"9\">structures</text><rect class=\"lane\" x=\"0\" y=\"11\" width=\"{WIDTH}\" height=\"18\"/>\
         <text class=\"lbl\" x=\"2\" y=\"39\">blocks</text><rect class=\"lane\" x=\"0\" y=\"41\" width=\"{WIDTH}\" height=\"18\"><title>unowned space</title></rect>"
    );
    for p in &map.parts {
        let title = format!(
            "{}: {}..{} ({} bytes)",
            p.label,
            hex(p.offset),
            hex(p.offset.saturating_add(p.length)),
            p.length
        );
        let x = map.scale.x(p.offset);
        let w = map.scale.x(p.offset.saturating_add(p.length)) - x;
        rect(s, x, 12.0, w.max(2.0), 16.0, p.class, &title);
    }
    blocks_lane(s, map, 42.0);
    let _ = write!(s, "<text class=\"lbl\" x=\"2\" y=\"69\">findings</text>");
    marks_lane(s, n, r, &map.scale, 71.0);
    if map.span > map.file_size {
        let x = map.scale.x(map.file_size);
        let _ = write!(
            s,
            "<line class=\"eof\" x1=\"{x:.2}\" x2=\"{x:.2}\" y1=\"8\" y2=\"86\"><title>end of file at {}</title></line>",
            hex(map.file_size)
        );
    }
    let _ = write!(
        s,
        "<rect class=\"cursor\" x=\"0\" y=\"8\" width=\"4\" height=\"80\" visibility=\"hidden\"/>"
    );
    s.push_str("</svg>\n<svg class=\"map\" viewBox=\"0 0 1000 14\" aria-hidden=\"true\">");
    axis(s, 11.0, &map.scale);
    s.push_str("</svg>\n");
    if let Some((end, parts)) = &map.zoom {
        let _ = write!(
            s,
            "<p class=\"muted\">Zoom: the structures' area, bytes 0..{} ({}), drawn exactly.</p>\
             <svg class=\"map\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} 56\" role=\"img\" aria-label=\"file map zoom\">\
             <rect class=\"lane\" x=\"0\" y=\"2\" width=\"{WIDTH}\" height=\"18\"><title>unowned space</title></rect>",
            hex(*end),
            size(*end)
        );
        for p in parts {
            let title = format!(
                "{}: {}..{} ({} bytes)",
                p.label,
                hex(p.offset),
                hex(p.offset.saturating_add(p.length)),
                p.length
            );
            let zs = Scale::linear(*end);
            let x = zs.x(p.offset);
            let w = zs.x(p.offset.saturating_add(p.length).min(*end)) - x;
            rect(s, x, 3.0, w.max(1.0), 16.0, p.class, &title);
        }
        marks_lane(s, n, r, &Scale::linear(*end), 24.0);
        axis(s, 52.0, &Scale::linear(*end));
        s.push_str("</svg>\n");
    }
    // The structures as a table too (offsets to copy).
    s.push_str("<table><thead><tr><th>structure</th><th>offset</th><th>end</th><th>length</th></tr></thead><tbody>");
    for p in &map.parts {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"off\">{}</td><td class=\"off\">{}</td><td>{}</td></tr>",
            esc(&p.label),
            hex(p.offset),
            hex(p.offset.saturating_add(p.length)),
            p.length
        );
    }
    s.push_str("</tbody></table>\n");
}

/// Blocks per bin, consecutive bins of the same dominant kind drawn as one rect.
fn blocks_lane(s: &mut String, map: &FileMap, y: f64) {
    const CLASS: [&str; 3] = ["payload", "sbm", "retained"];
    const NAME: [&str; 3] = ["payload", "sector bitmap", "retained"];
    let n = map.bins.len();
    let dominant = |k: usize| -> Option<usize> {
        let b = &map.bins[k];
        // Any block shows, however small against its bin (a block far past the end).
        if b.iter().all(|&x| x == 0) {
            return None;
        }
        (0..3).max_by_key(|&k| b[k])
    };
    let mut i = 0;
    while i < n {
        let Some(k) = dominant(i) else {
            i += 1;
            continue;
        };
        let mut e = i + 1;
        let mut sum = map.bins[i];
        while e < n && dominant(e) == Some(k) {
            for (t, add) in sum.iter_mut().zip(map.bins[e]) {
                *t = t.saturating_add(add);
            }
            e += 1;
        }
        let (from, to) = (map.scale.range(i).0, map.scale.range(e - 1).1);
        let title = format!(
            "{}..{}: mostly {} blocks ({} payload, {} sector bitmap, {} retained bytes)",
            hex(from),
            hex(to),
            NAME[k],
            sum[0],
            sum[1],
            sum[2]
        );
        let x = map.scale.x(from);
        rect(s, x, y, map.scale.x(to) - x, 16.0, CLASS[k], &title);
        i = e;
    }
}

fn hexdump(p: &HexPreview) -> String {
    let mut out = String::new();
    for (k, line) in p.bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:#012x}  ", p.offset + (k * 16) as u64);
        for b in line {
            let _ = write!(out, "{b:02x} ");
        }
        for _ in line.len()..16 {
            out.push_str("   ");
        }
        out.push(' ');
        for &b in line {
            out.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        out.push('\n');
    }
    esc(&out)
}

fn findings_section(
    s: &mut String,
    n: usize,
    r: &ImageReport,
    img: &Parts,
    rules: &mut BTreeSet<&'static str>,
) {
    let _ = writeln!(
        s,
        "<h3>Findings ({} shown by the check)</h3>",
        r.findings.len()
    );
    let families: BTreeSet<&str> = r.findings.iter().map(|f| family(f.rule)).collect();
    let _ = write!(
        s,
        "<div class=\"filters\" data-table=\"ft-{n}\"><label>severity <select class=\"f-sev\">\
         <option value=\"\">all</option><option>error</option><option>warning</option><option>info</option></select></label>\
         <label>family <select class=\"f-fam\"><option value=\"\">all</option>"
    );
    for f in &families {
        let _ = write!(s, "<option>{}</option>", esc(f));
    }
    s.push_str(
        "</select></label><label>text <input class=\"f-text\" type=\"search\"></label>\
         <span class=\"f-count muted\"></span></div>\n",
    );
    let _ = write!(
        s,
        "<table id=\"ft-{n}\" class=\"findings\"><thead><tr><th class=\"sortable\" data-num=\"1\">#</th>\
         <th class=\"sortable\" data-num=\"1\">severity</th><th class=\"sortable\">rule</th>\
         <th class=\"sortable\" data-num=\"1\">offset</th><th class=\"sortable\" data-num=\"1\">length</th>\
         <th class=\"sortable\">structure</th><th>message</th><th>map</th></tr></thead><tbody>"
    );
    let mut not_shown: BTreeMap<&'static str, u64> = BTreeMap::new();
    let listed = listed(r);
    for (i, f) in r.findings.iter().enumerate() {
        rules.insert(f.rule);
        if !listed[i] {
            *not_shown.entry(f.rule).or_default() += 1;
            continue;
        }
        let waived = r.waiver(i);
        let sev_rank = match f.severity {
            Severity::Error => 3,
            Severity::Warning => 2,
            Severity::Info => 1,
        };
        let _ = write!(
            s,
            "<tr id=\"f-{n}-{i}\" data-sev=\"{sev}\" data-fam=\"{fam}\"{cls}><td data-key=\"{i}\">{i}</td>\
             <td data-key=\"{sev_rank}\" class=\"sev-{sev}\">{sev}</td><td class=\"rule\"><a href=\"#rule-{rule}\" title=\"{title}\">{rule}</a></td>",
            sev = f.severity.as_str(),
            fam = esc(family(f.rule)),
            cls = if waived.is_some() {
                " class=\"waived\""
            } else {
                ""
            },
            rule = esc(f.rule),
            title = esc(catalogue().get(f.rule).map_or("", |c| c.title)),
        );
        match f.offset {
            Some(o) => {
                let _ = write!(s, "<td class=\"off\" data-key=\"{o}\">{}</td>", hex(o));
            }
            None => s.push_str("<td class=\"off\" data-key=\"-1\">-</td>"),
        }
        let _ = write!(
            s,
            "<td data-key=\"{}\">{}</td><td class=\"mono\">{}</td><td class=\"msg\">{}",
            f.length.unwrap_or(0),
            f.length.map_or("-".into(), |l| l.to_string()),
            esc(&f.structure),
            esc(&f.message)
        );
        if f.view == View::Replayed {
            s.push_str(" <span class=\"muted\">(judged after log replay)</span>");
        }
        if let (Some(o), Some(l)) = (f.offset, f.length)
            && HIDDEN_DATA_RULES.contains(&f.rule)
        {
            let _ = write!(
                s,
                " <span class=\"muted\">range {}..{} ({} bytes)</span>",
                hex(o),
                hex(o.saturating_add(l)),
                l
            );
        }
        if let Some(w) = waived {
            let _ = write!(s, "<br><b>waived:</b> {}", esc(w));
        }
        if let Some(p) = img.previews.get(&i) {
            let _ = write!(
                s,
                "<details><summary>hex at {}</summary><pre class=\"hex\">{}</pre></details>",
                hex(p.offset),
                hexdump(p)
            );
        }
        s.push_str("</td><td>");
        if let Some(o) = f.offset
            && img.map.is_some()
        {
            let _ = write!(
                s,
                "<a class=\"to-map\" href=\"#map-{n}\" data-off=\"{o}\">map</a>"
            );
        }
        s.push_str("</td></tr>\n");
    }
    s.push_str("</tbody></table>\n");
    if !r.suppressed.is_empty() || !not_shown.is_empty() {
        s.push_str("<p><b>Not listed:</b></p><ul>");
        for (id, c) in &not_shown {
            rules.insert(id);
            let _ = write!(
                s,
                "<li>{c} more <a href=\"#rule-{0}\">{0}</a> findings not listed in this page (see the JSON output)</li>",
                esc(id)
            );
        }
        for (id, sup) in &r.suppressed {
            rules.insert(id);
            let waived = r
                .waived_suppressed
                .get(id)
                .map_or(String::new(), |w| format!(" (waived: {})", esc(w)));
            let _ = write!(
                s,
                "<li>{} more <a href=\"#rule-{1}\">{1}</a> findings not shown (raise --max-per-rule to see them){waived}</li>",
                sup.count,
                esc(id)
            );
        }
        s.push_str("</ul>\n");
    }
}

fn log_section(s: &mut String, n: usize, info: &Value) {
    s.push_str("<h3>Log</h3>");
    let log = &info["log"];
    if log.is_null() {
        s.push_str("<p class=\"muted\">no log region</p>\n");
        return;
    }
    let _ = write!(
        s,
        "<dl class=\"kv\"><dt>state</dt><dd>{}</dd><dt>LogGuid (header)</dt><dd class=\"mono\">{}</dd>\
         <dt>log region</dt><dd class=\"mono\">{} ({} bytes)</dd><dt>entries found</dt><dd>{}</dd>",
        esc(log["state"].as_str().unwrap_or("")),
        esc(&scalar(&log["log_guid"])),
        hex(log["offset"].as_u64().unwrap_or(0)),
        log["length"].as_u64().unwrap_or(0),
        log["entry_count"].as_u64().unwrap_or(0)
    );
    if let Some(seqs) = log["sequences"].as_array() {
        for sq in seqs {
            let _ = write!(
                s,
                "<dt>{} scan</dt><dd>{} valid sequence(s); active head SequenceNumber {}; {} entries replayed</dd>",
                esc(sq["mode"].as_str().unwrap_or("")),
                sq["sequences"].as_array().map_or(0, |a| a.len()),
                esc(&scalar(&sq["active_head_sequence"])),
                sq["replayed"].as_array().map_or(0, |a| a.len())
            );
        }
    }
    s.push_str("</dl>\n");
    let entries: Vec<&Value> = log["entries"]
        .as_array()
        .map_or(Vec::new(), |a| a.iter().collect());
    if entries.is_empty() {
        s.push_str("<p class=\"muted\">no log entries</p>\n");
    } else {
        let mut sorted = entries.clone();
        sorted.sort_by_key(|e| {
            (
                e["sequence_number"].as_u64().unwrap_or(0),
                e["ring_offset"].as_u64().unwrap_or(0),
            )
        });
        // Sessions: entries by LogGuid, in order of first appearance by sequence.
        let mut sessions: Vec<String> = Vec::new();
        for e in &sorted {
            let g = scalar(&e["log_guid"]);
            if !sessions.contains(&g) {
                sessions.push(g);
            }
        }
        let session = |e: &Value| {
            sessions
                .iter()
                .position(|g| *g == scalar(&e["log_guid"]))
                .unwrap_or(0)
        };
        s.push_str("<p class=\"muted\">Timeline: entries by SequenceNumber, coloured by LogGuid (session); outlined entries are the ones replay applies.</p>");
        let count = sorted.len().min(MAX_TABLE_ROWS);
        let w = WIDTH / count.max(1) as f64;
        let _ = write!(
            s,
            "<svg class=\"map\" id=\"log-{n}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} 30\" role=\"img\" aria-label=\"log timeline\">"
        );
        for (k, e) in sorted.iter().take(count).enumerate() {
            let replayed = e["replayed"].as_bool().unwrap_or(false);
            let class = format!(
                "s-{}{}",
                session(e) % 6,
                if replayed { " replayed" } else { "" }
            );
            let title = format!(
                "SequenceNumber {} at ring offset {} (file {}), LogGuid {}, {}{}",
                e["sequence_number"].as_u64().unwrap_or(0),
                hex(e["ring_offset"].as_u64().unwrap_or(0)),
                hex(e["file_offset"].as_u64().unwrap_or(0)),
                scalar(&e["log_guid"]),
                if e["valid_strict"].as_bool().unwrap_or(false) {
                    "valid"
                } else {
                    "not valid"
                },
                if replayed { ", replayed" } else { "" }
            );
            rect(
                s,
                k as f64 * w + 0.5,
                4.0,
                (w - 1.0).max(0.8),
                22.0,
                &class,
                &title,
            );
        }
        s.push_str("</svg>\n<ul>");
        for (k, g) in sessions.iter().enumerate() {
            let members: Vec<u64> = sorted
                .iter()
                .filter(|e| scalar(&e["log_guid"]) == *g)
                .filter_map(|e| e["sequence_number"].as_u64())
                .collect();
            let _ = write!(
                s,
                "<li><i class=\"sw c-{k6}\"></i> session {k}: LogGuid <span class=\"mono\">{}</span>: {} entries, SequenceNumber {}..{}</li>",
                esc(g),
                members.len(),
                members.first().copied().unwrap_or(0),
                members.last().copied().unwrap_or(0),
                k6 = k % 6
            );
        }
        s.push_str("</ul>\n");
        let _ = write!(
            s,
            "<table><thead><tr><th>SequenceNumber</th><th>session</th><th>ring offset</th><th>file offset</th>\
             <th>length</th><th>descriptors (data)</th><th>valid strict / lenient</th><th>replayed</th><th>fails</th></tr></thead><tbody>"
        );
        for e in sorted.iter().take(count) {
            let fails: Vec<String> = e["fails"]
                .as_array()
                .map_or(Vec::new(), |a| a.iter().map(scalar).collect());
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"off\">{}</td><td class=\"off\">{}</td><td>{}</td><td>{} ({})</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>",
                e["sequence_number"].as_u64().unwrap_or(0),
                session(e),
                hex(e["ring_offset"].as_u64().unwrap_or(0)),
                hex(e["file_offset"].as_u64().unwrap_or(0)),
                e["entry_length"].as_u64().unwrap_or(0),
                e["descriptor_count"].as_u64().unwrap_or(0),
                e["data_descriptors"].as_u64().unwrap_or(0),
                e["valid_strict"].as_bool().unwrap_or(false),
                e["valid_lenient"].as_bool().unwrap_or(false),
                if e["replayed"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    ""
                },
                esc(&fails.join(", "))
            );
        }
        s.push_str("</tbody></table>\n");
    }
    let replay = &log["replay"];
    if !replay.is_null() {
        let changes: Vec<&Value> = replay["changes"]
            .as_array()
            .map_or(Vec::new(), |a| a.iter().collect());
        let _ = write!(
            s,
            "<p>Replay {}: {} descriptors applied, file size {} → {}; {} byte range(s) change.</p>",
            if replay["dirty"].as_bool().unwrap_or(false) {
                "pending"
            } else {
                "already applied"
            },
            replay["descriptors_applied"].as_u64().unwrap_or(0),
            replay["size_before"].as_u64().unwrap_or(0),
            replay["size_after"].as_u64().unwrap_or(0),
            changes.len()
        );
        if !changes.is_empty() {
            s.push_str("<table><thead><tr><th>offset</th><th>length</th><th>structure changed</th></tr></thead><tbody>");
            for c in changes.iter().take(MAX_TABLE_ROWS) {
                let _ = write!(
                    s,
                    "<tr><td class=\"off\">{}</td><td>{}</td><td>{}</td></tr>",
                    hex(c["offset"].as_u64().unwrap_or(0)),
                    c["length"].as_u64().unwrap_or(0),
                    esc(c["structure"].as_str().unwrap_or(""))
                );
            }
            s.push_str("</tbody></table>\n");
            if changes.len() > MAX_TABLE_ROWS {
                let _ = write!(
                    s,
                    "<p class=\"muted\">{} more ranges not listed</p>",
                    changes.len() - MAX_TABLE_ROWS
                );
            }
        }
    }
}

fn chain_section(s: &mut String, img: &Parts, r: &ImageReport) {
    s.push_str("<h3>Chain</h3>");
    if img.chain.len() <= 1 && img.chain.iter().all(|m| m.broken.is_none()) {
        s.push_str(
            "<p class=\"muted\">checked alone (no parent resolved: --parent / --find-parents)</p>",
        );
    } else {
        s.push_str(
            "<table><thead><tr><th>#</th><th>member</th><th>found via</th><th>chain ends</th></tr></thead><tbody>",
        );
        for (k, m) in img.chain.iter().enumerate().take(MAX_TABLE_ROWS) {
            let how = match m.found_via {
                Some(key) => key,
                None if k == 0 => "the image checked",
                None => "named with --parent",
            };
            let _ = write!(
                s,
                "<tr{}><td>{k}</td><td class=\"path\">{}{}</td><td>{}</td><td>",
                if k == img.chain_index {
                    " class=\"this\""
                } else {
                    ""
                },
                esc(&m.path),
                if k == img.chain_index {
                    " <span class=\"muted\">(this image)</span>"
                } else {
                    ""
                },
                esc(how)
            );
            if let Some((rule, why)) = &m.broken {
                let _ = write!(s, "<a href=\"#rule-{0}\">{0}</a> {1}", esc(rule), esc(why));
            }
            s.push_str("</td></tr>");
        }
        s.push_str("</tbody></table>");
    }
    if let Some(info) = &img.info
        && let Some(entries) = info["parent_locator"]["entries"].as_array()
    {
        s.push_str("<p>Parent locator:</p><table><thead><tr><th>entry</th><th>key</th><th>value</th></tr></thead><tbody>");
        for e in entries.iter().take(MAX_TABLE_ROWS) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
                e["entry"].as_u64().unwrap_or(0),
                esc(e["key"].as_str().unwrap_or("")),
                esc(e["value"].as_str().unwrap_or(""))
            );
        }
        s.push_str("</tbody></table>");
    }
    let linkage: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.rule.starts_with("CHAIN-"))
        .collect();
    if !img.chain.is_empty() || !linkage.is_empty() {
        if linkage.is_empty() {
            s.push_str("<p>Linkage checks (CHAIN rules): no finding.</p>");
        } else {
            s.push_str("<p>Linkage checks (CHAIN rules):</p><ul>");
            for f in linkage.iter().take(MAX_TABLE_ROWS) {
                let _ = write!(
                    s,
                    "<li><span class=\"sev-{0}\">{0}</span> <a href=\"#rule-{1}\">{1}</a> {2}</li>",
                    f.severity.as_str(),
                    esc(f.rule),
                    esc(&f.message)
                );
            }
            s.push_str("</ul>");
        }
    }
    s.push('\n');
}

fn virtual_class(state: State) -> &'static str {
    match state {
        State::Data => "v-data",
        State::Zero => "v-zero",
        State::Unallocated => "v-unallocated",
        State::Parent => "v-parent",
        State::Partial => "v-partial",
    }
}

fn virtual_section(s: &mut String, n: usize, map: Option<&Result<VirtualMap, String>>) {
    s.push_str("<h3>Virtual disk map</h3>");
    let vm = match map {
        None => {
            s.push_str("<p class=\"muted\">not available</p>\n");
            return;
        }
        Some(Err(why)) => {
            let _ = writeln!(s, "<p class=\"muted\">not available: {}</p>", esc(why));
            return;
        }
        Some(Ok(vm)) => vm,
    };
    let _ = write!(
        s,
        "<p class=\"muted\">The virtual disk as a guest reads it ({} bytes, {}; a pending log, if \
         any, replayed), from the allocation map (`vhdx-check map` lists every extent): {} extent(s).</p>",
        vm.size,
        size(vm.size),
        vm.extents
    );
    if let Some(why) = &vm.unreadable {
        let _ = write!(s, "<p>Not every byte can be read exactly: {}</p>", esc(why));
    }
    if let Some(at) = vm.stopped_at {
        let _ = write!(
            s,
            "<p class=\"muted\">The map stops at virtual offset {} after {} extents; the rest of \
             the disk is not drawn (`vhdx-check map` lists it all).</p>",
            hex(at),
            vm.extents
        );
    }
    if let Some(why) = &vm.failed {
        let _ = write!(
            s,
            "<p class=\"sev-error\">The walk ended early: {}</p>",
            esc(why)
        );
    }
    legend(
        s,
        &[
            ("v-data", "data"),
            ("v-partial", "partial"),
            ("v-zero", "zero"),
            ("v-unallocated", "unallocated"),
            ("v-parent", "parent (not given)"),
        ],
    );
    // Per bin the state covering most bytes; equal neighbours merge.
    let scale = Scale::linear(vm.size.max(1));
    let top = |b: &[u64; 5]| -> Option<usize> {
        if b.iter().all(|&x| x == 0) {
            return None;
        }
        (0..5).max_by_key(|&k| b[k])
    };
    let _ = write!(
        s,
        "<svg class=\"map\" id=\"vmap-{n}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} 22\" role=\"img\" aria-label=\"virtual disk map\">"
    );
    let mut i = 0;
    while i < vm.bins.len() {
        let Some(k) = top(&vm.bins[i]) else {
            i += 1;
            continue;
        };
        let mut e = i + 1;
        while e < vm.bins.len() && top(&vm.bins[e]) == Some(k) {
            e += 1;
        }
        let (from, to) = (scale.range(i).0, scale.range(e - 1).1);
        let x = scale.x(from);
        let state = STATES[k];
        rect(
            s,
            x,
            2.0,
            scale.x(to) - x,
            18.0,
            virtual_class(state),
            &format!(
                "virtual {}..{}: mostly {}",
                hex(from),
                hex(to),
                state.name()
            ),
        );
        i = e;
    }
    s.push_str("</svg>\n<svg class=\"map\" viewBox=\"0 0 1000 14\" aria-hidden=\"true\">");
    axis(s, 11.0, &scale);
    let _ = write!(
        s,
        "</svg>\n<table id=\"vt-{n}\" class=\"extents\"><thead><tr><th>virtual offset</th><th>length</th><th>state</th><th>source</th><th>file offset</th></tr></thead><tbody>"
    );
    for e in &vm.rows {
        let _ = write!(
            s,
            "<tr><td class=\"off\">{}</td><td>{}</td><td>{}</td><td class=\"path\">{}</td><td class=\"off\">{}</td></tr>",
            hex(e.offset),
            e.length,
            e.state.name(),
            esc(e.source.as_deref().unwrap_or("-")),
            e.file_offset.map_or("-".into(), hex)
        );
    }
    s.push_str("</tbody></table>\n");
    let listed = vm.rows.len() as u64;
    if vm.extents > listed {
        let _ = write!(
            s,
            "<p class=\"muted\">{} more extents not listed</p>",
            vm.extents - listed
        );
    }
}

fn digests_section(s: &mut String, r: &ImageReport) {
    let Some(d) = &r.digests else { return };
    let _ = writeln!(
        s,
        "<h3>Digests</h3><dl class=\"kv\"><dt>{0} file</dt><dd class=\"mono\">{1}</dd><dt>{0} virtual disk</dt><dd class=\"mono\">{2}</dd></dl>",
        esc(d.algorithm),
        esc(&d.file),
        match (&d.virtual_disk, &d.virtual_unavailable) {
            (Some(v), _) => esc(v),
            (None, why) => format!("unavailable: {}", esc(why.as_deref().unwrap_or("unknown"))),
        }
    );
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn structures_section(s: &mut String, info: &Value) {
    s.push_str("<h3>Parsed structures</h3>");
    if let Some(md) = info["metadata"]["items"].as_array() {
        s.push_str("<table><thead><tr><th>metadata item</th><th>item id</th><th>offset</th><th>length</th><th>flags</th></tr></thead><tbody>");
        for it in md.iter().take(MAX_TABLE_ROWS) {
            let flags: Vec<&str> = [
                ("is_user", "user"),
                ("is_virtual_disk", "virtual disk"),
                ("is_required", "required"),
            ]
            .iter()
            .filter(|(k, _)| it[*k].as_bool().unwrap_or(false))
            .map(|(_, n)| *n)
            .collect();
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"off\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(it["name"].as_str().unwrap_or("")),
                esc(&scalar(&it["item_id"])),
                hex(it["offset"].as_u64().unwrap_or(0)),
                it["length"].as_u64().unwrap_or(0),
                flags.join(", ")
            );
        }
        s.push_str("</tbody></table>");
    }
    let mut json = serde_json::to_string_pretty(info).unwrap_or_default();
    let note = if json.len() > MAX_INFO_JSON {
        let mut cut = MAX_INFO_JSON;
        while !json.is_char_boundary(cut) {
            cut -= 1;
        }
        json.truncate(cut);
        " (truncated; `vhdx-check info --format json` gives all)"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "<details><summary>Everything parsed (the info document){note}</summary><pre class=\"json\">{}</pre></details>",
        esc(&json)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
        // sha256("") in base64, as browsers compute CSP hashes.
        assert_eq!(
            b64(&Sha256::digest(b"")),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    /// Map marks link to rows that exist: findings past the row cap get none.
    #[test]
    fn map_marks_link_only_to_listed_rows() {
        let finding = |k: u64| Finding {
            rule: "BAT-002",
            severity: Severity::Error,
            message: format!("entry {k}"),
            offset: Some(k * MIB),
            length: Some(8),
            structure: format!("bat[{k}]"),
            spec: "MS-VHDX 2.5.1",
            view: View::Raw,
        };
        let report = ImageReport {
            size: 600 * MIB,
            findings: (0..600).map(finding).collect(),
            suppressed: BTreeMap::new(),
            waived: BTreeMap::new(),
            waived_suppressed: BTreeMap::new(),
            digests: None,
        };
        let parts = Parts {
            map: Some(FileMap {
                file_size: 600 * MIB,
                span: 600 * MIB,
                parts: Vec::new(),
                bins: vec![[0; 3]; BINS],
                scale: Scale::linear(600 * MIB),
                blocks: [0; 3],
                zoom: None,
            }),
            ..Parts::default()
        };
        let page = render(&[Checked {
            path: std::path::Path::new("x.vhdx"),
            outcome: Status::Report(&report),
            rejected: true,
            parts: Some(&parts),
        }]);
        let links: Vec<&str> = page
            .split("<a href=\"#f-0-")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        assert_eq!(
            links.len(),
            MAX_ROWS_PER_RULE,
            "one mark per listed finding"
        );
        for i in links {
            assert!(
                page.contains(&format!("<tr id=\"f-0-{i}\"")),
                "mark to missing row {i}"
            );
        }
        assert!(
            page.contains("400 more <a href=\"#rule-BAT-002\">BAT-002</a> findings not listed")
        );
    }

    #[test]
    fn escaping_neutralises_markup_and_controls() {
        let e = esc("<script>alert('x')</script>\"&\u{1}\u{7f}\u{fffe}");
        assert_eq!(
            e,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;\\u{1}\\u{7f}\\u{fffe}"
        );
    }
}
