//! The allocated objects of CATALOGUE 2.10: what occupies which bytes of the file.

use super::Model;
use crate::format::MIB;
use crate::format::bat::{self, BatEntry};
use crate::format::guid;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    HeaderSection,
    /// Entry `index` of the working region table.
    Region {
        index: usize,
    },
    Log,
    /// Payload block in state 6/7, by BAT index.
    PayloadBlock {
        bat_index: u64,
    },
    /// Sector-bitmap block in state 6, by BAT index.
    SectorBitmapBlock {
        bat_index: u64,
    },
    /// Payload block in state 1/3 with an offset (retained old contents).
    RetainedBlock {
        bat_index: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    pub kind: ObjectKind,
    pub offset: u64,
    pub length: u64,
}

impl Object {
    /// End offset; saturates (an overflowing object is reported by its own rule).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.length)
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ObjectKind::HeaderSection => write!(f, "header section"),
            ObjectKind::Region { index } => write!(f, "region_table.entry[{index}]"),
            ObjectKind::Log => write!(f, "log"),
            ObjectKind::PayloadBlock { bat_index } => write!(f, "payload block bat[{bat_index}]"),
            ObjectKind::SectorBitmapBlock { bat_index } => {
                write!(f, "sector bitmap block bat[{bat_index}]")
            }
            ObjectKind::RetainedBlock { bat_index } => write!(f, "retained block bat[{bat_index}]"),
        }?;
        write!(f, " [{:#x}, {:#x})", self.offset, self.end())
    }
}

impl Model<'_> {
    /// Header section, every region of the working table, and the log (if any).
    pub fn fixed_objects(&self) -> Vec<Object> {
        let mut v = vec![Object {
            kind: ObjectKind::HeaderSection,
            offset: 0,
            length: MIB,
        }];
        for (index, r) in self.regions().iter().enumerate() {
            v.push(Object {
                kind: ObjectKind::Region { index },
                offset: r.file_offset,
                length: r.length as u64,
            });
        }
        if let Some(h) = self.current_header()
            && h.log_length > 0
        {
            v.push(Object {
                kind: ObjectKind::Log,
                offset: h.log_offset,
                length: h.log_length as u64,
            });
        }
        v
    }

    /// The object a BAT entry allocates, if any (CATALOGUE 2.10): payload blocks in state
    /// 6/7 and sector-bitmap blocks in state 6 wherever they point (even at offset 0, which
    /// then overlaps the header section), and state 1/3 blocks that keep an offset. Needs
    /// the geometry to tell payload from sector-bitmap entries.
    pub fn block_object(&self, index: u64, e: BatEntry) -> Option<Object> {
        let g = self.geometry?;
        self.block_object_at(index, g.is_sector_bitmap_index(index), e)
    }

    /// [`Model::block_object`] for a walk that already knows whether `index` is a
    /// sector-bitmap entry (a [`crate::format::bat::SlotCursor`]), without dividing.
    pub fn block_object_at(&self, index: u64, sector_bitmap: bool, e: BatEntry) -> Option<Object> {
        let g = self.geometry?;
        let offset = e.file_offset();
        let (kind, length) = if sector_bitmap {
            if e.state() != bat::SB_BLOCK_PRESENT {
                return None;
            }
            (
                ObjectKind::SectorBitmapBlock { bat_index: index },
                bat::SECTOR_BITMAP_BLOCK_SIZE,
            )
        } else {
            let kind = match e.state() {
                bat::PAYLOAD_BLOCK_FULLY_PRESENT | bat::PAYLOAD_BLOCK_PARTIALLY_PRESENT => {
                    ObjectKind::PayloadBlock { bat_index: index }
                }
                bat::PAYLOAD_BLOCK_UNDEFINED | bat::PAYLOAD_BLOCK_UNMAPPED if offset != 0 => {
                    ObjectKind::RetainedBlock { bat_index: index }
                }
                _ => return None,
            };
            (kind, g.block_size)
        };
        Some(Object {
            kind,
            offset,
            length,
        })
    }

    /// Name of a region entry's type for messages.
    pub fn region_name(g: &guid::Guid) -> &'static str {
        if *g == guid::REGION_BAT {
            "BAT"
        } else if *g == guid::REGION_METADATA {
            "Metadata"
        } else {
            "unknown"
        }
    }
}
