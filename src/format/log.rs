//! The log (MS-VHDX 2.3): entry header, zero and data descriptors, data sectors.
//! Decoding only; which fields are wrong is the log model's and the rules' business.

use super::guid::Guid;
use super::{u32_at, u64_at};
use serde::Serialize;

pub const ENTRY_SIGNATURE: &[u8; 4] = b"loge";
pub const ZERO_SIGNATURE: &[u8; 4] = b"zero";
pub const DESC_SIGNATURE: &[u8; 4] = b"desc";
pub const DATA_SIGNATURE: &[u8; 4] = b"data";
/// Entries, descriptor sectors and data sectors are laid out in 4 KiB units.
pub const SECTOR: u64 = 4096;
pub const HEADER_SIZE: usize = 64;
pub const DESCRIPTOR_SIZE: usize = 32;
pub const CHECKSUM_FIELD: usize = 4;

/// Log entry header (64 bytes at the start of an entry; MS-VHDX 2.3.1.1).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EntryHeader {
    #[serde(serialize_with = "crate::format::display::ser_bytes")]
    pub signature: [u8; 4],
    pub checksum: u32,
    pub entry_length: u32,
    pub tail: u32,
    pub sequence_number: u64,
    pub descriptor_count: u32,
    pub reserved: u32,
    pub log_guid: Guid,
    pub flushed_file_offset: u64,
    pub last_file_offset: u64,
}

/// Parses the first 64 bytes of `b`.
pub fn parse_header(b: &[u8]) -> EntryHeader {
    EntryHeader {
        signature: [b[0], b[1], b[2], b[3]],
        checksum: u32_at(b, 4),
        entry_length: u32_at(b, 8),
        tail: u32_at(b, 12),
        sequence_number: u64_at(b, 16),
        descriptor_count: u32_at(b, 24),
        reserved: u32_at(b, 28),
        log_guid: Guid::from_slice(&b[32..48]),
        flushed_file_offset: u64_at(b, 48),
        last_file_offset: u64_at(b, 56),
    }
}

/// Descriptor sectors an entry with `count` descriptors has: the 64-byte header takes the
/// first two 32-byte slots, so `D = Ceil((count + 2) / 128)`.
pub fn descriptor_sectors(count: u32) -> u64 {
    (count as u64 + 2).div_ceil(128)
}

/// A 32-byte descriptor slot (MS-VHDX 2.3.1.2, 2.3.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Descriptor {
    Zero {
        reserved: u32,
        zero_length: u64,
        file_offset: u64,
        sequence_number: u64,
    },
    Data {
        #[serde(serialize_with = "crate::format::display::ser_hex")]
        trailing_bytes: [u8; 4],
        #[serde(serialize_with = "crate::format::display::ser_hex")]
        leading_bytes: [u8; 8],
        file_offset: u64,
        sequence_number: u64,
    },
    /// Neither "zero" nor "desc".
    Unknown {
        #[serde(serialize_with = "crate::format::display::ser_bytes")]
        signature: [u8; 4],
    },
}

impl Descriptor {
    pub fn parse(b: &[u8]) -> Descriptor {
        let sig = [b[0], b[1], b[2], b[3]];
        if &sig == ZERO_SIGNATURE {
            Descriptor::Zero {
                reserved: u32_at(b, 4),
                zero_length: u64_at(b, 8),
                file_offset: u64_at(b, 16),
                sequence_number: u64_at(b, 24),
            }
        } else if &sig == DESC_SIGNATURE {
            Descriptor::Data {
                trailing_bytes: [b[4], b[5], b[6], b[7]],
                leading_bytes: b[8..16].try_into().unwrap_or([0; 8]),
                file_offset: u64_at(b, 16),
                sequence_number: u64_at(b, 24),
            }
        } else {
            Descriptor::Unknown { signature: sig }
        }
    }

    /// Target `(file offset, length)`: a data descriptor writes one 4 KiB sector.
    pub fn target(&self) -> Option<(u64, u64)> {
        match *self {
            Descriptor::Zero {
                file_offset,
                zero_length,
                ..
            } => Some((file_offset, zero_length)),
            Descriptor::Data { file_offset, .. } => Some((file_offset, SECTOR)),
            Descriptor::Unknown { .. } => None,
        }
    }

    pub fn sequence_number(&self) -> Option<u64> {
        match *self {
            Descriptor::Zero {
                sequence_number, ..
            }
            | Descriptor::Data {
                sequence_number, ..
            } => Some(sequence_number),
            Descriptor::Unknown { .. } => None,
        }
    }

    pub fn is_data(&self) -> bool {
        matches!(self, Descriptor::Data { .. })
    }
}

/// The fixed fields of a data sector (MS-VHDX 2.3.1.4); bytes 8..4092 are the payload.
#[derive(Debug, Clone, Copy)]
pub struct DataSector {
    pub signature: [u8; 4],
    pub sequence_high: u32,
    pub sequence_low: u32,
}

/// Parses a 4096-byte data sector.
pub fn parse_data_sector(b: &[u8]) -> DataSector {
    DataSector {
        signature: [b[0], b[1], b[2], b[3]],
        sequence_high: u32_at(b, 4),
        sequence_low: u32_at(b, 4092),
    }
}

/// The 4 KiB write a data descriptor and its sector stand for: LeadingBytes ‖ sector
/// bytes 8..4092 ‖ TrailingBytes (MS-VHDX 2.3.1.3).
pub fn reconstruct(leading: &[u8; 8], sector: &[u8], trailing: &[u8; 4]) -> [u8; SECTOR as usize] {
    let mut out = [0u8; SECTOR as usize];
    out[..8].copy_from_slice(leading);
    out[8..4092].copy_from_slice(&sector[8..4092]);
    out[4092..].copy_from_slice(trailing);
    out
}
