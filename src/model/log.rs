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

use super::replay::Plan;
use crate::findings::{RuleId, id};
use crate::format::MIB;
use crate::format::guid::Guid;
use crate::format::header::Header;
use crate::format::log::{self as fmt, Descriptor, EntryHeader, SECTOR};
use crate::io::{self, ReadAt};
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

/// The entry predicates (CATALOGUE 2.4): each names the rule it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Pred {
    Length,
    Checksum,
    SequenceZero,
    LogGuid,
    Tail,
    Reserved,
    FlushedAlign,
    LastAlign,
    Capacity,
    Padding,
    Wraps,
    BelowOneMib,
    DescriptorSignature,
    DescriptorSequence,
    DescriptorAlign,
    ZeroLengthAlign,
    ZeroReserved,
    TargetOverflow,
    SectorSignature,
    SectorSequence,
    Slack,
    /// Not examined: the analysis bound was reached first (LOG-071).
    Unexamined,
}

impl Pred {
    pub const ALL: [Pred; 22] = [
        Pred::Length,
        Pred::Checksum,
        Pred::SequenceZero,
        Pred::LogGuid,
        Pred::Tail,
        Pred::Reserved,
        Pred::FlushedAlign,
        Pred::LastAlign,
        Pred::Capacity,
        Pred::Padding,
        Pred::Wraps,
        Pred::BelowOneMib,
        Pred::DescriptorSignature,
        Pred::DescriptorSequence,
        Pred::DescriptorAlign,
        Pred::ZeroLengthAlign,
        Pred::ZeroReserved,
        Pred::TargetOverflow,
        Pred::SectorSignature,
        Pred::SectorSequence,
        Pred::Slack,
        Pred::Unexamined,
    ];

    pub fn id(self) -> RuleId {
        match self {
            Pred::Length => id::LOG_011,
            Pred::Checksum => id::LOG_012,
            Pred::SequenceZero => id::LOG_013,
            Pred::LogGuid => id::LOG_014,
            Pred::Tail => id::LOG_015,
            Pred::Reserved => id::LOG_016,
            Pred::FlushedAlign => id::LOG_017,
            Pred::LastAlign => id::LOG_018,
            Pred::Capacity => id::LOG_019,
            Pred::Padding => id::LOG_020,
            Pred::Wraps => id::LOG_021,
            Pred::BelowOneMib => id::LOG_022,
            Pred::DescriptorSignature => id::LOG_030,
            Pred::DescriptorSequence => id::LOG_031,
            Pred::DescriptorAlign => id::LOG_032,
            Pred::ZeroLengthAlign => id::LOG_033,
            Pred::ZeroReserved => id::LOG_034,
            Pred::TargetOverflow => id::LOG_035,
            Pred::SectorSignature => id::LOG_036,
            Pred::SectorSequence => id::LOG_037,
            Pred::Slack => id::LOG_038,
            Pred::Unexamined => id::LOG_071,
        }
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }

    /// Predicates QEMU and DiscUtils also check (CATALOGUE 3.6 "core").
    const CORE: [Pred; 13] = [
        Pred::Length,
        Pred::Checksum,
        Pred::SequenceZero,
        Pred::LogGuid,
        Pred::Capacity,
        Pred::DescriptorSignature,
        Pred::DescriptorSequence,
        Pred::DescriptorAlign,
        Pred::ZeroLengthAlign,
        Pred::TargetOverflow,
        Pred::SectorSignature,
        Pred::SectorSequence,
        Pred::Unexamined,
    ];

    /// Per-descriptor / per-sector predicates, in [`Entry::first`] order.
    pub const PER_SLOT: [Pred; 9] = [
        Pred::DescriptorSignature,
        Pred::DescriptorSequence,
        Pred::DescriptorAlign,
        Pred::ZeroLengthAlign,
        Pred::ZeroReserved,
        Pred::TargetOverflow,
        Pred::SectorSignature,
        Pred::SectorSequence,
        Pred::Slack,
    ];
}

/// A set of predicates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Preds(u32);

impl Preds {
    pub fn has(self, p: Pred) -> bool {
        self.0 & p.bit() != 0
    }
    fn add(&mut self, p: Pred) {
        self.0 |= p.bit();
    }
    pub fn iter(self) -> impl Iterator<Item = Pred> {
        Pred::ALL.into_iter().filter(move |p| self.has(*p))
    }
    fn of(ps: &[Pred]) -> Preds {
        let mut s = Preds::default();
        for &p in ps {
            s.add(p);
        }
        s
    }
    fn intersects(self, other: Preds) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// How a reader decides which entries are valid (CATALOGUE 3.6, A8, A9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every MUST-level predicate, entries may wrap, the head's Tail must be in the run.
    Strict,
    /// QEMU 10 as it is (`model::qemu`): the run it replays, or none when it finds none
    /// or refuses the image. [`Entry::valid`] in this mode is the core predicates only.
    Lenient,
    /// DiscUtils: core predicates, an entry may not pass the ring end, tail test.
    NoWrap,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Strict, Mode::Lenient, Mode::NoWrap];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Lenient => "lenient (QEMU)",
            Mode::NoWrap => "no-wrap (DiscUtils)",
        }
    }

    /// Predicates that make an entry invalid in this reading.
    pub fn invalidating(self) -> Preds {
        match self {
            Mode::Strict => {
                let mut all = Preds::of(&Pred::ALL);
                all.0 &= !(Pred::Slack.bit() | Pred::Wraps.bit());
                all
            }
            Mode::Lenient => Preds::of(&Pred::CORE),
            Mode::NoWrap => {
                let mut s = Preds::of(&Pred::CORE);
                s.add(Pred::Wraps);
                s
            }
        }
    }

    fn tail_test(self) -> bool {
        self != Mode::Lenient
    }
}

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

/// A run of valid entries laid end to end with consecutive sequence numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Indexes into [`Log::entries`], in sequence order.
    pub entries: Vec<usize>,
    /// The header bytes right after the head, where the next entry would go.
    pub after: Option<AfterHead>,
}

/// The would-be entry header right after a run's head (torn writes, LOG-010, LOG-065).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AfterHead {
    /// Ring offset.
    pub pos: u64,
    pub header: EntryHeader,
}

impl Run {
    pub fn head(&self) -> usize {
        self.entries[self.entries.len() - 1]
    }
}

/// What one reading of the scan found.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub mode: Mode,
    /// Valid runs, in the order the scan found them.
    pub runs: Vec<Run>,
    /// Heads of non-empty runs that failed the tail test (LOG-061).
    pub invalid_heads: Vec<usize>,
    /// Valid entries that ended a run because their SequenceNumber was not the previous
    /// one + 1: (previous entry, this entry) (LOG-060).
    pub sequence_breaks: Vec<(usize, usize)>,
    /// The active sequence's run, if any: the greatest head SequenceNumber, first found on
    /// a tie.
    pub active: Option<usize>,
    /// The entries replay applies, in order: from the Tail entry (whole run in Lenient).
    pub replayed: Vec<usize>,
    /// Runs longer than the ring exhausted the walk bound (LOG-071).
    pub bounded: bool,
}

impl Scan {
    pub fn active_run(&self) -> Option<&Run> {
        self.active.map(|i| &self.runs[i])
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

/// The ring, read in ring order: a read past the end continues at its start.
struct Ring<'a> {
    src: &'a dyn ReadAt,
    offset: u64,
    len: u64,
}

/// The piece of the ring the sweep has just read: entries that lie inside it are checked
/// from it, so a ring is read about once however many entries it holds.
struct Window<'b> {
    pos: u64,
    bytes: &'b [u8],
}

impl Ring<'_> {
    fn read(&self, pos: u64, win: Option<&Window>, buf: &mut [u8]) {
        let mut done = 0usize;
        self.chunks(pos, buf.len() as u64, win, &mut Vec::new(), |_, b| {
            buf[done..done + b.len()].copy_from_slice(b);
            done += b.len();
        });
    }

    /// Calls `f(offset from pos, bytes)` for `[pos, pos + len)` in ring order: from `win`
    /// when it holds the whole range, else read into `buf` in pieces of at most
    /// [`io::CHUNK`] split at the ring end (multiples of 4 KiB when `pos` and `len` are).
    fn chunks(
        &self,
        pos: u64,
        len: u64,
        win: Option<&Window>,
        buf: &mut Vec<u8>,
        mut f: impl FnMut(u64, &[u8]),
    ) {
        let pos = pos % self.len;
        if let Some(w) = win
            && pos >= w.pos
            && pos + len <= w.pos + w.bytes.len() as u64
        {
            let from = (pos - w.pos) as usize;
            return f(0, &w.bytes[from..from + len as usize]);
        }
        let mut at = 0u64;
        let mut p = pos;
        while at < len {
            let n = (self.len - p).min(len - at).min(io::CHUNK as u64) as usize;
            buf.resize(n.max(buf.len()), 0);
            io::read_padded(self.src, self.offset + p, &mut buf[..n]);
            f(at, &buf[..n]);
            at += n as u64;
            p = (p + n as u64) % self.len;
        }
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

/// The lenient reading is QEMU's: the run its replay walks, when the entries it starts
/// at are known to the sweep. Its writes are tied to those entries.
fn qemu_scan(log: &Log, reading: &mut super::qemu::Reading) -> Scan {
    let mut out = Scan {
        mode: Mode::Lenient,
        runs: Vec::new(),
        invalid_heads: Vec::new(),
        sequence_breaks: Vec::new(),
        active: None,
        replayed: Vec::new(),
        bounded: matches!(reading.outcome, super::qemu::Outcome::Bounded),
    };
    if let super::qemu::Outcome::Replays { entries, .. } = &reading.outcome {
        let known: Vec<usize> = entries.iter().filter_map(|&p| log.entry_at(p)).collect();
        if !known.is_empty() {
            out.runs.push(Run {
                entries: known.clone(),
                after: None,
            });
            out.active = Some(0);
            out.replayed = known;
        }
    }
    out
}

/// Read size of the sweep. Small on purpose: the buffer is faulted in once and stays in
/// cache while entries are checksummed from it (log.vhdx of the benchmark, 512 entries of
/// 8 KiB: 1 MiB pieces cost 0.7 ms more per check than 64 KiB ones).
const WINDOW: usize = 64 * 1024;

/// Every entry of the ring: each 4 KiB position starting with "loge", checked, in ring
/// order. The ring is swept once in windows (holes skipped); an entry inside the window
/// is checked from it, and an entry up to a window long that runs past the window's end
/// starts the next window instead, so such entries are read once. Longer entries are
/// streamed on their own.
fn sweep(
    ring: &Ring,
    guid: Option<Guid>,
    budget: &mut u64,
    bound: &mut Vec<String>,
    described: &mut Described,
) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut named = Vec::new();
    let mut buf = vec![0u8; WINDOW];
    let mut scratch = Vec::new();
    let mut pos = 0u64;
    // Ring offset where the data run being swept ends (a hole or the ring end).
    let mut data_end = 0u64;
    while pos < ring.len {
        if pos >= data_end {
            let Some(data) = ring.src.data_from(ring.offset + pos) else {
                break;
            };
            // Round down to the 4 KiB position holding the first data byte.
            let data = (data - ring.offset) / SECTOR * SECTOR;
            if data >= ring.len {
                break;
            }
            pos = pos.max(data);
            data_end = ring
                .src
                .hole_from(ring.offset + pos)
                .saturating_sub(ring.offset);
            data_end = data_end.clamp(pos + SECTOR, ring.len);
        }
        let n = ((ring.len - pos) as usize).min(WINDOW);
        io::read_padded(ring.src, ring.offset + pos, &mut buf[..n]);
        let win = Window {
            pos,
            bytes: &buf[..n],
        };
        let mut next = pos + n as u64;
        for (i, sector) in win.bytes.chunks(SECTOR as usize).enumerate() {
            if !sector.starts_with(fmt::ENTRY_SIGNATURE) {
                continue;
            }
            let p = pos + i as u64 * SECTOR;
            let len = fmt::parse_header(sector).entry_length as u64;
            if p > pos && p + len > next && len <= WINDOW as u64 && len <= *budget {
                // Read again as the start of the next window; the bytes read twice are
                // fewer than the entry checksums, so the budget bounds them too.
                next = p;
                break;
            }
            if out.len() == MAX_ENTRIES {
                bound.push(format!(
                    "more than {MAX_ENTRIES} entry signatures in the ring: entries from ring offset {p:#x} on were not examined"
                ));
                return out;
            }
            let e = check_entry(ring, &win, &mut scratch, &mut named, p, guid, budget);
            // A stale ring's checksummed entries are listed with their targets (LOG-001).
            if guid.is_none()
                && e.computed_checksum == Some(e.header.checksum)
                && described.len() < DESCRIBED
            {
                described.push((out.len(), named.as_slice().into()));
            }
            out.push(e);
        }
        pos = next;
    }
    out
}

/// Evaluates every entry predicate for the entry at ring offset `pos` (CATALOGUE 3.2),
/// streaming the entry once for its checksum, descriptors and data sectors.
/// `named` receives the targets of its first [`NAMED_TARGETS`] descriptors.
fn check_entry(
    ring: &Ring,
    win: &Window,
    scratch: &mut Vec<u8>,
    named: &mut Vec<(u64, u64)>,
    pos: u64,
    guid: Option<Guid>,
    budget: &mut u64,
) -> Entry {
    named.clear();
    let mut head = [0u8; fmt::HEADER_SIZE];
    ring.read(pos, Some(win), &mut head);
    let header = fmt::parse_header(&head);
    let mut e = Entry {
        pos,
        header,
        computed_checksum: None,
        fails: Preds::default(),
        descriptors: 0,
        data_descriptors: 0,
        first: None,
    };
    let h = &header;
    let len = h.entry_length as u64;
    if h.sequence_number == 0 {
        e.fails.add(Pred::SequenceZero);
    }
    if guid.is_some_and(|g| g != h.log_guid) {
        e.fails.add(Pred::LogGuid);
    }
    if h.tail as u64 % SECTOR != 0 || h.tail as u64 >= ring.len {
        e.fails.add(Pred::Tail);
    }
    if h.reserved != 0 {
        e.fails.add(Pred::Reserved);
    }
    if h.flushed_file_offset % MIB != 0 {
        e.fails.add(Pred::FlushedAlign);
    }
    if h.last_file_offset % MIB != 0 {
        e.fails.add(Pred::LastAlign);
    }
    if h.flushed_file_offset < MIB || h.last_file_offset < MIB {
        e.fails.add(Pred::BelowOneMib);
    }
    if len == 0 || len % SECTOR != 0 || len > ring.len {
        e.fails.add(Pred::Length);
        return e;
    }
    if pos + len > ring.len {
        e.fails.add(Pred::Wraps);
    }
    if *budget < len {
        e.fails.add(Pred::Unexamined);
        return e;
    }
    *budget -= len;
    walk_body(ring, win, scratch, named, &mut e);
    e
}

/// The streaming part of [`check_entry`]: checksum, descriptor slots, data sectors.
fn walk_body(
    ring: &Ring,
    win: &Window,
    buf: &mut Vec<u8>,
    named: &mut Vec<(u64, u64)>,
    e: &mut Entry,
) {
    let len = e.length();
    let seq = e.seq();
    let count = e.header.descriptor_count;
    let desc_sectors = fmt::descriptor_sectors(count);
    // Slots that exist: descriptors, then unused slots to the end of the last descriptor
    // sector, all clipped to the entry.
    let slots_end = (desc_sectors * SECTOR).min(len);
    let mut crc = 0u32;
    let mut data_seen = 0u32;
    let mut next_sector = 0u32; // next data sector to check
    ring.chunks(e.pos, len, Some(win), buf, |at, chunk| {
        let n = chunk.len();
        // Descriptor slots in this chunk (slots never straddle 4 KiB sectors).
        let slot = fmt::DESCRIPTOR_SIZE as u64;
        let first_unused = fmt::HEADER_SIZE as u64 + count as u64 * slot;
        let mut off = at.max(fmt::HEADER_SIZE as u64);
        while off < slots_end.min(first_unused) && off < at + n as u64 {
            let i = ((off - fmt::HEADER_SIZE as u64) / slot) as u32;
            let s = &chunk[(off - at) as usize..][..fmt::DESCRIPTOR_SIZE];
            e.descriptors += 1;
            let d = check_descriptor(e, i, s, seq);
            if (i as usize) < NAMED_TARGETS {
                named.extend(d.target());
            }
            if s.starts_with(fmt::DESC_SIGNATURE) {
                data_seen += 1;
            }
            off += slot;
        }
        // Unused slots: searched for non-zero bytes as one range, mostly zero.
        let unused_end = slots_end.min(at + n as u64);
        while off < unused_end {
            let Some(k) = io::nonzero_byte(&chunk[(off - at) as usize..(unused_end - at) as usize])
            else {
                break;
            };
            let i = (off + k as u64 - fmt::HEADER_SIZE as u64) / slot;
            e.note_slot(Pred::Slack, i as u32);
            off = fmt::HEADER_SIZE as u64 + (i + 1) * slot;
        }
        // Data sectors in this chunk: the j-th data descriptor's is sector D + j.
        let mut sec = at / SECTOR;
        while sec * SECTOR < at + n as u64 {
            if sec >= desc_sectors {
                let j = (sec - desc_sectors) as u32;
                if j < data_seen && j == next_sector {
                    let b = &chunk[(sec * SECTOR - at) as usize..][..SECTOR as usize];
                    let ds = fmt::parse_data_sector(b);
                    if &ds.signature != fmt::DATA_SIGNATURE {
                        e.note_slot(Pred::SectorSignature, j);
                    }
                    if ds.sequence_high != (seq >> 32) as u32 || ds.sequence_low != seq as u32 {
                        e.note_slot(Pred::SectorSequence, j);
                    }
                    next_sector += 1;
                }
            }
            sec += 1;
        }
        // The checksum field counts as zero.
        crc = if at == 0 {
            let c = crc32c::crc32c_append(crc, &chunk[..fmt::CHECKSUM_FIELD]);
            let c = crc32c::crc32c_append(c, &[0; 4]);
            crc32c::crc32c_append(c, &chunk[fmt::CHECKSUM_FIELD + 4..])
        } else {
            crc32c::crc32c_append(crc, chunk)
        };
    });
    e.data_descriptors = data_seen;
    e.computed_checksum = Some(crc);
    if crc != e.header.checksum {
        e.fails.add(Pred::Checksum);
    }
    let needed = (desc_sectors + data_seen as u64) * SECTOR;
    if needed > len || e.descriptors < count {
        e.fails.add(Pred::Capacity);
    } else if needed < len {
        e.fails.add(Pred::Padding);
    }
}

fn check_descriptor(e: &mut Entry, i: u32, slot: &[u8], seq: u64) -> Descriptor {
    let d = Descriptor::parse(slot);
    match d {
        Descriptor::Unknown { .. } => {
            e.note_slot(Pred::DescriptorSignature, i);
            return d;
        }
        Descriptor::Zero {
            reserved,
            zero_length,
            ..
        } => {
            if zero_length % SECTOR != 0 {
                e.note_slot(Pred::ZeroLengthAlign, i);
            }
            if reserved != 0 {
                e.note_slot(Pred::ZeroReserved, i);
            }
        }
        Descriptor::Data { .. } => {}
    }
    if d.sequence_number() != Some(seq) {
        e.note_slot(Pred::DescriptorSequence, i);
    }
    if let Some((off, len)) = d.target() {
        if off % SECTOR != 0 {
            e.note_slot(Pred::DescriptorAlign, i);
        }
        if off.checked_add(len).is_none() {
            e.note_slot(Pred::TargetOverflow, i);
        }
    }
    d
}

/// Where a run from some entry ends, as remembered for the entries on its way.
#[derive(Clone, Copy)]
struct Walk {
    head: usize,
    /// The head's Tail names this entry or one after it.
    contains_tail: bool,
    /// Bytes from this entry's start to the head's end.
    bytes: u64,
}

/// The specification's scan for the active sequence (CATALOGUE 3.3) in one reading.
/// Linear: every entry's walk to its run's head is computed once and remembered.
fn scan(log: &Log, mode: Mode) -> Scan {
    let mut out = Scan {
        mode,
        runs: Vec::new(),
        invalid_heads: Vec::new(),
        sequence_breaks: Vec::new(),
        active: None,
        replayed: Vec::new(),
        bounded: false,
    };
    let ring = log.length;
    let mut memo: Vec<Option<Walk>> = vec![None; log.entries.len()];
    // Successor of a valid entry in its run, and the entry that broke the run on sequence.
    let next = |i: usize| -> (Option<usize>, Option<usize>) {
        let e = &log.entries[i];
        let Some(j) = log.entry_at((e.pos + e.length()) % ring) else {
            return (None, None);
        };
        let n = &log.entries[j];
        match (n.valid(mode), e.seq().checked_add(1) == Some(n.seq())) {
            (false, _) => (None, None),
            (true, true) => (Some(j), None),
            (true, false) => (None, Some(j)),
        }
    };
    let mut breaks = std::collections::BTreeSet::new();
    let mut walk = |start: usize, memo: &mut Vec<Option<Walk>>| -> Walk {
        let mut path = Vec::new();
        let mut cur = start;
        let end = loop {
            if let Some(w) = memo[cur] {
                break w;
            }
            path.push(cur);
            match next(cur) {
                (Some(j), _) => cur = j,
                (None, brk) => {
                    if let Some(b) = brk {
                        breaks.insert((cur, b));
                    }
                    break Walk {
                        head: cur,
                        contains_tail: false,
                        bytes: 0,
                    };
                }
            }
        };
        let mut w = end;
        let tail = log.entries[w.head].header.tail as u64;
        for &i in path.iter().rev() {
            let e = &log.entries[i];
            w = Walk {
                head: w.head,
                contains_tail: w.contains_tail || e.pos == tail,
                bytes: w.bytes.saturating_add(e.length()),
            };
            memo[i] = Some(w);
        }
        w
    };
    let mut tail = 0u64;
    let mut travelled = 0u64;
    let mut seen_heads = std::collections::BTreeSet::new();
    // Head entry -> index into `out.runs`.
    let mut run_heads = std::collections::HashMap::new();
    // Entries walked for runs longer than the ring (crafted logs only).
    let mut capped_steps = 4 * log.entries.len() as u64 + 65536;
    while travelled < ring {
        let start = log.entry_at(tail).filter(|&i| log.entries[i].valid(mode));
        let mut advance = SECTOR;
        if let Some(start) = start {
            let w = walk(start, &mut memo);
            let (head, contains, entries) = if w.bytes <= ring {
                let valid = w.contains_tail || !mode.tail_test();
                let entries = if valid {
                    collect_run(log, start, ring, mode)
                } else {
                    Vec::new()
                };
                (w.head, w.contains_tail, entries)
            } else if capped_steps > 0 {
                // The run would pass its own first entry: it ends where the ring is consumed.
                let entries = collect_run(log, start, ring, mode);
                capped_steps = capped_steps.saturating_sub(entries.len() as u64);
                let head = *entries.last().unwrap_or(&start);
                let t = log.entries[head].header.tail as u64;
                let contains = entries.iter().any(|&i| log.entries[i].pos == t);
                (head, contains, entries)
            } else {
                out.bounded = true;
                (w.head, false, Vec::new())
            };
            if (contains || !mode.tail_test()) && !entries.is_empty() {
                advance = entries.iter().map(|&i| log.entries[i].length()).sum();
                // A run met again from an earlier start (its entries before the ring end
                // scanned last) is the same sequence: the first one found stays.
                let head = entries[entries.len() - 1];
                match run_heads.get(&head) {
                    None => {
                        run_heads.insert(head, out.runs.len());
                        out.runs.push(Run {
                            entries,
                            after: None,
                        });
                    }
                    // Readings that replay from the Tail replay the same entries either
                    // way; the longer run shows what precedes the Tail (LOG-062).
                    Some(&k) if mode.tail_test() && entries.len() > out.runs[k].entries.len() => {
                        out.runs[k].entries = entries;
                    }
                    Some(_) => {}
                }
            } else if seen_heads.insert(head) {
                out.invalid_heads.push(head);
            }
        }
        tail = (tail + advance) % ring;
        travelled += advance;
    }
    out.sequence_breaks = breaks.into_iter().collect();
    // A head met first without its tail (the scan starts inside a sequence that wraps the
    // ring end) and later as the head of a valid sequence is not a broken run.
    let valid_heads: std::collections::BTreeSet<usize> = out.runs.iter().map(Run::head).collect();
    out.invalid_heads.retain(|h| !valid_heads.contains(h));
    // CATALOGUE 3.3 step 5: strictly greater wins, so the first found stays on a tie.
    for (i, r) in out.runs.iter().enumerate() {
        let seq = log.entries[r.head()].seq();
        if out
            .active
            .is_none_or(|a| seq > log.entries[out.runs[a].head()].seq())
        {
            out.active = Some(i);
        }
    }
    if let Some(r) = out.active_run() {
        let t = log.entries[r.head()].header.tail as u64;
        let from = match mode {
            Mode::Lenient => 0,
            _ => (r.entries.iter())
                .position(|&i| log.entries[i].pos == t)
                .unwrap_or(0),
        };
        out.replayed = r.entries[from..].to_vec();
    }
    out
}

/// The entries of the run from `start`, stopping before an entry that would make the run
/// longer than the ring (it would overlap the run's first entry). Only valid runs and
/// runs longer than the ring are collected, and a valid run moves the scan past its
/// entries, so the walks stay linear.
fn collect_run(log: &Log, start: usize, ring: u64, mode: Mode) -> Vec<usize> {
    let mut out = vec![start];
    let mut bytes = log.entries[start].length();
    let mut cur = start;
    loop {
        let e = &log.entries[cur];
        let Some(j) = log.entry_at((e.pos + e.length()) % ring) else {
            break;
        };
        let n = &log.entries[j];
        if !n.valid(mode) || e.seq().checked_add(1) != Some(n.seq()) {
            break;
        }
        bytes = bytes.saturating_add(n.length());
        if bytes > ring {
            break;
        }
        out.push(j);
        cur = j;
    }
    out
}
