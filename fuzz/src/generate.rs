//! `image_structured`: an `arbitrary` description of a VALID image, serialized here into
//! sparse extents with correct CRC-32C, then damaged by a list of corruptions (optionally
//! re-sealing the checksums afterwards so the damage gets past the checksum gates).
//!
//! Layout (as qemu-img and Hyper-V write it): header section (file type identifier,
//! headers at 64/128 KiB, region tables at 192/256 KiB), the log at 1 MiB (0..2 MiB,
//! empty), the metadata region (1 MiB: table + the five system items at 64 KiB) and the
//! BAT region in either order, then the payload blocks. Header 2 is current.
//! Dynamic disks allocate the listed blocks in list order; fixed disks allocate every
//! block FULLY_PRESENT, in order.

use arbitrary::Arbitrary;
use vhdx_check::io::Extent;

pub const MIB: u64 = 1 << 20;
/// Bytes of the header section that hold structures (0..0x50000); the rest is reserved.
const HS_LEN: usize = 0x50000;
const H_OFF: [usize; 2] = [0x10000, 0x20000];
const R_OFF: [usize; 2] = [0x30000, 0x40000];
const HEADER_SIZE: usize = 4096;
const TABLE: usize = 65536;
/// Metadata buffer: the 64 KiB table and one 4 KiB page of items after it.
const MD_LEN: usize = TABLE + 4096;
/// Most blocks a dynamic description allocates / a fixed disk may have.
const MAX_ALLOC: usize = 16;
const MAX_FIXED_BLOCKS: u64 = 64;
/// Most BAT entries of a generated geometry (an 8 MiB BAT), to keep one run fast.
const MAX_ENTRIES: u64 = 1 << 20;
const MAX_CORRUPTIONS: usize = 8;
const MAX_PATCH: usize = 256;

const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}
// Written out from CATALOGUE 1.5, independently of src/.
const G_BAT: [u8; 16] = guid(
    0x2DC27766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
const G_METADATA: [u8; 16] = guid(
    0x8B7CA206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const G_FILE_PARAMETERS: [u8; 16] = guid(
    0xCAA16737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
const G_VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2FA54224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
const G_VIRTUAL_DISK_ID: [u8; 16] = guid(
    0xBECA12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
const G_LOGICAL_SECTOR: [u8; 16] = guid(
    0x8141BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
const G_PHYSICAL_SECTOR: [u8; 16] = guid(
    0xCDA348C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
const G_PARENT_LOCATOR: [u8; 16] = guid(
    0xA8D35F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dynamic,
    Fixed,
}

/// A valid image.
#[derive(Arbitrary, Debug, Clone)]
pub struct Desc {
    pub kind: Kind,
    /// Block size is `1 MiB << (n % 9)`.
    pub block_size_log2: u8,
    pub logical_4k: bool,
    pub physical_4k: bool,
    /// Virtual size `max(1, mant) << (exp % 47)`, capped (64 TiB, BAT size, fixed block
    /// count) and rounded down to the logical sector size.
    pub size_exp: u8,
    pub size_mant: u16,
    /// Log length in MiB: `n % 3`.
    pub log_mib: u8,
    /// BAT region before the metadata region.
    pub bat_first: bool,
    pub sequence: u64,
    /// Dynamic only: blocks to allocate (at most 16 are used).
    pub blocks: Vec<Alloc>,
    /// Damage (at most 8 are used); empty means the image must be accepted.
    pub corruptions: Vec<Corruption>,
    /// Recompute header and region-table checksums after corrupting.
    pub reseal: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Alloc {
    /// Payload block number, modulo the block count.
    pub block: u32,
    pub state: AllocState,
    /// First bytes of the block (FULLY_PRESENT); 0 leaves it all zero (only for blocks
    /// up to 8 MiB, so the all-zero scan stays cheap).
    pub fill: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocState {
    FullyPresent,
    Zero,
    Unmapped,
    NotPresent,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copies {
    First,
    Second,
    Both,
}

impl Copies {
    fn indices(self) -> &'static [usize] {
        match self {
            Copies::First => &[0],
            Copies::Second => &[1],
            Copies::Both => &[0, 1],
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum HeaderField {
    Signature,
    Checksum,
    SequenceNumber,
    FileWriteGuid,
    DataWriteGuid,
    LogGuid,
    LogVersion,
    Version,
    LogLength,
    LogOffset,
    /// A byte of the reserved area 80..4096 (position from the value's high bits).
    Reserved,
    /// A byte of the slot padding 4096..65536 (outside the checksum).
    SlotPadding,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum RegionHeaderField {
    Signature,
    Checksum,
    EntryCount,
    Reserved,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum RegionEntryField {
    Guid(GuidPick),
    FileOffset,
    Length,
    Required,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MetadataHeaderField {
    Signature,
    Reserved,
    EntryCount,
    Reserved2,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MetadataEntryField {
    ItemId(GuidPick),
    Offset,
    Length,
    Flags,
    Reserved,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum GuidPick {
    Bat,
    Metadata,
    FileParameters,
    VirtualDiskSize,
    VirtualDiskId,
    LogicalSectorSize,
    PhysicalSectorSize,
    ParentLocator,
    Zero,
    Raw(u64),
}

impl GuidPick {
    fn bytes(self) -> [u8; 16] {
        match self {
            GuidPick::Bat => G_BAT,
            GuidPick::Metadata => G_METADATA,
            GuidPick::FileParameters => G_FILE_PARAMETERS,
            GuidPick::VirtualDiskSize => G_VIRTUAL_DISK_SIZE,
            GuidPick::VirtualDiskId => G_VIRTUAL_DISK_ID,
            GuidPick::LogicalSectorSize => G_LOGICAL_SECTOR,
            GuidPick::PhysicalSectorSize => G_PHYSICAL_SECTOR,
            GuidPick::ParentLocator => G_PARENT_LOCATOR,
            GuidPick::Zero => [0; 16],
            GuidPick::Raw(v) => guid_of(v),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Structure {
    FileIdentifier,
    Header1,
    Header2,
    RegionTable1,
    RegionTable2,
    MetadataTable,
    MetadataItems,
    Bat,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum LenChange {
    Truncate(u32),
    /// By `n % 64 MiB`: a longer zero tail only makes the sweeps slower (a 2.9 GB tail
    /// took 21 s per input instrumented).
    Extend(u32),
    /// New length modulo 1 TiB.
    Set(u64),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Corruption {
    Header {
        copies: Copies,
        field: HeaderField,
        value: u64,
    },
    RegionHeader {
        copies: Copies,
        field: RegionHeaderField,
        value: u32,
    },
    /// Entry `entry % 4` (2 and 3 are past the valid entries).
    RegionEntry {
        copies: Copies,
        entry: u8,
        field: RegionEntryField,
        value: u64,
    },
    MetadataHeader {
        field: MetadataHeaderField,
        value: u64,
    },
    /// Entry `entry % 8` (5..7 are past the valid entries).
    MetadataEntry {
        entry: u8,
        field: MetadataEntryField,
        value: u64,
    },
    /// Appends a metadata table entry (and bumps EntryCount).
    MetadataAddEntry {
        id: GuidPick,
        offset: u32,
        length: u32,
        flags: u32,
    },
    /// Writes `value` over system item `item % 5` at byte `at % 16` of it.
    MetadataItem {
        item: u8,
        at: u8,
        value: u64,
    },
    /// BAT entry `index % region entries` := state | reserved bits | FileOffsetMB.
    Bat {
        index: u32,
        state: u8,
        reserved: u32,
        offset_mb: u32,
    },
    BatRaw {
        index: u32,
        value: u64,
    },
    /// Raw bytes at `offset % (file length + 1 MiB)`.
    Patch {
        offset: u64,
        bytes: Vec<u8>,
    },
    Zero(Structure),
    Length(LenChange),
}

fn guid_of(v: u64) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&v.to_le_bytes());
    g[8..].copy_from_slice(
        &v.rotate_left(29)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .to_le_bytes(),
    );
    g
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if at < buf.len() {
        let n = bytes.len().min(buf.len() - at);
        buf[at..at + n].copy_from_slice(&bytes[..n]);
    }
}

fn crc_with_zeroed(span: &[u8], field: usize) -> u32 {
    let c = crc32c::crc32c(&span[..field]);
    let c = crc32c::crc32c_append(c, &[0; 4]);
    crc32c::crc32c_append(c, &span[field + 4..])
}

/// The derived parameters of a description.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub kind: Kind,
    pub block_size: u64,
    pub lss: u64,
    pub pss: u64,
    pub virtual_size: u64,
    pub chunk_ratio: u64,
    pub payload_blocks: u64,
    pub total_entries: u64,
    pub log_offset: u64,
    pub log_length: u64,
    pub md_offset: u64,
    pub bat_offset: u64,
    pub bat_length: u64,
    pub data_start: u64,
}

impl Desc {
    pub fn params(&self) -> Params {
        let block_size = MIB << (self.block_size_log2 % 9);
        let lss = if self.logical_4k { 4096 } else { 512 };
        let pss = if self.physical_4k { 4096 } else { 512 };
        let mut vds = (self.size_mant.max(1) as u64) << (self.size_exp % 47);
        vds = vds.min(1 << 46).min(MAX_ENTRIES / 2 * block_size);
        if self.kind == Kind::Fixed {
            vds = vds.min(MAX_FIXED_BLOCKS * block_size);
        }
        vds = (vds / lss * lss).max(lss);
        let chunk_ratio = (1u64 << 23) * lss / block_size;
        let payload_blocks = vds.div_ceil(block_size);
        let total_entries = payload_blocks + (payload_blocks - 1) / chunk_ratio;
        let log_length = (self.log_mib % 3) as u64 * MIB;
        let log_offset = MIB;
        let bat_length = (total_entries * 8).div_ceil(MIB).max(1) * MIB;
        let first = MIB + log_length;
        let (md_offset, bat_offset) = if self.bat_first {
            (first + bat_length, first)
        } else {
            (first, first + MIB)
        };
        Params {
            kind: self.kind,
            block_size,
            lss,
            pss,
            virtual_size: vds,
            chunk_ratio,
            payload_blocks,
            total_entries,
            log_offset,
            log_length,
            md_offset,
            bat_offset,
            bat_length,
            data_start: first + MIB + bat_length,
        }
    }

    /// Serializes the description (valid image, then the corruptions).
    pub fn build(&self) -> Built {
        let p = self.params();
        let mut b = Built::valid(self, &p);
        b.seal();
        let corruptions = &self.corruptions[..self.corruptions.len().min(MAX_CORRUPTIONS)];
        for c in corruptions {
            b.apply(&p, c, false);
        }
        if self.reseal {
            b.seal();
        }
        for c in corruptions {
            b.apply(&p, c, true);
        }
        b
    }
}

/// A serialized image: the structures as buffers (so checksums can be re-sealed), the BAT
/// as a sparse map, and the remaining extents.
pub struct Built {
    pub len: u64,
    /// File offsets 0..0x50000.
    pub hs: Vec<u8>,
    pub md: Vec<u8>,
    pub md_offset: u64,
    /// Non-zero BAT entries by index.
    pub bat: std::collections::BTreeMap<u64, u64>,
    pub bat_offset: u64,
    pub bat_length: u64,
    /// Block contents and raw patches (later win).
    pub extra: Vec<Extent>,
}

impl Built {
    fn valid(d: &Desc, p: &Params) -> Built {
        let mut hs = vec![0u8; HS_LEN];
        put(&mut hs, 0, b"vhdxfile");
        let creator: Vec<u8> = "vhdx-check fuzz"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        put(&mut hs, 8, &creator);
        let seq = d.sequence >> 1;
        for (i, &off) in H_OFF.iter().enumerate() {
            let h = &mut hs[off..off + HEADER_SIZE];
            put(h, 0, b"head");
            put(h, 8, &(seq + i as u64).to_le_bytes());
            put(h, 16, &guid_of(seq ^ 0xF11E));
            put(h, 32, &guid_of(seq ^ 0xDA7A));
            put(h, 66, &1u16.to_le_bytes());
            put(h, 68, &(p.log_length as u32).to_le_bytes());
            put(h, 72, &p.log_offset.to_le_bytes());
        }
        for &off in &R_OFF {
            let r = &mut hs[off..off + TABLE];
            put(r, 0, b"regi");
            put(r, 8, &2u32.to_le_bytes());
            let entries = [
                (G_BAT, p.bat_offset, p.bat_length),
                (G_METADATA, p.md_offset, MIB),
            ];
            for (k, (g, o, l)) in entries.iter().enumerate() {
                let e = 16 + 32 * k;
                put(r, e, g);
                put(r, e + 16, &o.to_le_bytes());
                put(r, e + 24, &(*l as u32).to_le_bytes());
                put(r, e + 28, &1u32.to_le_bytes());
            }
        }
        let mut md = vec![0u8; MD_LEN];
        put(&mut md, 0, b"metadata");
        put(&mut md, 10, &5u16.to_le_bytes());
        let fp_flags: u32 = if p.kind == Kind::Fixed { 1 } else { 0 };
        let mut fp = (p.block_size as u32).to_le_bytes().to_vec();
        fp.extend_from_slice(&fp_flags.to_le_bytes());
        let items: [([u8; 16], u32, Vec<u8>); 5] = [
            (G_FILE_PARAMETERS, 4, fp),
            (
                G_VIRTUAL_DISK_SIZE,
                6,
                p.virtual_size.to_le_bytes().to_vec(),
            ),
            (G_VIRTUAL_DISK_ID, 6, guid_of(d.sequence ^ 0x1D).to_vec()),
            (G_LOGICAL_SECTOR, 6, (p.lss as u32).to_le_bytes().to_vec()),
            (G_PHYSICAL_SECTOR, 6, (p.pss as u32).to_le_bytes().to_vec()),
        ];
        let mut item_off = TABLE;
        for (k, (g, flags, value)) in items.iter().enumerate() {
            let e = 32 + 32 * k;
            put(&mut md, e, g);
            put(&mut md, e + 16, &(item_off as u32).to_le_bytes());
            put(&mut md, e + 20, &(value.len() as u32).to_le_bytes());
            put(&mut md, e + 24, &flags.to_le_bytes());
            put(&mut md, item_off, value);
            item_off += value.len();
        }

        let mut bat = std::collections::BTreeMap::new();
        let mut extra = Vec::new();
        let index_of = |k: u64| k + k / p.chunk_ratio;
        let mut next = p.data_start;
        match p.kind {
            Kind::Fixed => {
                for k in 0..p.payload_blocks {
                    bat.insert(index_of(k), 6 | next);
                    extra.push(Extent {
                        offset: next,
                        data: vec![0xF0 | (k as u8 & 0xF); 16],
                    });
                    next += p.block_size;
                }
            }
            Kind::Dynamic => {
                let mut seen = std::collections::BTreeSet::new();
                for a in d.blocks.iter().take(MAX_ALLOC) {
                    let k = a.block as u64 % p.payload_blocks;
                    if !seen.insert(k) {
                        continue;
                    }
                    let entry = match a.state {
                        AllocState::NotPresent => 0,
                        AllocState::Zero => 2,
                        AllocState::Unmapped => 3,
                        AllocState::FullyPresent => {
                            if a.fill != 0 || p.block_size > 8 * MIB {
                                extra.push(Extent {
                                    offset: next,
                                    data: vec![a.fill.max(1); 64],
                                });
                            }
                            let e = 6 | next;
                            next += p.block_size;
                            e
                        }
                    };
                    if entry != 0 {
                        bat.insert(index_of(k), entry);
                    }
                }
            }
        }
        Built {
            len: next,
            hs,
            md,
            md_offset: p.md_offset,
            bat,
            bat_offset: p.bat_offset,
            bat_length: p.bat_length,
            extra,
        }
    }

    /// Recomputes both headers' and both region tables' checksums.
    pub fn seal(&mut self) {
        for &off in &H_OFF {
            let c = crc_with_zeroed(&self.hs[off..off + HEADER_SIZE], 4);
            put(&mut self.hs, off + 4, &c.to_le_bytes());
        }
        for &off in &R_OFF {
            let c = crc_with_zeroed(&self.hs[off..off + TABLE], 4);
            put(&mut self.hs, off + 4, &c.to_le_bytes());
        }
    }

    /// Applies a corruption: checksum corruptions only when `checksums` (after sealing),
    /// everything else only when not.
    fn apply(&mut self, p: &Params, c: &Corruption, checksums: bool) {
        let is_checksum = matches!(
            c,
            Corruption::Header {
                field: HeaderField::Checksum,
                ..
            } | Corruption::RegionHeader {
                field: RegionHeaderField::Checksum,
                ..
            }
        );
        if is_checksum != checksums {
            return;
        }
        match *c {
            Corruption::Header {
                copies,
                field,
                value,
            } => {
                for &i in copies.indices() {
                    let h = &mut self.hs[H_OFF[i]..H_OFF[i] + 0x10000];
                    let v = value.to_le_bytes();
                    match field {
                        HeaderField::Signature => put(h, 0, &v[..4]),
                        HeaderField::Checksum => put(h, 4, &v[..4]),
                        HeaderField::SequenceNumber => put(h, 8, &v),
                        HeaderField::FileWriteGuid => put(h, 16, &guid_of(value)),
                        HeaderField::DataWriteGuid => put(h, 32, &guid_of(value)),
                        HeaderField::LogGuid => put(h, 48, &guid_of(value)),
                        HeaderField::LogVersion => put(h, 64, &v[..2]),
                        HeaderField::Version => put(h, 66, &v[..2]),
                        HeaderField::LogLength => put(h, 68, &v[..4]),
                        HeaderField::LogOffset => put(h, 72, &v),
                        HeaderField::Reserved => put(h, 80 + (value >> 8) as usize % 4016, &v[..1]),
                        HeaderField::SlotPadding => {
                            put(h, 4096 + (value >> 8) as usize % 61440, &v[..1])
                        }
                    }
                }
            }
            Corruption::RegionHeader {
                copies,
                field,
                value,
            } => {
                for &i in copies.indices() {
                    let at = match field {
                        RegionHeaderField::Signature => 0,
                        RegionHeaderField::Checksum => 4,
                        RegionHeaderField::EntryCount => 8,
                        RegionHeaderField::Reserved => 12,
                    };
                    put(&mut self.hs, R_OFF[i] + at, &value.to_le_bytes());
                }
            }
            Corruption::RegionEntry {
                copies,
                entry,
                field,
                value,
            } => {
                for &i in copies.indices() {
                    let e = R_OFF[i] + 16 + 32 * (entry % 4) as usize;
                    let v = value.to_le_bytes();
                    match field {
                        RegionEntryField::Guid(g) => put(&mut self.hs, e, &g.bytes()),
                        RegionEntryField::FileOffset => put(&mut self.hs, e + 16, &v),
                        RegionEntryField::Length => put(&mut self.hs, e + 24, &v[..4]),
                        RegionEntryField::Required => put(&mut self.hs, e + 28, &v[..4]),
                    }
                }
            }
            Corruption::MetadataHeader { field, value } => {
                let v = value.to_le_bytes();
                match field {
                    MetadataHeaderField::Signature => put(&mut self.md, 0, &v),
                    MetadataHeaderField::Reserved => put(&mut self.md, 8, &v[..2]),
                    MetadataHeaderField::EntryCount => put(&mut self.md, 10, &v[..2]),
                    MetadataHeaderField::Reserved2 => {
                        put(&mut self.md, 12 + (value >> 56) as usize % 20, &v[..1])
                    }
                }
            }
            Corruption::MetadataEntry {
                entry,
                field,
                value,
            } => {
                let e = 32 + 32 * (entry % 8) as usize;
                let v = value.to_le_bytes();
                match field {
                    MetadataEntryField::ItemId(g) => put(&mut self.md, e, &g.bytes()),
                    MetadataEntryField::Offset => put(&mut self.md, e + 16, &v[..4]),
                    MetadataEntryField::Length => put(&mut self.md, e + 20, &v[..4]),
                    MetadataEntryField::Flags => put(&mut self.md, e + 24, &v[..4]),
                    MetadataEntryField::Reserved => put(&mut self.md, e + 28, &v[..4]),
                }
            }
            Corruption::MetadataAddEntry {
                id,
                offset,
                length,
                flags,
            } => {
                let n = u16::from_le_bytes([self.md[10], self.md[11]]);
                if (n as usize) < 2047 {
                    let e = 32 + 32 * n as usize;
                    put(&mut self.md, e, &id.bytes());
                    put(&mut self.md, e + 16, &offset.to_le_bytes());
                    put(&mut self.md, e + 20, &length.to_le_bytes());
                    put(&mut self.md, e + 24, &flags.to_le_bytes());
                    put(&mut self.md, 10, &(n + 1).to_le_bytes());
                }
            }
            Corruption::MetadataItem { item, at, value } => {
                // Items are packed from 64 KiB: 8, 8, 16, 4, 4 bytes.
                let starts = [0usize, 8, 16, 32, 36];
                put(
                    &mut self.md,
                    TABLE + starts[item as usize % 5] + (at % 16) as usize,
                    &value.to_le_bytes(),
                );
            }
            Corruption::Bat {
                index,
                state,
                reserved,
                offset_mb,
            } => {
                let v = (state & 7) as u64
                    | ((reserved as u64) << 3 & 0x000F_FFF8)
                    | (offset_mb as u64) << 20;
                self.set_bat(p, index, v);
            }
            Corruption::BatRaw { index, value } => self.set_bat(p, index, value),
            Corruption::Patch { offset, ref bytes } => {
                let at = offset % (self.len + MIB);
                let bytes = &bytes[..bytes.len().min(MAX_PATCH)];
                if at < HS_LEN as u64 {
                    put(&mut self.hs, at as usize, bytes);
                } else if (self.md_offset..self.md_offset + MD_LEN as u64).contains(&at) {
                    put(&mut self.md, (at - self.md_offset) as usize, bytes);
                } else {
                    self.extra.push(Extent {
                        offset: at,
                        data: bytes.to_vec(),
                    });
                }
            }
            Corruption::Zero(s) => match s {
                Structure::FileIdentifier => self.hs[..0x10000].fill(0),
                Structure::Header1 => self.hs[H_OFF[0]..H_OFF[0] + 0x10000].fill(0),
                Structure::Header2 => self.hs[H_OFF[1]..H_OFF[1] + 0x10000].fill(0),
                Structure::RegionTable1 => self.hs[R_OFF[0]..R_OFF[0] + TABLE].fill(0),
                Structure::RegionTable2 => self.hs[R_OFF[1]..R_OFF[1] + TABLE].fill(0),
                Structure::MetadataTable => self.md[..TABLE].fill(0),
                Structure::MetadataItems => self.md[TABLE..].fill(0),
                Structure::Bat => self.bat.clear(),
            },
            Corruption::Length(ch) => {
                self.len = match ch {
                    LenChange::Truncate(n) => self.len.saturating_sub(n as u64),
                    LenChange::Extend(n) => self.len + n as u64 % (1 << 26),
                    LenChange::Set(n) => n % crate::sparse::MAX_LEN,
                }
            }
        }
    }

    fn set_bat(&mut self, p: &Params, index: u32, v: u64) {
        let i = index as u64 % (p.bat_length / 8);
        if v == 0 {
            self.bat.remove(&i);
        } else {
            self.bat.insert(i, v);
        }
    }

    /// The image as extents over zeros (later extents win).
    pub fn extents(&self) -> Vec<Extent> {
        let mut v = vec![
            Extent {
                offset: 0,
                data: self.hs.clone(),
            },
            Extent {
                offset: self.md_offset,
                data: self.md.clone(),
            },
        ];
        let mut run: Option<(u64, Vec<u8>)> = None;
        for (&i, &e) in &self.bat {
            match &mut run {
                Some((first, data)) if *first + data.len() as u64 / 8 == i => {
                    data.extend_from_slice(&e.to_le_bytes())
                }
                _ => {
                    if let Some((first, data)) = run.take() {
                        v.push(Extent {
                            offset: self.bat_offset + first * 8,
                            data,
                        });
                    }
                    run = Some((i, e.to_le_bytes().to_vec()));
                }
            }
        }
        if let Some((first, data)) = run {
            v.push(Extent {
                offset: self.bat_offset + first * 8,
                data,
            });
        }
        v.extend(self.extra.iter().cloned());
        v
    }

    /// Materializes the image (for seeds and for inspection with the CLI).
    pub fn to_sparse(&self) -> crate::sparse::SparseImage {
        crate::sparse::SparseImage {
            len: self.len,
            extents: self.extents(),
        }
    }
}
