//! The virtual-disk map: the allocation states over the whole disk, aggregated as the
//! extents come, and its section of the page.

use super::escape::{esc, hex, size};
use super::scale::Scale;
use super::svg::{axis, legend, rect};
use super::{BINS, MAX_TABLE_ROWS, WIDTH};
use crate::model::virtual_disk::{Extent, State, VirtualDisk};
use std::fmt::Write as _;
use std::io;

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

fn virtual_class(state: State) -> &'static str {
    match state {
        State::Data => "v-data",
        State::Zero => "v-zero",
        State::Unallocated => "v-unallocated",
        State::Parent => "v-parent",
        State::Partial => "v-partial",
    }
}

pub(super) fn virtual_section(s: &mut String, n: usize, map: Option<&Result<VirtualMap, String>>) {
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
