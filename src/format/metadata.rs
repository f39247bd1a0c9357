//! Metadata region (MS-VHDX 2.6): a 64 KiB table (32-byte header + 32-byte entries) and
//! the items it points to; the known system items (2.6.2).

use super::guid::{self, Guid};
use super::{u16_at, u32_at};
use serde::Serialize;

pub const TABLE_SIZE: usize = 64 * 1024;
pub const SIGNATURE: &[u8; 8] = b"metadata";
pub const HEADER_SIZE: usize = 32;
pub const ENTRY_SIZE: usize = 32;
pub const MAX_ENTRIES: usize = 2047;
pub const MAX_USER_ENTRIES: usize = 1024;
pub const MAX_ITEM_LENGTH: u32 = 1024 * 1024;
/// Items must start at or after the table.
pub const MIN_ITEM_OFFSET: u32 = 64 * 1024;

pub const FLAG_IS_USER: u32 = 1;
pub const FLAG_IS_VIRTUAL_DISK: u32 = 2;
pub const FLAG_IS_REQUIRED: u32 = 4;
pub const FLAGS_RESERVED: u32 = !7;

#[derive(Debug, Clone, Serialize)]
pub struct MetadataTable {
    #[serde(serialize_with = "crate::format::display::ser_bytes")]
    pub signature: [u8; 8],
    pub reserved: u16,
    pub entry_count: u16,
    pub reserved2_nonzero: bool,
    /// At most [`MAX_ENTRIES`] entries.
    pub entries: Vec<MetadataEntry>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct MetadataEntry {
    pub item_id: Guid,
    pub offset: u32,
    pub length: u32,
    pub flags: u32,
    pub reserved2: u32,
}

impl MetadataEntry {
    pub fn is_user(&self) -> bool {
        self.flags & FLAG_IS_USER != 0
    }
    pub fn is_virtual_disk(&self) -> bool {
        self.flags & FLAG_IS_VIRTUAL_DISK != 0
    }
    pub fn is_required(&self) -> bool {
        self.flags & FLAG_IS_REQUIRED != 0
    }
    /// End of the item relative to the region start (u64: no overflow).
    pub fn end(&self) -> u64 {
        self.offset as u64 + self.length as u64
    }
}

pub fn entry_offset(i: usize) -> usize {
    HEADER_SIZE + ENTRY_SIZE * i
}

pub fn parse_table(b: &[u8]) -> MetadataTable {
    let entry_count = u16_at(b, 10);
    let n = (entry_count as usize).min(MAX_ENTRIES);
    let entries = (0..n)
        .map(|i| {
            let e = &b[entry_offset(i)..entry_offset(i) + ENTRY_SIZE];
            MetadataEntry {
                item_id: Guid::from_slice(&e[..16]),
                offset: u32_at(e, 16),
                length: u32_at(e, 20),
                flags: u32_at(e, 24),
                reserved2: u32_at(e, 28),
            }
        })
        .collect();
    let mut signature = [0u8; 8];
    signature.copy_from_slice(&b[..8]);
    MetadataTable {
        signature,
        reserved: u16_at(b, 8),
        entry_count,
        reserved2_nonzero: b[12..32].iter().any(|&x| x != 0),
        entries,
    }
}

/// A system item the specification defines (2.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KnownItem {
    FileParameters,
    VirtualDiskSize,
    VirtualDiskId,
    LogicalSectorSize,
    PhysicalSectorSize,
    ParentLocator,
}

/// What an item MS-VHDX does not define is, where another implementation names it.
pub fn vendor_item_name(g: &Guid) -> Option<&'static str> {
    if *g == guid::ITEM_OPENVMM_INCOMPLETE_FILE {
        Some(
            "openvmm's \"incomplete file\" item (present while the file is being created, deleted when creation completes; openvmm refuses to open the file)",
        )
    } else if *g == guid::ITEM_OPENVMM_PMEM_LABELS {
        Some("openvmm's PMEM label storage area item")
    } else {
        None
    }
}

impl KnownItem {
    pub const ALL: [KnownItem; 6] = [
        KnownItem::FileParameters,
        KnownItem::VirtualDiskSize,
        KnownItem::VirtualDiskId,
        KnownItem::LogicalSectorSize,
        KnownItem::PhysicalSectorSize,
        KnownItem::ParentLocator,
    ];

    pub fn from_guid(g: &Guid) -> Option<KnownItem> {
        KnownItem::ALL.into_iter().find(|k| k.guid() == *g)
    }

    pub fn guid(self) -> Guid {
        match self {
            KnownItem::FileParameters => guid::ITEM_FILE_PARAMETERS,
            KnownItem::VirtualDiskSize => guid::ITEM_VIRTUAL_DISK_SIZE,
            KnownItem::VirtualDiskId => guid::ITEM_VIRTUAL_DISK_ID,
            KnownItem::LogicalSectorSize => guid::ITEM_LOGICAL_SECTOR_SIZE,
            KnownItem::PhysicalSectorSize => guid::ITEM_PHYSICAL_SECTOR_SIZE,
            KnownItem::ParentLocator => guid::ITEM_PARENT_LOCATOR,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KnownItem::FileParameters => "File Parameters",
            KnownItem::VirtualDiskSize => "Virtual Disk Size",
            KnownItem::VirtualDiskId => "Virtual Disk ID",
            KnownItem::LogicalSectorSize => "Logical Sector Size",
            KnownItem::PhysicalSectorSize => "Physical Sector Size",
            KnownItem::ParentLocator => "Parent Locator",
        }
    }

    /// The defined size; for the parent locator, the minimum (its header).
    pub fn size(self) -> u32 {
        match self {
            KnownItem::FileParameters | KnownItem::VirtualDiskSize => 8,
            KnownItem::VirtualDiskId => 16,
            KnownItem::LogicalSectorSize | KnownItem::PhysicalSectorSize => 4,
            KnownItem::ParentLocator => 20,
        }
    }

    pub fn fixed_size(self) -> bool {
        self != KnownItem::ParentLocator
    }

    /// (IsVirtualDisk, IsRequired) per the known-items table (CATALOGUE 1.4.12).
    pub fn expected_flags(self) -> (bool, bool) {
        match self {
            KnownItem::FileParameters | KnownItem::ParentLocator => (false, true),
            _ => (true, true),
        }
    }

    /// The five items every image must have (the parent locator only with HasParent).
    pub fn always_required(self) -> bool {
        self != KnownItem::ParentLocator
    }
}

pub const FP_LEAVE_BLOCK_ALLOCATED: u32 = 1;
pub const FP_HAS_PARENT: u32 = 2;
pub const FP_RESERVED: u32 = !3;
