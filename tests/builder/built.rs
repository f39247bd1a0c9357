//! A built image (sparse extents over a zero background), where its structures are, and the
//! hooks tests use to damage it.

use super::DiskKind;
use super::spec::{
    self, Guid, HEADER_OFFSETS, HEADER_SIZE, MIB, REGION_TABLE_OFFSETS, TABLE_SIZE, get_u64, meta,
};
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use vhdx_check::io::{Extent, ReadAt, SparseReader};

/// Where one metadata item was placed.
#[derive(Clone, Debug)]
pub struct ItemPlace {
    pub id: Guid,
    pub flags: u32,
    /// File offset of the item's 32-byte metadata table entry.
    pub entry_offset: u64,
    /// File offset of the item data (metadata region offset + entry Offset).
    pub data_offset: u64,
    pub length: u32,
}

/// Geometry and placement of every structure of a built image, as written (patches made
/// afterwards do not update it).
#[derive(Clone, Debug)]
pub struct Layout {
    pub kind: DiskKind,
    pub virtual_size: u64,
    pub block_size: u64,
    pub logical_sector: u64,
    pub physical_sector: u64,
    /// Chunk ratio C = 2^23·LSS / BS (CATALOGUE §1.8).
    pub chunk_ratio: u64,
    /// P = Ceil(VDS / BS).
    pub payload_blocks: u64,
    /// S = Ceil(P / C).
    pub bitmap_blocks: u64,
    /// T, the number of BAT entries the disk type requires.
    pub bat_entries: u64,
    pub log_offset: u64,
    pub log_length: u64,
    pub metadata_offset: u64,
    pub metadata_length: u64,
    pub bat_offset: u64,
    pub bat_length: u64,
    /// Metadata items in table order.
    pub items: Vec<ItemPlace>,
    /// Allocated payload blocks (states 6 and 7): block index → file offset.
    pub blocks: BTreeMap<u64, u64>,
    /// Allocated sector-bitmap blocks: chunk index → file offset.
    pub bitmaps: BTreeMap<u64, u64>,
    /// Sequence numbers written to header 1 and header 2 (header 2 is current).
    pub sequence_numbers: [u64; 2],
    pub file_write_guid: Guid,
    pub data_write_guid: Guid,
    pub virtual_disk_id: Guid,
    /// The GUID in the `parent_linkage` locator value (differencing only).
    pub parent_linkage: Option<Guid>,
    /// LogGuid that [`Built::log_entry`] stamps on entries; the headers carry zero until
    /// [`Built::write_log`] activates the log.
    pub log_guid: Guid,
}

impl Layout {
    /// File offset of header `copy` (1 or 2).
    pub fn header_offset(&self, copy: usize) -> u64 {
        HEADER_OFFSETS[copy_index(copy)]
    }

    /// File offset of region table `copy` (1 or 2).
    pub fn region_table_offset(&self, copy: usize) -> u64 {
        REGION_TABLE_OFFSETS[copy_index(copy)]
    }

    /// BAT index of payload block `block`: `k + Fl(k / C)`.
    pub fn payload_entry_index(&self, block: u64) -> u64 {
        block + block / self.chunk_ratio
    }

    /// BAT index of the sector-bitmap entry of `chunk`: `c·(C+1) + C`.
    pub fn bitmap_entry_index(&self, chunk: u64) -> u64 {
        chunk * (self.chunk_ratio + 1) + self.chunk_ratio
    }

    /// File offset of BAT entry `index`.
    pub fn bat_entry_offset(&self, index: u64) -> u64 {
        self.bat_offset + 8 * index
    }

    /// Placement of the metadata item `id` (panics if the builder did not write it).
    pub fn item(&self, id: &Guid) -> &ItemPlace {
        self.items
            .iter()
            .find(|i| &i.id == id)
            .unwrap_or_else(|| panic!("no metadata item {}", spec::guid_text(id)))
    }

    /// File offset of payload block `block` (panics if it is not allocated).
    pub fn block_offset(&self, block: u64) -> u64 {
        *self
            .blocks
            .get(&block)
            .unwrap_or_else(|| panic!("payload block {block} not allocated"))
    }

    /// File offset of the sector-bitmap block of `chunk` (panics if it is not allocated).
    pub fn bitmap_offset(&self, chunk: u64) -> u64 {
        *self
            .bitmaps
            .get(&chunk)
            .unwrap_or_else(|| panic!("no sector bitmap for chunk {chunk}"))
    }
}

/// Maps the spec's 1-based copy numbers ("header 1", "region table copy 2") to array indices.
fn copy_index(copy: usize) -> usize {
    assert!(
        copy == 1 || copy == 2,
        "copy numbers are 1 or 2, got {copy}"
    );
    copy - 1
}

/// A built image: `len` bytes, zero except where `extents` say otherwise (later extents win).
/// Corruption hooks append extents, so the original bytes stay recoverable in `extents`.
#[derive(Clone, Debug)]
pub struct Built {
    /// File length. Shrinking it truncates the image (extents past it are clipped).
    pub len: u64,
    pub extents: Vec<Extent>,
    pub layout: Layout,
}

impl Built {
    /// The whole image in memory. Only for small images.
    pub fn to_vec(&self) -> Vec<u8> {
        self.read(
            0,
            usize::try_from(self.len).expect("image too large for memory"),
        )
    }

    /// Writes the image as a sparse file: `set_len` and then every extent at its offset.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let mut f = std::fs::File::create(path)?;
        f.set_len(self.len)?;
        for e in &self.extents {
            if e.offset >= self.len {
                continue;
            }
            let n = (e.data.len() as u64).min(self.len - e.offset) as usize;
            f.seek(SeekFrom::Start(e.offset))?;
            f.write_all(&e.data[..n])?;
        }
        f.sync_all()
    }

    /// A reader of the checker's own sparse kind over a copy of the extents.
    pub fn reader(&self) -> SparseReader {
        SparseReader::new(self.len, self.extents.clone())
    }

    /// `len` bytes at `offset`, zero past the end of the file.
    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.read_into(offset, &mut buf);
        buf
    }

    pub fn read_u32(&self, offset: u64) -> u32 {
        spec::get_u32(&self.read(offset, 4), 0)
    }

    pub fn read_u64(&self, offset: u64) -> u64 {
        get_u64(&self.read(offset, 8), 0)
    }

    /// Overwrites bytes at `offset` (may extend past `len`; `len` is not changed).
    pub fn patch(&mut self, offset: u64, bytes: &[u8]) {
        self.extents.push(Extent {
            offset,
            data: bytes.to_vec(),
        });
    }

    pub fn patch_u16(&mut self, offset: u64, v: u16) {
        self.patch(offset, &v.to_le_bytes());
    }

    pub fn patch_u32(&mut self, offset: u64, v: u32) {
        self.patch(offset, &v.to_le_bytes());
    }

    pub fn patch_u64(&mut self, offset: u64, v: u64) {
        self.patch(offset, &v.to_le_bytes());
    }

    /// Reads `len` bytes at `offset`, lets `f` change them, writes them back.
    pub fn edit(&mut self, offset: u64, len: usize, f: impl FnOnce(&mut [u8])) {
        let mut buf = self.read(offset, len);
        f(&mut buf);
        self.patch(offset, &buf);
    }

    /// Recomputes the CRC-32C of the `len`-byte structure at `offset` whose checksum field
    /// is at byte 4 (headers, region tables, log entries).
    pub fn reseal(&mut self, offset: u64, len: usize) {
        self.edit(offset, len, |b| spec::seal(b, 4));
    }

    /// Edits the 4096-byte header `copy` (1 or 2) without fixing its checksum.
    pub fn header_mut(&mut self, copy: usize, f: impl FnOnce(&mut [u8])) {
        self.edit(self.layout.header_offset(copy), HEADER_SIZE, f);
    }

    pub fn reseal_header(&mut self, copy: usize) {
        self.reseal(self.layout.header_offset(copy), HEADER_SIZE);
    }

    /// Edits header `copy` and recomputes its checksum: a well-formed header with odd values.
    pub fn edit_header(&mut self, copy: usize, f: impl FnOnce(&mut [u8])) {
        self.header_mut(copy, f);
        self.reseal_header(copy);
    }

    /// Edits the 64 KiB region table `copy` (1 or 2) without fixing its checksum.
    pub fn region_table_mut(&mut self, copy: usize, f: impl FnOnce(&mut [u8])) {
        self.edit(self.layout.region_table_offset(copy), TABLE_SIZE, f);
    }

    pub fn reseal_region_table(&mut self, copy: usize) {
        self.reseal(self.layout.region_table_offset(copy), TABLE_SIZE);
    }

    /// Edits region table `copy` and recomputes its checksum.
    pub fn edit_region_table(&mut self, copy: usize, f: impl FnOnce(&mut [u8])) {
        self.region_table_mut(copy, f);
        self.reseal_region_table(copy);
    }

    /// Applies the same edit to both region tables and reseals both, so they stay identical.
    pub fn edit_region_tables(&mut self, f: impl Fn(&mut [u8])) {
        self.edit_region_table(1, &f);
        self.edit_region_table(2, &f);
    }

    /// Edits the 64 KiB metadata table (header and entries; no checksum exists).
    pub fn metadata_table_mut(&mut self, f: impl FnOnce(&mut [u8])) {
        self.edit(self.layout.metadata_offset, TABLE_SIZE, f);
    }

    /// Edits the 32-byte metadata table entry of item `id`.
    pub fn metadata_entry_mut(&mut self, id: &Guid, f: impl FnOnce(&mut [u8])) {
        let at = self.layout.item(id).entry_offset;
        self.edit(at, meta::ENTRY_SIZE, f);
    }

    /// Edits the data of item `id` where the builder placed it.
    pub fn metadata_item_mut(&mut self, id: &Guid, f: impl FnOnce(&mut [u8])) {
        let item = self.layout.item(id);
        let (at, len) = (item.data_offset, item.length as usize);
        self.edit(at, len, f);
    }

    /// BAT entry `index` as currently stored.
    pub fn bat_entry(&self, index: u64) -> u64 {
        self.read_u64(self.layout.bat_entry_offset(index))
    }

    pub fn set_bat_entry(&mut self, index: u64, value: u64) {
        self.patch_u64(self.layout.bat_entry_offset(index), value);
    }

    /// Sets the BAT entry of payload block `block` (index mapped through the chunk interleave).
    pub fn set_payload_entry(&mut self, block: u64, value: u64) {
        self.set_bat_entry(self.layout.payload_entry_index(block), value);
    }

    /// Sets the sector-bitmap BAT entry of `chunk`.
    pub fn set_bitmap_entry(&mut self, chunk: u64, value: u64) {
        self.set_bat_entry(self.layout.bitmap_entry_index(chunk), value);
    }

    /// Zero-fills `buf`, then copies every extent's overlap with `[offset, offset+len)` in
    /// order (later wins), clipped to the file length.
    fn read_into(&self, offset: u64, buf: &mut [u8]) -> usize {
        buf.fill(0);
        if offset >= self.len {
            return 0;
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        let end = offset + n as u64;
        for e in &self.extents {
            let lo = e.offset.max(offset);
            let hi = (e.offset + e.data.len() as u64).min(end);
            if lo < hi {
                buf[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&e.data[(lo - e.offset) as usize..(hi - e.offset) as usize]);
            }
        }
        n
    }
}

/// Lets tests hand a `Built` straight to the checker.
impl ReadAt for Built {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.read_into(offset, buf))
    }
}

/// Rounds `n` up to a whole number of MiB.
pub(super) fn round_up_mib(n: u64) -> u64 {
    n.div_ceil(MIB) * MIB
}
