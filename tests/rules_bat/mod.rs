//! Per-rule tests for the BAT family (CATALOGUE 2.5, plus the project's BAT-023). Each
//! test damages BAT entries of a clean image, checks that the clean image does not fire
//! the rule and that the damaged one fires it at the right file offset: the 8-byte BAT
//! entry, the block it points at, or the BAT region. Also: severity downgrades, several
//! faults at once, the per-rule cap.

mod allocation;
mod entries;
mod together;

use crate::builder::*;
use crate::rules_metadata::{all_at, fires, listing, of, one, report, silent, with};
use vhdx_check::{CheckOptions, Severity, check};

/// 1 MiB blocks: with 512-byte sectors the chunk ratio C is 4096.
const BS: u32 = MIB as u32;
/// Index of the first sector-bitmap entry (C).
const SB0: u64 = 4096;

/// A dynamic disk of `mib` MiB with 1 MiB blocks; blocks in `written` hold data.
fn dynamic(mib: u64, written: &[u64]) -> Built {
    written
        .iter()
        .fold(ImageBuilder::dynamic(mib * MIB).block_size(BS), |b, &k| {
            b.write_block(k, &[0xA5; 512])
        })
        .build()
}

/// A dynamic disk with a sector-bitmap entry inside T: P = 4097 > C, T = 4098, the entry
/// at index 4096 is chunk 0's bitmap entry.
fn dynamic_two_chunks() -> Built {
    let img = dynamic(4097, &[]);
    assert_eq!(img.layout.bat_entries, 4098);
    img
}

/// An 8 MiB fixed disk with 1 MiB blocks.
fn fixed() -> Built {
    ImageBuilder::fixed(8 * MIB).block_size(BS).build()
}

/// A 64 MiB differencing disk with 1 MiB blocks (P = 64, T = 4097): block 0 is
/// PARTIALLY_PRESENT, so chunk 0 has a sector bitmap (entry 4096, SB_BLOCK_PRESENT).
fn differencing() -> Built {
    ImageBuilder::differencing(64 * MIB)
        .block_size(BS)
        .write_sectors(0, &[0x5A; 512])
        .build()
}

/// File offset of BAT entry `index`.
fn entry_at(img: &Built, index: u64) -> u64 {
    img.layout.bat_entry_offset(index)
}

/// File offset of the BAT entry of payload block `block`.
fn payload_at(img: &Built, block: u64) -> u64 {
    entry_at(img, img.layout.payload_entry_index(block))
}

/// FileOffsetMB of payload block `block` as the builder placed it.
fn mb_of(img: &Built, block: u64) -> u64 {
    img.layout.block_offset(block) / MIB
}

/// Appends a zero MiB to the file and returns its FileOffsetMB (free space to point at).
fn spare_mb(img: &mut Built) -> u64 {
    let mb = img.len.div_ceil(MIB);
    img.len = (mb + 1) * MIB;
    mb
}

/// Keeps the FileOffsetMB of payload block `block`, replaces its state.
fn restate(img: &mut Built, block: u64, state: u64) {
    let i = img.layout.payload_entry_index(block);
    let e = img.bat_entry(i);
    img.set_bat_entry(i, (e & !7) | state);
}

/// Sets the BAT region Length in both region tables.
fn set_bat_length(img: &mut Built, len: u64) {
    let field = rgn::entry(rgn::BAT_ENTRY) + rgn::E_LENGTH;
    img.edit_region_tables(|t| put_u32(t, field, len as u32));
}

/// The severity of the one BAT-014 finding of `img`, which must be at block offset `at`;
/// `clean` must not fire BAT-014.
fn bat_014(clean: &Built, img: &Built, at: u64) -> Severity {
    silent(clean, "BAT-014");
    let r = report(img);
    let f = one(&r, "BAT-014");
    assert_eq!(f.offset, Some(at), "{}", listing(&r));
    f.severity
}
