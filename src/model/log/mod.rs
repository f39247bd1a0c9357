//! The log as understood (MS-VHDX 2.3, CATALOGUE 3): every entry of the ring checked
//! against the entry predicates, the active sequence found by the specification's scan in
//! three readings (strict, QEMU-like lenient, DiscUtils-like no-wrap), and the plan of
//! what replay would write. Nothing here judges severity; the LOG rules do.
//!
//! Bounds (hostile logs are normal input): the ring is swept once for entry signatures
//! (holes skipped); at most [`MAX_ENTRIES`] entries are examined and at most
//! `8 x LogLength + 256 MiB` entry bytes are checksummed; runs are followed with a memo so
//! each scan is linear in the number of entries; at most [`MAX_DESCRIPTORS`] descriptors
//! are applied. Reaching a bound is recorded in [`Log::bound`] (LOG-071), never a hang.

mod predicates;
mod ring;
mod scan;

pub use predicates::{Pred, Preds};
pub use scan::{AfterHead, Mode, Run, Scan};

use crate::findings::{RuleId, id};
use crate::format::MIB;
use crate::format::guid::Guid;
use crate::format::header::Header;
use crate::format::log::{self as fmt, Descriptor, EntryHeader, SECTOR};
use crate::io::{self, ReadAt};
use crate::model::replay::Plan;
use predicates::check_entry;
use ring::{Ring, Window, sweep};
use scan::{qemu_scan, scan};
use serde::Serialize;

/// Entries examined at most: a 1 GiB ring of 4 KiB entries.
pub const MAX_ENTRIES: usize = 1 << 18;
/// Descriptors of the active sequence applied at most.
pub const MAX_DESCRIPTORS: usize = 1 << 18;
/// Descriptors whose targets name a stale entry (LOG-001).
pub const NAMED_TARGETS: usize = 4;
/// Stale entries whose named targets the sweep keeps (the rest are read when asked for):
/// LOG-001 then names the targets of the entries it shows without reading the ring again.
const DESCRIBED: usize = 4096;
/// Entry index and named targets, for the first [`DESCRIBED`] checksummed stale entries.
type Described = Vec<(usize, Box<[(u64, u64)]>)>;
/// Extra entry bytes the scan may checksum beyond 8 passes over the ring.
const BYTE_ALLOWANCE: u64 = 256 * MIB;

/// One entry found in the ring (a 4 KiB position starting with "loge").
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Ring offset.
    pub pos: u64,
    pub header: EntryHeader,
    /// CRC-32C over EntryLength bytes (field zeroed); `None` when the length is unusable
    /// or the entry was not examined.
    pub computed_checksum: Option<u32>,
    pub fails: Preds,
    /// Descriptor slots inside the entry, and how many of them are data descriptors.
    pub descriptors: u32,
    pub data_descriptors: u32,
    /// For each of [`Pred::PER_SLOT`]: the first offending descriptor (or data sector)
    /// index and how many offend. Boxed: most entries have none, and a hostile ring has
    /// a quarter million entries.
    pub first: Option<Box<[(u32, u32); 9]>>,
}

impl Entry {
    /// EntryLength.
    pub fn length(&self) -> u64 {
        self.header.entry_length as u64
    }
    pub fn seq(&self) -> u64 {
        self.header.sequence_number
    }
    pub fn valid(&self, mode: Mode) -> bool {
        !self.fails.intersects(mode.invalidating())
    }
    /// First offending index and count for a per-slot predicate.
    pub fn slot_failure(&self, p: Pred) -> Option<(u32, u32)> {
        let i = Pred::PER_SLOT.iter().position(|&q| q == p)?;
        let (first, count) = self.first.as_ref()?[i];
        (count > 0).then_some((first, count))
    }
    fn note_slot(&mut self, p: Pred, index: u32) {
        self.fails.add(p);
        if let Some(i) = Pred::PER_SLOT.iter().position(|&q| q == p) {
            let slots = self.first.get_or_insert_with(Default::default);
            let (first, count) = &mut slots[i];
            if *count == 0 {
                *first = index;
            }
            *count = count.saturating_add(1);
        }
    }
}

/// A descriptor replay applies, in replay order.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Applied {
    /// Index into [`Log::entries`].
    pub entry: usize,
    /// Descriptor index inside the entry.
    pub index: u32,
    pub descriptor: Descriptor,
    /// File offset of the data sector (data descriptors).
    pub sector: Option<u64>,
    /// File offset of the descriptor slot.
    pub slot: u64,
}

/// A byte range replay changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Change {
    pub offset: u64,
    pub length: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Log {
    /// File offset and length of the ring.
    pub offset: u64,
    pub length: u64,
    /// The current header's LogGuid; zero means the ring holds only stale entries.
    pub log_guid: Guid,
    /// Every entry found, in ring order.
    pub entries: Vec<Entry>,
    /// Strict, Lenient, NoWrap (empty when LogGuid is zero: nothing is replayed).
    pub scans: Vec<Scan>,
    /// What the strict active sequence writes, in order.
    pub applied: Vec<Applied>,
    /// The overlay replay builds (present when a strict active sequence exists).
    #[serde(skip)]
    pub plan: Option<Plan>,
    /// Byte ranges of the file replay changes.
    pub changes: Vec<Change>,
    /// Size of the file analysed (RAW).
    pub file_size: u64,
    /// File size after replay (max of the file, the targets and the head's LastFileOffset).
    pub replayed_size: u64,
    /// Where the analysis stopped at a bound, in words (LOG-071).
    pub bound: Vec<String>,
    /// What QEMU 10 does with the log on opening the image (LogGuid not zero).
    pub qemu: Option<super::qemu::Reading>,
    /// QEMU opens the image and the file it leaves differs from the strict replay's.
    pub qemu_differs: bool,
    /// The named targets of the first [`DESCRIBED`] checksummed entries of a stale ring,
    /// by entry index (see [`Log::named_targets`]).
    #[serde(skip)]
    described: Described,
}

impl Log {
    pub fn scan(&self, mode: Mode) -> Option<&Scan> {
        self.scans.iter().find(|s| s.mode == mode)
    }

    /// The strict scan's active head entry.
    pub fn head(&self) -> Option<&Entry> {
        let s = self.scan(Mode::Strict)?;
        s.active_run().map(|r| &self.entries[r.head()])
    }

    /// File offset of a ring offset.
    pub fn file_offset(&self, pos: u64) -> u64 {
        self.offset + pos % self.length.max(1)
    }

    /// Entry index at a ring offset.
    pub fn entry_at(&self, pos: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&pos, |e| e.pos).ok()
    }

    /// The first `max` descriptors of entry `i` as stored, with the file offsets of their
    /// slots: read a descriptor sector (128 slots) at a time, in ring order.
    pub fn descriptors(&self, src: &dyn ReadAt, i: usize, max: u32) -> Vec<(u64, Descriptor)> {
        let e = &self.entries[i];
        let n = e.descriptors.min(max) as u64;
        let ring = Ring {
            src,
            offset: self.offset,
            len: self.length,
        };
        let slot = fmt::DESCRIPTOR_SIZE as u64;
        let (first, end) = (fmt::HEADER_SIZE as u64, fmt::HEADER_SIZE as u64 + n * slot);
        let mut out = Vec::with_capacity(n as usize);
        let mut buf = [0u8; SECTOR as usize];
        let mut at = first;
        while at < end {
            // Up to the end of this descriptor sector (slots never straddle one).
            let piece = (SECTOR - at % SECTOR).min(end - at);
            let bytes = &mut buf[..piece as usize];
            ring.read(e.pos + at, None, bytes);
            for (k, b) in bytes.chunks_exact(fmt::DESCRIPTOR_SIZE).enumerate() {
                let pos = e.pos + at + k as u64 * slot;
                out.push((self.file_offset(pos), Descriptor::parse(b)));
            }
            at += piece;
        }
        out
    }

    /// Offset and length written by each of entry `i`'s first [`NAMED_TARGETS`]
    /// descriptors that has a target.
    pub fn named_targets(&self, src: &dyn ReadAt, i: usize) -> Vec<(u64, u64)> {
        match self.described.binary_search_by_key(&i, |(k, _)| *k) {
            Ok(k) => self.described[k].1.to_vec(),
            Err(_) => self.read_named_targets(src, i),
        }
    }

    /// [`Log::named_targets`], read from the ring.
    pub fn read_named_targets(&self, src: &dyn ReadAt, i: usize) -> Vec<(u64, u64)> {
        (self.descriptors(src, i, NAMED_TARGETS as u32).into_iter())
            .filter_map(|(_, d)| d.target())
            .collect()
    }

    /// Why the strict active sequence cannot be replayed onto any file (LOG-072): the
    /// replayed file would be larger than [`MAX_REPLAYED_SIZE`]. The rule and every reader
    /// of the REPLAYED view (export, map, digests, `replay`) decide it here.
    pub fn replay_impossible(&self) -> Option<String> {
        use super::qemu::MAX_REPLAYED_SIZE;
        if self.plan.is_none() || self.replayed_size <= MAX_REPLAYED_SIZE {
            return None;
        }
        let why = (self.applied.iter())
            .filter_map(|a| a.descriptor.target().map(|t| (a, t)))
            .find(|(_, (off, len))| off.saturating_add(*len) > MAX_REPLAYED_SIZE)
            .map_or_else(
                || {
                    let last = self.head().map_or(0, |h| h.header.last_file_offset);
                    format!("the head entry's LastFileOffset is {last:#x}")
                },
                |(a, (off, len))| {
                    format!(
                        "descriptor {} of the entry at {:#x} writes {len:#x} bytes at {off:#x}",
                        a.index,
                        self.file_offset(self.entries[a.entry].pos),
                    )
                },
            );
        Some(format!(
            "replay cannot be performed: {why}, so the replayed file would be {:#x} bytes, past {MAX_REPLAYED_SIZE:#x} (256 TiB, more than any VHDX needs and than NTFS holds in one file)",
            self.replayed_size
        ))
    }

    /// Replay would change the file: bytes differ or the size grows.
    pub fn dirty(&self) -> bool {
        self.plan.is_some() && (!self.changes.is_empty() || self.replayed_size != self.file_size)
    }
}

/// File offset and length of the ring `h` describes, when usable (CATALOGUE 3.1: without a
/// sane location the HDR findings say it all).
pub fn ring_location(src: &dyn ReadAt, h: &Header) -> Option<(u64, u64)> {
    let length = h.log_length as u64;
    let offset = h.log_offset;
    let usable = h.log_version == 0
        && length != 0
        && length % MIB == 0
        && offset % MIB == 0
        && offset >= MIB
        && offset
            .checked_add(length)
            .is_some_and(|end| end <= src.len());
    usable.then_some((offset, length))
}

/// Whether the ring `h` describes is usable and holds data (not only holes) to sweep.
pub fn ring_holds_data(src: &dyn ReadAt, h: &Header) -> bool {
    ring_location(src, h).is_some_and(|(offset, length)| {
        (src.data_from(offset)).is_some_and(|d| d < offset + length)
    })
}

/// Analyses the log the current header `h` describes. `None` when the header gives no
/// usable log (no LogGuid and no ring, or a location the HDR rules already reject).
pub fn analyse(src: &dyn ReadAt, h: &Header) -> Option<Log> {
    let (offset, length) = ring_location(src, h)?;
    let ring = Ring {
        src,
        offset,
        len: length,
    };
    let mut log = Log {
        offset,
        length,
        log_guid: h.log_guid,
        entries: Vec::new(),
        scans: Vec::new(),
        applied: Vec::new(),
        plan: None,
        changes: Vec::new(),
        file_size: src.len(),
        replayed_size: src.len(),
        bound: Vec::new(),
        qemu: None,
        qemu_differs: false,
        described: Vec::new(),
    };
    let expected_guid = (!h.log_guid.is_zero()).then_some(h.log_guid);
    let mut budget = 8 * length + BYTE_ALLOWANCE;
    log.entries = sweep(
        &ring,
        expected_guid,
        &mut budget,
        &mut log.bound,
        &mut log.described,
    );
    let over_budget = (log.entries.iter())
        .filter(|e| e.fails.has(Pred::Unexamined))
        .count();
    if over_budget > 0 {
        log.bound.push(format!(
            "{over_budget} entries were not checksummed: the entries claim more than 8 x LogLength + 256 MiB in total (overlapping entries)"
        ));
    }
    if h.log_guid.is_zero() {
        // CATALOGUE 3.1 step 1: the log is empty by definition; entries are history.
        return Some(log);
    }
    let mut reading = super::qemu::read(src, offset, length, h.log_guid);
    for mode in Mode::ALL {
        let mut scan = match mode {
            Mode::Lenient => qemu_scan(&log, &mut reading),
            _ => scan(&log, mode),
        };
        for run in &mut scan.runs {
            let head = &log.entries[run.head()];
            let pos = (head.pos + head.length()) % length;
            let mut b = [0u8; fmt::HEADER_SIZE];
            ring.read(pos, None, &mut b);
            run.after = Some(AfterHead {
                pos,
                header: fmt::parse_header(&b),
            });
        }
        log.scans.push(scan);
    }
    super::replay::plan(src, &mut log);
    let qemu_plan = match reading.outcome {
        super::qemu::Outcome::Replays { .. } => {
            Some(super::replay::overlay(src, &reading.applied, None))
        }
        _ => None,
    };
    log.qemu_differs = matches!(
        reading.outcome,
        super::qemu::Outcome::Replays { .. } | super::qemu::Outcome::Opens
    ) && super::replay::views_differ(src, log.plan.as_ref(), qemu_plan.as_ref());
    log.qemu = Some(reading);
    Some(log)
}
