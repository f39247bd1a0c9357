//! The file map: what occupies which bytes of the file (from the model), and its SVG
//! lanes (structures, blocks, finding marks), the zoom of the structures' area and the
//! structures table.

use super::escape::{esc, hex, size};
use super::findings::listed;
use super::scale::Scale;
use super::svg::{axis, legend, rect};
use super::{BINS, MAP_ERROR_RULES, MAX_PARTS, MAX_ZOOM_BLOCKS, WIDTH};
use crate::check::ImageReport;
use crate::format::MIB;
use crate::format::bat;
use crate::model::{Model, ObjectKind};
use crate::report::HIDDEN_DATA_RULES;
use std::fmt::Write as _;

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

/// Finding marks per bin: the first finding's index and the worst kind (err > hid > other).
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

pub(super) fn file_map_section(s: &mut String, n: usize, map: &FileMap, r: &ImageReport) {
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
