//! `image_structured`: an `arbitrary` description of a VALID image, serialized here into
//! sparse extents with correct CRC-32C, then damaged by a list of corruptions (optionally
//! re-sealing the checksums afterwards so the damage gets past the checksum gates).
//!
//! Layout (as qemu-img and Hyper-V write it): header section (file type identifier,
//! headers at 64/128 KiB, region tables at 192/256 KiB), the log at 1 MiB (0..2 MiB), the
//! metadata region (1 MiB: table + the five system items at 64 KiB) and the BAT region in
//! either order, then the payload blocks. Header 2 is current.
//! Dynamic disks allocate the listed blocks in list order; fixed disks allocate every
//! block FULLY_PRESENT, in order.
//!
//! The log (optional, [`LogDesc`]) holds up to 4 valid entries whose data and zero
//! descriptors rewrite BAT, metadata and region-table sectors in ways that keep the image
//! valid both as it is (RAW) and replayed; [`LogCorruption`]s then damage entry fields,
//! descriptors, data sectors (re-sealing the entry CRC) or tear an entry (no re-seal).

use arbitrary::Arbitrary;
use std::collections::{BTreeMap, BTreeSet};
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
    /// A log of valid entries (needs a log region: `log_mib % 3 != 0`).
    pub log: Option<LogDesc>,
    /// Damage to the log (at most 8 are used); with `corruptions`, empty means accepted.
    pub log_corruptions: Vec<LogCorruption>,
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
        b.add_log(self, &p);
        b.seal();
        let corruptions = &self.corruptions[..self.corruptions.len().min(MAX_CORRUPTIONS)];
        let log_corruptions =
            &self.log_corruptions[..self.log_corruptions.len().min(MAX_LOG_CORRUPTIONS)];
        for c in corruptions {
            b.apply(&p, c, false);
        }
        for c in log_corruptions {
            b.apply_log(c, false);
        }
        if self.reseal {
            b.seal();
        }
        for c in corruptions {
            b.apply(&p, c, true);
        }
        for c in log_corruptions {
            b.apply_log(c, true);
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
    pub bat: BTreeMap<u64, u64>,
    pub bat_offset: u64,
    pub bat_length: u64,
    /// The log ring (LogLength bytes, empty without a log region) and its file offset.
    pub log: Vec<u8>,
    pub log_offset: u64,
    /// Ring offset and length of each generated entry, in sequence order.
    pub log_entries: Vec<(usize, usize)>,
    /// 4 KiB ring pages ever written (only these become extents).
    log_pages: BTreeSet<usize>,
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

        let mut bat = BTreeMap::new();
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
            log: vec![0u8; p.log_length as usize],
            log_offset: p.log_offset,
            log_entries: Vec::new(),
            log_pages: BTreeSet::new(),
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
        // Written ring pages, adjacent ones merged.
        let mut pages = self.log_pages.iter().copied().peekable();
        while let Some(first) = pages.next() {
            let mut last = first;
            while pages.peek() == Some(&(last + 1)) {
                last = pages.next().unwrap_or(last);
            }
            v.push(Extent {
                offset: self.log_offset + (first * SECTOR) as u64,
                data: self.log[first * SECTOR..(last + 1) * SECTOR].to_vec(),
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

// ---------------------------------------------------------------------------------------
// The log (MS-VHDX 2.3, CATALOGUE 1.4.5-1.4.8), written out independently of src/.

/// Entries a generated log holds at most, and descriptors per entry.
const MAX_LOG_ENTRIES: usize = 4;
const MAX_WRITES: usize = 6;
const MAX_LOG_CORRUPTIONS: usize = 8;
const SECTOR: usize = 4096;
/// Sectors of the metadata buffer (table + items page); the rest of the 1 MiB region is zero.
const MD_SECTORS: usize = MD_LEN / SECTOR;
const MD_REGION_SECTORS: usize = (MIB as usize) / SECTOR;

/// A valid log: entries laid end to end in the ring from `start` (ring order: an entry
/// may straddle the ring end), consecutive sequence numbers, every Tail naming an entry of
/// the run, CRC-32C sealed, FlushedFileOffset = LastFileOffset = the file length. What the
/// entries write keeps both views valid (see [`Write`]), so an uncorrupted image with a
/// log still has no error finding: replay is pending (LOG-003, a warning) or already done
/// (LOG-004). A log without entries is not written (a LogGuid with an empty ring is
/// LOG-002, an error).
#[derive(Arbitrary, Debug, Clone)]
pub struct LogDesc {
    /// Ring offset of the first entry: `4 KiB * (n % (LogLength / 4 KiB))`.
    pub start: u16,
    /// Sequence number of the first entry: `max(1, n >> 2)`.
    pub sequence: u64,
    /// The entries from `tail % entries` on are the active sequence: that entry and
    /// every later one have it as Tail (the earlier ones name themselves; LOG-062).
    pub tail: u8,
    /// Both headers carry the log's LogGuid (replay pending). Otherwise they keep LogGuid
    /// zero and the entries are history (LOG-001).
    pub pending: bool,
    /// The file already holds what the log writes (replay changes nothing: LOG-004).
    pub applied: bool,
    /// At most 4 are used.
    pub entries: Vec<EntryDesc>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct EntryDesc {
    /// Descriptors, at most 6 (skipped ones leave none).
    pub writes: Vec<Write>,
}

/// One descriptor, chosen so that the image stays valid with or without it: FULLY_PRESENT
/// and sector bitmap BAT entries never change, other payload entries of dynamic disks only
/// move between NOT_PRESENT, ZERO and UNMAPPED; structures are rewritten with their own
/// contents; zero descriptors clear only BAT sectors without allocated blocks and the
/// unused part of the metadata region.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Write {
    /// Data: BAT sector `sector % sectors`, entry `entry % 512` of it set to `state` where
    /// allowed (else rewritten unchanged).
    Bat {
        sector: u32,
        entry: u16,
        state: AllocState,
    },
    /// Zero: `count % 4 + 1` BAT sectors from `sector % sectors` (skipped when they hold
    /// a FULLY_PRESENT entry).
    BatZero { sector: u32, count: u8 },
    /// Data: metadata region sector `sector % 17` (table, items) rewritten unchanged.
    Metadata { sector: u8 },
    /// Zero: `count % 8 + 1` sectors of the unused metadata region (from 68 KiB).
    MetadataZero { sector: u8, count: u8 },
    /// Data: sector `sector % 16` of region table 1 or 2, rewritten unchanged.
    RegionTable { second: bool, sector: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum EntryField {
    Signature,
    EntryLength,
    Tail,
    SequenceNumber,
    DescriptorCount,
    Reserved,
    LogGuid,
    FlushedFileOffset,
    LastFileOffset,
}

/// Descriptor bytes 0..4, 4..8 (TrailingBytes / Reserved), 8..16 (LeadingBytes /
/// ZeroLength), 16..24, 24..32.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum DescriptorField {
    Signature,
    TrailingOrReserved,
    LeadingOrZeroLength,
    FileOffset,
    SequenceNumber,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum SectorField {
    Signature,
    SequenceHigh,
    SequenceLow,
    /// A payload byte (position from the value's high bits).
    Payload,
}

/// Damage to a generated log entry (`entry % entries`; nothing without entries).
#[derive(Arbitrary, Debug, Clone)]
pub enum LogCorruption {
    /// An entry header field, then the entry's checksum re-sealed.
    Entry {
        entry: u8,
        field: EntryField,
        value: u64,
    },
    /// Field of descriptor `index % DescriptorCount`, re-sealed.
    Descriptor {
        entry: u8,
        index: u8,
        field: DescriptorField,
        value: u64,
    },
    /// Data sector `index % data sectors`, re-sealed.
    DataSector {
        entry: u8,
        index: u8,
        field: SectorField,
        value: u32,
    },
    /// A torn entry: bytes at `at % EntryLength` changed after every re-seal.
    Torn { entry: u8, at: u32, bytes: Vec<u8> },
    /// The entry copied to ring offset `4 KiB * (to % sectors)` (a second sequence).
    Copy { entry: u8, to: u16 },
    /// The entry zeroed (a gap in the run).
    Erase { entry: u8 },
}

/// Re-seals the CRC-32C of the entry at ring offset `pos` (4 KiB aligned) over its
/// EntryLength bytes in ring order, the length clamped to `[64, ring length]`.
pub fn seal_entry(ring: &mut [u8], pos: usize) {
    let n = ring.len();
    if n < SECTOR || !pos.is_multiple_of(SECTOR) || pos >= n {
        return;
    }
    let len = u32::from_le_bytes([ring[pos + 8], ring[pos + 9], ring[pos + 10], ring[pos + 11]]);
    let len = (len as usize).clamp(64, n);
    ring[pos + 4..pos + 8].fill(0);
    let first = len.min(n - pos);
    let mut c = crc32c::crc32c(&ring[pos..pos + first]);
    if first < len {
        c = crc32c::crc32c_append(c, &ring[..len - first]);
    }
    ring[pos + 4..pos + 8].copy_from_slice(&c.to_le_bytes());
}

/// Writes `bytes` into the ring from `pos` in ring order.
fn ring_write(ring: &mut [u8], pages: &mut BTreeSet<usize>, pos: usize, bytes: &[u8]) {
    let n = ring.len();
    if n == 0 {
        return;
    }
    let mut p = pos % n;
    let mut rest = bytes;
    while !rest.is_empty() {
        let k = rest.len().min(n - p);
        ring[p..p + k].copy_from_slice(&rest[..k]);
        pages.extend(p / SECTOR..=(p + k - 1) / SECTOR);
        rest = &rest[k..];
        p = (p + k) % n;
    }
}

fn ring_read(ring: &[u8], pos: usize, len: usize) -> Vec<u8> {
    let n = ring.len();
    (0..len).map(|k| ring[(pos + k) % n]).collect()
}

/// A resolved descriptor: a 4 KiB data write or a zero range.
enum LogWrite {
    Data { target: u64, content: Vec<u8> },
    Zero { target: u64, length: u64 },
}

/// Fields of one entry.
struct EntryParams {
    seq: u64,
    tail: u32,
    guid: [u8; 16],
    flushed: u64,
    last: u64,
}

/// Serializes one entry (descriptor sectors, then data sectors) with its checksum.
fn entry_bytes(e: &EntryParams, writes: &[LogWrite]) -> Vec<u8> {
    let count = writes.len();
    let d = (count + 2).div_ceil(128);
    let m = writes
        .iter()
        .filter(|w| matches!(w, LogWrite::Data { .. }))
        .count();
    let mut b = vec![0u8; SECTOR * (d + m)];
    let len = b.len() as u32;
    put(&mut b, 0, b"loge");
    put(&mut b, 8, &len.to_le_bytes());
    put(&mut b, 12, &e.tail.to_le_bytes());
    put(&mut b, 16, &e.seq.to_le_bytes());
    put(&mut b, 24, &(count as u32).to_le_bytes());
    put(&mut b, 32, &e.guid);
    put(&mut b, 48, &e.flushed.to_le_bytes());
    put(&mut b, 56, &e.last.to_le_bytes());
    let mut j = 0;
    for (i, w) in writes.iter().enumerate() {
        let s = 64 + 32 * i;
        match w {
            LogWrite::Data { target, content } => {
                put(&mut b, s, b"desc");
                put(&mut b, s + 4, &content[4092..4096]);
                put(&mut b, s + 8, &content[..8]);
                put(&mut b, s + 16, &target.to_le_bytes());
                let sec = SECTOR * (d + j);
                put(&mut b, sec, b"data");
                put(&mut b, sec + 4, &((e.seq >> 32) as u32).to_le_bytes());
                put(&mut b, sec + 8, &content[8..4092]);
                put(&mut b, sec + 4092, &(e.seq as u32).to_le_bytes());
                j += 1;
            }
            LogWrite::Zero { target, length } => {
                put(&mut b, s, b"zero");
                put(&mut b, s + 8, &length.to_le_bytes());
                put(&mut b, s + 16, &target.to_le_bytes());
            }
        }
        put(&mut b, s + 24, &e.seq.to_le_bytes());
    }
    let c = crc_with_zeroed(&b, 4);
    put(&mut b, 4, &c.to_le_bytes());
    b
}

impl Built {
    /// BAT sector `s` (512 entries) as `state` holds it.
    fn bat_sector(state: &BTreeMap<u64, u64>, s: u64) -> Vec<u8> {
        let mut c = vec![0u8; SECTOR];
        for (&i, &v) in state.range(s * 512..(s + 1) * 512) {
            put(&mut c, (i - s * 512) as usize * 8, &v.to_le_bytes());
        }
        c
    }

    /// The descriptor `w` stands for given the BAT `state` (updated), if any.
    fn resolve(&self, p: &Params, state: &mut BTreeMap<u64, u64>, w: Write) -> Option<LogWrite> {
        let bat_sectors = p.bat_length / SECTOR as u64;
        let allocated = |v: u64| v & 7 >= 6;
        Some(match w {
            Write::Bat {
                sector,
                entry,
                state: to,
            } => {
                let s = sector as u64 % bat_sectors;
                let i = s * 512 + (entry % 512) as u64;
                let bitmap = (i + 1).is_multiple_of(p.chunk_ratio + 1);
                let cur = state.get(&i).copied().unwrap_or(0);
                if p.kind == Kind::Dynamic && i < p.total_entries && !bitmap && !allocated(cur) {
                    match to {
                        AllocState::NotPresent => {
                            state.remove(&i);
                        }
                        AllocState::Zero => {
                            state.insert(i, 2);
                        }
                        AllocState::Unmapped => {
                            state.insert(i, 3);
                        }
                        AllocState::FullyPresent => {}
                    }
                }
                LogWrite::Data {
                    target: p.bat_offset + s * SECTOR as u64,
                    content: Self::bat_sector(state, s),
                }
            }
            Write::BatZero { sector, count } => {
                let s = sector as u64 % bat_sectors;
                let c = (count as u64 % 4 + 1).min(bat_sectors - s);
                let range = s * 512..(s + c) * 512;
                if state.range(range.clone()).any(|(_, &v)| allocated(v)) {
                    return None;
                }
                let gone: Vec<u64> = state.range(range).map(|(&i, _)| i).collect();
                for i in gone {
                    state.remove(&i);
                }
                LogWrite::Zero {
                    target: p.bat_offset + s * SECTOR as u64,
                    length: c * SECTOR as u64,
                }
            }
            Write::Metadata { sector } => {
                let s = sector as usize % MD_SECTORS;
                LogWrite::Data {
                    target: p.md_offset + (s * SECTOR) as u64,
                    content: self.md[s * SECTOR..(s + 1) * SECTOR].to_vec(),
                }
            }
            Write::MetadataZero { sector, count } => {
                let s = MD_SECTORS + sector as usize % (MD_REGION_SECTORS - MD_SECTORS);
                let c = (count as usize % 8 + 1).min(MD_REGION_SECTORS - s);
                LogWrite::Zero {
                    target: p.md_offset + (s * SECTOR) as u64,
                    length: (c * SECTOR) as u64,
                }
            }
            Write::RegionTable { second, sector } => {
                let at = R_OFF[second as usize] + (sector as usize % 16) * SECTOR;
                LogWrite::Data {
                    target: at as u64,
                    content: self.hs[at..at + SECTOR].to_vec(),
                }
            }
        })
    }

    /// Writes the log of `d` into the ring (after the structures are sealed: the entries
    /// copy sealed region tables). Sets the headers' LogGuid when pending; the caller
    /// re-seals the headers.
    fn add_log(&mut self, d: &Desc, p: &Params) {
        let Some(ld) = &d.log else { return };
        let n = ld.entries.len().min(MAX_LOG_ENTRIES);
        if self.log.is_empty() || n == 0 {
            return;
        }
        let ring_len = self.log.len();
        let guid = guid_of(d.sequence ^ 0x1065);
        let t = ld.tail as usize % n;
        let seq0 = (ld.sequence >> 2).max(1);
        let mut pos = (ld.start as usize % (ring_len / SECTOR)) * SECTOR;
        let mut state = self.bat.clone();
        let mut starts = Vec::new();
        for (i, e) in ld.entries.iter().take(n).enumerate() {
            let writes: Vec<LogWrite> = (e.writes.iter().take(MAX_WRITES))
                .filter_map(|&w| self.resolve(p, &mut state, w))
                .collect();
            let tail = if i <= t { pos } else { starts[t] };
            let ep = EntryParams {
                seq: seq0 + i as u64,
                tail: tail as u32,
                guid,
                flushed: self.len,
                last: self.len,
            };
            let bytes = entry_bytes(&ep, &writes);
            ring_write(&mut self.log, &mut self.log_pages, pos, &bytes);
            self.log_entries.push((pos, bytes.len()));
            starts.push(pos);
            pos = (pos + bytes.len()) % ring_len;
        }
        if ld.applied {
            self.bat = state;
        }
        if ld.pending {
            for &off in &H_OFF {
                put(&mut self.hs, off + 48, &guid);
            }
        }
    }

    /// Applies a log corruption: torn entries only when `torn` (after every re-seal),
    /// everything else only when not.
    fn apply_log(&mut self, c: &LogCorruption, torn: bool) {
        if matches!(c, LogCorruption::Torn { .. }) != torn || self.log_entries.is_empty() {
            return;
        }
        let pick = |e: u8| self.log_entries[e as usize % self.log_entries.len()];
        let ring = &mut self.log;
        let pages = &mut self.log_pages;
        match *c {
            LogCorruption::Entry {
                entry,
                field,
                value,
            } => {
                let (pos, _) = pick(entry);
                let v = value.to_le_bytes();
                let (at, bytes): (usize, Vec<u8>) = match field {
                    EntryField::Signature => (0, v[..4].to_vec()),
                    EntryField::EntryLength => (8, v[..4].to_vec()),
                    EntryField::Tail => (12, v[..4].to_vec()),
                    EntryField::SequenceNumber => (16, v.to_vec()),
                    EntryField::DescriptorCount => (24, v[..4].to_vec()),
                    EntryField::Reserved => (28, v[..4].to_vec()),
                    EntryField::LogGuid => (32, guid_of(value).to_vec()),
                    EntryField::FlushedFileOffset => (48, v.to_vec()),
                    EntryField::LastFileOffset => (56, v.to_vec()),
                };
                ring_write(ring, pages, pos + at, &bytes);
                seal_entry(ring, pos);
            }
            LogCorruption::Descriptor {
                entry,
                index,
                field,
                value,
            } => {
                let (pos, _) = pick(entry);
                let h = ring_read(ring, pos, 64);
                let count = u32::from_le_bytes([h[24], h[25], h[26], h[27]]) as usize;
                if count == 0 {
                    return;
                }
                let slot = pos + 64 + 32 * (index as usize % count.min(4096));
                let v = value.to_le_bytes();
                let (at, bytes) = match field {
                    DescriptorField::Signature => (0, &v[..4]),
                    DescriptorField::TrailingOrReserved => (4, &v[..4]),
                    DescriptorField::LeadingOrZeroLength => (8, &v[..]),
                    DescriptorField::FileOffset => (16, &v[..]),
                    DescriptorField::SequenceNumber => (24, &v[..]),
                };
                ring_write(ring, pages, slot + at, bytes);
                seal_entry(ring, pos);
            }
            LogCorruption::DataSector {
                entry,
                index,
                field,
                value,
            } => {
                let (pos, len) = pick(entry);
                let h = ring_read(ring, pos, 64);
                let count = u32::from_le_bytes([h[24], h[25], h[26], h[27]]) as usize;
                let d = (count + 2).div_ceil(128);
                let m = (len / SECTOR).saturating_sub(d);
                if m == 0 {
                    return;
                }
                let sec = pos + SECTOR * (d + index as usize % m);
                let v = value.to_le_bytes();
                let at = match field {
                    SectorField::Signature => 0,
                    SectorField::SequenceHigh => 4,
                    SectorField::SequenceLow => 4092,
                    SectorField::Payload => 8 + (value >> 20) as usize % 4084,
                };
                ring_write(ring, pages, sec + at, &v);
                seal_entry(ring, pos);
            }
            LogCorruption::Torn {
                entry,
                at,
                ref bytes,
            } => {
                let (pos, len) = pick(entry);
                let bytes = &bytes[..bytes.len().min(MAX_PATCH)];
                ring_write(ring, pages, pos + at as usize % len, bytes);
            }
            LogCorruption::Copy { entry, to } => {
                let (pos, len) = pick(entry);
                let bytes = ring_read(ring, pos, len);
                let to = (to as usize % (ring.len() / SECTOR)) * SECTOR;
                ring_write(ring, pages, to, &bytes);
            }
            LogCorruption::Erase { entry } => {
                let (pos, len) = pick(entry);
                ring_write(ring, pages, pos, &vec![0u8; len]);
            }
        }
    }
}
