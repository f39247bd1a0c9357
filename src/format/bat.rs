//! Block Allocation Table (MS-VHDX 2.5): 64-bit entries, payload entries interleaved with
//! one sector-bitmap entry per chunk; the size formulas of CATALOGUE 1.8.

use super::MIB;
use serde::Serialize;

pub const ENTRY_SIZE: u64 = 8;
pub const STATE_MASK: u64 = 0x7;
pub const RESERVED_MASK: u64 = 0x000F_FFF8;
pub const OFFSET_MASK: u64 = 0xFFFF_FFFF_FFF0_0000;

// Payload block states (2.5.1.1).
pub const PAYLOAD_BLOCK_NOT_PRESENT: u8 = 0;
pub const PAYLOAD_BLOCK_UNDEFINED: u8 = 1;
pub const PAYLOAD_BLOCK_ZERO: u8 = 2;
pub const PAYLOAD_BLOCK_UNMAPPED: u8 = 3;
pub const PAYLOAD_BLOCK_FULLY_PRESENT: u8 = 6;
pub const PAYLOAD_BLOCK_PARTIALLY_PRESENT: u8 = 7;
// Sector bitmap block states (2.5.1.2).
pub const SB_BLOCK_NOT_PRESENT: u8 = 0;
pub const SB_BLOCK_PRESENT: u8 = 6;

/// Sectors described by one sector-bitmap block (a 1 MiB bitmap).
pub const SECTORS_PER_BITMAP: u64 = 1 << 23;
pub const SECTOR_BITMAP_BLOCK_SIZE: u64 = MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatEntry(pub u64);

impl BatEntry {
    pub fn state(self) -> u8 {
        (self.0 & STATE_MASK) as u8
    }
    pub fn reserved(self) -> u64 {
        self.0 & RESERVED_MASK
    }
    pub fn file_offset_mb(self) -> u64 {
        self.0 >> 20
    }
    /// Byte offset of the block (cannot overflow: the field is the top 44 bits).
    pub fn file_offset(self) -> u64 {
        self.0 & OFFSET_MASK
    }
}

pub fn payload_state_name(s: u8) -> &'static str {
    match s {
        0 => "PAYLOAD_BLOCK_NOT_PRESENT",
        1 => "PAYLOAD_BLOCK_UNDEFINED",
        2 => "PAYLOAD_BLOCK_ZERO",
        3 => "PAYLOAD_BLOCK_UNMAPPED",
        6 => "PAYLOAD_BLOCK_FULLY_PRESENT",
        7 => "PAYLOAD_BLOCK_PARTIALLY_PRESENT",
        _ => "reserved",
    }
}

pub fn sb_state_name(s: u8) -> &'static str {
    match s {
        0 => "SB_BLOCK_NOT_PRESENT",
        6 => "SB_BLOCK_PRESENT",
        _ => "reserved",
    }
}

/// The derived quantities of CATALOGUE 1.8, from validated parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Geometry {
    pub block_size: u64,
    pub logical_sector_size: u64,
    pub virtual_disk_size: u64,
    pub differencing: bool,
    /// C: payload blocks per chunk.
    pub chunk_ratio: u64,
    /// P: payload blocks.
    pub payload_blocks: u64,
    /// S: sector-bitmap blocks.
    pub sector_bitmap_blocks: u64,
    /// T: BAT entries.
    pub total_entries: u64,
}

impl Geometry {
    /// `None` unless block size is a power of two in [1 MiB, 256 MiB], the logical sector
    /// size is 512 or 4096 and the virtual size is at most 64 TiB: only then do the
    /// formulas mean anything (and stay small).
    pub fn new(block_size: u64, lss: u64, vds: u64, differencing: bool) -> Option<Geometry> {
        if !block_size.is_power_of_two() || !(MIB..=256 * MIB).contains(&block_size) {
            return None;
        }
        if lss != 512 && lss != 4096 {
            return None;
        }
        if vds > 1 << 46 {
            return None;
        }
        let chunk_ratio = SECTORS_PER_BITMAP * lss / block_size;
        let payload_blocks = vds.div_ceil(block_size);
        let sector_bitmap_blocks = payload_blocks.div_ceil(chunk_ratio);
        let total_entries = if differencing {
            sector_bitmap_blocks * (chunk_ratio + 1)
        } else if payload_blocks == 0 {
            0
        } else {
            payload_blocks + (payload_blocks - 1) / chunk_ratio
        };
        Some(Geometry {
            block_size,
            logical_sector_size: lss,
            virtual_disk_size: vds,
            differencing,
            chunk_ratio,
            payload_blocks,
            sector_bitmap_blocks,
            total_entries,
        })
    }

    pub fn is_sector_bitmap_index(&self, i: u64) -> bool {
        i % (self.chunk_ratio + 1) == self.chunk_ratio
    }

    /// Payload block number of BAT index `i` (which must not be a bitmap entry).
    pub fn block_of_index(&self, i: u64) -> u64 {
        i / (self.chunk_ratio + 1) * self.chunk_ratio + i % (self.chunk_ratio + 1)
    }

    pub fn index_of_block(&self, k: u64) -> u64 {
        k + k / self.chunk_ratio
    }

    /// Chunk number of BAT index `i`.
    pub fn chunk_of_index(&self, i: u64) -> u64 {
        i / (self.chunk_ratio + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_count_formulas() {
        // 512-byte sectors, 1 MiB blocks: C = 4096.
        let g = Geometry::new(MIB, 512, 4096 * MIB, false).unwrap();
        assert_eq!(
            (g.chunk_ratio, g.payload_blocks, g.total_entries),
            (4096, 4096, 4096)
        );
        let g = Geometry::new(MIB, 512, 4097 * MIB, false).unwrap();
        assert_eq!(g.total_entries, 4097 + 1);
        let g = Geometry::new(MIB, 512, 4097 * MIB, true).unwrap();
        assert_eq!(g.total_entries, 2 * 4097);
        assert_eq!(g.block_of_index(4097), 4096);
        assert!(g.is_sector_bitmap_index(4096));
        assert_eq!(g.index_of_block(4096), 4097);
    }
}
