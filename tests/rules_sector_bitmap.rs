//! Per-rule tests of the SBM family (sector bitmap contents, CATALOGUE 2.6) on the
//! differencing baselines of `rules_parent`: each fires at the bitmap slice it is about.

use crate::builder::*;
use crate::rules_metadata::{fires, one, silent, with};
use crate::rules_parent::*;
use vhdx_check::Severity;

// ---- sector bitmaps (SBM-001..005) ----------------------------------------------------

/// File offset of chunk 0's sector bitmap in `img`.
fn bitmap(img: &Built) -> u64 {
    img.layout.bitmap_offset(0)
}

/// Keeps the FileOffsetMB of payload block `block`, replaces its state.
fn restate(img: &mut Built, block: u64, state: u64) {
    let i = img.layout.payload_entry_index(block);
    let e = img.bat_entry(i);
    img.set_bat_entry(i, (e & !7) | state);
}

#[test]
fn sbm_001_bits_beyond_disk_end() {
    let clean = clean();
    // 64 MiB = 131072 sectors: bit 131072 is byte 16384, bit 0 (block 64's slice, padding).
    let at = bitmap(&clean) + 131072 / 8;
    let img = with(&clean, |b| b.patch(at, &[0x01]));
    let r = fires(&clean, &img, "SBM-001", &[at]);
    assert_eq!(one(&r, "SBM-001").severity, Severity::Warning);
    assert_eq!(one(&r, "SBM-001").length, Some(MIB - 131072 / 8));
    // The very last bit of the bitmap block.
    let last = bitmap(&clean) + MIB - 1;
    let img = with(&clean, |b| b.patch(last, &[0x80]));
    fires(&clean, &img, "SBM-001", &[last]);
}

#[test]
fn sbm_001_boundary_inside_a_byte() {
    // 64 MiB + 512: 131073 sectors, so bit 0 of byte 16384 is a real sector and bit 1 is not.
    let shape = || {
        ImageBuilder::differencing(64 * MIB + 512)
            .block_size(BS)
            .write_sectors(0, &[0x5A; 512])
    };
    let clean = shape().write_sectors(64 * MIB, &[1; 512]).build();
    let at = bitmap(&clean) + 16384;
    assert_eq!(clean.read(at, 1), vec![0x01]);
    silent(&clean, "SBM-001");
    let img = with(&clean, |b| b.patch(at, &[0x03]));
    fires(&clean, &img, "SBM-001", &[at]);
}

#[test]
fn sbm_001_only_the_last_bitmap_block() {
    // Two chunks (C = 4096 blocks of 1 MiB = 4 GiB each); the disk ends 8 MiB into chunk 1.
    let clean = ImageBuilder::differencing(4096 * MIB + 8 * MIB)
        .block_size(BS)
        .write_sectors(0, &[1; 512])
        .write_sectors(4096 * MIB, &[2; 512])
        .build();
    silent(&clean, "SBM-001");
    // Chunk 0 is full: setting its last bit describes a real sector.
    let img = with(&clean, |b| b.patch(bitmap(&clean) + MIB - 1, &[0x80]));
    silent(&img, "SBM-001");
    // Chunk 1 covers 8 MiB = 16384 sectors = 2048 bitmap bytes.
    let at = clean.layout.bitmap_offset(1) + 2048;
    let img = with(&clean, |b| b.patch(at, &[0x10]));
    fires(&clean, &img, "SBM-001", &[at]);
}

#[test]
fn sbm_002_partial_block_fully_mapped() {
    let clean = clean();
    // Block 3 written sector by sector, all of it: PARTIALLY_PRESENT with a full slice.
    let img = child()
        .write_sectors(3 * MIB, &vec![7; MIB as usize])
        .build();
    let r = fires(&clean, &img, "SBM-002", &[bitmap(&img) + 3 * SLICE]);
    assert_eq!(one(&r, "SBM-002").length, Some(SLICE));
    assert_eq!(one(&r, "SBM-002").severity, Severity::Info);
}

#[test]
fn sbm_003_partial_block_no_sector_mapped() {
    let clean = clean();
    let img = with(&clean, |b| b.patch(bitmap(&clean), &[0]));
    let r = fires(&clean, &img, "SBM-003", &[bitmap(&clean)]);
    // The block's own bytes in this file are named: no reader shows them.
    let m = &one(&r, "SBM-003").message;
    let data = format!(
        "its data at {:#x} in this file is not part of the disk",
        clean.layout.block_offset(0)
    );
    assert!(m.contains(&data), "{m}");
}

#[test]
fn sbm_004_full_block_with_clear_bits() {
    let clean = clean();
    let img = with(&clean, |b| restate(b, 0, bat::FULLY_PRESENT));
    let r = fires(&clean, &img, "SBM-004", &[bitmap(&clean)]);
    // Some bits set (the first sector's), the rest clear: counted, not called stale.
    let m = &one(&r, "SBM-004").message;
    assert!(
        m.contains("2047 of 2048 bits are clear") && !m.contains("stale"),
        "{m}"
    );
    // A writer that writes the whole block need not set its bits: none set is not stale.
    let never = with(&img, |b| b.patch(bitmap(&clean), &[0]));
    let r = fires(&clean, &never, "SBM-004", &[bitmap(&clean)]);
    let m = &one(&r, "SBM-004").message;
    assert!(m.contains("no bit is set") && !m.contains("stale"), "{m}");
    // A full block whose slice is all ones is consistent.
    let img = with(&img, |b| b.patch(bitmap(&clean), &[0xFF; SLICE as usize]));
    silent(&img, "SBM-004");
}

#[test]
fn sbm_005_absent_block_with_set_bits() {
    let clean = clean();
    for state in [bat::NOT_PRESENT, bat::UNDEFINED, bat::ZERO, bat::UNMAPPED] {
        let img = with(&clean, |b| {
            b.set_payload_entry(5, bat::entry(state, 0));
            b.patch(bitmap(&clean) + 5 * SLICE + 17, &[0x40]);
        });
        fires(&clean, &img, "SBM-005", &[bitmap(&clean) + 5 * SLICE]);
    }
}

#[test]
fn sbm_slices_at_4096_byte_sectors() {
    // LSS 4096, BS 1 MiB: C = 32768 and a block's slice is 32 bytes.
    let shape = || {
        ImageBuilder::differencing(64 * MIB)
            .block_size(BS)
            .logical_sector(4096)
    };
    let clean = shape().write_sectors(2 * MIB, &[1; 4096]).build();
    silent(&clean, "SBM-005");
    silent(&clean, "SBM-001");
    let base = bitmap(&clean);
    assert_eq!(clean.read(base + 2 * 32, 1), vec![1]);
    // Bit for block 5's first sector.
    let img = with(&clean, |b| b.patch(base + 5 * 32, &[1]));
    fires(&clean, &img, "SBM-005", &[base + 5 * 32]);
    // 64 MiB = 16384 sectors: bit 16384 is byte 2048.
    let img = with(&clean, |b| b.patch(base + 2048, &[1]));
    fires(&clean, &img, "SBM-001", &[base + 2048]);
    let full = shape()
        .write_sectors(7 * MIB, &vec![1; MIB as usize])
        .build();
    fires(&clean, &full, "SBM-002", &[bitmap(&full) + 7 * 32]);
}

#[test]
fn sbm_slices_at_32_mib_blocks() {
    // BS 32 MiB, LSS 512: C = 128 and a block's slice is 8192 bytes.
    let bs = 32 * MIB;
    let slice = bs / (8 * 512);
    let shape = || ImageBuilder::differencing(256 * MIB).block_size(bs as u32);
    let clean = shape().write_sectors(bs + 512, &[1; 512]).build();
    let base = bitmap(&clean);
    // Sector 1 of block 1.
    assert_eq!(clean.read(base + slice, 1), vec![0x02]);
    let img = with(&clean, |b| b.patch(base + 3 * slice + slice - 1, &[0x80]));
    fires(&clean, &img, "SBM-005", &[base + 3 * slice]);
    let img = with(&clean, |b| b.patch(base + slice, &[0]));
    fires(&clean, &img, "SBM-003", &[base + slice]);
    // 256 MiB = 2^19 sectors: the first bit beyond the disk is byte 2^16.
    let img = with(&clean, |b| b.patch(base + (1 << 16), &[1]));
    fires(&clean, &img, "SBM-001", &[base + (1 << 16)]);
}
