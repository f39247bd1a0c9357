//! Log entries (CATALOGUE §1.4.5–1.4.8) written into a built image's log ring.
//!
//! ```ignore
//! let mut img = ImageBuilder::dynamic(64 * MIB).write(0, b"x").build();
//! let bat0 = img.layout.bat_entry_offset(0);
//! let entry = img.log_entry(&[(bat0, &0u64.to_le_bytes())]); // replay would unmap block 0
//! img.write_log(&[entry]);                                   // LogGuid set: replay pending
//! ```

use super::Built;
use super::spec::{
    Guid, SIG_DATA_DESCRIPTOR, SIG_DATA_SECTOR, SIG_LOG_ENTRY, SIG_ZERO_DESCRIPTOR, hdr, log,
    put_u32, put_u64, seal,
};
use std::collections::BTreeMap;

/// Sequence number [`Built::log_entry`] gives its entries: non-zero in both 32-bit halves,
/// so a swapped SequenceHigh/SequenceLow shows.
pub const LOG_SEQUENCE: u64 = 0x0000_0001_0000_0002;

/// One update carried by a log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Descriptor {
    /// 4096 bytes for the 4 KiB-aligned `file_offset`.
    Data { file_offset: u64, data: Vec<u8> },
    /// `length` zero bytes at `file_offset`.
    Zero { file_offset: u64, length: u64 },
}

/// A log entry before encoding. Fields are written as given (tests may make them wrong);
/// the checksum is always correct for the encoded bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub sequence: u64,
    /// Ring offset of the first entry of the sequence this entry ends.
    pub tail: u32,
    pub log_guid: Guid,
    pub flushed_file_offset: u64,
    pub last_file_offset: u64,
    pub descriptors: Vec<Descriptor>,
}

/// Where an encoded log entry went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPlace {
    /// Offset inside the log ring.
    pub ring_offset: u64,
    /// File offset of the entry's first byte.
    pub file_offset: u64,
    /// EntryLength.
    pub length: u64,
}

impl LogEntry {
    /// Adds a data descriptor (`data` must be 4096 bytes).
    pub fn data(mut self, file_offset: u64, data: Vec<u8>) -> Self {
        assert_eq!(
            data.len(),
            log::SECTOR,
            "a data descriptor carries exactly 4096 bytes"
        );
        self.descriptors
            .push(Descriptor::Data { file_offset, data });
        self
    }

    /// Adds a zero descriptor.
    pub fn zero(mut self, file_offset: u64, length: u64) -> Self {
        self.descriptors.push(Descriptor::Zero {
            file_offset,
            length,
        });
        self
    }

    /// EntryLength of [`LogEntry::encode`]: 4096·(D + #data descriptors).
    pub fn length(&self) -> u64 {
        let data = self
            .descriptors
            .iter()
            .filter(|d| matches!(d, Descriptor::Data { .. }))
            .count();
        (log::SECTOR * (log::descriptor_sectors(self.descriptors.len()) + data)) as u64
    }

    /// Entry offset of the data sector of the `j`-th data descriptor: 4096·(D + j).
    pub fn data_sector(&self, j: usize) -> usize {
        log::SECTOR * (log::descriptor_sectors(self.descriptors.len()) + j)
    }

    /// This entry with another sequence number (header, descriptors and data sectors).
    pub fn seq(mut self, sequence: u64) -> Self {
        self.sequence = sequence;
        self
    }

    /// This entry with another Tail.
    pub fn tail(mut self, tail: u32) -> Self {
        self.tail = tail;
        self
    }

    /// This entry with another LogGuid.
    pub fn guid(mut self, log_guid: Guid) -> Self {
        self.log_guid = log_guid;
        self
    }

    /// This entry with other FlushedFileOffset and LastFileOffset.
    pub fn file_offsets(mut self, flushed: u64, last: u64) -> Self {
        self.flushed_file_offset = flushed;
        self.last_file_offset = last;
        self
    }

    /// Raw field override: the encoded bytes after `f` changed them, checksum recomputed
    /// over all of them (so the entry stays CRC-valid with the odd value).
    pub fn encode_with(&self, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut e = self.encode();
        f(&mut e);
        reseal_entry(&mut e);
        e
    }

    /// The encoding followed by `extra` zero sectors that EntryLength covers (resealed): an
    /// entry padded past its minimal length (CATALOGUE §4 A10).
    pub fn encode_padded(&self, extra: usize) -> Vec<u8> {
        self.encode_with(|e| {
            e.resize(e.len() + extra * log::SECTOR, 0);
            let length = e.len() as u32;
            put_u32(e, log::ENTRY_LENGTH, length);
        })
    }

    /// A torn entry: the encoding with one byte of its last sector changed after the
    /// checksum was computed (valid header fields, wrong CRC).
    pub fn encode_torn(&self) -> Vec<u8> {
        let mut e = self.encode();
        let last = e.len() - 100;
        e[last] ^= 0x5A;
        e
    }

    /// The entry's bytes: descriptor sectors, then one data sector per data descriptor in
    /// descriptor order; EntryLength = 4096·(D + #data); checksum over all of it.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.descriptors.len();
        let desc_sectors = log::descriptor_sectors(n);
        let data: Vec<&Vec<u8>> = self
            .descriptors
            .iter()
            .filter_map(|d| match d {
                Descriptor::Data { data, .. } => Some(data),
                Descriptor::Zero { .. } => None,
            })
            .collect();
        let mut e = vec![0u8; log::SECTOR * (desc_sectors + data.len())];
        e[..4].copy_from_slice(SIG_LOG_ENTRY);
        let length = e.len() as u32;
        put_u32(&mut e, log::ENTRY_LENGTH, length);
        put_u32(&mut e, log::TAIL, self.tail);
        put_u64(&mut e, log::SEQUENCE_NUMBER, self.sequence);
        put_u32(&mut e, log::DESCRIPTOR_COUNT, n as u32);
        e[log::LOG_GUID..][..16].copy_from_slice(&self.log_guid);
        put_u64(&mut e, log::FLUSHED_FILE_OFFSET, self.flushed_file_offset);
        put_u64(&mut e, log::LAST_FILE_OFFSET, self.last_file_offset);
        for (i, desc) in self.descriptors.iter().enumerate() {
            let d = log::descriptor(i);
            match desc {
                Descriptor::Data { file_offset, data } => {
                    e[d..d + 4].copy_from_slice(SIG_DATA_DESCRIPTOR);
                    e[d + log::D_TRAILING_BYTES..][..4].copy_from_slice(&data[4092..]);
                    e[d + log::D_LEADING_BYTES..][..8].copy_from_slice(&data[..8]);
                    put_u64(&mut e, d + log::D_FILE_OFFSET, *file_offset);
                }
                Descriptor::Zero {
                    file_offset,
                    length,
                } => {
                    e[d..d + 4].copy_from_slice(SIG_ZERO_DESCRIPTOR);
                    put_u64(&mut e, d + log::D_ZERO_LENGTH, *length);
                    put_u64(&mut e, d + log::D_FILE_OFFSET, *file_offset);
                }
            }
            put_u64(&mut e, d + log::D_SEQUENCE_NUMBER, self.sequence);
        }
        for (j, data) in data.iter().enumerate() {
            let s = log::SECTOR * (desc_sectors + j);
            e[s..s + 4].copy_from_slice(SIG_DATA_SECTOR);
            put_u32(
                &mut e,
                s + log::S_SEQUENCE_HIGH,
                (self.sequence >> 32) as u32,
            );
            e[s + log::S_DATA..s + log::S_SEQUENCE_LOW].copy_from_slice(&data[8..4092]);
            put_u32(&mut e, s + log::S_SEQUENCE_LOW, self.sequence as u32);
        }
        seal(&mut e, log::CHECKSUM);
        e
    }
}

/// Recomputes the CRC-32C of an encoded entry over all its bytes (Checksum at byte 4).
pub fn reseal_entry(entry: &mut [u8]) {
    seal(entry, log::CHECKSUM);
}

impl Built {
    /// An entry whose data descriptors turn every 4 KiB sector touched by `writes`
    /// (file offset, bytes) into its current contents with the writes applied. Sequence
    /// [`LOG_SEQUENCE`], tail 0, the layout's LogGuid, Flushed/LastFileOffset = file length.
    pub fn log_entry(&self, writes: &[(u64, &[u8])]) -> LogEntry {
        let sector = log::SECTOR as u64;
        let mut sectors: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for (offset, bytes) in writes {
            for (i, &b) in bytes.iter().enumerate() {
                let at = offset + i as u64;
                let base = at / sector * sector;
                let content = sectors
                    .entry(base)
                    .or_insert_with(|| self.read(base, log::SECTOR));
                content[(at - base) as usize] = b;
            }
        }
        LogEntry {
            sequence: LOG_SEQUENCE,
            tail: 0,
            log_guid: self.layout.log_guid,
            flushed_file_offset: self.len,
            last_file_offset: self.len,
            descriptors: sectors
                .into_iter()
                .map(|(file_offset, data)| Descriptor::Data { file_offset, data })
                .collect(),
        }
    }

    /// Writes `entries` end to end from ring offset 0 and sets LogGuid in both headers to
    /// the first entry's (checksums resealed), so the log is active.
    pub fn write_log(&mut self, entries: &[LogEntry]) -> Vec<LogPlace> {
        let mut at = 0;
        let places: Vec<LogPlace> = entries
            .iter()
            .map(|e| {
                let place = self.put_log_entry(at, e);
                at += place.length;
                place
            })
            .collect();
        if let Some(first) = entries.first() {
            self.set_log_guid(first.log_guid);
        }
        places
    }

    /// Encodes `entry` at ring offset `ring_offset`; bytes past the end of the log wrap to
    /// its start (ring order). Headers are not touched.
    pub fn put_log_entry(&mut self, ring_offset: u64, entry: &LogEntry) -> LogPlace {
        self.put_log_bytes(ring_offset, &entry.encode())
    }

    /// Writes `bytes` (an encoded, possibly damaged entry, or anything else) at ring offset
    /// `ring_offset`, wrapping past the ring end. Headers are not touched.
    pub fn put_log_bytes(&mut self, ring_offset: u64, bytes: &[u8]) -> LogPlace {
        let (log_offset, ring) = (self.layout.log_offset, self.layout.log_length);
        assert!(
            ring_offset < ring,
            "ring offset {ring_offset} outside the log"
        );
        assert!(bytes.len() as u64 <= ring, "entry longer than the ring");
        let first = (ring - ring_offset).min(bytes.len() as u64) as usize;
        self.patch(log_offset + ring_offset, &bytes[..first]);
        if first < bytes.len() {
            self.patch(log_offset, &bytes[first..]);
        }
        LogPlace {
            ring_offset,
            file_offset: log_offset + ring_offset,
            length: bytes.len() as u64,
        }
    }

    /// `len` bytes of the ring from `ring_offset`, in ring order (wrapping).
    pub fn read_log(&self, ring_offset: u64, len: usize) -> Vec<u8> {
        let (log_offset, ring) = (self.layout.log_offset, self.layout.log_length);
        assert!(ring_offset < ring && len as u64 <= ring);
        let first = (ring - ring_offset).min(len as u64) as usize;
        let mut bytes = self.read(log_offset + ring_offset, first);
        bytes.extend(self.read(log_offset, len - first));
        bytes
    }

    /// Lays `entries` end to end from ring offset `start` (wrapping past the ring end) as
    /// one sequence: sequence numbers `first_seq`, `first_seq + 1`, ..., every Tail =
    /// `start` (the whole sequence is replayed). Sets LogGuid in both headers to the first
    /// entry's. Returns the entries as written and where they went.
    pub fn write_sequence(
        &mut self,
        start: u64,
        first_seq: u64,
        entries: &[LogEntry],
    ) -> (Vec<LogEntry>, Vec<LogPlace>) {
        let ring = self.layout.log_length;
        let mut at = start;
        let mut written = Vec::new();
        let mut places = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let e = e.clone().seq(first_seq + i as u64).tail(start as u32);
            let place = self.put_log_entry(at, &e);
            at = (at + place.length) % ring;
            written.push(e);
            places.push(place);
        }
        if let Some(first) = written.first() {
            self.set_log_guid(first.log_guid);
        }
        (written, places)
    }

    /// Sets LogGuid in both headers and reseals them (zero GUID: log empty).
    pub fn set_log_guid(&mut self, guid: Guid) {
        for copy in 1..=2 {
            self.edit_header(copy, |h| h[hdr::LOG_GUID..][..16].copy_from_slice(&guid));
        }
    }

    /// Does what replay of `entry` would do to the file, making the log already applied.
    pub fn apply_log_entry(&mut self, entry: &LogEntry) {
        for desc in &entry.descriptors {
            match desc {
                Descriptor::Data { file_offset, data } => self.patch(*file_offset, data),
                Descriptor::Zero {
                    file_offset,
                    length,
                } => self.patch(*file_offset, &vec![0; *length as usize]),
            }
        }
    }
}
