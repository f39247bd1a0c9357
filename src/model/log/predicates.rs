//! The entry predicates (CATALOGUE 2.4, 3.2) and their evaluation on one entry: the
//! checksum, the descriptor slots and the data sectors, streamed once.

use super::*;

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

    pub(super) fn bit(self) -> u32 {
        1 << self as u32
    }

    /// Predicates QEMU and DiscUtils also check (CATALOGUE 3.6 "core").
    pub(super) const CORE: [Pred; 13] = [
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
pub struct Preds(pub(super) u32);

impl Preds {
    pub fn has(self, p: Pred) -> bool {
        self.0 & p.bit() != 0
    }
    pub(super) fn add(&mut self, p: Pred) {
        self.0 |= p.bit();
    }
    pub fn iter(self) -> impl Iterator<Item = Pred> {
        Pred::ALL.into_iter().filter(move |p| self.has(*p))
    }
    pub(super) fn of(ps: &[Pred]) -> Preds {
        let mut s = Preds::default();
        for &p in ps {
            s.add(p);
        }
        s
    }
    pub(super) fn intersects(self, other: Preds) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Evaluates every entry predicate for the entry at ring offset `pos` (CATALOGUE 3.2),
/// streaming the entry once for its checksum, descriptors and data sectors.
/// `named` receives the targets of its first [`NAMED_TARGETS`] descriptors.
pub(super) fn check_entry(
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
pub(super) fn walk_body(
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

pub(super) fn check_descriptor(e: &mut Entry, i: u32, slot: &[u8], seq: u64) -> Descriptor {
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
