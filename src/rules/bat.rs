//! BAT: every entry of the block allocation table (CATALOGUE 2.5), streamed in chunks.

use super::sink::Sink;
use super::{Pass, Scope, hex, id};
use crate::findings::Loc;
use crate::findings::Severity;
use crate::format::MIB;
use crate::format::bat::{
    self, BatEntry, Geometry, Slot, SlotCursor, payload_state_name, sb_state_name,
};
use crate::model::{Bits, DiskType, Holes, Model};
use std::collections::HashSet;

pub const PASSES: &[Pass] = &[Pass {
    ids: &[
        id::BAT_001,
        id::BAT_002,
        id::BAT_003,
        id::BAT_004,
        id::BAT_005,
        id::BAT_006,
        id::BAT_007,
        id::BAT_008,
        id::BAT_009,
        id::BAT_010,
        id::BAT_011,
        id::BAT_012,
        id::BAT_013,
        id::BAT_014,
        id::BAT_015,
        id::BAT_016,
        id::BAT_017,
        id::BAT_018,
        id::BAT_019,
        id::BAT_020,
        id::BAT_021,
        id::BAT_022,
        id::BAT_023,
    ],
    scope: Scope::Views,
    run,
}];

/// Offsets beyond the end of the file tracked for BAT-013 (the in-file ones use a bitset).
const MAX_TRACKED_OUTSIDE: usize = 65_536;

/// Why the BAT cannot be evaluated, if it cannot.
fn missing_prerequisite(m: &Model) -> Option<String> {
    if m.bat_region.is_none() {
        return Some("there is no usable BAT region entry".into());
    }
    let p = &m.params;
    let what = if m.metadata.is_none() {
        "there is no usable metadata region"
    } else if p.file_parameter_flags.is_none() {
        "File Parameters could not be read"
    } else if p.block_size.is_none() {
        "BlockSize could not be read"
    } else if p.logical_sector_size.is_none() {
        "Logical Sector Size could not be read"
    } else if p.virtual_disk_size.is_none() {
        "Virtual Disk Size could not be read"
    } else if m.geometry.is_none() {
        "BlockSize, LogicalSectorSize or VirtualDiskSize is invalid"
    } else {
        return None;
    };
    Some(what.into())
}

/// Per-state counters for BAT-019 and BAT-021.
#[derive(Default)]
struct Stats {
    payload: [u64; 8],
    sb: [u64; 8],
    allocated_bytes: u64,
}

/// Blocks of a fixed disk that are not FULLY_PRESENT (BAT-015), as runs of block numbers.
#[derive(Default)]
struct NotFull {
    /// First and last such entry (BAT indices).
    entries: Option<(u64, u64)>,
    /// The first [`MAX_RUNS`] runs (first block, last block), in block order.
    runs: Vec<(u64, u64)>,
    /// Runs in all, shown or not.
    run_count: u64,
    last_block: Option<u64>,
}

/// Block runs BAT-015 lists; the rest are counted.
const MAX_RUNS: usize = 16;

impl NotFull {
    /// Records block `block` (entry `i`); blocks come in increasing order.
    fn add(&mut self, i: u64, block: u64) {
        self.entries = Some(self.entries.map_or((i, i), |(a, _)| (a, i)));
        let continues = self
            .last_block
            .is_some_and(|b| b.checked_add(1) == Some(block));
        self.last_block = Some(block);
        if continues {
            if self.run_count == self.runs.len() as u64
                && let Some(last) = self.runs.last_mut()
            {
                last.1 = block;
            }
            return;
        }
        self.run_count += 1;
        if self.runs.len() < MAX_RUNS {
            self.runs.push((block, block));
        }
    }

    /// "3-4, 10, 12-40 and 5 more runs".
    fn describe(&self) -> String {
        let mut list: Vec<String> = (self.runs.iter())
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        let more = self.run_count - self.runs.len() as u64;
        if more > 0 {
            list.push(format!("and {more} more run(s)"));
        }
        list.join(", ")
    }
}

/// State of the chunk being walked (differencing rules BAT-007/018).
#[derive(Default)]
struct Chunk {
    partial_blocks: u64,
    first_partial: Option<u64>,
}

struct Walk<'m, 'a> {
    m: &'m Model<'a>,
    g: Geometry,
    disk: DiskType,
    base: u64,
    stats: Stats,
    chunk: Chunk,
    starts: Bits,
    outside: HashSet<u64>,
    /// BAT-020 sweeps every FULLY_PRESENT block: the last hole found answers the next.
    holes: Holes,
    not_full: NotFull,
}

fn run(m: &Model, s: &mut Sink) {
    if let Some(why) = missing_prerequisite(m) {
        s.emit(
            id::BAT_023,
            m.bat_region
                .map_or(Loc::NONE, |r| Loc::at(r.file_offset, r.length as u64)),
            || {
                (
                    "bat".into(),
                    format!("BAT not evaluated: {why}; the other BAT rules and the checks of the blocks' layout are skipped, though the BAT itself may be intact"),
                )
            },
        );
        return;
    }
    let (Some(g), Some(disk), Some(region), Some(view)) =
        (m.geometry, m.disk_type, m.bat_region, m.bat)
    else {
        return;
    };
    let needed = g.total_entries * bat::ENTRY_SIZE;
    let region_len = region.length as u64;
    if region_len < needed {
        s.emit(id::BAT_001, Loc::at(region.file_offset, region_len), || {
            // The payload entries among the first `held` indices map the disk up to `mapped`.
            let held = region_len / 8;
            let blocks = held - held / (g.chunk_ratio + 1);
            let mapped = blocks
                .saturating_mul(g.block_size)
                .min(g.virtual_disk_size);
            (
                "bat".into(),
                format!(
                    "BAT region Length {} holds {} entries but the disk needs {} ({} bytes): virtual bytes from {} have no entry, so readers cannot map them (QEMU refuses the image)",
                    hex(region_len),
                    held,
                    g.total_entries,
                    hex(needed),
                    hex(mapped)
                ),
            )
        });
    }
    if region_len >= needed.div_ceil(MIB) * MIB + MIB {
        // The region's FileOffset is unchecked input: near u64::MAX the spare area has no offset.
        let spare = region
            .file_offset
            .checked_add(needed)
            .map_or(Loc::NONE, |o| Loc::at(o, region_len - needed));
        s.emit(id::BAT_022, spare, || {
            (
                "bat".into(),
                format!(
                    "BAT region Length {} exceeds the {} bytes the entries need by at least 1 MiB: harmless (room for a resize); stale entries in the spare space are BAT-016",
                    hex(region_len),
                    hex(needed)
                ),
            )
        });
    }
    let mut w = Walk {
        m,
        g,
        disk,
        base: view.offset,
        stats: Stats::default(),
        chunk: Chunk::default(),
        starts: Bits::for_file(m.file_size),
        outside: HashSet::new(),
        holes: Holes::default(),
        not_full: NotFull::default(),
    };
    m.for_each_bat_chunk(|first, entries| {
        let mut slots = SlotCursor::at(&g, first);
        let mut k = 0;
        while k < entries.len() {
            // BAT slack (past the disk's entries): only a non-zero entry matters (BAT-016).
            // Half of a small disk's BAT region can be slack.
            if first + k as u64 >= g.total_entries {
                for (j, &e) in entries[k..].iter().enumerate() {
                    if e.0 != 0 {
                        w.entry(s, first + (k + j) as u64, Slot::Beyond, e);
                    }
                }
                break;
            }
            // Runs of payload entries inside the disk go in bulk when every entry is empty.
            let run = slots
                .payload_run()
                .min(g.payload_blocks.saturating_sub(slots.block()))
                .min((entries.len() - k) as u64) as usize;
            let empty = |e: BatEntry| e.0 & !u64::from(bat::PAYLOAD_BLOCK_ZERO) == 0;
            if run > 0 && empty(entries[k]) && w.empty_run(&entries[k..k + run]) {
                slots.skip_payload(run as u64);
                k += run;
                continue;
            }
            let end = k + run.max(1);
            while k < end {
                // Blocks laid end to end, as writers allocate them, also go in bulk.
                let n = if run > 0 {
                    present_run(&entries[k..end], g.block_size)
                } else {
                    0
                };
                if n > 1 && w.present_blocks(s, first + k as u64, slots.block(), &entries[k..k + n])
                {
                    slots.skip_payload(n as u64);
                    k += n;
                    continue;
                }
                for _ in 0..n.max(1) {
                    w.entry(s, first + k as u64, slots.next_slot(), entries[k]);
                    k += 1;
                }
            }
        }
        true
    });
    w.summary(s, view.readable_entries.min(g.total_entries));
}

impl Walk<'_, '_> {
    fn loc(&self, i: u64) -> Loc {
        Loc::at(self.base + i * bat::ENTRY_SIZE, bat::ENTRY_SIZE)
    }

    /// Where the former contents an ignored offset may reveal are (BAT-010, BAT-011).
    fn former(&self, e: BatEntry) -> String {
        if e.file_offset() < self.m.file_size {
            format!("examine the bytes at {}", hex(e.file_offset()))
        } else {
            format!(
                "it points past the end of the file ({}), so no former contents remain",
                hex(self.m.file_size)
            )
        }
    }

    /// "virtual bytes [a, b)" of payload block `block` from `skip` bytes into it.
    fn virtual_bytes(&self, block: u64, skip: u64) -> String {
        let g = &self.g;
        let start = block.saturating_mul(g.block_size);
        let end = start.saturating_add(g.block_size).min(g.virtual_disk_size);
        format!(
            "virtual bytes [{}, {})",
            hex(start.saturating_add(skip).min(end)),
            hex(end)
        )
    }

    fn entry(&mut self, s: &mut Sink, i: u64, slot: Slot, e: BatEntry) {
        let g = self.g;
        if let Slot::Payload(block) = slot
            && block < g.payload_blocks
            && self.empty_run(std::slice::from_ref(&e))
        {
            return;
        }
        if slot == Slot::Beyond {
            if e.0 != 0 && self.disk != DiskType::Differencing {
                s.emit(id::BAT_016, self.loc(i), || {
                    (
                        format!("bat[{i}]"),
                        format!(
                            "entry {:#018x} beyond the {} entries the disk uses (BAT slack): readers ignore it; it may point at a block of a former larger disk",
                            e.0, g.total_entries
                        ),
                    )
                });
            }
            return;
        }
        if e.reserved() != 0 {
            s.emit(id::BAT_002, self.loc(i), || {
                (
                    format!("bat[{i}]"),
                    format!(
                        "entry {:#018x} has reserved bits 3-19 set ({:#x}): a reader that masks them still finds the block, a strict one may refuse the entry",
                        e.0,
                        e.reserved()
                    ),
                )
            });
        }
        self.duplicate(s, i, e);
        match slot {
            Slot::SectorBitmap(chunk) => self.sector_bitmap_entry(s, i, chunk, e),
            Slot::Payload(block) => self.payload_entry(s, i, block, e),
            Slot::Beyond => {}
        }
    }

    /// Counts a run of payload entries of blocks inside the disk and returns true when
    /// that is all there is to do: nearly every entry of a large empty disk is NOT_PRESENT
    /// or ZERO (qemu-img's default) with no other bit set, and no rule fires on such an
    /// entry except BAT-015 on a fixed disk. Otherwise returns false, counting nothing.
    /// Sector-bitmap entries and padding never come here (differencing chunk bookkeeping,
    /// BAT-007, BAT-017).
    fn empty_run(&mut self, run: &[BatEntry]) -> bool {
        if self.disk == DiskType::Fixed {
            return false;
        }
        // Branch-free over the run, so it vectorises.
        let (mut other, mut zero) = (0u64, 0u64);
        for e in run {
            other |= e.0 & !u64::from(bat::PAYLOAD_BLOCK_ZERO);
            zero += u64::from(e.0 == u64::from(bat::PAYLOAD_BLOCK_ZERO));
        }
        if other != 0 {
            return false;
        }
        self.stats.payload[bat::PAYLOAD_BLOCK_ZERO as usize] += zero;
        self.stats.payload[bat::PAYLOAD_BLOCK_NOT_PRESENT as usize] += run.len() as u64 - zero;
        true
    }

    /// `run` (from [`present_run`]: FULLY_PRESENT payload entries of blocks inside the
    /// disk, from index `i`, block `block`, laid end to end) judged at once, if all that
    /// [`Walk::entry`] would find one by one is their counts and BAT-020: they lie inside
    /// the file (no BAT-014) and no earlier entry starts where they do (no BAT-013).
    /// Returns false, changing nothing, otherwise.
    fn present_blocks(&mut self, s: &mut Sink, i: u64, block: u64, run: &[BatEntry]) -> bool {
        let bs = self.g.block_size;
        let n = run.len() as u64;
        let start = run[0].file_offset();
        let Some(end) = n.checked_mul(bs).and_then(|len| start.checked_add(len)) else {
            return false;
        };
        let (mb, step) = (start / MIB, bs / MIB);
        // Inside the file and the `starts` grid (a file longer than the grid is walked
        // entry by entry there).
        if end > self.m.file_size || end / MIB > self.starts.len() || self.starts.any(mb, end / MIB)
        {
            return false;
        }
        if step == 1 {
            self.starts.set_range(mb, end / MIB);
        } else {
            for j in 0..n {
                let b = mb + j * step;
                self.starts.set_range(b, b + 1);
            }
        }
        self.stats.payload[bat::PAYLOAD_BLOCK_FULLY_PRESENT as usize] += n;
        self.stats.allocated_bytes += n * bs;
        // BAT-020, block by block as `payload_entry` does, unless the whole run is zeros.
        let all_zero = self
            .m
            .first_nonzero_in(&mut self.holes, start, end - start)
            .is_none();
        for j in 0..n {
            let (off, e) = (start + j * bs, run[j as usize]);
            if all_zero || self.m.first_nonzero_in(&mut self.holes, off, bs).is_none() {
                // Past the rule's cap instances are only counted: count the rest at once.
                if all_zero && s.emit_hidden(id::BAT_020, n - j) {
                    break;
                }
                self.zero_block(s, i + j, block + j, e);
            }
        }
        true
    }

    /// BAT-020: a FULLY_PRESENT block (inside the file) that holds only zeros.
    fn zero_block(&self, s: &mut Sink, i: u64, block: u64, e: BatEntry) {
        s.emit(
            id::BAT_020,
            Loc::at(e.file_offset(), self.g.block_size),
            || {
                (
                    format!("bat[{i}]"),
                    format!(
                        "FULLY_PRESENT block {block} at {} holds only zeros: it reads like a ZERO block but takes file space (never written, or wiped)",
                        hex(e.file_offset())
                    ),
                )
            },
        );
    }

    /// BAT-013: every non-zero FileOffsetMB must be unique.
    fn duplicate(&mut self, s: &mut Sink, i: u64, e: BatEntry) {
        let mb = e.file_offset_mb();
        if mb == 0 {
            return;
        }
        let dup = if mb < self.starts.len() {
            let d = self.starts.get(mb);
            self.starts.set_range(mb, mb + 1);
            d
        } else if self.outside.len() < MAX_TRACKED_OUTSIDE || self.outside.contains(&mb) {
            !self.outside.insert(mb)
        } else {
            false
        };
        if dup {
            s.emit(id::BAT_013, self.loc(i), || {
                (
                    format!("bat[{i}]"),
                    format!(
                        "FileOffsetMB {mb} (file offset {}) is already used by an earlier entry: blocks that share an offset read the same bytes, and writing one changes the other",
                        hex(e.file_offset())
                    ),
                )
            });
        }
    }

    fn sector_bitmap_entry(&mut self, s: &mut Sink, i: u64, chunk: u64, e: BatEntry) {
        let st = e.state();
        self.stats.sb[st as usize] += 1;
        let differencing = self.disk == DiskType::Differencing;
        let name = || format!("bat[{i}]");
        if st != bat::SB_BLOCK_NOT_PRESENT && st != bat::SB_BLOCK_PRESENT {
            s.emit(id::BAT_005, self.loc(i), || {
                (
                    name(),
                    format!("sector bitmap entry has reserved state {st}; readers may refuse it"),
                )
            });
        }
        if st == bat::SB_BLOCK_PRESENT && !differencing {
            s.emit(id::BAT_006, self.loc(i), || {
                (
                    name(),
                    format!(
                        "sector bitmap entry is SB_BLOCK_PRESENT in a {} disk: readers use no sector bitmap there, so the payload blocks are unaffected",
                        self.disk.name()
                    ),
                )
            });
        }
        if st == bat::SB_BLOCK_PRESENT && e.file_offset_mb() == 0 {
            s.emit(id::BAT_009, self.loc(i), || {
                (
                    name(),
                    "SB_BLOCK_PRESENT with FileOffsetMB 0 (inside the header section): the chunk's sector bitmap cannot be read".into(),
                )
            });
        }
        if st == bat::SB_BLOCK_NOT_PRESENT && e.file_offset_mb() != 0 {
            s.emit(id::BAT_011, self.loc(i), || {
                (
                    name(),
                    format!(
                        "SB_BLOCK_NOT_PRESENT entry carries FileOffsetMB {}: readers ignore it; {}",
                        e.file_offset_mb(),
                        self.former(e)
                    ),
                )
            });
        }
        if st == bat::SB_BLOCK_PRESENT && e.file_offset_mb() != 0 {
            self.stats.allocated_bytes += bat::SECTOR_BITMAP_BLOCK_SIZE;
            if let Some(sev) = past_eof_severity(self.m, i, e, bat::SECTOR_BITMAP_BLOCK_SIZE) {
                self.bounds(s, i, e, bat::SECTOR_BITMAP_BLOCK_SIZE, sev);
            }
        }
        if differencing {
            if self.chunk.partial_blocks > 0 && st != bat::SB_BLOCK_PRESENT {
                let first = self.chunk.first_partial.unwrap_or(0);
                s.emit(id::BAT_007, self.loc(i), || {
                    (
                        name(),
                        format!(
                            "chunk {chunk} has {} PARTIALLY_PRESENT blocks (first bat[{first}]) but its sector bitmap entry is {}: readers cannot tell which of their sectors this file holds, so those blocks cannot be read",
                            self.chunk.partial_blocks,
                            sb_state_name(st)
                        ),
                    )
                });
            }
            if st == bat::SB_BLOCK_PRESENT && self.chunk.partial_blocks == 0 {
                s.emit(id::BAT_018, self.loc(i), || {
                    (
                        name(),
                        format!(
                            "chunk {chunk} has a sector bitmap block but no PARTIALLY_PRESENT block: allowed, readers do not consult it; it may show which sectors were once written"
                        ),
                    )
                });
            }
        }
        self.chunk = Chunk::default();
    }

    fn payload_entry(&mut self, s: &mut Sink, i: u64, block: u64, e: BatEntry) {
        let g = self.g;
        let st = e.state();
        let name = || format!("bat[{i}]");
        let mb = e.file_offset_mb();
        if block >= g.payload_blocks {
            // Padding of the last chunk of a differencing disk.
            if e.0 != 0 {
                s.emit(id::BAT_017, self.loc(i), || {
                    (
                        name(),
                        format!(
                            "entry {:#018x} describes block {block}, beyond the disk's {} blocks: readers ignore it; it may point at data of a former larger disk",
                            e.0, g.payload_blocks
                        ),
                    )
                });
            }
            return;
        }
        // Statistics describe the disk's blocks, not the padding of the last chunk.
        self.stats.payload[st as usize] += 1;
        match st {
            4 | 5 => s.emit(id::BAT_003, self.loc(i), || {
                let (note, qemu) = if st == 5 {
                    (
                        " (UNMAPPED in the pre-1.0 draft: an old writer?)",
                        "QEMU reads them as zeros",
                    )
                } else {
                    ("", "QEMU fails to read them")
                };
                (
                    name(),
                    format!(
                        "payload entry has reserved state {st}{note}: readers disagree on {}; {qemu}, others may refuse the entry",
                        self.virtual_bytes(block, 0)
                    ),
                )
            }),
            bat::PAYLOAD_BLOCK_PARTIALLY_PRESENT if self.disk != DiskType::Differencing => {
                s.emit(id::BAT_004, self.loc(i), || {
                    (
                        name(),
                        format!(
                            "PAYLOAD_BLOCK_PARTIALLY_PRESENT in a {} disk: no parent holds the sectors missing here, so reads of {} fail (QEMU) or the file is refused (VirtualBox)",
                            self.disk.name(),
                            self.virtual_bytes(block, 0)
                        ),
                    )
                })
            }
            _ => {}
        }
        if st == bat::PAYLOAD_BLOCK_PARTIALLY_PRESENT {
            self.chunk.partial_blocks += 1;
            self.chunk.first_partial.get_or_insert(i);
        }
        let present =
            st == bat::PAYLOAD_BLOCK_FULLY_PRESENT || st == bat::PAYLOAD_BLOCK_PARTIALLY_PRESENT;
        if present && mb == 0 {
            s.emit(id::BAT_008, self.loc(i), || {
                (
                    name(),
                    format!(
                        "{} block {block} has FileOffsetMB 0 (inside the header section): reads of {} return header-section bytes or fail, depending on the reader",
                        payload_state_name(st),
                        self.virtual_bytes(block, 0)
                    ),
                )
            });
        }
        if (st == bat::PAYLOAD_BLOCK_NOT_PRESENT || st == bat::PAYLOAD_BLOCK_ZERO) && mb != 0 {
            s.emit(id::BAT_010, self.loc(i), || {
                let hyper_v = if st == bat::PAYLOAD_BLOCK_ZERO {
                    " (Hyper-V, by QEMU's account, fails to read a ZERO block with an offset)"
                } else {
                    ""
                };
                (name(), format!("{} block {block} carries FileOffsetMB {mb} (reserved; may reveal a former allocation): readers ignore it{hyper_v}; {}", payload_state_name(st), self.former(e)))
            });
        }
        let retained =
            (st == bat::PAYLOAD_BLOCK_UNDEFINED || st == bat::PAYLOAD_BLOCK_UNMAPPED) && mb != 0;
        if retained {
            s.emit(id::BAT_012, Loc::at(e.file_offset(), g.block_size), || {
                (name(), format!("{} block {block} points at {}: retained previous contents may be recoverable; readers show zeros or undefined data for {}", payload_state_name(st), hex(e.file_offset()), self.virtual_bytes(block, 0)))
            });
        }
        if self.disk == DiskType::Fixed && st != bat::PAYLOAD_BLOCK_FULLY_PRESENT {
            self.not_full.add(i, block);
        }
        if present && mb != 0 {
            self.stats.allocated_bytes += g.block_size;
            if let Some(sev) = past_eof_severity(self.m, i, e, g.block_size) {
                self.bounds(s, i, e, g.block_size, sev);
            }
            if st == bat::PAYLOAD_BLOCK_FULLY_PRESENT
                && e.file_offset()
                    .checked_add(g.block_size)
                    .is_some_and(|end| end <= self.m.file_size)
                && self
                    .m
                    .first_nonzero_in(&mut self.holes, e.file_offset(), g.block_size)
                    .is_none()
            {
                self.zero_block(s, i, block, e);
            }
        } else if retained && let Some(sev) = past_eof_severity(self.m, i, e, g.block_size) {
            self.bounds(s, i, e, g.block_size, sev);
        }
    }

    /// BAT-014: the block must lie inside the file.
    fn bounds(&self, s: &mut Sink, i: u64, e: BatEntry, size: u64, sev: Severity) {
        let end = e.file_offset().checked_add(size);
        s.emit_as(id::BAT_014, sev, Loc::at(e.file_offset(), size), || {
            let bitmap = self.g.is_sector_bitmap_index(i);
            let st = e.state();
            let follows = if bitmap {
                "the chunk's sector bitmap is missing, so its PARTIALLY_PRESENT blocks cannot be read".to_string()
            } else if st == bat::PAYLOAD_BLOCK_UNDEFINED || st == bat::PAYLOAD_BLOCK_UNMAPPED {
                "only retained old contents are lost; the block reads as zeros or undefined data anyway".to_string()
            } else if sev == Severity::Warning {
                "only bytes past the disk's end are missing, so every virtual byte can be read".to_string()
            } else {
                // The block's bytes from the end of the file on are missing.
                let skip = self.m.file_size.saturating_sub(e.file_offset());
                format!(
                    "reads of {} fail or return zeros, depending on the reader",
                    self.virtual_bytes(self.g.block_of_index(i), skip)
                )
            };
            (
                format!("bat[{i}]"),
                format!(
                    "{} block at [{}, {}) extends past the end of the file ({}): {follows}",
                    if bitmap {
                        "sector bitmap"
                    } else {
                        payload_state_name(st)
                    },
                    hex(e.file_offset()),
                    end.map_or("overflow".into(), hex),
                    hex(self.m.file_size)
                ),
            )
        });
    }

    /// BAT-015, once per image: how many blocks of a fixed disk are not FULLY_PRESENT, by
    /// state, and which (runs of block numbers). Reported at the entries from the first
    /// such one to the last.
    fn fixed_not_full(&self, s: &mut Sink) {
        let Some((first, last)) = self.not_full.entries else {
            return;
        };
        let st = &self.stats;
        let states: Vec<String> = [
            bat::PAYLOAD_BLOCK_NOT_PRESENT,
            bat::PAYLOAD_BLOCK_UNDEFINED,
            bat::PAYLOAD_BLOCK_ZERO,
            bat::PAYLOAD_BLOCK_UNMAPPED,
            4,
            5,
            bat::PAYLOAD_BLOCK_PARTIALLY_PRESENT,
        ]
        .into_iter()
        .filter(|&x| st.payload[x as usize] > 0)
        .map(|x| match x {
            4 | 5 => format!("reserved state {x}: {}", st.payload[x as usize]),
            _ => format!("{} {}", payload_state_name(x), st.payload[x as usize]),
        })
        .collect();
        let n: u64 = (st.payload.iter().enumerate())
            .filter(|&(x, _)| x != bat::PAYLOAD_BLOCK_FULLY_PRESENT as usize)
            .map(|(_, c)| c)
            .sum();
        let loc = Loc::at(
            self.base + first * bat::ENTRY_SIZE,
            (last - first + 1) * bat::ENTRY_SIZE,
        );
        s.emit(id::BAT_015, loc, || {
            (
                if first == last {
                    format!("bat[{first}]")
                } else {
                    format!("bat[{first}..{last}]")
                },
                format!(
                    "{n} of the {} blocks of this fixed disk (LeaveBlockAllocated) are not FULLY_PRESENT ({}): blocks {}; MS-VHDX 2.6.2.1 says such blocks SHOULD NOT be put into a NOT_PRESENT state, yet writers do (openvmm's create() leaves every entry NOT_PRESENT, its MakeTransparent trim makes fixed blocks NOT_PRESENT, qemu-img can write them ZERO); NOT_PRESENT and ZERO blocks read as zeros",
                    self.g.payload_blocks,
                    states.join(", "),
                    self.not_full.describe()
                ),
            )
        });
    }

    fn summary(&self, s: &mut Sink, evaluated: u64) {
        self.fixed_not_full(s);
        let st = &self.stats;
        let region = self
            .m
            .bat_region
            .map_or(Loc::NONE, |r| Loc::at(r.file_offset, r.length as u64));
        s.emit(id::BAT_019, region, || {
            let p = |x: u8| st.payload[x as usize];
            (
                "bat".into(),
                format!(
                    "{} disk, {} blocks of {} MiB, {} entries evaluated: payload NOT_PRESENT {} UNDEFINED {} ZERO {} UNMAPPED {} FULLY_PRESENT {} PARTIALLY_PRESENT {} reserved {}; sector bitmap NOT_PRESENT {} PRESENT {}; {} bytes allocated",
                    self.disk.name(),
                    self.g.payload_blocks,
                    self.g.block_size / MIB,
                    evaluated,
                    p(0),
                    p(1),
                    p(2),
                    p(3),
                    p(6),
                    p(7),
                    p(4) + p(5),
                    st.sb[0],
                    st.sb[6],
                    st.allocated_bytes
                ),
            )
        });
        if self.disk == DiskType::Dynamic
            && self.g.payload_blocks > 0
            && st.payload[bat::PAYLOAD_BLOCK_FULLY_PRESENT as usize] == self.g.payload_blocks
        {
            s.emit(id::BAT_021, region, || {
                ("bat".into(), "every payload block of this dynamic disk is FULLY_PRESENT: effectively fixed but not flagged so".into())
            });
        }
    }
}

/// How many leading entries of `entries` (payload slots) are FULLY_PRESENT with no
/// reserved bit and a non-zero offset, laid end to end: entry j at the first one's offset
/// plus j blocks. Such runs are what a writer leaves; [`Walk::present_blocks`] takes them.
fn present_run(entries: &[BatEntry], block_size: u64) -> usize {
    let Some(first) = entries.first() else {
        return 0;
    };
    if first.state() != bat::PAYLOAD_BLOCK_FULLY_PRESENT
        || first.reserved() != 0
        || first.file_offset() == 0
    {
        return 0;
    }
    // Block sizes are multiples of 1 MiB: adding one to an entry adds it to FileOffsetMB
    // and leaves the state and reserved bits, so entry j is exactly the first plus j blocks.
    arithmetic_prefix(entries, u64::MAX, first.0, block_size)
}

/// Length of the longest prefix of `entries` whose entry j has `e.0 & mask` equal to
/// `start + j * step` (never overflowing: the prefix ends where the sum would). Compared
/// in groups of 64, branch-free inside a group: runs of millions of blocks laid end to
/// end are the common case on large disks.
pub(super) fn arithmetic_prefix(entries: &[BatEntry], mask: u64, start: u64, step: u64) -> usize {
    let fit = match step {
        0 => entries.len(),
        _ => ((u64::MAX - start) / step)
            .saturating_add(1)
            .min(entries.len() as u64) as usize,
    };
    let v = &entries[..fit];
    if v.first().is_none_or(|e| e.0 & mask != start) {
        return 0;
    }
    // Entry j + 1 is entry j plus `step`: by induction entry j is start + j * step, which
    // does not wrap below `fit`. Differences of neighbours vectorise; products do not.
    let next = |(a, b): (&BatEntry, &BatEntry)| (b.0 & mask).wrapping_sub(a.0 & mask) == step;
    let mut n = 1;
    while n < v.len() {
        let end = (n + 64).min(v.len());
        let pairs = || v[n - 1..end - 1].iter().zip(&v[n..end]);
        if !pairs().fold(true, |all, p| all & next(p)) {
            return n + pairs().take_while(|&p| next(p)).count();
        }
        n = end;
    }
    n
}

/// Severity of an allocated block that extends past EOF (BAT-014, LAYOUT-002), or `None`
/// if it lies inside the file. Downgraded to warning for retained contents (states 1/3)
/// and for a final FULLY_PRESENT block missing only bytes beyond the virtual size (A14).
pub(super) fn past_eof_severity(m: &Model, i: u64, e: BatEntry, size: u64) -> Option<Severity> {
    let g = m.geometry?;
    if e.file_offset()
        .checked_add(size)
        .is_some_and(|end| end <= m.file_size)
    {
        return None;
    }
    if g.is_sector_bitmap_index(i) {
        return Some(Severity::Error);
    }
    let st = e.state();
    if st == bat::PAYLOAD_BLOCK_UNDEFINED || st == bat::PAYLOAD_BLOCK_UNMAPPED {
        return Some(Severity::Warning);
    }
    let block = g.block_of_index(i);
    if block + 1 == g.payload_blocks && st == bat::PAYLOAD_BLOCK_FULLY_PRESENT {
        let within = g.virtual_disk_size - block * g.block_size;
        if e.file_offset()
            .checked_add(within)
            .is_some_and(|end| end <= m.file_size)
        {
            return Some(Severity::Warning);
        }
    }
    Some(Severity::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry-by-entry definitions the bulk runs replace.
    fn present_run_ref(entries: &[BatEntry], block_size: u64) -> usize {
        let mut expected = entries.first().map(|f| f.file_offset()).filter(|&o| o != 0);
        (entries.iter())
            .take_while(|e| {
                let ok = e.state() == bat::PAYLOAD_BLOCK_FULLY_PRESENT
                    && e.reserved() == 0
                    && expected == Some(e.file_offset());
                expected = expected.and_then(|x| x.checked_add(block_size));
                ok
            })
            .count()
    }

    fn solid_run_ref(entries: &[BatEntry], block_size: u64) -> usize {
        let mut expected = entries.first().map(|f| f.file_offset());
        (entries.iter())
            .take_while(|e| {
                let solid = matches!(e.state(), 6 | 7);
                let next = solid && expected == Some(e.file_offset());
                expected = expected.and_then(|x| x.checked_add(block_size));
                next
            })
            .count()
    }

    /// `solid_run` of rules/layout.rs, through the same helper.
    fn solid_run(entries: &[BatEntry], block_size: u64) -> usize {
        match entries.first() {
            Some(f) if f.0 & 6 == 6 => {
                arithmetic_prefix(entries, !(MIB - 1) | 6, f.file_offset() | 6, block_size)
            }
            _ => 0,
        }
    }

    #[test]
    fn bulk_runs_agree_with_entry_by_entry_walks() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..4000 {
            let bs = MIB << (rnd() % 9);
            let len = (rnd() % 300) as usize;
            // Offsets near the top of the range too, where the sums overflow.
            let start = match case % 4 {
                0 => u64::MAX - (rnd() % 200) * bs,
                1 => 0,
                _ => (rnd() % (1 << 30)) * MIB,
            } & !(MIB - 1);
            let state = [6u64, 7, 6, 6, 1, 3][(rnd() % 6) as usize];
            let mut v: Vec<BatEntry> = (0..len as u64)
                .map(|j| BatEntry(start.wrapping_add(j * bs) | state))
                .collect();
            // A few disturbances: another state, a reserved bit, an offset one MiB off.
            for _ in 0..rnd() % 3 {
                if len > 0 {
                    let k = (rnd() % len as u64) as usize;
                    v[k].0 ^= [1u64, 1 << 3, 1 << 19, MIB, 4][(rnd() % 5) as usize];
                }
            }
            assert_eq!(
                present_run(&v, bs),
                present_run_ref(&v, bs),
                "present, case {case}"
            );
            assert_eq!(
                solid_run(&v, bs),
                solid_run_ref(&v, bs),
                "solid, case {case}"
            );
        }
    }
}
