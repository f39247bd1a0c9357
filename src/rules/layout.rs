//! LAYOUT: every allocated object against every other and against the file (CATALOGUE
//! 2.10). Overlaps are found on a 1 MiB grid (all objects are 1 MiB aligned by rule), so
//! the work is linear in the BAT and memory is one bit per MiB of the real file.

use super::sink::Sink;
use super::{Pass, Scope, bat::past_eof_severity, hex, id};
use crate::findings::Loc;
use crate::findings::Severity;
use crate::format::MIB;
use crate::format::bat::{self, BatEntry, Slot, SlotCursor};
use crate::model::{Bits, DiskType, Model, Object, ObjectKind};

pub const PASSES: &[Pass] = &[Pass {
    ids: &[
        id::LAYOUT_001,
        id::LAYOUT_002,
        id::LAYOUT_003,
        id::LAYOUT_004,
        id::LAYOUT_005,
        id::LAYOUT_006,
        id::LAYOUT_007,
        id::LAYOUT_008,
        id::LAYOUT_009,
    ],
    scope: Scope::Views,
    run,
}];

/// Block↔block overlaps whose earlier owner is looked up in a second BAT pass.
const MAX_CONFLICTS: usize = 100;
/// Blocks reaching past EOF (outside the grid) kept for the overlap sweep beyond it.
const MAX_BEYOND: usize = 1 << 16;

fn unit_range(o: &Object) -> (u64, u64) {
    (o.offset / MIB, o.end().div_ceil(MIB))
}

/// False when the entry allocates nothing in any slot: states 0-5 with FileOffsetMB 0
/// (see `Model::block_object`). The common entries of an empty disk stop here.
fn allocates(e: BatEntry) -> bool {
    e.file_offset() != 0 || e.state() >= bat::PAYLOAD_BLOCK_FULLY_PRESENT
}

/// Whether any of `entries` [`allocates`], in bit operations only, so that it vectorises:
/// FileOffsetMB (bits 20-63) non-zero, or state bits 1 and 2 both set (states 6 and 7).
fn any_allocates(entries: &[BatEntry]) -> bool {
    let bits = (entries.iter()).fold(0, |acc, e| acc | (e.0 >> 20) | (e.0 >> 1 & e.0 >> 2 & 1));
    debug_assert_eq!(bits != 0, entries.iter().any(|&e| allocates(e)));
    bits != 0
}

/// How many leading entries of `entries` (payload slots) are FULLY_ or PARTIALLY_PRESENT
/// blocks that follow each other in the file: block j at the first one's offset + j
/// blocks.
fn solid_run(entries: &[BatEntry], block_size: u64) -> usize {
    let Some(first) = entries.first() else {
        return 0;
    };
    // States 6 and 7 are the states with bits 1 and 2 set; reserved bits do not matter.
    const SOLID: u64 = 0b110;
    const _: () = assert!(
        bat::PAYLOAD_BLOCK_FULLY_PRESENT as u64 & SOLID == SOLID
            && bat::PAYLOAD_BLOCK_PARTIALLY_PRESENT as u64 & SOLID == SOLID
    );
    if first.0 & SOLID != SOLID {
        return 0;
    }
    let mask = !(MIB - 1) | SOLID;
    super::bat::arithmetic_prefix(entries, mask, first.file_offset() | SOLID, block_size)
}

fn is_retained(o: &Object) -> bool {
    matches!(o.kind, ObjectKind::RetainedBlock { .. })
}

fn overlap(s: &mut Sink, a: &Object, b: &Object) {
    let sev = if is_retained(a) || is_retained(b) {
        Severity::Warning
    } else {
        Severity::Error
    };
    let lo = a.offset.max(b.offset);
    let hi = a.end().min(b.end());
    s.emit_as(
        id::LAYOUT_001,
        sev,
        Loc::at(lo, hi.saturating_sub(lo)),
        || {
            (
                format!("{}", ObjectLabel(b)),
                format!("{b} overlaps {a}: {}", overlap_follows(sev)),
            )
        },
    );
}

/// What an overlap of severity `sev` means (a warning involves retained contents).
fn overlap_follows(sev: Severity) -> &'static str {
    if sev == Severity::Warning {
        "only a retained block's old contents share the bytes, so no live data is affected"
    } else {
        "both read the same bytes, and writing one changes the other"
    }
}

struct ObjectLabel<'a>(&'a Object);

impl std::fmt::Display for ObjectLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.kind {
            ObjectKind::HeaderSection => write!(f, "header_section"),
            ObjectKind::Region { index } => write!(f, "region_table.entry[{index}]"),
            ObjectKind::Log => write!(f, "log"),
            ObjectKind::PayloadBlock { bat_index }
            | ObjectKind::SectorBitmapBlock { bat_index }
            | ObjectKind::RetainedBlock { bat_index } => write!(f, "bat[{bat_index}]"),
        }
    }
}

struct Grid {
    fixed: Vec<Object>,
    /// Fixed objects reaching past EOF, where the grid cannot see them.
    fixed_beyond: Vec<Object>,
    fixed_bits: Bits,
    block_bits: Bits,
    /// Units of blocks that are not retained (states 6/7, SB 6).
    solid_bits: Bits,
    block_starts: Bits,
    /// (unit, later object) for block↔block overlaps still to attribute.
    conflicts: Vec<(u64, Object)>,
    /// Blocks reaching past EOF, for [`overlaps_beyond`].
    beyond: Vec<Object>,
    last_end: u64,
    first_block: Option<u64>,
}

fn run(m: &Model, s: &mut Sink) {
    let units = Bits::for_file(m.file_size).len();
    let fixed = m.fixed_objects();
    let fixed_beyond = fixed
        .iter()
        .filter(|o| o.length > 0 && o.end() > units * MIB)
        .copied()
        .collect();
    let mut grid = Grid {
        fixed_bits: Bits::new(units),
        block_bits: Bits::new(units),
        solid_bits: Bits::new(units),
        block_starts: Bits::new(units),
        conflicts: Vec::new(),
        beyond: Vec::new(),
        fixed_beyond,
        last_end: 0,
        first_block: None,
        fixed,
    };
    for (n, o) in grid.fixed.iter().enumerate() {
        if o.offset
            .checked_add(o.length)
            .is_none_or(|end| end > m.file_size)
        {
            s.emit(id::LAYOUT_002, Loc::at(o.offset, o.length), || {
                (
                    format!("{}", ObjectLabel(o)),
                    format!(
                        "{o} extends past the end of the file ({}): its tail cannot be read (the file is truncated or the location is wrong)",
                        hex(m.file_size)
                    ),
                )
            });
        }
        for p in &grid.fixed[..n] {
            if o.offset < p.end() && p.offset < o.end() && o.length > 0 && p.length > 0 {
                overlap(s, p, o);
            }
        }
        grid.last_end = grid.last_end.max(o.end());
    }
    for o in &grid.fixed {
        let (a, b) = unit_range(o);
        grid.fixed_bits.set_range(a, b);
    }
    // Without a geometry no entry allocates an object (see `Model::block_object`).
    if let Some(g) = m.geometry {
        m.for_each_bat_chunk(|first, entries| {
            // BAT slack allocates nothing (the walk stops at an entry there that would): no
            // need to read it. Most of a small disk's BAT region is slack.
            if first >= g.total_entries {
                return false;
            }
            // Most chunks of an empty disk allocate nothing at all: a branch-free look per
            // 64 entries, which stops at the first that allocates.
            if !(entries.chunks(64)).any(any_allocates) {
                return true;
            }
            let mut slots = SlotCursor::at(&g, first);
            let mut k = 0;
            while k < entries.len() {
                // Payload blocks laid end to end, as writers allocate them, go onto the grid
                // in one step when nothing is there yet (`Grid::run`); anything else, one
                // entry at a time.
                let run = (slots.payload_run() as usize).min(entries.len() - k);
                let n = solid_run(&entries[k..k + run], g.block_size);
                if n > 1 && grid.run(m, entries[k].file_offset(), n as u64, g.block_size) {
                    slots.skip_payload(n as u64);
                    k += n;
                    continue;
                }
                for _ in 0..n.max(1) {
                    let slot = slots.next_slot();
                    let (i, e) = (first + k as u64, entries[k]);
                    k += 1;
                    if !allocates(e) {
                        continue;
                    }
                    let bitmap = match slot {
                        Slot::Beyond => return false,
                        Slot::SectorBitmap(_) => true,
                        Slot::Payload(_) => false,
                    };
                    if let Some(o) = m.block_object_at(i, bitmap, e) {
                        grid.block(m, s, i, e, o);
                    }
                }
            }
            true
        });
    }
    attribute_conflicts(m, s, &grid.conflicts);
    overlaps_beyond(s, &mut grid.beyond, units * MIB);

    // Sweeps need the complete object list: a missing header, region table or BAT would
    // make every structure look like free space.
    let complete = m.current_header().is_some()
        && m.region_choice.is_some()
        && m.geometry.is_some()
        && m.bat.is_some();
    file_length(m, s, &grid, complete);
    header_reserved(m, s);
    last_file_offset(m, s, &grid);
    if complete {
        free_space(m, s, &grid);
        fixed_size(m, s, &grid);
        order(m, s, &grid);
    }
}

impl Grid {
    /// `n` solid payload blocks of `block_size` laid end to end from `start`, put on the
    /// grid at once if that is all [`Grid::block`] would do for them one by one: they lie
    /// inside the file (no LAYOUT-002) and touch no fixed object and no earlier block (no
    /// LAYOUT-001; they cannot overlap each other). Returns false, changing nothing,
    /// otherwise.
    fn run(&mut self, m: &Model, start: u64, n: u64, block_size: u64) -> bool {
        let Some(end) = n
            .checked_mul(block_size)
            .and_then(|len| start.checked_add(len))
        else {
            return false;
        };
        let (a, b) = (start / MIB, end.div_ceil(MIB));
        if end > m.file_size || b > self.block_bits.len() {
            return false;
        }
        if self.fixed_bits.any(a, b) || self.block_bits.any(a, b) {
            return false;
        }
        self.last_end = self.last_end.max(end);
        self.first_block = Some(self.first_block.map_or(start, |f| f.min(start)));
        self.solid_bits.set_range(a, b);
        self.block_bits.set_range(a, b);
        let step = (block_size / MIB).max(1);
        if step == 1 {
            self.block_starts.set_range(a, b);
        } else {
            for u in (a..b).step_by(step as usize) {
                self.block_starts.set_range(u, u + 1);
            }
        }
        true
    }

    fn block(&mut self, m: &Model, s: &mut Sink, i: u64, e: BatEntry, o: Object) {
        if let Some(sev) = past_eof_severity(m, i, e, o.length) {
            s.emit_as(id::LAYOUT_002, sev, Loc::at(o.offset, o.length), || {
                (
                    format!("bat[{i}]"),
                    format!(
                        "{o} extends past the end of the file ({}): its tail cannot be read (BAT-014 says what that costs the disk)",
                        hex(m.file_size)
                    ),
                )
            });
        }
        self.last_end = self
            .last_end
            .max(o.end().min(m.file_size.div_ceil(MIB).saturating_mul(MIB)));
        self.first_block = Some(self.first_block.map_or(o.offset, |f| f.min(o.offset)));
        let (a, b) = unit_range(&o);
        let units = self.block_bits.len();
        // Fixed objects the grid can see, else those past EOF if the block reaches there.
        let near: &[Object] = if self.fixed_bits.any(a, b) {
            &self.fixed
        } else if b > units {
            &self.fixed_beyond
        } else {
            &[]
        };
        for f in near {
            if f.length > 0 && o.offset < f.end() && f.offset < o.end() {
                overlap(s, f, &o);
            }
        }
        if b > units && self.beyond.len() < MAX_BEYOND {
            self.beyond.push(o);
        }
        if a >= units {
            return;
        }
        if self.block_starts.get(a) || self.block_bits.any(a, b) {
            let unit = (a..b.min(units))
                .find(|&u| self.block_bits.get(u))
                .unwrap_or(a);
            if self.conflicts.len() < MAX_CONFLICTS {
                self.conflicts.push((unit, o));
            } else {
                // Beyond the attributed ones: still counted, a warning if every block it
                // can overlap is retained contents.
                let sev = if is_retained(&o) || !self.solid_bits.any(a, b) {
                    Severity::Warning
                } else {
                    Severity::Error
                };
                s.emit_as(id::LAYOUT_001, sev, Loc::at(o.offset, o.length), || {
                    (
                        format!("{}", ObjectLabel(&o)),
                        format!("{o} overlaps another block: {}", overlap_follows(sev)),
                    )
                });
            }
        }
        if !is_retained(&o) {
            self.solid_bits.set_range(a, b);
        }
        if self.block_starts.get(a) {
            return; // same start as an earlier block (BAT-013): nothing new to mark
        }
        self.block_starts.set_range(a, a + 1);
        self.block_bits.set_range(a, b);
    }
}

/// Second BAT pass, only when blocks overlapped: names the earlier block of each pair.
fn attribute_conflicts(m: &Model, s: &mut Sink, conflicts: &[(u64, Object)]) {
    if conflicts.is_empty() {
        return;
    }
    let mut sorted: Vec<(u64, usize)> = conflicts
        .iter()
        .enumerate()
        .map(|(n, (u, _))| (*u, n))
        .collect();
    sorted.sort_unstable();
    let mut owner: Vec<Option<Object>> = vec![None; conflicts.len()];
    m.for_each_bat_chunk(|first, entries| {
        for (k, &e) in entries.iter().enumerate() {
            let i = first + k as u64;
            let Some(o) = m.block_object(i, e) else {
                continue;
            };
            let (a, b) = unit_range(&o);
            let from = sorted.partition_point(|(u, _)| *u < a);
            for &(u, n) in sorted[from..].iter().take_while(|(u, _)| *u < b) {
                let later = &conflicts[n].1;
                if owner[n].is_none() && o != *later && u >= a {
                    owner[n] = Some(o);
                }
            }
        }
        owner.iter().any(Option::is_none)
    });
    for ((_, later), earlier) in conflicts.iter().zip(owner) {
        match earlier {
            Some(e) => overlap(s, &e, later),
            None => overlap(s, later, later),
        }
    }
}

/// Block↔block overlaps that start past EOF, where the grid cannot see them (overlaps
/// with a unit inside the file were found on the grid). One finding per later block, as
/// on the grid: each is checked against the block reaching furthest before it.
fn overlaps_beyond(s: &mut Sink, beyond: &mut [Object], grid_end: u64) {
    beyond.sort_unstable_by_key(|o| (o.offset, o.end()));
    let mut reach: Option<Object> = None;
    for o in beyond.iter() {
        if let Some(r) = reach
            && o.offset < r.end()
            && o.offset >= grid_end
        {
            overlap(s, &r, o);
        }
        if reach.is_none_or(|r| o.end() > r.end()) {
            reach = Some(*o);
        }
    }
}

/// LAYOUT-003: the specification aligns every object to 1 MiB, not the file length. A
/// sub-MiB tail past the last object that holds only zeros (Disk2VHD ends its files 512
/// bytes past a MiB multiple) is information; a file that ends inside an object, or whose
/// tail holds data (also LAYOUT-005), stays a warning.
fn file_length(m: &Model, s: &mut Sink, g: &Grid, complete: bool) {
    let odd = m.file_size % MIB;
    if odd == 0 {
        return;
    }
    let floor = m.file_size - odd;
    let zero_tail = complete && g.last_end <= floor && m.first_nonzero(floor, odd).is_none();
    let sev = if zero_tail {
        Severity::Info
    } else {
        Severity::Warning
    };
    s.emit_as(id::LAYOUT_003, sev, Loc::at(floor, odd), || {
        let why = if zero_tail {
            format!(
                ": its last {odd} bytes, after the last object (which ends at {}), are zero (objects are 1 MiB aligned; the file length need not be)",
                hex(g.last_end)
            )
        } else if !complete {
            ": the objects could not all be located to tell what the tail holds".into()
        } else if g.last_end > floor {
            format!(
                ": the file ends inside an object (objects end at {}), whose tail is missing: a truncated copy?",
                hex(g.last_end)
            )
        } else {
            format!(": its last {odd} bytes hold data, which readers ignore (LAYOUT-005)")
        };
        (
            "file".into(),
            format!(
                "file size {} is not a multiple of 1 MiB{why}",
                hex(m.file_size)
            ),
        )
    });
}

fn header_reserved(m: &Model, s: &mut Sink) {
    const START: u64 = 0x50000;
    if let Some(at) = m.first_nonzero(START, MIB - START) {
        s.emit(id::LAYOUT_006, Loc::at(at, MIB - at), || {
            (
                "header_section.reserved".into(),
                format!(
                    "reserved header-section bytes 0x50000..0x100000 hold data at {}, which readers ignore (not part of the virtual disk): {}",
                    hex(at),
                    m.preview(at)
                ),
            )
        });
    }
}

/// LAYOUT-004 (uncovered units with data) and LAYOUT-005 (data after the last object).
fn free_space(m: &Model, s: &mut Sink, g: &Grid) {
    // Word by word: the grids are a bit per MiB of the file.
    let covered = g.fixed_bits.union(&g.block_bits);
    let last_unit = g.last_end.div_ceil(MIB);
    for (a, b) in covered.clear_runs() {
        let b = b.min(last_unit);
        let mut u = a;
        while u < b {
            // Report maximal runs of consecutive units that hold data.
            if m.first_nonzero(u * MIB, MIB).is_none() {
                u += 1;
                continue;
            }
            let start = u;
            while u < b && m.first_nonzero(u * MIB, MIB).is_some() {
                u += 1;
            }
            let at = m.first_nonzero(start * MIB, MIB).unwrap_or(start * MIB);
            s.emit(id::LAYOUT_004, Loc::at(start * MIB, (u - start) * MIB), || {
                (
                    "free_space".into(),
                    format!(
                        "{} MiB of space no structure owns [{}, {}) holds data (first at {}), which readers ignore (not part of the virtual disk): {}",
                        u - start,
                        hex(start * MIB),
                        hex(u * MIB),
                        hex(at),
                        m.preview(at)
                    ),
                )
            });
        }
    }
    if m.file_size > g.last_end
        && let Some(at) = m.first_nonzero(g.last_end, m.file_size - g.last_end)
    {
        s.emit(id::LAYOUT_005, Loc::at(at, m.file_size - at), || {
            (
                "file.tail".into(),
                format!(
                    "data after the last object (which ends at {}), which readers ignore (not part of the virtual disk): first non-zero byte at {}: {}",
                    hex(g.last_end),
                    hex(at),
                    m.preview(at)
                ),
            )
        });
    }
}

/// LAYOUT-007: a fixed disk's file size against the size its structures explain.
fn fixed_size(m: &Model, s: &mut Sink, g: &Grid) {
    let (Some(geo), Some(DiskType::Fixed), Some(h)) = (m.geometry, m.disk_type, m.current_header())
    else {
        return;
    };
    let regions: u64 = m.regions().iter().map(|r| r.length as u64).sum();
    let expected = MIB + regions + h.log_length as u64 + geo.payload_blocks * geo.block_size;
    let explained = g.last_end.div_ceil(MIB).saturating_mul(MIB);
    if m.file_size < expected || m.file_size > explained.max(expected) {
        s.emit(id::LAYOUT_007, Loc::at(0, m.file_size), || {
            let follows = if m.file_size < expected {
                format!(
                    "{} bytes fewer than a fixed disk of this size needs: the file was cut or its blocks never all allocated",
                    expected - m.file_size
                )
            } else {
                format!(
                    "the file is {} bytes longer than both, which readers ignore (LAYOUT-004/005 report any data there)",
                    m.file_size - explained.max(expected)
                )
            };
            (
                "file".into(),
                format!(
                    "fixed disk file is {} bytes; header section, regions, log and {} blocks need {} and its objects end at {}: {follows}",
                    m.file_size,
                    geo.payload_blocks,
                    expected,
                    explained
                ),
            )
        });
    }
}

/// LAYOUT-008: the head entry's LastFileOffset should enclose every object.
fn last_file_offset(m: &Model, s: &mut Sink, g: &Grid) {
    let Some(lfo) = (m.active_log())
        .and_then(|l| l.head())
        .map(|h| h.header.last_file_offset)
    else {
        return;
    };
    if g.last_end > lfo {
        s.emit(id::LAYOUT_008, Loc::at(lfo, g.last_end - lfo), || {
            (
                "file".into(),
                format!(
                    "structures end at {}, past the active log head's LastFileOffset {}: the log's record of the file size is wrong, or a structure was added without logging",
                    hex(g.last_end),
                    hex(lfo)
                ),
            )
        });
    }
}

/// Objects LAYOUT-009 lists in its map.
const MAX_MAP: usize = 16;

/// LAYOUT-009: the log and regions normally precede every block.
fn order(m: &Model, s: &mut Sink, g: &Grid) {
    let meta_end = g
        .fixed
        .iter()
        .filter(|o| !matches!(o.kind, ObjectKind::HeaderSection))
        .map(|o| o.end())
        .max();
    let log = g.fixed.iter().find(|o| o.kind == ObjectKind::Log);
    let first_region = g
        .fixed
        .iter()
        .filter(|o| matches!(o.kind, ObjectKind::Region { .. }))
        .map(|o| o.offset)
        .min();
    let block_first = g.first_block.zip(meta_end).is_some_and(|(b, e)| b < e);
    let log_late = log.zip(first_region).is_some_and(|(l, r)| l.offset > r);
    if block_first || log_late {
        // A table of 2047 regions would make a message of 75 000 characters: the first
        // objects, then a count.
        let mut map: Vec<String> = (g.fixed.iter().take(MAX_MAP))
            .map(|o| o.to_string())
            .collect();
        if g.fixed.len() > MAX_MAP {
            map.push(format!("and {} more objects", g.fixed.len() - MAX_MAP));
        }
        let reasons: Vec<&str> = [
            (block_first, "payload blocks before metadata structures"),
            (log_late, "log after the regions"),
        ]
        .into_iter()
        .filter_map(|(on, why)| on.then_some(why))
        .collect();
        s.emit(id::LAYOUT_009, Loc::NONE, || {
            (
                "file".into(),
                format!(
                    "unusual order ({}), legal but a hint at the tool that laid out the file: {}",
                    reasons.join("; "),
                    map.join(", ")
                ),
            )
        });
    }
    let _ = m;
}
