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
        let (log_offset, ring) = (self.layout.log_offset, self.layout.log_length);
        assert!(
            ring_offset < ring,
            "ring offset {ring_offset} outside the log"
        );
        let bytes = entry.encode();
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
