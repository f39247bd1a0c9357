//! Region table (MS-VHDX 2.2.3): a 64 KiB table, two copies, CRC over all 64 KiB.

use super::guid::Guid;
use super::{crc, u32_at, u64_at};
use serde::Serialize;

pub const OFFSETS: [u64; 2] = [0x30000, 0x40000];
pub const SIZE: usize = 64 * 1024;
pub const SIGNATURE: &[u8; 4] = b"regi";
pub const CHECKSUM_FIELD: usize = 4;
pub const HEADER_SIZE: usize = 16;
pub const ENTRY_SIZE: usize = 32;
/// floor((65536 - 16) / 32)
pub const MAX_ENTRIES: usize = 2047;

#[derive(Debug, Clone, Serialize)]
pub struct RegionTable {
    #[serde(serialize_with = "crate::format::display::ser_bytes")]
    pub signature: [u8; 4],
    pub checksum: u32,
    pub entry_count: u32,
    pub reserved: u32,
    /// At most [`MAX_ENTRIES`] entries, whatever `entry_count` claims.
    pub entries: Vec<RegionEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RegionEntry {
    pub guid: Guid,
    pub file_offset: u64,
    pub length: u32,
    pub required: u32,
}

impl RegionEntry {
    pub fn end(&self) -> Option<u64> {
        self.file_offset.checked_add(self.length as u64)
    }
}

/// Byte offset of entry `i` inside the table.
pub fn entry_offset(i: usize) -> usize {
    HEADER_SIZE + ENTRY_SIZE * i
}

pub fn parse(b: &[u8]) -> RegionTable {
    let entry_count = u32_at(b, 8);
    let n = (entry_count as usize).min(MAX_ENTRIES);
    let entries = (0..n)
        .map(|i| parse_entry(&b[entry_offset(i)..entry_offset(i) + ENTRY_SIZE]))
        .collect();
    RegionTable {
        signature: [b[0], b[1], b[2], b[3]],
        checksum: u32_at(b, 4),
        entry_count,
        reserved: u32_at(b, 12),
        entries,
    }
}

/// Decodes one 32-byte entry.
pub fn parse_entry(e: &[u8]) -> RegionEntry {
    RegionEntry {
        guid: Guid::from_slice(&e[..16]),
        file_offset: u64_at(e, 16),
        length: u32_at(e, 24),
        required: u32_at(e, 28),
    }
}

pub fn computed_checksum(b: &[u8]) -> u32 {
    crc::crc32c_with_zeroed_field(&b[..SIZE], CHECKSUM_FIELD)
}
