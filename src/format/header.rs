//! Header (MS-VHDX 2.2.2): a 4 KiB structure in each of two 64 KiB slots.

use super::guid::Guid;
use super::{crc, u16_at, u32_at, u64_at};
use serde::Serialize;

pub const OFFSETS: [u64; 2] = [0x10000, 0x20000];
pub const SIZE: usize = 4096;
pub const SLOT: usize = 64 * 1024;
pub const SIGNATURE: &[u8; 4] = b"head";
pub const CHECKSUM_FIELD: usize = 4;
/// Size of the defined fields; bytes 80..4096 are reserved.
pub const DEFINED: usize = 80;

#[derive(Debug, Clone, Serialize)]
pub struct Header {
    #[serde(serialize_with = "crate::format::display::ser_bytes")]
    pub signature: [u8; 4],
    pub checksum: u32,
    pub sequence_number: u64,
    pub file_write_guid: Guid,
    pub data_write_guid: Guid,
    pub log_guid: Guid,
    pub log_version: u16,
    pub version: u16,
    pub log_length: u32,
    pub log_offset: u64,
}

/// Parses the first 4096 bytes of `b` (which must hold at least that many).
pub fn parse(b: &[u8]) -> Header {
    Header {
        signature: [b[0], b[1], b[2], b[3]],
        checksum: u32_at(b, 4),
        sequence_number: u64_at(b, 8),
        file_write_guid: Guid::from_slice(&b[16..32]),
        data_write_guid: Guid::from_slice(&b[32..48]),
        log_guid: Guid::from_slice(&b[48..64]),
        log_version: u16_at(b, 64),
        version: u16_at(b, 66),
        log_length: u32_at(b, 68),
        log_offset: u64_at(b, 72),
    }
}

/// The checksum over the 4 KiB structure, as the specification defines it.
pub fn computed_checksum(b: &[u8]) -> u32 {
    crc::crc32c_with_zeroed_field(&b[..SIZE], CHECKSUM_FIELD)
}
