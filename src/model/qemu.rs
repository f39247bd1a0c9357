//! What QEMU 10 does with a log when it opens an image read-write (block/vhdx-log.c, as
//! read and as confirmed with qemu-img; no code taken from it). Its reading differs from
//! the specification's in ways that change the disk it shows:
//!
//! * the scan walks the ring sector by sector from offset 0; an entry whose header looks
//!   valid but whose descriptors do not is not skipped: the open fails;
//! * a run's second entry is taken whatever its SequenceNumber (only the third and later
//!   are compared with the previous one + 1);
//! * of two runs, the one whose *first* entry has the greater SequenceNumber wins;
//! * there is no tail test: the whole run is replayed from its first entry;
//! * replay walks the entries by its own read position (descriptor sectors, then one data
//!   sector per data descriptor), so an entry longer than its contents (padding) puts the
//!   next entry's header out of step and the open fails; a data sector whose sequence
//!   halves do not match fails it too; the data sector's signature is never looked at;
//! * an entry with more than 126 descriptors fails the open (observed, qemu-img 10).
//!
//! The simulation reads the ring again (a 64 KiB window at a time), bounded in sectors.

use super::log::Applied;
use crate::format::MIB;
use crate::format::guid::Guid;
use crate::format::log::{self as fmt, Descriptor, SECTOR};
use crate::io::{self, ReadAt};
use serde::Serialize;

/// Largest file a replay can be asked to produce: 2^48 bytes (256 TiB, NTFS's largest file
/// with 64 KiB clusters, and four times what a 64 TiB virtual disk needs).
pub const MAX_REPLAYED_SIZE: u64 = 1 << 48;

/// Descriptors an entry may have for QEMU 10 (the first descriptor sector's slots).
const QEMU_MAX_DESCRIPTORS: u32 = 126;

/// What QEMU does on opening the image read-write.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// No valid run: QEMU opens the image without replaying anything.
    Opens,
    /// QEMU replays `count` entries from ring offset `start` (entries at `entries`).
    Replays {
        start: u64,
        count: u32,
        entries: Vec<u64>,
    },
    /// The open fails.
    Refuses { reason: String },
    /// The simulation stopped at its work bound.
    Bounded,
}

/// QEMU's reading of one log.
#[derive(Debug, Clone, Serialize)]
pub struct Reading {
    pub outcome: Outcome,
    /// The writes its replay performs, in order (`entry` is an index into the log's
    /// entries when the entry is known there, else `usize::MAX`).
    #[serde(skip)]
    pub applied: Vec<Applied>,
    /// Its replay's largest write end or extension of the file.
    pub size: u64,
}

impl Reading {
    pub fn describe(&self, file_offset: impl Fn(u64) -> u64) -> String {
        match &self.outcome {
            Outcome::Opens => "QEMU finds no valid run and opens the image without replay".into(),
            Outcome::Replays { start, count, .. } => format!(
                "QEMU replays {count} entr{} from {:#x}",
                if *count == 1 { "y" } else { "ies" },
                file_offset(*start)
            ),
            Outcome::Refuses { reason } => format!("QEMU refuses to open the image: {reason}"),
            Outcome::Bounded => "QEMU's reading was not worked out (analysis bound)".into(),
        }
    }
}

struct Ring<'a> {
    src: &'a dyn ReadAt,
    offset: u64,
    len: u64,
    window: Vec<u8>,
    window_at: Option<u64>,
    budget: u64,
}

const WINDOW: u64 = 64 * 1024;

impl Ring<'_> {
    /// The 4 KiB sector at ring offset `r` (counted against the budget).
    fn sector(&mut self, r: u64) -> Option<&[u8]> {
        self.budget = self.budget.checked_sub(1)?;
        let base = r / WINDOW * WINDOW;
        if self.window_at != Some(base) {
            let n = (self.len - base).min(WINDOW) as usize;
            self.window.resize(n, 0);
            io::read_padded(self.src, self.offset + base, &mut self.window);
            self.window_at = Some(base);
        }
        let k = (r - base) as usize;
        Some(&self.window[k..k + SECTOR as usize])
    }

    fn inc(&self, r: u64) -> u64 {
        if r + SECTOR >= self.len {
            0
        } else {
            r + SECTOR
        }
    }
}

enum Step {
    Invalid,
    Valid(fmt::EntryHeader),
}

struct Stop(Outcome);

fn refuse(reason: String) -> Stop {
    Stop(Outcome::Refuses { reason })
}

/// QEMU's header test (vhdx_log_hdr_is_valid).
fn header_valid(h: &fmt::EntryHeader, ring_len: u64, guid: Guid) -> bool {
    &h.signature == fmt::ENTRY_SIGNATURE
        && h.entry_length as u64 <= ring_len
        && h.entry_length as u64 % SECTOR == 0
        && h.sequence_number != 0
        && h.log_guid == guid
        && h.descriptor_count as u64 * fmt::DESCRIPTOR_SIZE as u64 <= h.entry_length as u64
}

/// QEMU's descriptor test (vhdx_log_desc_is_valid).
fn descriptor_valid(b: &[u8], seq: u64) -> bool {
    let d = Descriptor::parse(b);
    let (Some(s), Some((off, _))) = (d.sequence_number(), d.target()) else {
        return false;
    };
    s == seq
        && off % SECTOR == 0
        && match d {
            Descriptor::Zero { zero_length, .. } => zero_length % SECTOR == 0,
            _ => true,
        }
}

struct Sim<'a> {
    ring: Ring<'a>,
    guid: Guid,
    /// Read position.
    read: u64,
}

impl Sim<'_> {
    fn peek(&mut self) -> Result<fmt::EntryHeader, Stop> {
        let r = self.read;
        let s = self.ring.sector(r).ok_or(Stop(Outcome::Bounded))?;
        Ok(fmt::parse_header(s))
    }

    /// vhdx_log_read_desc: the descriptor sectors, each descriptor validated (an invalid one
    /// fails the open). Returns the descriptors and the CRC over the descriptor sectors.
    fn read_desc(
        &mut self,
        h: &fmt::EntryHeader,
        keep: bool,
    ) -> Result<(Vec<Descriptor>, u32), Stop> {
        let at = self.read;
        if !header_valid(h, self.ring.len, self.guid) {
            return Err(refuse(format!(
                "the entry header at ring offset {at:#x} that replay reaches next is not valid"
            )));
        }
        if h.descriptor_count > QEMU_MAX_DESCRIPTORS {
            // Seen with qemu-img 10 (tests/data/qemu_log_behaviours.py): an entry with 127
            // or more descriptors fails the open, even a stale one with a bad checksum.
            return Err(refuse(format!(
                "the entry at ring offset {at:#x} has {} descriptors (QEMU 10 opens no image with an entry of more than {QEMU_MAX_DESCRIPTORS})",
                h.descriptor_count
            )));
        }
        let sectors = fmt::descriptor_sectors(h.descriptor_count);
        let count = h.descriptor_count as u64;
        let mut crc = 0u32;
        let mut out = Vec::new();
        for k in 0..sectors {
            let r = self.read;
            let s = self.ring.sector(r).ok_or(Stop(Outcome::Bounded))?;
            crc = if k == 0 {
                let c = crc32c::crc32c_append(crc, &s[..fmt::CHECKSUM_FIELD]);
                let c = crc32c::crc32c_append(c, &[0; 4]);
                crc32c::crc32c_append(c, &s[fmt::CHECKSUM_FIELD + 4..])
            } else {
                crc32c::crc32c_append(crc, s)
            };
            let first = if k == 0 { 2 } else { 0 };
            for slot in first..128u64 {
                let i = k * 128 + slot - 2;
                if i >= count {
                    break;
                }
                let b = &s[slot as usize * 32..][..32];
                if !descriptor_valid(b, h.sequence_number) {
                    return Err(refuse(format!(
                        "descriptor {i} of the entry at ring offset {at:#x} (SequenceNumber {}) is not valid",
                        h.sequence_number
                    )));
                }
                if keep {
                    if out.len() == super::log::MAX_DESCRIPTORS {
                        return Err(Stop(Outcome::Bounded));
                    }
                    out.push(Descriptor::parse(b));
                }
            }
            self.read = self.ring.inc(r);
        }
        Ok((out, crc))
    }

    /// vhdx_validate_log_entry at the read position; `seq` 0 accepts any SequenceNumber.
    fn validate(&mut self, seq: u64) -> Result<Step, Stop> {
        let h = self.peek()?;
        if !header_valid(&h, self.ring.len, self.guid)
            || (seq > 0 && h.sequence_number != seq.wrapping_add(1))
        {
            self.read = self.ring.inc(self.read);
            return Ok(Step::Invalid);
        }
        let desc_sectors = fmt::descriptor_sectors(h.descriptor_count);
        let total = h.entry_length as u64 / SECTOR;
        let (_, mut crc) = self.read_desc(&h, false)?;
        for _ in desc_sectors..total.max(desc_sectors) {
            let r = self.read;
            let s = self.ring.sector(r).ok_or(Stop(Outcome::Bounded))?;
            crc = crc32c::crc32c_append(crc, s);
            self.read = self.ring.inc(r);
        }
        Ok(if crc == h.checksum {
            Step::Valid(h)
        } else {
            Step::Invalid
        })
    }

    /// vhdx_log_search: `(start, count)` of the chosen run.
    fn search(&mut self) -> Result<Option<(u64, u32, u64)>, Stop> {
        self.read = 0;
        let mut best: Option<(u64, u32, u64)> = None;
        loop {
            let tail = self.read;
            if let Step::Valid(first) = self.validate(0)? {
                let mut count = 1u32;
                let mut seq = 0u64;
                while let Step::Valid(h) = self.validate(seq)? {
                    count = count.saturating_add(1);
                    seq = h.sequence_number;
                }
                if best.is_none_or(|b| first.sequence_number > b.2) {
                    best = Some((tail, count, first.sequence_number));
                }
            }
            if self.read < tail {
                return Ok(best);
            }
            if self.read == tail {
                // The same position again: QEMU's scan never ends.
                return Err(refuse(format!(
                    "its log scan comes back to ring offset {tail:#x} and never ends (QEMU hangs)"
                )));
            }
        }
    }

    /// vhdx_log_flush: the writes, in order, and the file size they leave.
    fn flush(
        &mut self,
        start: u64,
        count: u32,
        mut file_len: u64,
        log_offset: u64,
    ) -> Result<(Vec<u64>, Vec<Applied>, u64), Stop> {
        self.read = start;
        let mut entries = Vec::new();
        let mut applied = Vec::new();
        for _ in 0..count {
            let at = self.read;
            entries.push(at);
            let h = self.peek()?;
            if h.flushed_file_offset > file_len {
                return Err(refuse(format!(
                    "the entry at ring offset {at:#x} has FlushedFileOffset {:#x}, past the file's end {file_len:#x}",
                    h.flushed_file_offset
                )));
            }
            let (descs, _) = self.read_desc(&h, true)?;
            for (i, d) in descs.into_iter().enumerate() {
                let mut sector = None;
                if let Descriptor::Data {
                    sequence_number, ..
                } = d
                {
                    let r = self.read;
                    let s = self.ring.sector(r).ok_or(Stop(Outcome::Bounded))?;
                    let ds = fmt::parse_data_sector(s);
                    let seq = ((ds.sequence_high as u64) << 32) | ds.sequence_low as u64;
                    if seq != sequence_number {
                        return Err(refuse(format!(
                            "the data sector at ring offset {r:#x} (descriptor {i} of the entry at {at:#x}) has sequence {seq:#x}, its descriptor {sequence_number:#x}"
                        )));
                    }
                    sector = Some(log_offset + r);
                    self.read = self.ring.inc(r);
                }
                let Some((off, len)) = d.target() else {
                    continue;
                };
                let len = if d.is_data() { SECTOR } else { len };
                match off.checked_add(len) {
                    Some(end) if end <= MAX_REPLAYED_SIZE => file_len = file_len.max(end),
                    _ => {
                        return Err(refuse(format!(
                            "descriptor {i} of the entry at ring offset {at:#x} writes {len:#x} bytes at {off:#x}, past 2^48: QEMU writes them one sector at a time until the file system fails it"
                        )));
                    }
                }
                applied.push(Applied {
                    entry: usize::MAX,
                    index: i as u32,
                    descriptor: d,
                    sector,
                    slot: 0,
                });
            }
            // QEMU extends the file only to a LastFileOffset that is not a MiB multiple
            // (rounded up); an aligned one is left as it is.
            let lfo = h.last_file_offset;
            if file_len < lfo && lfo % MIB != 0 {
                file_len = lfo.div_ceil(MIB).saturating_mul(MIB);
            }
        }
        Ok((entries, applied, file_len))
    }
}

/// QEMU's reading of the ring at `offset` (`length` bytes) with the header's LogGuid `guid`
/// (not zero), in a file of `file_len` bytes.
pub fn read(src: &dyn ReadAt, offset: u64, length: u64, guid: Guid) -> Reading {
    let mut sim = Sim {
        ring: Ring {
            src,
            offset,
            len: length,
            window: Vec::new(),
            window_at: None,
            budget: 8 * (length / SECTOR) + 65536,
        },
        guid,
        read: 0,
    };
    let file_len = src.len();
    let result = sim.search().and_then(|best| match best {
        None => Ok((Outcome::Opens, Vec::new(), file_len)),
        Some((start, count, _)) => {
            let (entries, applied, size) = sim.flush(start, count, file_len, offset)?;
            Ok((
                Outcome::Replays {
                    start,
                    count,
                    entries,
                },
                applied,
                size,
            ))
        }
    });
    match result {
        Ok((outcome, applied, size)) => Reading {
            outcome,
            applied,
            size,
        },
        Err(Stop(outcome)) => Reading {
            outcome,
            applied: Vec::new(),
            size: file_len,
        },
    }
}
