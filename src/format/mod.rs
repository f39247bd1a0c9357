//! Parsers for the on-disk structures, named after the specification. A parser only
//! decodes; it never judges (that is the rules' job) and never panics on any bytes.

pub mod bat;
pub mod crc;
pub mod display;
pub mod foreign;
pub mod guid;
pub mod header;
pub mod identifier;
pub mod log;
pub mod metadata;
pub mod parent;
pub mod region;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * 1024;

pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Decodes UTF-16LE code units; `None` if they are not well formed (unpaired surrogate).
pub fn utf16le(bytes: &[u8]) -> Option<String> {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// Decodes UTF-16LE lossily (unpaired surrogates become U+FFFD) for display.
pub fn utf16le_lossy(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or('\u{FFFD}'))
        .collect()
}
