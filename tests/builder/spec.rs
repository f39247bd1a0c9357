//! On-disk constants of MS-VHDX, written out from CATALOGUE.md §1 independently of `src/`
//! so that a wrong constant in the checker cannot hide behind the same wrong constant here.

/// One MiB; every object in a VHDX file is aligned to it.
pub const MIB: u64 = 1 << 20;
/// One KiB.
pub const KIB: u64 = 1 << 10;

/// A GUID in its on-disk (mixed-endian) byte form.
pub type Guid = [u8; 16];

// CATALOGUE §1.5, "On-disk bytes" column.
pub const REGION_BAT: Guid = [
    0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08,
];
pub const REGION_METADATA: Guid = [
    0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E,
];
pub const ITEM_FILE_PARAMETERS: Guid = [
    0x37, 0x67, 0xA1, 0xCA, 0x36, 0xFA, 0x43, 0x4D, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B,
];
pub const ITEM_VIRTUAL_DISK_SIZE: Guid = [
    0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8,
];
pub const ITEM_VIRTUAL_DISK_ID: Guid = [
    0xAB, 0x12, 0xCA, 0xBE, 0xE6, 0xB2, 0x23, 0x45, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46,
];
pub const ITEM_LOGICAL_SECTOR_SIZE: Guid = [
    0x1D, 0xBF, 0x41, 0x81, 0x6F, 0xA9, 0x09, 0x47, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F,
];
pub const ITEM_PHYSICAL_SECTOR_SIZE: Guid = [
    0xC7, 0x48, 0xA3, 0xCD, 0x5D, 0x44, 0x71, 0x44, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56,
];
pub const ITEM_PARENT_LOCATOR: Guid = [
    0x2D, 0x5F, 0xD3, 0xA8, 0x0B, 0xB3, 0x4D, 0x45, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C,
];
pub const LOCATOR_TYPE_VHDX: Guid = [
    0xB7, 0xEF, 0x4A, 0xB0, 0x9E, 0xD1, 0x81, 0x4A, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13,
];

// Signatures (CATALOGUE §1.6): raw bytes, never integers.
pub const SIG_FILE: &[u8; 8] = b"vhdxfile";
pub const SIG_HEADER: &[u8; 4] = b"head";
pub const SIG_REGION: &[u8; 4] = b"regi";
pub const SIG_METADATA: &[u8; 8] = b"metadata";
pub const SIG_LOG_ENTRY: &[u8; 4] = b"loge";
pub const SIG_ZERO_DESCRIPTOR: &[u8; 4] = b"zero";
pub const SIG_DATA_DESCRIPTOR: &[u8; 4] = b"desc";
pub const SIG_DATA_SECTOR: &[u8; 4] = b"data";

/// Fixed file offsets of the header section (CATALOGUE §1.2).
pub const HEADER_OFFSETS: [u64; 2] = [0x10000, 0x20000];
pub const REGION_TABLE_OFFSETS: [u64; 2] = [0x30000, 0x40000];
/// Bytes of a header covered by its checksum.
pub const HEADER_SIZE: usize = 4096;
/// Bytes of a region table (all covered by its checksum), also the metadata table size.
pub const TABLE_SIZE: usize = 65536;

/// Header field offsets (CATALOGUE §1.4.2).
pub mod hdr {
    pub const SIGNATURE: usize = 0;
    pub const CHECKSUM: usize = 4;
    pub const SEQUENCE_NUMBER: usize = 8;
    pub const FILE_WRITE_GUID: usize = 16;
    pub const DATA_WRITE_GUID: usize = 32;
    pub const LOG_GUID: usize = 48;
    pub const LOG_VERSION: usize = 64;
    pub const VERSION: usize = 66;
    pub const LOG_LENGTH: usize = 68;
    pub const LOG_OFFSET: usize = 72;
    pub const RESERVED: usize = 80;
}

/// Region table offsets (CATALOGUE §1.4.3/1.4.4). Entry `n` starts at `16 + 32·n`.
pub mod rgn {
    pub const SIGNATURE: usize = 0;
    pub const CHECKSUM: usize = 4;
    pub const ENTRY_COUNT: usize = 8;
    pub const RESERVED: usize = 12;
    pub const ENTRIES: usize = 16;
    pub const ENTRY_SIZE: usize = 32;
    // Within an entry.
    pub const E_GUID: usize = 0;
    pub const E_FILE_OFFSET: usize = 16;
    pub const E_LENGTH: usize = 24;
    pub const E_REQUIRED: usize = 28;
    /// The builder writes the BAT entry first and the metadata entry second.
    pub const BAT_ENTRY: usize = 0;
    pub const METADATA_ENTRY: usize = 1;

    /// Byte offset of entry `n` inside the table.
    pub const fn entry(n: usize) -> usize {
        ENTRIES + ENTRY_SIZE * n
    }
}

/// Metadata table offsets (CATALOGUE §1.4.10/1.4.11). Entry `n` starts at `32 + 32·n`.
pub mod meta {
    pub const SIGNATURE: usize = 0;
    pub const RESERVED: usize = 8;
    pub const ENTRY_COUNT: usize = 10;
    pub const RESERVED2: usize = 12;
    pub const ENTRY_SIZE: usize = 32;
    // Within an entry.
    pub const E_ITEM_ID: usize = 0;
    pub const E_OFFSET: usize = 16;
    pub const E_LENGTH: usize = 20;
    pub const E_FLAGS: usize = 24;
    pub const E_RESERVED2: usize = 28;
    // Entry flag bits.
    pub const IS_USER: u32 = 1;
    pub const IS_VIRTUAL_DISK: u32 = 2;
    pub const IS_REQUIRED: u32 = 4;
    // File Parameters flag bits.
    pub const LEAVE_BLOCK_ALLOCATED: u32 = 1;
    pub const HAS_PARENT: u32 = 2;
    /// Items start at or after this offset inside the metadata region.
    pub const ITEMS_START: u64 = 64 * 1024;

    /// Byte offset of entry `n` inside the table.
    pub const fn entry(n: usize) -> usize {
        32 + ENTRY_SIZE * n
    }
}

/// Log entry header offsets (CATALOGUE §1.4.5) and descriptor/data-sector layout
/// (§1.4.6–1.4.8).
pub mod log {
    pub const SIGNATURE: usize = 0;
    pub const CHECKSUM: usize = 4;
    pub const ENTRY_LENGTH: usize = 8;
    pub const TAIL: usize = 12;
    pub const SEQUENCE_NUMBER: usize = 16;
    pub const DESCRIPTOR_COUNT: usize = 24;
    pub const RESERVED: usize = 28;
    pub const LOG_GUID: usize = 32;
    pub const FLUSHED_FILE_OFFSET: usize = 48;
    pub const LAST_FILE_OFFSET: usize = 56;
    /// Log sector size: entries, descriptor sectors and data sectors are multiples of it.
    pub const SECTOR: usize = 4096;
    pub const DESCRIPTOR_SIZE: usize = 32;
    // Within a descriptor.
    pub const D_SIGNATURE: usize = 0;
    pub const D_TRAILING_BYTES: usize = 4; // data descriptor
    pub const D_RESERVED: usize = 4; // zero descriptor
    pub const D_LEADING_BYTES: usize = 8; // data descriptor
    pub const D_ZERO_LENGTH: usize = 8; // zero descriptor
    pub const D_FILE_OFFSET: usize = 16;
    pub const D_SEQUENCE_NUMBER: usize = 24;
    // Within a data sector.
    pub const S_SIGNATURE: usize = 0;
    pub const S_SEQUENCE_HIGH: usize = 4;
    pub const S_DATA: usize = 8;
    pub const S_SEQUENCE_LOW: usize = 4092;

    /// Entry offset of descriptor `i`.
    pub const fn descriptor(i: usize) -> usize {
        64 + DESCRIPTOR_SIZE * i
    }

    /// Descriptor sectors needed for `n` descriptors: Ceil((n + 2) / 128), never 0.
    pub const fn descriptor_sectors(n: usize) -> usize {
        (n + 2).div_ceil(128)
    }
}

/// BAT entry states (CATALOGUE §1.4.9) and entry encoding.
pub mod bat {
    pub const NOT_PRESENT: u64 = 0;
    pub const UNDEFINED: u64 = 1;
    pub const ZERO: u64 = 2;
    pub const UNMAPPED: u64 = 3;
    pub const FULLY_PRESENT: u64 = 6;
    pub const PARTIALLY_PRESENT: u64 = 7;
    pub const SB_NOT_PRESENT: u64 = 0;
    pub const SB_PRESENT: u64 = 6;

    /// A BAT entry: `state` in bits 0–2, `offset_mb` (file offset in MiB) in bits 20–63.
    pub const fn entry(state: u64, offset_mb: u64) -> u64 {
        state | (offset_mb << 20)
    }
}

/// Sectors described by one sector-bitmap block (a 1 MiB bitmap).
pub const SECTORS_PER_BITMAP: u64 = 1 << 23;

pub fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
pub fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(buf[at..at + 2].try_into().unwrap())
}
pub fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().unwrap())
}
pub fn get_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().unwrap())
}

/// CRC-32C of `span` as VHDX stores it: the 4-byte field at `field` counts as zero.
pub fn crc_with_zeroed_field(span: &[u8], field: usize) -> u32 {
    let crc = crc32c::crc32c(&span[..field]);
    let crc = crc32c::crc32c_append(crc, &[0; 4]);
    crc32c::crc32c_append(crc, &span[field + 4..])
}

/// Writes the checksum of `span` into its field at `field` (usually 4).
pub fn seal(span: &mut [u8], field: usize) {
    let crc = crc_with_zeroed_field(span, field);
    put_u32(span, field, crc);
}

/// UTF-16LE bytes of `s`, no BOM, no terminator.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Parses canonical GUID text (`AABBCCDD-EEFF-GGHH-IIJJ-KKLLMMNNOOPP`, braces optional)
/// into on-disk bytes. Panics on malformed text (test input only).
pub fn guid(text: &str) -> Guid {
    let hex: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    assert_eq!(hex.len(), 32, "malformed GUID text {text:?}");
    let mut be = [0u8; 16];
    for (i, b) in be.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    // Data1..Data3 are little-endian on disk; Data4 stays as written.
    let mut g = be;
    g[0..4].reverse();
    g[4..6].reverse();
    g[6..8].reverse();
    g
}

/// Canonical lowercase text of an on-disk GUID, without braces.
pub fn guid_text(g: &Guid) -> String {
    let mut be = *g;
    be[0..4].reverse();
    be[4..6].reverse();
    be[6..8].reverse();
    let h: String = be.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The form `parent_linkage` values take: `{` + lowercase canonical text + `}`.
pub fn guid_braced(g: &Guid) -> String {
    format!("{{{}}}", guid_text(g))
}

/// A deterministic, random-looking, never-zero version-4 GUID derived from `seed`.
pub fn pseudo_guid(seed: u64) -> Guid {
    // SplitMix64: good enough spread for distinct-looking ids, and reproducible.
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&next().to_le_bytes());
    g[8..].copy_from_slice(&next().to_le_bytes());
    g[7] = (g[7] & 0x0F) | 0x40; // version 4 (high nibble of Data3, stored little-endian)
    g[8] = (g[8] & 0x3F) | 0x80; // RFC 4122 variant
    g
}
