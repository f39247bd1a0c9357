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

/// What one BAT index describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A payload entry, with its block number (in the last chunk of a differencing disk
    /// it may be at or past the disk's blocks: padding).
    Payload(u64),
    /// The sector-bitmap entry of this chunk.
    SectorBitmap(u64),
    /// An index at or past the entries the disk uses (slack).
    Beyond,
}

/// The slots of BAT indices 0, 1, 2, ... found by counting. Walks of the whole table use
/// it instead of [`Geometry::is_sector_bitmap_index`] and [`Geometry::block_of_index`],
/// whose 64-bit divisions by C + 1 per entry dominated the walk of a 64 Mi-entry BAT.
/// Every counter stays below the index, which stays below the number of entries read.
#[derive(Debug, Clone)]
pub struct SlotCursor {
    chunk_ratio: u64,
    total_entries: u64,
    index: u64,
    in_chunk: u64,
    block: u64,
    chunk: u64,
}

impl SlotCursor {
    pub fn new(g: &Geometry) -> SlotCursor {
        SlotCursor {
            chunk_ratio: g.chunk_ratio,
            total_entries: g.total_entries,
            index: 0,
            in_chunk: 0,
            block: 0,
            chunk: 0,
        }
    }

    /// A cursor whose next slot is that of `index` (one division, for a walk that starts
    /// each chunk of entries afresh).
    pub fn at(g: &Geometry, index: u64) -> SlotCursor {
        let chunks = g.chunk_of_index(index);
        let in_chunk = index % (g.chunk_ratio + 1);
        SlotCursor {
            chunk_ratio: g.chunk_ratio,
            total_entries: g.total_entries,
            index,
            in_chunk,
            // `block` only counts payload slots: in the chunk's bitmap slot it is the next
            // chunk's first block, as counting from 0 leaves it.
            block: chunks * g.chunk_ratio + in_chunk.min(g.chunk_ratio),
            chunk: chunks,
        }
    }

    /// Payload slots from here to the next sector-bitmap slot or the end of the disk's
    /// entries (0 when the next slot is not a payload slot).
    pub fn payload_run(&self) -> u64 {
        if self.index >= self.total_entries {
            return 0;
        }
        (self.chunk_ratio - self.in_chunk).min(self.total_entries - self.index)
    }

    /// The first block of [`SlotCursor::payload_run`].
    pub fn block(&self) -> u64 {
        self.block
    }

    /// Skips `n` payload slots (at most [`SlotCursor::payload_run`]).
    pub fn skip_payload(&mut self, n: u64) {
        debug_assert!(n <= self.payload_run());
        self.index += n;
        self.in_chunk += n;
        self.block += n;
    }

    /// The slot of the next index (the cursor never ends: past the disk's entries every
    /// index is [`Slot::Beyond`]).
    pub fn next_slot(&mut self) -> Slot {
        if self.index >= self.total_entries {
            return Slot::Beyond;
        }
        self.index += 1;
        if self.in_chunk == self.chunk_ratio {
            self.in_chunk = 0;
            self.chunk += 1;
            Slot::SectorBitmap(self.chunk - 1)
        } else {
            self.in_chunk += 1;
            self.block += 1;
            Slot::Payload(self.block - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_agrees_with_the_formulas() {
        for (bs, lss, vds, diff) in [
            (MIB, 512, 4097 * MIB, true),
            (MIB, 512, 4097 * MIB, false),
            (32 * MIB, 512, 2 << 40, false),
            (256 * MIB, 4096, 3 << 40, true),
        ] {
            let g = Geometry::new(bs, lss, vds, diff).unwrap();
            let mut c = SlotCursor::new(&g);
            for i in 0..g.total_entries + 3 {
                let want = if i >= g.total_entries {
                    Slot::Beyond
                } else if g.is_sector_bitmap_index(i) {
                    Slot::SectorBitmap(g.chunk_of_index(i))
                } else {
                    Slot::Payload(g.block_of_index(i))
                };
                let mut fresh = SlotCursor::at(&g, i);
                assert_eq!(fresh.next_slot(), want, "index {i} of {g:?}");
                assert_eq!(c.next_slot(), want, "index {i} of {g:?}");
            }
            // Skipping a run lands where stepping through it does.
            let mut a = SlotCursor::at(&g, 5);
            let mut b = a.clone();
            let n = a.payload_run();
            a.skip_payload(n);
            for _ in 0..n {
                b.next_slot();
            }
            assert_eq!(a.next_slot(), b.next_slot());
        }
    }

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
