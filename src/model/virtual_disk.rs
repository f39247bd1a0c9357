//! The virtual disk as a guest reads it: every virtual byte of an image, or of a
//! differencing disk through its parents (nearest first), taken from the member that holds
//! it. Each member is read in its own geometry (a parent may have another block size) and,
//! when its log is pending, in its REPLAYED view (as Hyper-V and QEMU read it).
//!
//! What each payload block state reads as (MS-VHDX 2.5.1.1; where the specification leaves
//! a read undefined this follows Windows' own reader as openvmm implements it,
//! `VhdxFile::resolve_read`, whose chain digests ../shared/corpus/openvmm/ records):
//! - PAYLOAD_BLOCK_FULLY_PRESENT: this file, at the block's FileOffsetMB.
//! - PAYLOAD_BLOCK_PARTIALLY_PRESENT: per logical sector, this file where the chunk's
//!   sector bitmap bit is 1, the parent where it is 0 (2.5.1.1, 2.5.2).
//! - PAYLOAD_BLOCK_NOT_PRESENT: the parent in a differencing disk (the specification: "the
//!   parent"), zeros in a fixed or dynamic one.
//! - PAYLOAD_BLOCK_ZERO, PAYLOAD_BLOCK_UNMAPPED, PAYLOAD_BLOCK_UNDEFINED: zeros, in a
//!   differencing disk too. The specification allows UNMAPPED and UNDEFINED to return old
//!   contents; Windows (openvmm) returns zeros and never consults the parent for them.
//! - Reserved states 4 and 5: zeros (QEMU reads 5, UNMAPPED in the 0.95 draft, as zeros;
//!   openvmm refuses the file; BAT-003 reports them).
//!
//! Memory is bounded for any disk: the BAT is read through a 64 KiB window per member and
//! a PARTIALLY_PRESENT block's bitmap slice (at most 64 KiB) is read when the walk reaches
//! it; extents are produced lazily (an explicit stack, one frame per member at most).

use super::Model;
use super::replay::ReplayedView;
use crate::format::bat::{
    BatEntry, Geometry, PAYLOAD_BLOCK_FULLY_PRESENT, PAYLOAD_BLOCK_NOT_PRESENT,
    PAYLOAD_BLOCK_PARTIALLY_PRESENT, SB_BLOCK_PRESENT, SECTOR_BITMAP_BLOCK_SIZE, Slot, SlotCursor,
};
use crate::io::ReadAt;
use serde::Serialize;
use std::sync::Arc;

/// Which view of each member is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewChoice {
    /// The file as stored, ignoring a pending log.
    Raw,
    /// With a pending log replayed in memory, as a guest reads the disk (the default).
    Replayed,
}

/// What a guest reads in an extent, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// A FULLY_PRESENT block of `member`, at `file_offset`.
    Data,
    /// Sectors of a PARTIALLY_PRESENT block of `member` whose bitmap bit is 1, at
    /// `file_offset`.
    Partial,
    /// Zeros because `member`'s BAT says so (ZERO, UNMAPPED, UNDEFINED, reserved states).
    Zero,
    /// Zeros because `member`, a fixed or dynamic disk, has the block NOT_PRESENT.
    Unallocated,
    /// Deferred to a parent that was not given: what the guest reads is unknown.
    Parent,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Data => "data",
            State::Partial => "partial",
            State::Zero => "zero",
            State::Unallocated => "unallocated",
            State::Parent => "parent",
        }
    }

    /// Whether the extent's bytes come from a file.
    pub fn from_file(self) -> bool {
        matches!(self, State::Data | State::Partial)
    }
}

/// A run of virtual bytes read the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Extent {
    /// Virtual byte offset.
    pub offset: u64,
    pub length: u64,
    pub state: State,
    /// Index of the chain member (0 = the image itself) whose BAT decides the read; `None`
    /// for [`State::Parent`].
    pub member: Option<usize>,
    /// Where the bytes are in that member's file (data and partial only).
    pub file_offset: Option<u64>,
}

/// One member as the reader needs it.
struct Layer<'a> {
    model: &'a Model<'a>,
    /// The bytes of the file as stored (a REPLAYED view may claim more).
    stored_len: u64,
    g: Geometry,
    bat_offset: u64,
    differencing: bool,
    block_shift: u32,
    chunk_shift: u32,
}

impl Layer<'_> {
    fn src(&self) -> &dyn ReadAt {
        self.model.src
    }

    fn index_of_block(&self, k: u64) -> u64 {
        k + (k >> self.chunk_shift)
    }
}

/// The virtual disk of a chain (one member for a fixed or dynamic disk).
pub struct VirtualDisk<'a> {
    layers: Vec<Layer<'a>>,
}

/// Reads `buf.len()` bytes at `offset` or fails: a read error, or the end of the source.
pub fn read_exact_at(src: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    let got = crate::io::read_full(src, offset, buf)?;
    if got < buf.len() {
        let end = offset.saturating_add(got as u64);
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the file ends at {end:#x}, inside a range the disk reads"),
        ));
    }
    Ok(())
}

impl<'a> VirtualDisk<'a> {
    /// The chain `members` (nearest first: the image, its parent, ...), each model in the
    /// view to read and with the length of its file as stored. Members after the first
    /// one that is not differencing are not read. Fails with the reason when the disk
    /// cannot be read exactly from these structures.
    pub fn new(members: &[(&'a Model<'a>, u64)]) -> Result<VirtualDisk<'a>, String> {
        let mut layers: Vec<Layer<'a>> = Vec::new();
        for (i, &(m, stored_len)) in members.iter().enumerate() {
            let who = if i == 0 {
                String::new()
            } else {
                format!(" (parent {i})")
            };
            if m.header_choice.index().is_none() {
                return Err(format!("no valid header{who}"));
            }
            if m.region_choice.is_none() {
                return Err(format!("no valid region table{who}"));
            }
            if m.metadata.as_ref().is_none_or(|md| !md.signature_ok) {
                return Err(format!("no usable metadata region{who}"));
            }
            let Some(g) = m.geometry else {
                return Err(format!(
                    "the disk type or geometry could not be read{who} (see the metadata findings)"
                ));
            };
            let Some(bv) = m.bat else {
                return Err(format!("there is no usable BAT region{who}"));
            };
            if bv.region_entries < g.total_entries {
                return Err(format!(
                    "the BAT region{who} holds {} entries, the disk needs {}",
                    bv.region_entries, g.total_entries
                ));
            }
            if bv.readable_entries < g.total_entries {
                return Err(format!(
                    "the BAT{who} lies past the end of the file ({} of its {} entries are in the file)",
                    bv.readable_entries, g.total_entries
                ));
            }
            if let Some(child) = layers.last() {
                if g.logical_sector_size != child.g.logical_sector_size {
                    return Err(format!(
                        "parent {i} has {}-byte logical sectors, its child {} (CHAIN-002)",
                        g.logical_sector_size, child.g.logical_sector_size
                    ));
                }
                if g.virtual_disk_size != child.g.virtual_disk_size {
                    return Err(format!(
                        "parent {i} has VirtualDiskSize {}, its child {} (CHAIN-003)",
                        g.virtual_disk_size, child.g.virtual_disk_size
                    ));
                }
            }
            let differencing = g.differencing;
            layers.push(Layer {
                model: m,
                stored_len,
                g,
                bat_offset: bv.offset,
                differencing,
                // Both are powers of two (Geometry::new).
                block_shift: g.block_size.trailing_zeros(),
                chunk_shift: g.chunk_ratio.trailing_zeros(),
            });
            if !differencing {
                break;
            }
        }
        if layers.is_empty() {
            return Err("no image".into());
        }
        Ok(VirtualDisk { layers })
    }

    /// VirtualDiskSize.
    pub fn size(&self) -> u64 {
        self.layers[0].g.virtual_disk_size
    }

    pub fn logical_sector_size(&self) -> u64 {
        self.layers[0].g.logical_sector_size
    }

    /// Members read (a suffix of the chain given may be left out).
    pub fn members(&self) -> usize {
        self.layers.len()
    }

    /// The geometry of member `i`.
    pub fn geometry(&self, i: usize) -> Option<Geometry> {
        self.layers.get(i).map(|l| l.g)
    }

    /// Why a member is not the parent its child names, if one is not (CHAIN-001: its
    /// DataWriteGuid matches neither parent_linkage nor parent_linkage2 of the child;
    /// Hyper-V refuses such a chain, and reading through it mixes two disks).
    pub fn linkage(&self) -> Option<String> {
        for (i, w) in self.layers.windows(2).enumerate() {
            let Some(dwg) = w[1].model.current_header().map(|h| h.data_write_guid) else {
                continue;
            };
            // A child naming no linkage at all (a locator without parent_linkage, PLOC
            // rules) names no other parent: openvmm reads such a chain, and so does this.
            if w[0].model.parent_linkages() == (None, None) {
                continue;
            }
            if let Err(names) = w[0].model.linkage_matches(dwg) {
                let child = if i == 0 {
                    "the image".to_string()
                } else {
                    format!("parent {i}")
                };
                return Some(format!(
                    "parent {} is not the parent {child} names: its DataWriteGuid is {dwg}, but {names} (CHAIN-001)",
                    i + 1
                ));
            }
        }
        None
    }

    /// Whether every byte is known: the last member is not a differencing disk.
    pub fn complete(&self) -> bool {
        self.layers.last().is_some_and(|l| !l.differencing)
    }

    /// Why the disk cannot be read exactly, if it cannot: a missing parent, or blocks whose
    /// data lies past the end of a member's file.
    pub fn unreadable(&self) -> Option<String> {
        if !self.complete() {
            return Some(if self.layers.len() == 1 {
                "a differencing disk: unwritten sectors are read from its parent (name it with --parent or --find-parents)".into()
            } else {
                format!(
                    "the chain ends at parent {}, a differencing disk whose parent is not given",
                    self.layers.len() - 1
                )
            });
        }
        self.past_eof()
    }

    /// Why the blocks present in the chain cannot be read exactly: some lie past the end
    /// of their member's file ([`VirtualDisk::blocks_past_eof`]).
    pub fn past_eof(&self) -> Option<String> {
        let past = self.blocks_past_eof();
        if past.is_empty() {
            return None;
        }
        let parts: Vec<String> = past
            .iter()
            .map(|&(i, n)| {
                let s = if n == 1 { "block lies" } else { "blocks lie" };
                if i == 0 {
                    format!("{n} {s} past the end of the file")
                } else {
                    format!("{n} {s} past the end of parent {i}'s file")
                }
            })
            .collect();
        Some(parts.join("; "))
    }

    /// Per member (index, count), the blocks the disk reads from that lie past the end of
    /// the file as stored: payload blocks in state FULLY_PRESENT or PARTIALLY_PRESENT
    /// (their bytes up to VirtualDiskSize) and, in a differencing disk, present
    /// sector-bitmap blocks.
    pub fn blocks_past_eof(&self) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let g = l.g;
            let mut n = 0u64;
            let mut cursor = SlotCursor::new(&g);
            l.model.for_each_bat_chunk(|_, entries| {
                for &e in entries {
                    let end = match cursor.next_slot() {
                        Slot::Payload(k)
                            if k < g.payload_blocks
                                && matches!(
                                    e.state(),
                                    PAYLOAD_BLOCK_FULLY_PRESENT | PAYLOAD_BLOCK_PARTIALLY_PRESENT
                                ) =>
                        {
                            let need = g.block_size.min(g.virtual_disk_size - k * g.block_size);
                            e.file_offset().checked_add(need)
                        }
                        Slot::SectorBitmap(_)
                            if l.differencing && e.state() == SB_BLOCK_PRESENT =>
                        {
                            e.file_offset().checked_add(SECTOR_BITMAP_BLOCK_SIZE)
                        }
                        Slot::Beyond => return false,
                        _ => continue,
                    };
                    if end.is_none_or(|end| end > l.stored_len) {
                        n += 1;
                    }
                }
                true
            });
            if n > 0 {
                out.push((i, n));
            }
        }
        out
    }

    /// The extents covering [0, VirtualDiskSize) in order, adjacent ones read the same way
    /// merged. Items are errors when the BAT or a sector bitmap cannot be read.
    pub fn extents(&self) -> Extents<'_, 'a> {
        self.extents_in(0, self.size())
    }

    /// The extents covering `[start, end)` (clamped to the disk), as [`VirtualDisk::extents`]
    /// gives them over the whole disk: a positioned read walks only the BAT entries of its
    /// range.
    pub fn extents_in(&self, start: u64, end: u64) -> Extents<'_, 'a> {
        let end = end.min(self.size());
        Extents {
            raw: RawExtents {
                disk: self,
                stack: vec![Frame {
                    layer: 0,
                    pos: start.min(end),
                    end,
                    pp: None,
                }],
                windows: self.layers.iter().map(|_| Window::default()).collect(),
                spare: Vec::new(),
            },
            pending: None,
            failed: false,
        }
    }

    /// Reads `buf.len()` bytes of `e` from `delta` bytes into it: file bytes exactly (a
    /// read error or the end of the file is an error), zeros for zero and unallocated
    /// extents. A parent extent cannot be read.
    pub fn read_extent(&self, e: &Extent, delta: u64, buf: &mut [u8]) -> std::io::Result<()> {
        match (e.state, e.member, e.file_offset) {
            (State::Data | State::Partial, Some(m), Some(off)) => {
                let at = off
                    .checked_add(delta)
                    .ok_or_else(|| std::io::Error::other("offset overflow"))?;
                let l = &self.layers[m];
                let end = at.saturating_add(buf.len() as u64);
                if end > l.stored_len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "virtual bytes at {:#x} lie past the end of the file ({:#x} > {:#x})",
                            e.offset + delta,
                            end,
                            l.stored_len
                        ),
                    ));
                }
                read_exact_at(l.src(), at, buf)
            }
            (State::Zero | State::Unallocated, ..) => {
                buf.fill(0);
                Ok(())
            }
            _ => Err(std::io::Error::other(
                "a range deferred to a parent that was not given",
            )),
        }
    }

    /// Whether `[offset, offset + len)` of member `m`'s view holds only holes (reads as
    /// zeros without being read).
    pub fn is_hole(&self, m: usize, offset: u64, len: u64) -> bool {
        let src = self.layers[m].src();
        src.data_from(offset)
            .is_none_or(|d| d >= offset.saturating_add(len))
    }
}

/// Calls `f` with the virtual disk of the chain `srcs` (nearest first) in `view`: each
/// member's model built, and with a pending log its REPLAYED model; `Err` with the reason
/// when the structures cannot be read.
pub fn with_disk<R>(
    srcs: &[&dyn ReadAt],
    view: ViewChoice,
    f: impl FnOnce(Result<&VirtualDisk<'_>, String>) -> R,
) -> R {
    let raws: Vec<Model> = srcs.iter().map(|s| Model::build(*s)).collect();
    let refs: Vec<&Model> = raws.iter().collect();
    with_models(&refs, view, f)
}

/// [`with_disk`] for members whose RAW models are built.
pub fn with_models<R>(
    raws: &[&Model<'_>],
    view: ViewChoice,
    f: impl FnOnce(Result<&VirtualDisk<'_>, String>) -> R,
) -> R {
    // A replay no file can undergo (LOG-072): a guest reads nothing, so neither does this.
    if view == ViewChoice::Replayed {
        for (i, m) in raws.iter().enumerate() {
            if let Some(why) = m.active_log().and_then(|l| l.replay_impossible()) {
                let who = if i == 0 {
                    String::new()
                } else {
                    format!("parent {i}: ")
                };
                return f(Err(format!("{who}{why} (LOG-072)")));
            }
        }
    }
    // With a pending log that changes something, the guest reads the replayed view.
    let logs: Vec<Option<Arc<super::log::Log>>> = raws
        .iter()
        .map(|m| {
            (view == ViewChoice::Replayed && !m.log_is_history())
                .then(|| m.log_shared())
                .flatten()
                .filter(|l| l.dirty() && l.plan.is_some())
        })
        .collect();
    let views: Vec<Option<ReplayedView>> = (logs.iter().zip(raws))
        .map(|(l, m)| {
            l.as_deref()
                .and_then(|l| l.plan.as_ref())
                .map(|p| ReplayedView::new(m.src, p))
        })
        .collect();
    let replayed: Vec<Option<Model>> = (views.iter().zip(raws))
        .map(|(v, raw)| v.as_ref().map(|v| Model::build_replayed(v, raw)))
        .collect();
    let members: Vec<(&Model, u64)> = (replayed.iter().zip(raws))
        .map(|(r, raw)| (r.as_ref().unwrap_or(raw), raw.src.len()))
        .collect();
    match VirtualDisk::new(&members) {
        Ok(vd) => f(Ok(&vd)),
        Err(e) => f(Err(e)),
    }
}

/// The BAT entries of one member around the walk's position.
#[derive(Default)]
struct Window {
    first: u64,
    entries: Vec<u64>,
    bytes: Vec<u8>,
}

/// Entries read into a window at a time (64 KiB).
const WINDOW: u64 = 8192;

/// A PARTIALLY_PRESENT block being walked sector by sector.
struct Pp {
    block_start: u64,
    block_end: u64,
    file: u64,
    /// The block's slice of the sector bitmap, one bit per sector, LSB first.
    bits: Vec<u8>,
}

/// A range of the virtual disk to resolve through member `layer` and its parents.
struct Frame {
    layer: usize,
    pos: u64,
    end: u64,
    pp: Option<Pp>,
}

struct RawExtents<'d, 'a> {
    disk: &'d VirtualDisk<'a>,
    stack: Vec<Frame>,
    windows: Vec<Window>,
    /// A bitmap buffer to reuse.
    spare: Vec<u8>,
}

/// What a block's state says to do.
enum Step {
    Emit(State),
    Descend,
    Partial,
    /// A state with no defined contents here.
    Invalid,
}

/// A structural fault met while reading the virtual disk: the disk cannot be read
/// exactly (`InvalidData`; a read error of the file is any other kind).
pub fn malformed(why: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why)
}

impl RawExtents<'_, '_> {
    fn entry(&mut self, layer: usize, index: u64) -> std::io::Result<BatEntry> {
        let disk = self.disk;
        let l = &disk.layers[layer];
        let w = &mut self.windows[layer];
        if index >= l.g.total_entries {
            // A state that names an entry the table does not have (a sector bitmap entry
            // of a disk that is not differencing): the structure says nothing readable.
            return Err(malformed(format!(
                "BAT entry {index} is needed but the BAT has {} entries",
                l.g.total_entries
            )));
        }
        if index < w.first || index >= w.first + w.entries.len() as u64 {
            let first = index - index % WINDOW;
            let n = (l.g.total_entries - first).min(WINDOW);
            w.bytes.resize((n * 8) as usize, 0);
            read_exact_at(l.src(), l.bat_offset + first * 8, &mut w.bytes)?;
            w.entries.clear();
            w.entries.extend(
                (w.bytes.chunks_exact(8))
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
            );
            w.first = first;
        }
        Ok(BatEntry(w.entries[(index - w.first) as usize]))
    }

    fn step(differencing: bool, state: u8) -> Step {
        match state {
            PAYLOAD_BLOCK_FULLY_PRESENT => Step::Emit(State::Data),
            // Only a differencing disk has sector bitmaps; in another disk the state is
            // invalid (BAT rules) and no reader defines its contents (QEMU refuses the read).
            PAYLOAD_BLOCK_PARTIALLY_PRESENT if differencing => Step::Partial,
            PAYLOAD_BLOCK_PARTIALLY_PRESENT => Step::Invalid,
            PAYLOAD_BLOCK_NOT_PRESENT if differencing => Step::Descend,
            PAYLOAD_BLOCK_NOT_PRESENT => Step::Emit(State::Unallocated),
            // ZERO, UNMAPPED, UNDEFINED and the reserved states (see the module comment).
            _ => Step::Emit(State::Zero),
        }
    }

    /// `[start, end)` of member `layer` reads from its parent: a frame for the parent, or
    /// an extent when there is none.
    fn descend(&mut self, layer: usize, start: u64, end: u64) -> Option<Extent> {
        let disk = self.disk;
        let l = &disk.layers[layer];
        if layer + 1 < disk.layers.len() {
            self.stack.push(Frame {
                layer: layer + 1,
                pos: start,
                end,
                pp: None,
            });
            return None;
        }
        let (state, member) = if l.differencing {
            (State::Parent, None)
        } else {
            // PARTIALLY_PRESENT in a disk without parent (BAT-004): clear bits read zeros.
            (State::Unallocated, Some(layer))
        };
        Some(Extent {
            offset: start,
            length: end - start,
            state,
            member,
            file_offset: None,
        })
    }

    /// The next extent before merging.
    fn next_raw(&mut self) -> Option<std::io::Result<Extent>> {
        let disk = self.disk;
        loop {
            let top = self.stack.len().checked_sub(1)?;
            let f = &mut self.stack[top];
            if f.pos >= f.end {
                if let Some(pp) = f.pp.take() {
                    self.spare = pp.bits;
                }
                self.stack.pop();
                continue;
            }
            let layer = f.layer;
            let l = &disk.layers[layer];
            if let Some(pp) = &f.pp {
                if f.pos >= pp.block_end {
                    if let Some(pp) = f.pp.take() {
                        self.spare = pp.bits;
                    }
                    continue;
                }
                let lss = l.g.logical_sector_size;
                let seg_end = f.end.min(pp.block_end);
                let first = (f.pos - pp.block_start) / lss;
                let last = (seg_end - pp.block_start).div_ceil(lss);
                let (bit, run) = bit_run(&pp.bits, first, last);
                let start = f.pos;
                let run_end = (pp.block_start + run * lss).min(seg_end);
                f.pos = run_end;
                if bit {
                    return Some(Ok(Extent {
                        offset: start,
                        length: run_end - start,
                        state: State::Partial,
                        member: Some(layer),
                        file_offset: Some(pp.file + (start - pp.block_start)),
                    }));
                }
                if let Some(e) = self.descend(layer, start, run_end) {
                    return Some(Ok(e));
                }
                continue;
            }
            let (pos, end) = (f.pos, f.end);
            let k = pos >> l.block_shift;
            let e = match self.entry(layer, l.index_of_block(k)) {
                Ok(e) => e,
                Err(err) => return Some(Err(err)),
            };
            let bs = l.g.block_size;
            let vds = l.g.virtual_disk_size;
            let block_start = k << l.block_shift;
            let block_end = (block_start + bs).min(vds);
            let step = Self::step(l.differencing, e.state());
            if let Step::Invalid = step {
                return Some(Err(malformed(format!(
                    "payload block {k} is PARTIALLY_PRESENT in a disk that is not differencing (no reader defines its contents)"
                ))));
            }
            if let Step::Partial = step {
                let sb_index = ((k >> l.chunk_shift) << l.chunk_shift)
                    + (k >> l.chunk_shift)
                    + l.g.chunk_ratio;
                let sb = match self.entry(layer, sb_index) {
                    Ok(e) => e,
                    Err(err) => return Some(Err(err)),
                };
                if sb.state() != SB_BLOCK_PRESENT {
                    return Some(Err(malformed(format!(
                        "payload block {k} is PARTIALLY_PRESENT but its chunk has no sector bitmap (state {})",
                        sb.state()
                    ))));
                }
                let spb = bs / l.g.logical_sector_size;
                let byte = (k & (l.g.chunk_ratio - 1)) * spb / 8;
                let mut bits = std::mem::take(&mut self.spare);
                bits.resize((spb / 8) as usize, 0);
                let at = sb.file_offset() + byte;
                if at + bits.len() as u64 > l.stored_len {
                    return Some(Err(malformed(format!(
                        "the sector bitmap of payload block {k} lies past the end of the file"
                    ))));
                }
                if let Err(err) = read_exact_at(l.src(), at, &mut bits) {
                    return Some(Err(err));
                }
                self.stack[top].pp = Some(Pp {
                    block_start,
                    block_end,
                    file: e.file_offset(),
                    bits,
                });
                continue;
            }
            // Extend over the following blocks that read the same way, scanning the BAT
            // window directly (a 64 TiB disk is 64 Mi entries).
            let mut run_end = block_end.min(end);
            let mut next_file = e.file_offset() + bs;
            let mask = l.g.chunk_ratio - 1;
            'run: while run_end < end {
                let mut k2 = run_end >> l.block_shift;
                let idx = l.index_of_block(k2);
                if let Err(err) = self.entry(layer, idx) {
                    return Some(Err(err));
                }
                let w = &self.windows[layer];
                let mut i = (idx - w.first) as usize;
                while i < w.entries.len() && run_end < end {
                    let e2 = BatEntry(w.entries[i]);
                    let same = match (&step, Self::step(l.differencing, e2.state())) {
                        (Step::Emit(State::Data), Step::Emit(State::Data)) => {
                            e2.file_offset() == next_file
                        }
                        (Step::Emit(a), Step::Emit(b)) => *a == b,
                        (Step::Descend, Step::Descend) => true,
                        _ => false,
                    };
                    if !same {
                        break 'run;
                    }
                    next_file = e2.file_offset() + bs;
                    run_end = ((k2 << l.block_shift) + bs).min(vds).min(end);
                    k2 += 1;
                    // The sector-bitmap entry follows the chunk's last payload entry.
                    i += if k2 & mask == 0 { 2 } else { 1 };
                }
            }
            self.stack[top].pos = run_end;
            match step {
                Step::Emit(state) => {
                    let data = state == State::Data;
                    return Some(Ok(Extent {
                        offset: pos,
                        length: run_end - pos,
                        state,
                        member: Some(layer),
                        file_offset: data.then(|| e.file_offset() + (pos - block_start)),
                    }));
                }
                Step::Descend => {
                    if let Some(x) = self.descend(layer, pos, run_end) {
                        return Some(Ok(x));
                    }
                }
                Step::Partial | Step::Invalid => {}
            }
        }
    }
}

/// The value of bit `first` and the end of its run of equal bits, below `last`.
fn bit_run(bits: &[u8], first: u64, last: u64) -> (bool, u64) {
    let get = |i: u64| {
        bits.get((i / 8) as usize)
            .is_some_and(|b| b >> (i % 8) & 1 == 1)
    };
    let bit = get(first);
    let whole = if bit { 0xff } else { 0 };
    let mut i = first + 1;
    while i < last {
        if i % 8 == 0 && i + 8 <= last && bits.get((i / 8) as usize) == Some(&whole) {
            i += 8;
            continue;
        }
        if get(i) != bit {
            break;
        }
        i += 1;
    }
    (bit, i)
}

/// The merged extents of a [`VirtualDisk`] (see [`VirtualDisk::extents`]).
pub struct Extents<'d, 'a> {
    raw: RawExtents<'d, 'a>,
    pending: Option<Extent>,
    failed: bool,
}

fn merges(a: &Extent, b: &Extent) -> bool {
    a.offset + a.length == b.offset
        && a.state == b.state
        && a.member == b.member
        && match (a.file_offset, b.file_offset) {
            (Some(x), Some(y)) => x + a.length == y,
            (None, None) => true,
            _ => false,
        }
}

impl Iterator for Extents<'_, '_> {
    type Item = std::io::Result<Extent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.raw.next_raw() {
                None => return self.pending.take().map(Ok),
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                Some(Ok(x)) => match &mut self.pending {
                    Some(p) if merges(p, &x) => p.length += x.length,
                    Some(p) => return Some(Ok(std::mem::replace(p, x))),
                    None => self.pending = Some(x),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_runs() {
        let bits = [0b0000_0110u8, 0xff, 0xff, 0x01, 0x00];
        assert_eq!(bit_run(&bits, 0, 40), (false, 1));
        assert_eq!(bit_run(&bits, 1, 40), (true, 3));
        assert_eq!(bit_run(&bits, 3, 40), (false, 8));
        assert_eq!(bit_run(&bits, 8, 40), (true, 25));
        assert_eq!(bit_run(&bits, 25, 40), (false, 40));
        assert_eq!(bit_run(&bits, 9, 12), (true, 12));
    }

    #[test]
    fn merging() {
        let a = Extent {
            offset: 0,
            length: 10,
            state: State::Data,
            member: Some(0),
            file_offset: Some(100),
        };
        let b = Extent {
            offset: 10,
            file_offset: Some(110),
            ..a
        };
        assert!(merges(&a, &b));
        assert!(!merges(
            &a,
            &Extent {
                file_offset: Some(111),
                ..b
            }
        ));
        assert!(!merges(
            &a,
            &Extent {
                member: Some(1),
                ..b
            }
        ));
        assert!(!merges(
            &a,
            &Extent {
                state: State::Partial,
                ..b
            }
        ));
        let z = Extent {
            state: State::Zero,
            file_offset: None,
            ..a
        };
        assert!(merges(&z, &Extent { offset: 10, ..z }));
        assert!(!merges(&z, &Extent { offset: 11, ..z }));
    }
}
