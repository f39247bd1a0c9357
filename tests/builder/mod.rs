//! Builds valid MS-VHDX images in memory (as sparse extents), for tests to corrupt.
//!
//! ```ignore
//! let mut img = ImageBuilder::dynamic(64 * MIB).write(0, b"hello").build();
//! img.set_payload_entry(0, bat::entry(bat::FULLY_PRESENT, 999));
//! ```
//!
//! Layout follows a real writer (CATALOGUE §1.3): the 1 MiB header section (file type
//! identifier, headers at 64/128 KiB, region tables at 192/256 KiB), then the log at 1 MiB,
//! a 1 MiB metadata region, the BAT region, and the payload / sector-bitmap blocks in BAT
//! order, every object 1 MiB aligned. Header 2 carries the higher sequence number and is
//! current. The log is empty (LogGuid zero, log area zero-filled) until a test writes
//! entries with [`Built::write_log`].
//!
//! The builder only makes valid images and panics on invalid parameters; damage is done on
//! the [`Built`] result with its corruption hooks, which optionally re-seal checksums.
//! Validated against `qemu-img` in [`selftest`].

// A test-support library: not every helper is used by every test.
#![allow(dead_code)]

mod built;
mod log_entry;
pub mod spec;

mod selftest;

pub use built::{Built, ItemPlace, Layout};
pub use log_entry::{Descriptor, LOG_SEQUENCE, LogEntry, LogPlace};
pub use spec::*;

use built::round_up_mib;
use std::collections::BTreeMap;
use std::ops::Range;
use vhdx_check::io::Extent;

/// The three disk types (CATALOGUE §1.8: HasParent → differencing, else
/// LeaveBlockAllocated → fixed, else dynamic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskKind {
    Fixed,
    Dynamic,
    Differencing,
}

/// Content of one allocated payload block.
#[derive(Clone, Debug)]
struct Block {
    /// `bat::FULLY_PRESENT` or `bat::PARTIALLY_PRESENT`.
    state: u64,
    /// (offset inside the block, bytes), in write order; later pieces win.
    pieces: Vec<(u64, Vec<u8>)>,
    /// Sectors (indices inside the block) marked present in the sector bitmap; only
    /// meaningful for PARTIALLY_PRESENT.
    sectors: Vec<Range<u64>>,
}

#[derive(Clone, Debug)]
struct Item {
    id: Guid,
    flags: u32,
    data: Vec<u8>,
}

/// Describes a VHDX image; [`ImageBuilder::build`] lays it out.
#[derive(Clone, Debug)]
pub struct ImageBuilder {
    kind: DiskKind,
    virtual_size: u64,
    block_size: u32,
    logical_sector: u32,
    physical_sector: u32,
    creator: String,
    log_length: u32,
    seed: u64,
    blocks: BTreeMap<u64, Block>,
    extra_items: Vec<Item>,
    omitted_items: Vec<Guid>,
    parent_linkage: Option<Guid>,
    locator: Option<Vec<(String, String)>>,
}

impl ImageBuilder {
    /// A disk of `kind`; see [`ImageBuilder::dynamic`], [`fixed`](ImageBuilder::fixed) and
    /// [`differencing`](ImageBuilder::differencing).
    pub fn new(kind: DiskKind, virtual_size: u64) -> Self {
        ImageBuilder {
            kind,
            virtual_size,
            block_size: 32 << 20,
            logical_sector: 512,
            physical_sector: 4096,
            creator: "vhdx-check test builder".into(),
            log_length: 1 << 20,
            seed: 1,
            blocks: BTreeMap::new(),
            extra_items: Vec::new(),
            omitted_items: Vec::new(),
            parent_linkage: None,
            locator: None,
        }
    }

    /// A dynamic disk: unwritten blocks are NOT_PRESENT.
    pub fn dynamic(virtual_size: u64) -> Self {
        Self::new(DiskKind::Dynamic, virtual_size)
    }

    /// A fixed disk: LeaveBlockAllocated = 1, every payload block FULLY_PRESENT and in the file.
    pub fn fixed(virtual_size: u64) -> Self {
        Self::new(DiskKind::Fixed, virtual_size)
    }

    /// A differencing disk: HasParent = 1, a VHDX parent locator with `parent_linkage`,
    /// `relative_path` and `absolute_win32_path`, and a BAT of `S·(C+1)` entries.
    pub fn differencing(virtual_size: u64) -> Self {
        Self::new(DiskKind::Differencing, virtual_size)
    }

    /// Payload block size: a power of two from 1 MiB to 256 MiB (default 32 MiB, as Hyper-V).
    pub fn block_size(mut self, bytes: u32) -> Self {
        self.block_size = bytes;
        self
    }

    /// Logical sector size, 512 (default) or 4096.
    pub fn logical_sector(mut self, bytes: u32) -> Self {
        self.logical_sector = bytes;
        self
    }

    /// Physical sector size, 512 or 4096 (default, as Hyper-V).
    pub fn physical_sector(mut self, bytes: u32) -> Self {
        self.physical_sector = bytes;
        self
    }

    /// Creator string in the file type identifier (at most 256 UTF-16 code units).
    pub fn creator(mut self, creator: &str) -> Self {
        self.creator = creator.into();
        self
    }

    /// Log length in bytes, a multiple of 1 MiB (default 1 MiB; 0 allowed).
    pub fn log_length(mut self, bytes: u32) -> Self {
        self.log_length = bytes;
        self
    }

    /// Seed of the FileWriteGuid, DataWriteGuid, VirtualDiskId and default parent linkage.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Writes `data` at virtual byte offset `offset`; every block it touches becomes
    /// FULLY_PRESENT (unwritten parts of such blocks read as zeros).
    pub fn write(mut self, offset: u64, data: &[u8]) -> Self {
        self.write_pieces(offset, data, bat::FULLY_PRESENT);
        self
    }

    /// Writes `data` at the start of payload block `index` (FULLY_PRESENT).
    pub fn write_block(self, index: u64, data: &[u8]) -> Self {
        assert!(
            data.len() as u64 <= self.block_size as u64,
            "data larger than a block"
        );
        let offset = index * self.block_size as u64;
        self.write(offset, data)
    }

    /// Marks payload block `index` FULLY_PRESENT with all-zero content.
    pub fn allocate_block(mut self, index: u64) -> Self {
        let bs = self.block_size as u64;
        assert!(
            index * bs < self.virtual_size,
            "block {index} beyond the virtual disk"
        );
        self.block_entry(index, bat::FULLY_PRESENT);
        self
    }

    /// Differencing only: writes whole logical sectors at `offset` into blocks that are
    /// PARTIALLY_PRESENT (unless already FULLY_PRESENT) and marks those sectors present in
    /// the chunk's sector bitmap; the bitmap block is allocated as needed.
    pub fn write_sectors(mut self, offset: u64, data: &[u8]) -> Self {
        assert_eq!(
            self.kind,
            DiskKind::Differencing,
            "partial blocks need a differencing disk"
        );
        let lss = self.logical_sector as u64;
        assert!(
            offset % lss == 0 && data.len() as u64 % lss == 0,
            "write_sectors needs whole logical sectors"
        );
        self.write_pieces(offset, data, bat::PARTIALLY_PRESENT);
        self
    }

    /// Sets the GUID stored (braced, lowercase) in `parent_linkage`; default: derived from
    /// the seed. Use the parent's `layout.data_write_guid` to link a real parent.
    pub fn parent_linkage(mut self, linkage: Guid) -> Self {
        self.parent_linkage = Some(linkage);
        self
    }

    /// Replaces the parent locator's key/value list (differencing only), in this order.
    pub fn parent_locator(mut self, entries: &[(&str, &str)]) -> Self {
        self.locator = Some(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }

    /// Appends a metadata item (after the known ones) with the given entry flags.
    pub fn metadata_item(mut self, id: Guid, flags: u32, data: &[u8]) -> Self {
        self.extra_items.push(Item {
            id,
            flags,
            data: data.to_vec(),
        });
        self
    }

    /// Leaves the known metadata item `id` out of the table.
    pub fn omit_metadata_item(mut self, id: Guid) -> Self {
        self.omitted_items.push(id);
        self
    }

    /// Splits a virtual write over the blocks it touches and records it in each.
    fn write_pieces(&mut self, offset: u64, data: &[u8], state: u64) {
        assert!(
            offset + data.len() as u64 <= self.virtual_size,
            "write beyond the virtual disk size"
        );
        let bs = self.block_size as u64;
        let lss = self.logical_sector as u64;
        let mut done = 0u64;
        while done < data.len() as u64 {
            let v = offset + done;
            let (index, within) = (v / bs, v % bs);
            let n = (bs - within).min(data.len() as u64 - done);
            let block = self.block_entry(index, state);
            block
                .pieces
                .push((within, data[done as usize..(done + n) as usize].to_vec()));
            if state == bat::PARTIALLY_PRESENT {
                block.sectors.push(within / lss..(within + n) / lss);
            }
            done += n;
        }
    }

    /// The block record of `index`, created in `state`; a FULLY_PRESENT request upgrades a
    /// partial block, a partial request leaves a full block full.
    fn block_entry(&mut self, index: u64, state: u64) -> &mut Block {
        let block = self.blocks.entry(index).or_insert(Block {
            state,
            pieces: Vec::new(),
            sectors: Vec::new(),
        });
        if state == bat::FULLY_PRESENT {
            block.state = state;
        }
        block
    }

    fn validate(&self) {
        let bs = self.block_size;
        assert!(
            bs.is_power_of_two() && (1 << 20..=256 << 20).contains(&bs),
            "block size {bs} not a power of two in 1..=256 MiB"
        );
        for s in [self.logical_sector, self.physical_sector] {
            assert!(s == 512 || s == 4096, "sector size {s} is not 512 or 4096");
        }
        assert!(
            self.virtual_size % self.logical_sector as u64 == 0 && self.virtual_size <= 1 << 46,
            "virtual size {} not a multiple of the logical sector or above 64 TiB",
            self.virtual_size
        );
        assert!(
            self.log_length as u64 % MIB == 0,
            "log length not a multiple of 1 MiB"
        );
        assert!(
            self.creator.encode_utf16().count() <= 256,
            "creator longer than 256 code units"
        );
        let bs = bs as u64;
        let blocks = self.virtual_size.div_ceil(bs);
        if let Some((&last, _)) = self.blocks.last_key_value() {
            assert!(last < blocks, "block {last} beyond the virtual disk");
        }
    }

    /// Lays the image out and encodes every structure.
    pub fn build(&self) -> Built {
        self.validate();
        let bs = self.block_size as u64;
        let lss = self.logical_sector as u64;
        // CATALOGUE §1.8.
        let chunk_ratio = SECTORS_PER_BITMAP * lss / bs;
        let payload_blocks = self.virtual_size.div_ceil(bs);
        let bitmap_blocks = payload_blocks.div_ceil(chunk_ratio);
        let bat_entries = match self.kind {
            DiskKind::Differencing => bitmap_blocks * (chunk_ratio + 1),
            _ if payload_blocks == 0 => 0,
            _ => payload_blocks + (payload_blocks - 1) / chunk_ratio,
        };

        let log_offset = MIB;
        let log_length = self.log_length as u64;
        let metadata_offset = log_offset + log_length;
        let metadata_length = MIB;
        let bat_offset = metadata_offset + metadata_length;
        // A zero-entry BAT (empty disk) still gets a 1 MiB region, as real writers do.
        let bat_length = round_up_mib(8 * bat_entries).max(MIB);
        let (blocks, bitmaps, len) = self.allocate(bat_offset + bat_length, chunk_ratio);

        let id = |n: u64| pseudo_guid(self.seed.wrapping_mul(8) + n);
        let parent_linkage =
            (self.kind == DiskKind::Differencing).then(|| self.parent_linkage.unwrap_or(id(4)));

        let mut layout = Layout {
            kind: self.kind,
            virtual_size: self.virtual_size,
            block_size: bs,
            logical_sector: lss,
            physical_sector: self.physical_sector as u64,
            chunk_ratio,
            payload_blocks,
            bitmap_blocks,
            bat_entries,
            log_offset,
            log_length,
            metadata_offset,
            metadata_length,
            bat_offset,
            bat_length,
            items: Vec::new(),
            blocks,
            bitmaps,
            sequence_numbers: [1, 2],
            file_write_guid: id(1),
            data_write_guid: id(2),
            virtual_disk_id: id(3),
            parent_linkage,
            log_guid: id(5),
        };

        let mut extents = vec![
            Extent {
                offset: 0,
                data: self.file_identifier(),
            },
            Extent {
                offset: HEADER_OFFSETS[0],
                data: header(&layout, 1),
            },
            Extent {
                offset: HEADER_OFFSETS[1],
                data: header(&layout, 2),
            },
        ];
        let table = region_table(&layout);
        for offset in REGION_TABLE_OFFSETS {
            extents.push(Extent {
                offset,
                data: table.clone(),
            });
        }
        let (metadata, items) = self.metadata_region(&layout);
        layout.items = items;
        extents.push(Extent {
            offset: metadata_offset,
            data: metadata,
        });
        extents.push(Extent {
            offset: bat_offset,
            data: self.bat(&layout),
        });
        extents.extend(self.bitmap_extents(&layout));
        for (index, block) in &self.blocks {
            let base = layout.block_offset(*index);
            for (within, data) in &block.pieces {
                extents.push(Extent {
                    offset: base + within,
                    data: data.clone(),
                });
            }
        }
        Built {
            len,
            extents,
            layout,
        }
    }

    /// Places payload and sector-bitmap blocks from `start` in BAT order (each chunk's
    /// payload blocks, then its bitmap block). Returns (blocks, bitmaps, file length).
    fn allocate(
        &self,
        start: u64,
        chunk_ratio: u64,
    ) -> (BTreeMap<u64, u64>, BTreeMap<u64, u64>, u64) {
        let bs = self.block_size as u64;
        let mut cursor = start;
        let mut blocks = BTreeMap::new();
        let mut bitmaps = BTreeMap::new();
        if self.kind == DiskKind::Fixed {
            for index in 0..self.virtual_size.div_ceil(bs) {
                blocks.insert(index, cursor);
                cursor += bs;
            }
            return (blocks, bitmaps, cursor);
        }
        let mut chunks: Vec<u64> = self.blocks.keys().map(|k| k / chunk_ratio).collect();
        chunks.dedup();
        for chunk in chunks {
            let range = chunk * chunk_ratio..(chunk + 1) * chunk_ratio;
            let mut partial = false;
            for (&index, block) in self.blocks.range(range) {
                blocks.insert(index, cursor);
                cursor += bs;
                partial |= block.state == bat::PARTIALLY_PRESENT;
            }
            if partial {
                bitmaps.insert(chunk, cursor);
                cursor += MIB;
            }
        }
        (blocks, bitmaps, cursor)
    }

    /// "vhdxfile" and the UTF-16LE creator; the rest of the 64 KiB stays zero.
    fn file_identifier(&self) -> Vec<u8> {
        let mut fti = SIG_FILE.to_vec();
        fti.extend(utf16le(&self.creator));
        fti
    }

    /// The metadata region (table + items) and where each item went.
    fn metadata_region(&self, layout: &Layout) -> (Vec<u8>, Vec<ItemPlace>) {
        let items = self.metadata_items(layout);
        let mut region = vec![0u8; meta::ITEMS_START as usize];
        region[..8].copy_from_slice(SIG_METADATA);
        put_u16(&mut region, meta::ENTRY_COUNT, items.len() as u16);
        let mut places = Vec::new();
        for (n, item) in items.iter().enumerate() {
            let offset = region.len();
            let e = meta::entry(n);
            region[e..e + 16].copy_from_slice(&item.id);
            put_u32(&mut region, e + meta::E_OFFSET, offset as u32);
            put_u32(&mut region, e + meta::E_LENGTH, item.data.len() as u32);
            put_u32(&mut region, e + meta::E_FLAGS, item.flags);
            region.extend_from_slice(&item.data);
            places.push(ItemPlace {
                id: item.id,
                flags: item.flags,
                entry_offset: layout.metadata_offset + e as u64,
                data_offset: layout.metadata_offset + offset as u64,
                length: item.data.len() as u32,
            });
        }
        assert!(
            region.len() as u64 <= layout.metadata_length,
            "metadata items overflow region"
        );
        (region, places)
    }

    /// The known items with CATALOGUE §1.4.12 flags, then the extra ones, minus omitted ones.
    fn metadata_items(&self, layout: &Layout) -> Vec<Item> {
        let system = meta::IS_REQUIRED;
        let disk = meta::IS_VIRTUAL_DISK | meta::IS_REQUIRED;
        let params_flags = match self.kind {
            DiskKind::Fixed => meta::LEAVE_BLOCK_ALLOCATED,
            DiskKind::Dynamic => 0,
            DiskKind::Differencing => meta::HAS_PARENT,
        };
        let mut params = self.block_size.to_le_bytes().to_vec();
        params.extend(params_flags.to_le_bytes());
        let mut items = vec![
            Item {
                id: ITEM_FILE_PARAMETERS,
                flags: system,
                data: params,
            },
            Item {
                id: ITEM_VIRTUAL_DISK_SIZE,
                flags: disk,
                data: self.virtual_size.to_le_bytes().to_vec(),
            },
            Item {
                id: ITEM_VIRTUAL_DISK_ID,
                flags: disk,
                data: layout.virtual_disk_id.to_vec(),
            },
            Item {
                id: ITEM_LOGICAL_SECTOR_SIZE,
                flags: disk,
                data: self.logical_sector.to_le_bytes().to_vec(),
            },
            Item {
                id: ITEM_PHYSICAL_SECTOR_SIZE,
                flags: disk,
                data: self.physical_sector.to_le_bytes().to_vec(),
            },
        ];
        if let Some(linkage) = &layout.parent_linkage {
            items.push(Item {
                id: ITEM_PARENT_LOCATOR,
                flags: system,
                data: self.locator(linkage),
            });
        }
        items.extend(self.extra_items.iter().cloned());
        items.retain(|i| !self.omitted_items.contains(&i.id));
        items
    }

    /// The parent locator item: the builder's key/value list, or by default
    /// `parent_linkage`, `relative_path` and `absolute_win32_path`.
    fn locator(&self, linkage: &Guid) -> Vec<u8> {
        let linkage = guid_braced(linkage);
        let default = [
            ("parent_linkage", linkage.as_str()),
            ("relative_path", r".\parent.vhdx"),
            ("absolute_win32_path", r"\\?\C:\vhdx-check\parent.vhdx"),
        ];
        match &self.locator {
            Some(entries) => {
                let entries: Vec<(&str, &str)> = entries
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                parent_locator_item(&entries)
            }
            None => parent_locator_item(&default),
        }
    }

    /// BAT bytes up to the last non-zero entry (the rest of the region is zero anyway,
    /// which keeps huge sparse disks cheap).
    fn bat(&self, layout: &Layout) -> Vec<u8> {
        let mut entries = BTreeMap::new();
        for (&index, &offset) in &layout.blocks {
            let state = self
                .blocks
                .get(&index)
                .map_or(bat::FULLY_PRESENT, |b| b.state);
            entries.insert(
                layout.payload_entry_index(index),
                bat::entry(state, offset / MIB),
            );
        }
        for (&chunk, &offset) in &layout.bitmaps {
            entries.insert(
                layout.bitmap_entry_index(chunk),
                bat::entry(bat::SB_PRESENT, offset / MIB),
            );
        }
        let count = entries.last_key_value().map_or(0, |(&i, _)| i + 1);
        let mut bytes = vec![0u8; 8 * count as usize];
        for (i, v) in entries {
            put_u64(&mut bytes, 8 * i as usize, v);
        }
        bytes
    }

    /// One 1 MiB sector-bitmap block per allocated chunk: bit `s mod 2^23` for each present
    /// virtual sector `s`, LSB first (CATALOGUE §1.8).
    fn bitmap_extents(&self, layout: &Layout) -> Vec<Extent> {
        let sectors_per_block = layout.block_size / layout.logical_sector;
        let mut out = Vec::new();
        for (&chunk, &offset) in &layout.bitmaps {
            let mut bitmap = vec![0u8; MIB as usize];
            let first = chunk * layout.chunk_ratio;
            for (index, block) in self.blocks.range(first..first + layout.chunk_ratio) {
                for range in &block.sectors {
                    for s in range.clone() {
                        let bit = (index - first) * sectors_per_block + s;
                        bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
                    }
                }
            }
            out.push(Extent {
                offset,
                data: bitmap,
            });
        }
        out
    }
}

/// Header `copy` (1 or 2): sequence number from the layout, empty log, version 1.
fn header(layout: &Layout, copy: usize) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_SIZE];
    h[..4].copy_from_slice(SIG_HEADER);
    put_u64(
        &mut h,
        hdr::SEQUENCE_NUMBER,
        layout.sequence_numbers[copy - 1],
    );
    h[hdr::FILE_WRITE_GUID..][..16].copy_from_slice(&layout.file_write_guid);
    h[hdr::DATA_WRITE_GUID..][..16].copy_from_slice(&layout.data_write_guid);
    // LogGuid stays zero: the log is empty.
    put_u16(&mut h, hdr::LOG_VERSION, 0);
    put_u16(&mut h, hdr::VERSION, 1);
    put_u32(&mut h, hdr::LOG_LENGTH, layout.log_length as u32);
    put_u64(&mut h, hdr::LOG_OFFSET, layout.log_offset);
    seal(&mut h, hdr::CHECKSUM);
    h
}

/// The 64 KiB region table: BAT then metadata, both Required.
fn region_table(layout: &Layout) -> Vec<u8> {
    let mut t = vec![0u8; TABLE_SIZE];
    t[..4].copy_from_slice(SIG_REGION);
    put_u32(&mut t, rgn::ENTRY_COUNT, 2);
    let regions = [
        (
            rgn::BAT_ENTRY,
            REGION_BAT,
            layout.bat_offset,
            layout.bat_length,
        ),
        (
            rgn::METADATA_ENTRY,
            REGION_METADATA,
            layout.metadata_offset,
            layout.metadata_length,
        ),
    ];
    for (n, guid, offset, length) in regions {
        let e = rgn::entry(n);
        t[e..e + 16].copy_from_slice(&guid);
        put_u64(&mut t, e + rgn::E_FILE_OFFSET, offset);
        put_u32(&mut t, e + rgn::E_LENGTH, length as u32);
        put_u32(&mut t, e + rgn::E_REQUIRED, 1);
    }
    seal(&mut t, rgn::CHECKSUM);
    t
}

/// A VHDX parent locator item (CATALOGUE §1.4.13): the 20-byte header (VHDX locator type),
/// 12-byte key/value entries, then each key and value in UTF-16LE, offsets relative to the
/// item start. Usable with [`ImageBuilder::metadata_item`] on any disk type.
pub fn parent_locator_item(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut item = LOCATOR_TYPE_VHDX.to_vec();
    item.extend(0u16.to_le_bytes());
    item.extend((entries.len() as u16).to_le_bytes());
    let mut strings: Vec<u8> = Vec::new();
    let strings_start = 20 + 12 * entries.len();
    for (key, value) in entries {
        let (key, value) = (utf16le(key), utf16le(value));
        let key_offset = strings_start + strings.len();
        strings.extend(&key);
        let value_offset = strings_start + strings.len();
        strings.extend(&value);
        item.extend((key_offset as u32).to_le_bytes());
        item.extend((value_offset as u32).to_le_bytes());
        item.extend((key.len() as u16).to_le_bytes());
        item.extend((value.len() as u16).to_le_bytes());
    }
    item.extend(strings);
    item
}
