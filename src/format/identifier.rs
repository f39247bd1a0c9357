//! File Type Identifier (MS-VHDX 2.2.1): 8-byte signature and a 512-byte UTF-16LE Creator
//! at file offset 0, in a 64 KiB slot.

use serde::Serialize;

pub const OFFSET: u64 = 0;
pub const SLOT: usize = 64 * 1024;
pub const SIGNATURE: &[u8; 8] = b"vhdxfile";
pub const CREATOR_OFFSET: usize = 8;
pub const CREATOR_LEN: usize = 512;
/// First reserved byte after the Creator.
pub const RESERVED_OFFSET: usize = CREATOR_OFFSET + CREATOR_LEN;

#[derive(Debug, Clone, Serialize)]
pub struct FileIdentifier {
    #[serde(serialize_with = "crate::format::display::ser_bytes")]
    pub signature: [u8; 8],
    /// Creator code units up to the first NUL (all 256 if none).
    pub creator: String,
    /// Those code units are well-formed UTF-16.
    pub creator_well_formed: bool,
    /// Byte offset (in the file) of the first NUL code unit, if any.
    pub creator_nul_at: Option<usize>,
    /// Non-zero code units follow the first NUL (residue of an older string).
    pub creator_residue: bool,
}

pub fn parse(slot: &[u8]) -> FileIdentifier {
    let mut signature = [0u8; 8];
    signature.copy_from_slice(&slot[..8]);
    let creator_bytes = &slot[CREATOR_OFFSET..CREATOR_OFFSET + CREATOR_LEN];
    let nul = creator_bytes.chunks_exact(2).position(|c| c == [0, 0]);
    let used = &creator_bytes[..nul.map_or(CREATOR_LEN, |n| n * 2)];
    let creator_well_formed = super::utf16le(used).is_some();
    let creator = super::utf16le_lossy(used);
    let creator_residue = nul.is_some_and(|n| creator_bytes[n * 2..].iter().any(|&b| b != 0));
    FileIdentifier {
        signature,
        creator,
        creator_well_formed,
        creator_nul_at: nul.map(|n| CREATOR_OFFSET + n * 2),
        creator_residue,
    }
}
