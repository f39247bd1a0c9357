//! The image as understood: the chosen header and region table, the metadata values, the
//! disk type and geometry, and streaming access to the BAT. Built from `format`, with no
//! judgement: rules decide what is wrong; the model only records what it chose and why.

mod bat_cache;
mod bits;
mod layout;
pub mod log;
pub mod names;
pub mod qemu;
pub mod replay;
pub mod virtual_disk;

/// What the rules' reads of the file use: they read through the model, never `io` itself.
pub use crate::io::{Holes, nonzero_byte};
pub use bits::Bits;
pub use layout::{Object, ObjectKind};

use crate::format::bat::{self, BatEntry, Geometry};
use crate::format::guid::{self, Guid};
use crate::format::header::{self, Header};
use crate::format::identifier::{self, FileIdentifier};
use crate::format::metadata::{self, KnownItem, MetadataEntry, MetadataTable};
use crate::format::region::{self, RegionEntry, RegionTable};
use crate::format::{MIB, u32_at, u64_at};
use crate::io::{self, ReadAt};
use serde::Serialize;
use std::sync::{Arc, OnceLock};

/// Bytes of a fixed-size slot read from the image, with how many really existed.
#[derive(Debug, Clone, Serialize)]
pub struct SlotBytes {
    pub offset: u64,
    /// The slot's length.
    pub len: usize,
    /// The slot up to its last non-zero byte; the rest is zeros. Most slots are a few
    /// bytes of structure in 64 KiB of zeros: kept whole, the six of an image cost 96 page
    /// faults (~2 µs each on the test VMs) and were swept byte by byte by the slack rules.
    #[serde(skip)]
    data: Vec<u8>,
    /// Bytes that came from the file; the rest (past EOF) read as zero.
    pub present: usize,
}

impl SlotBytes {
    /// Reads the slot of `len` bytes at `offset` through `scratch`, which holds the whole
    /// slot afterwards: parse and checksum it there.
    fn read(src: &dyn ReadAt, offset: u64, len: usize, scratch: &mut Vec<u8>) -> SlotBytes {
        scratch.clear();
        scratch.resize(len, 0);
        let present = io::read_padded(src, offset, scratch);
        SlotBytes {
            offset,
            len,
            data: scratch[..io::nonzero_end(scratch)].to_vec(),
            present,
        }
    }

    /// One past the last non-zero byte.
    pub fn nonzero_end(&self) -> usize {
        self.data.len()
    }

    /// Bytes `from..to` of the slot (`to` at most its length).
    pub fn get(&self, from: usize, to: usize) -> std::borrow::Cow<'_, [u8]> {
        debug_assert!(from <= to && to <= self.len);
        if to <= self.data.len() {
            return self.data[from..to].into();
        }
        let mut v = vec![0u8; to - from];
        if from < self.data.len() {
            v[..self.data.len() - from].copy_from_slice(&self.data[from..]);
        }
        v.into()
    }

    /// Index of the first non-zero byte in `from..to`.
    pub fn first_nonzero(&self, from: usize, to: usize) -> Option<usize> {
        let to = to.min(self.data.len());
        (from < to)
            .then(|| io::nonzero_byte(&self.data[from..to]))
            .flatten()
            .map(|i| from + i)
    }

    /// Whether two slots hold the same bytes.
    pub fn same_bytes(&self, other: &SlotBytes) -> bool {
        self.len == other.len && self.data == other.data
    }

    pub fn truncated(&self) -> bool {
        self.present < self.len
    }

    /// A message suffix explaining zero-filled bytes, empty when the slot was complete.
    pub fn truncation_note(&self) -> String {
        if self.truncated() {
            format!(
                " (the file ends {} bytes into this {}-byte structure; the rest reads as zero)",
                self.present, self.len
            )
        } else {
            String::new()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderCopy {
    pub slot: SlotBytes,
    pub header: Header,
    pub computed_checksum: u32,
    pub signature_ok: bool,
    pub checksum_ok: bool,
}

impl HeaderCopy {
    /// Valid per MS-VHDX 2.2.2: signature and checksum.
    pub fn valid(&self) -> bool {
        self.signature_ok && self.checksum_ok
    }
}

/// How the current header was chosen (MS-VHDX 2.2.2, CATALOGUE A2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderChoice {
    /// Neither copy is valid.
    NoneValid,
    /// Only this copy is valid.
    OnlyValid(usize),
    /// Both valid, this one has the greater sequence number.
    Greater(usize),
    /// Both valid, equal sequence numbers, identical contents: copy 1 is used.
    TieIdentical,
    /// Both valid, equal sequence numbers, different contents: no current header by the
    /// specification; copy 1 is used best-effort.
    TieDiffer,
}

impl HeaderChoice {
    /// How the choice was made, in words (header numbers are 1-based as in messages).
    pub fn describe(self) -> String {
        match self {
            HeaderChoice::NoneValid => "no valid header".into(),
            HeaderChoice::OnlyValid(i) => format!("header {} (the only valid copy)", i + 1),
            HeaderChoice::Greater(i) => format!("header {} (greater SequenceNumber)", i + 1),
            HeaderChoice::TieIdentical => {
                "header 1 (equal SequenceNumbers, identical copies)".into()
            }
            HeaderChoice::TieDiffer => {
                "header 1, best-effort (equal SequenceNumbers, copies differ)".into()
            }
        }
    }

    /// Index of the header later structures are located through.
    pub fn index(self) -> Option<usize> {
        match self {
            HeaderChoice::NoneValid => None,
            HeaderChoice::OnlyValid(i) | HeaderChoice::Greater(i) => Some(i),
            HeaderChoice::TieIdentical | HeaderChoice::TieDiffer => Some(0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RegionCopy {
    pub slot: SlotBytes,
    pub table: RegionTable,
    pub computed_checksum: u32,
    pub signature_ok: bool,
    pub checksum_ok: bool,
}

impl RegionCopy {
    pub fn valid(&self) -> bool {
        self.signature_ok && self.checksum_ok
    }
}

/// A metadata table entry together with where its item is in the file.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub index: usize,
    pub entry: MetadataEntry,
    pub known: Option<KnownItem>,
    /// File offset of the item (region offset + item offset), if it does not overflow.
    pub file_offset: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub region: RegionEntry,
    pub table_slot: SlotBytes,
    pub table: MetadataTable,
    pub signature_ok: bool,
    pub items: Vec<Item>,
}

impl Metadata {
    /// The system (IsUser = 0) entry for a known item: the first one, if several.
    pub fn known(&self, k: KnownItem) -> Option<&Item> {
        self.items
            .iter()
            .find(|i| i.known == Some(k) && !i.entry.is_user())
    }
}

/// Values of the known metadata items, where they could be read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Params {
    pub block_size: Option<u32>,
    pub file_parameter_flags: Option<u32>,
    pub virtual_disk_size: Option<u64>,
    pub virtual_disk_id: Option<Guid>,
    pub logical_sector_size: Option<u32>,
    pub physical_sector_size: Option<u32>,
}

impl Params {
    pub fn has_parent(&self) -> Option<bool> {
        self.file_parameter_flags
            .map(|f| f & metadata::FP_HAS_PARENT != 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskType {
    Fixed,
    Dynamic,
    Differencing,
}

impl DiskType {
    pub const ALL: [DiskType; 3] = [DiskType::Fixed, DiskType::Dynamic, DiskType::Differencing];

    /// The name in messages, JSON and policy files.
    pub fn name(self) -> &'static str {
        match self {
            DiskType::Fixed => "fixed",
            DiskType::Dynamic => "dynamic",
            DiskType::Differencing => "differencing",
        }
    }
}

/// The BAT region as far as it lies inside the file.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BatView {
    pub offset: u64,
    /// Entries the region can hold (Length / 8).
    pub region_entries: u64,
    /// Entries that are inside the file (the rest read as missing).
    pub readable_entries: u64,
}

impl BatView {
    /// A table large enough (over 1 Mi entries, 8 MiB) for the BAT pass to walk it on a
    /// thread of its own beside the layout pass, which then share the reads.
    pub fn large(&self) -> bool {
        self.readable_entries > 1 << 20
    }
}

pub struct Model<'a> {
    pub src: &'a dyn ReadAt,
    pub file_size: u64,
    pub identifier_slot: SlotBytes,
    pub identifier: FileIdentifier,
    pub headers: [HeaderCopy; 2],
    pub header_choice: HeaderChoice,
    pub region_tables: [RegionCopy; 2],
    /// Copy used for locating regions: 1 if valid, else 2 if valid (CATALOGUE A6).
    pub region_choice: Option<usize>,
    pub bat_region: Option<RegionEntry>,
    pub metadata_region: Option<RegionEntry>,
    pub metadata: Option<Metadata>,
    pub params: Params,
    pub disk_type: Option<DiskType>,
    pub geometry: Option<Geometry>,
    pub bat: Option<BatView>,
    /// The parent locator item, when the metadata table has one that can be read.
    pub parent_locator: Option<LocatorItem>,
    /// What is known of the parent file, when the caller supplied or found one.
    pub parent: Option<ParentLink>,
    /// Why the chain ends at this differencing disk without its parent, when the caller
    /// asked for the chain (`--parent`, `--find-parents`) and could not complete it.
    pub chain_break: Option<ChainBreak>,
    /// Chunks of a large BAT, read once for the walks that run at the same time.
    bat_cache: bat_cache::BatCache,
    /// The log found through the current header (see [`Model::log`]); the REPLAYED model
    /// shares the RAW model's.
    log: LogCell,
}

/// A log analysis, done once by whichever thread asks first: a model's own, or one a
/// caller started ahead on another thread (`engine::views::with_models`) and handed to the model.
pub type LogCell = Arc<OnceLock<Option<Arc<log::Log>>>>;

/// Both header copies of `src` and which one is current (MS-VHDX 2.2.2).
pub struct Headers {
    pub copies: [HeaderCopy; 2],
    pub choice: HeaderChoice,
}

impl Headers {
    pub fn read(src: &dyn ReadAt) -> Headers {
        let mut scratch = Vec::new();
        let copies = header::OFFSETS.map(|off| {
            let slot = SlotBytes::read(src, off, header::SLOT, &mut scratch);
            let header = header::parse(&scratch);
            let computed_checksum = header::computed_checksum(&scratch);
            HeaderCopy {
                signature_ok: &header.signature == header::SIGNATURE,
                checksum_ok: computed_checksum == header.checksum,
                computed_checksum,
                header,
                slot,
            }
        });
        let choice = choose_header(&copies);
        Headers { copies, choice }
    }

    /// The header later structures are located through, if any.
    pub fn current(&self) -> Option<&Header> {
        self.choice.index().map(|i| &self.copies[i].header)
    }
}

/// The parent of a differencing disk as the chain rules need it: its identity and
/// geometry from its own model, and how it was found.
#[derive(Debug, Clone, Serialize)]
pub struct ParentLink {
    pub path: String,
    pub data_write_guid: Option<Guid>,
    pub logical_sector_size: Option<u32>,
    pub virtual_disk_size: Option<u64>,
    pub virtual_disk_id: Option<Guid>,
    /// The locator key that led to the file (`None`: named by the user).
    pub found_via: Option<&'static str>,
}

impl ParentLink {
    pub fn of(path: String, parent: &Model, found_via: Option<&'static str>) -> ParentLink {
        ParentLink {
            path,
            data_write_guid: parent.current_header().map(|h| h.data_write_guid),
            logical_sector_size: parent.params.logical_sector_size,
            virtual_disk_size: parent.params.virtual_disk_size,
            virtual_disk_id: parent.params.virtual_disk_id,
            found_via,
        }
    }
}

/// Why a differencing disk's parent is not in the chain (CHAIN-006..008); the text says
/// what was looked for and where.
#[derive(Debug, Clone, Serialize)]
pub enum ChainBreak {
    /// No parent found (or none given): the locator keys and values tried, the roots.
    Missing(String),
    /// The locator leads back to a file already in the chain.
    Loop(String),
    /// The chain reached [`crate::chain::MAX_DEPTH`] parents; this one's is not followed.
    Depth(String),
}

/// The parent locator item's bytes (at most 1 MiB) and its parse.
#[derive(Debug, Clone)]
pub struct LocatorItem {
    /// File offset of the item.
    pub file_offset: u64,
    /// Item bytes that lie inside the region and the file.
    pub bytes: Vec<u8>,
    /// `None` when the item is shorter than the locator header.
    pub locator: Option<crate::format::parent::ParentLocator>,
}

impl<'a> Model<'a> {
    /// Every structure of `src` as found; the log is analysed when first asked for.
    pub fn build(src: &'a dyn ReadAt) -> Model<'a> {
        Model::assemble(src, Headers::read(src), LogCell::default())
    }

    /// The REPLAYED model: the structures of the replayed `view`, with the RAW model's log.
    pub fn build_replayed(view: &'a dyn ReadAt, raw: &Model) -> Model<'a> {
        let mut m = Model::build(view);
        m.log = raw.log.clone();
        m
    }

    /// The log found through the current header (CATALOGUE 3), analysed on first use.
    /// Threads that ask while another analyses it wait for that analysis.
    pub fn log(&self) -> Option<&log::Log> {
        self.log_cell().as_deref()
    }

    /// [`Model::log`], to be shared beyond the model's lifetime.
    pub fn log_shared(&self) -> Option<Arc<log::Log>> {
        self.log_cell().clone()
    }

    fn log_cell(&self) -> &Option<Arc<log::Log>> {
        self.log.get_or_init(|| {
            (self.current_header())
                .and_then(|h| log::analyse(self.src, h))
                .map(Arc::new)
        })
    }

    /// Whether the log is history only: the current header's LogGuid is zero, so nothing
    /// is replayed and no view or structure depends on it (CATALOGUE 3.1 step 1). Its
    /// entries are then only listed (LOG-001), and the analysis may wait (CATALOGUE 5.8).
    pub fn log_is_history(&self) -> bool {
        self.current_header().is_none_or(|h| h.log_guid.is_zero())
    }

    /// The log when it can hold an active sequence ([`Model::log_is_history`] is false).
    pub fn active_log(&self) -> Option<&log::Log> {
        if self.log_is_history() {
            return None;
        }
        self.log()
    }

    /// The structures of `src` found through `headers` (read from `src`), with `log` as the
    /// log analysis.
    pub fn assemble(src: &'a dyn ReadAt, headers: Headers, log: LogCell) -> Model<'a> {
        let file_size = src.len();
        let mut scratch = Vec::new();
        let identifier_slot =
            SlotBytes::read(src, identifier::OFFSET, identifier::SLOT, &mut scratch);
        let identifier = identifier::parse(&scratch);
        let Headers {
            copies: headers,
            choice: header_choice,
        } = headers;
        let region_tables = region::OFFSETS.map(|off| {
            let slot = SlotBytes::read(src, off, region::SIZE, &mut scratch);
            let table = region::parse(&scratch);
            let computed_checksum = region::computed_checksum(&scratch);
            RegionCopy {
                signature_ok: &table.signature == region::SIGNATURE,
                checksum_ok: computed_checksum == table.checksum,
                computed_checksum,
                table,
                slot,
            }
        });
        let region_choice = (0..2).find(|&i| region_tables[i].valid());
        let find_region = |g: Guid| {
            region_choice.and_then(|i| {
                region_tables[i]
                    .table
                    .entries
                    .iter()
                    .find(|e| e.guid == g)
                    .copied()
            })
        };
        let bat_region = find_region(guid::REGION_BAT);
        let metadata_region = find_region(guid::REGION_METADATA);
        let metadata = metadata_region.map(|r| read_metadata(src, r, &mut scratch));
        let parent_locator = metadata.as_ref().and_then(|md| read_locator(src, md));
        let params = metadata
            .as_ref()
            .map(|m| read_params(src, m))
            .unwrap_or_default();
        let disk_type = params.file_parameter_flags.map(|f| {
            if f & metadata::FP_HAS_PARENT != 0 {
                DiskType::Differencing
            } else if f & metadata::FP_LEAVE_BLOCK_ALLOCATED != 0 {
                DiskType::Fixed
            } else {
                DiskType::Dynamic
            }
        });
        let geometry = match (
            params.block_size,
            params.logical_sector_size,
            params.virtual_disk_size,
            disk_type,
        ) {
            (Some(bs), Some(lss), Some(vds), Some(t)) => {
                Geometry::new(bs as u64, lss as u64, vds, t == DiskType::Differencing)
            }
            _ => None,
        };
        let bat = bat_region.map(|r| {
            let region_entries = r.length as u64 / bat::ENTRY_SIZE;
            let in_file = file_size.saturating_sub(r.file_offset) / bat::ENTRY_SIZE;
            BatView {
                offset: r.file_offset,
                region_entries,
                readable_entries: region_entries.min(in_file),
            }
        });
        Model {
            src,
            file_size,
            identifier_slot,
            identifier,
            headers,
            header_choice,
            region_tables,
            region_choice,
            bat_region,
            metadata_region,
            metadata,
            params,
            disk_type,
            geometry,
            bat,
            parent_locator,
            parent: None,
            chain_break: None,
            bat_cache: Default::default(),
            log,
        }
    }

    /// The header later structures are located through, if any.
    pub fn current_header(&self) -> Option<&Header> {
        self.header_choice.index().map(|i| &self.headers[i].header)
    }

    /// Entries of the working region table (empty if neither copy is valid).
    pub fn regions(&self) -> &[RegionEntry] {
        self.region_choice
            .map_or(&[], |i| &self.region_tables[i].table.entries)
    }

    /// Streams the readable BAT entries in bounded chunks: `f(first_index, entries)`.
    /// Stops early if `f` returns false.
    pub fn for_each_bat_chunk(&self, mut f: impl FnMut(u64, &[BatEntry]) -> bool) {
        let Some(bv) = self.bat else { return };
        const PER_CHUNK: u64 = (io::BAT_CHUNK as u64) / bat::ENTRY_SIZE;
        let mut buf = vec![0u8; io::BAT_CHUNK];
        let mut entries: Vec<BatEntry> = Vec::with_capacity(PER_CHUNK as usize);
        // Walks of a large table at the same time share the reads (see `bat_cache`).
        let mut shared = bv.large().then(|| self.bat_cache.walk());
        let mut first = 0u64;
        while first < bv.readable_entries {
            let n = (bv.readable_entries - first).min(PER_CHUNK);
            let mut fill = |entries: &mut Vec<BatEntry>| {
                let bytes = &mut buf[..(n * bat::ENTRY_SIZE) as usize];
                // offset + first*8 < file size, so no overflow.
                let at = bv.offset + first * bat::ENTRY_SIZE;
                // A BAT chunk that is a hole of a sparse file reads as zeros: no copy needed.
                if self
                    .src
                    .data_from(at)
                    .is_none_or(|d| d >= at + bytes.len() as u64)
                {
                    bytes.fill(0);
                } else {
                    io::read_padded(self.src, at, bytes);
                }
                // Element by element into a sized buffer: compiles to a plain copy.
                entries.resize(n as usize, BatEntry(0));
                for (e, b) in entries.iter_mut().zip(bytes.chunks_exact(8)) {
                    *e = BatEntry(u64::from_le_bytes([
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                    ]));
                }
            };
            let go_on = match &mut shared {
                Some(walk) => f(first, &walk.get(first, PER_CHUNK, fill)),
                None => {
                    fill(&mut entries);
                    f(first, &entries)
                }
            };
            if !go_on {
                return;
            }
            first += n;
        }
    }

    /// The GUIDs of the locator's parent_linkage and parent_linkage2 (`None`: absent or
    /// not a braced GUID).
    pub fn parent_linkages(&self) -> (Option<Guid>, Option<Guid>) {
        use crate::format::parent::{self, KEY_PARENT_LINKAGE, KEY_PARENT_LINKAGE2};
        let pairs = self.locator_pairs();
        let linkage = |k: &str| {
            pairs
                .iter()
                .find(|(_, key, _)| key == k)
                .and_then(|(_, _, v)| parent::parse_braced_guid(v))
        };
        (linkage(KEY_PARENT_LINKAGE), linkage(KEY_PARENT_LINKAGE2))
    }

    /// Whether this differencing disk's parent_linkage (or parent_linkage2) names the
    /// parent whose DataWriteGuid is `dwg` (CHAIN-001: Hyper-V refuses a chain where
    /// neither does). `Err` says what the child names instead: "the child's parent_linkage
    /// is {G}[ and parent_linkage2 is {G}]".
    pub fn linkage_matches(&self, dwg: Guid) -> Result<(), String> {
        let (l1, l2) = self.parent_linkages();
        if l1 == Some(dwg) || l2 == Some(dwg) {
            return Ok(());
        }
        Err(format!(
            "the child's parent_linkage is {}{}",
            l1.map_or("missing".into(), |g| g.to_string()),
            l2.map_or(String::new(), |g| format!(" and parent_linkage2 is {g}"))
        ))
    }

    /// The decoded key/value pairs of the parent locator (entries whose strings cannot be
    /// located are left out): (entry index, key, value).
    pub fn locator_pairs(&self) -> Vec<(usize, String, String)> {
        use crate::format::parent;
        let Some(li) = &self.parent_locator else {
            return Vec::new();
        };
        let Some(pl) = &li.locator else {
            return Vec::new();
        };
        pl.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let k = parent::slice(&li.bytes, e.key_range()).filter(|b| b.len() % 2 == 0)?;
                let v = parent::slice(&li.bytes, e.value_range()).filter(|b| b.len() % 2 == 0)?;
                Some((
                    i,
                    crate::format::utf16le_lossy(k),
                    crate::format::utf16le_lossy(v),
                ))
            })
            .collect()
    }

    /// Reads `count` BAT entries from index `first` (entries past the readable end are
    /// absent). Callers bound `count` by the geometry (one chunk: at most 32769).
    pub fn bat_entries(&self, first: u64, count: u64) -> Vec<BatEntry> {
        let Some(bv) = self.bat else {
            return Vec::new();
        };
        let end = first.saturating_add(count).min(bv.readable_entries);
        if first >= end {
            return Vec::new();
        }
        let (bytes, _) = io::read_vec(
            self.src,
            bv.offset + first * bat::ENTRY_SIZE,
            ((end - first) * bat::ENTRY_SIZE) as usize,
        );
        bytes
            .chunks_exact(8)
            .map(|c| BatEntry(u64_at(c, 0)))
            .collect()
    }

    /// Reads `buf.len()` bytes at `offset`, zero past the end of the file; the bytes read.
    pub fn read_padded(&self, offset: u64, buf: &mut [u8]) -> usize {
        io::read_padded(self.src, offset, buf)
    }

    /// First non-zero byte in a file range (bounded, streamed).
    pub fn first_nonzero(&self, offset: u64, len: u64) -> Option<u64> {
        io::first_nonzero(self.src, offset, len)
    }

    /// [`Model::first_nonzero`] for many ranges in file order, remembering holes.
    pub fn first_nonzero_in(&self, holes: &mut Holes, offset: u64, len: u64) -> Option<u64> {
        io::first_nonzero_in(self.src, holes, offset, len)
    }

    /// A few bytes at `offset` for a finding's preview.
    pub fn preview(&self, offset: u64) -> String {
        let (b, got) = io::read_vec(self.src, offset, 16);
        crate::format::display::preview(&b[..got])
    }
}

fn choose_header(h: &[HeaderCopy; 2]) -> HeaderChoice {
    match (h[0].valid(), h[1].valid()) {
        (false, false) => HeaderChoice::NoneValid,
        (true, false) => HeaderChoice::OnlyValid(0),
        (false, true) => HeaderChoice::OnlyValid(1),
        (true, true) => {
            let (s0, s1) = (h[0].header.sequence_number, h[1].header.sequence_number);
            if s0 > s1 {
                HeaderChoice::Greater(0)
            } else if s1 > s0 {
                HeaderChoice::Greater(1)
            } else if h[0].slot.get(0, header::SIZE) == h[1].slot.get(0, header::SIZE) {
                HeaderChoice::TieIdentical
            } else {
                HeaderChoice::TieDiffer
            }
        }
    }
}

fn read_metadata(src: &dyn ReadAt, region: RegionEntry, scratch: &mut Vec<u8>) -> Metadata {
    let table_slot = SlotBytes::read(src, region.file_offset, metadata::TABLE_SIZE, scratch);
    let table = metadata::parse_table(scratch);
    let signature_ok = &table.signature == metadata::SIGNATURE;
    let items = if signature_ok {
        table
            .entries
            .iter()
            .enumerate()
            .map(|(index, e)| Item {
                index,
                entry: *e,
                known: KnownItem::from_guid(&e.item_id),
                file_offset: region.file_offset.checked_add(e.offset as u64),
            })
            .collect()
    } else {
        Vec::new()
    };
    Metadata {
        region,
        table_slot,
        table,
        signature_ok,
        items,
    }
}

/// Reads the parent locator item: the part of it inside the region and the file (items
/// are at most 1 MiB by rule; a larger claim is read up to 1 MiB).
fn read_locator(src: &dyn ReadAt, md: &Metadata) -> Option<LocatorItem> {
    let it = md.known(KnownItem::ParentLocator)?;
    let e = &it.entry;
    if e.offset < metadata::MIN_ITEM_OFFSET {
        return None;
    }
    let file_offset = it.file_offset?;
    let in_region = (md.region.length as u64).saturating_sub(e.offset as u64);
    let len = (e.length as u64)
        .min(in_region)
        .min(metadata::MAX_ITEM_LENGTH as u64) as usize;
    let (mut bytes, got) = io::read_vec(src, file_offset, len);
    bytes.truncate(got);
    let locator = crate::format::parent::parse(&bytes);
    Some(LocatorItem {
        file_offset,
        bytes,
        locator,
    })
}

/// Reads a known item's value bytes when its entry is sound enough to locate it: at least
/// the defined size, inside the region, inside the file. Anything else leaves it unknown.
pub fn item_value(src: &dyn ReadAt, m: &Metadata, item: &Item, size: usize) -> Option<Vec<u8>> {
    let e = &item.entry;
    if (e.length as usize) < size
        || e.offset < metadata::MIN_ITEM_OFFSET
        || e.end() > m.region.length as u64
    {
        return None;
    }
    let off = item.file_offset?;
    let (b, got) = io::read_vec(src, off, size);
    (got == size).then_some(b)
}

fn read_params(src: &dyn ReadAt, m: &Metadata) -> Params {
    let value = |k: KnownItem| {
        m.known(k)
            .and_then(|it| item_value(src, m, it, k.size() as usize))
    };
    let fp = value(KnownItem::FileParameters);
    Params {
        block_size: fp.as_ref().map(|b| u32_at(b, 0)),
        file_parameter_flags: fp.as_ref().map(|b| u32_at(b, 4)),
        virtual_disk_size: value(KnownItem::VirtualDiskSize).map(|b| u64_at(&b, 0)),
        virtual_disk_id: value(KnownItem::VirtualDiskId).map(|b| Guid::from_slice(&b)),
        logical_sector_size: value(KnownItem::LogicalSectorSize).map(|b| u32_at(&b, 0)),
        physical_sector_size: value(KnownItem::PhysicalSectorSize).map(|b| u32_at(&b, 0)),
    }
}

/// The file is at least this long to hold the header section.
pub const HEADER_SECTION: u64 = MIB;

#[cfg(test)]
mod tests {
    use super::SlotBytes;
    use crate::io::MemReader;

    #[test]
    fn a_slot_keeps_its_bytes_up_to_the_last_non_zero_one_and_reads_as_a_whole() {
        let mut file = vec![0u8; 300];
        file[10] = 1;
        file[40] = 2;
        let mut scratch = Vec::new();
        // 256 bytes from offset 8; the file ends 36 bytes short of the slot.
        let slot = SlotBytes::read(&MemReader(&file[..228]), 8, 256, &mut scratch);
        assert_eq!((slot.len, slot.present, slot.nonzero_end()), (256, 220, 33));
        assert_eq!(scratch.len(), 256);
        assert!(slot.truncated());
        assert_eq!(slot.get(0, 256).len(), 256);
        assert_eq!(&slot.get(0, 256)[..], &scratch[..]);
        assert_eq!(&slot.get(30, 40)[..], &[0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(slot.first_nonzero(0, 256), Some(2));
        assert_eq!(slot.first_nonzero(3, 256), Some(32));
        assert_eq!(slot.first_nonzero(33, 256), None);
        assert_eq!(slot.first_nonzero(3, 32), None);
        let other = SlotBytes::read(&MemReader(&file), 8, 256, &mut scratch);
        assert!(slot.same_bytes(&other));
        let shorter = SlotBytes::read(&MemReader(&file), 8, 255, &mut scratch);
        assert!(!slot.same_bytes(&shorter));
    }
}
