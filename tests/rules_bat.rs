//! Per-rule tests for the BAT family (CATALOGUE 2.5, plus the project's BAT-023). Each
//! test damages BAT entries of a clean image, checks that the clean image does not fire
//! the rule and that the damaged one fires it at the right file offset: the 8-byte BAT
//! entry, the block it points at, or the BAT region. Also: severity downgrades, several
//! faults at once, the per-rule cap.

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

// ---- region and entry encoding (BAT-001..003) -----------------------------------------

#[test]
fn bat_001_region_shorter_than_table() {
    // P = 200000 → T = 200000 + 48 entries (1.53 MiB); the region is cut to 1 MiB.
    let clean = dynamic(200_000, &[]);
    assert_eq!(clean.layout.bat_length, 2 * MIB);
    let img = with(&clean, |b| set_bat_length(b, MIB));
    let r = fires(&clean, &img, "BAT-001", &[clean.layout.bat_offset]);
    // 131072 entries held: 31 whole chunks of 4096 blocks + 1 bitmap entry each, then
    // 4065 payload entries; blocks from 31 · 4096 + 4065 = 131041 on have none.
    let msg = &one(&r, "BAT-001").message;
    let from = format!("virtual bytes from {:#x} have no entry", 131_041 * MIB);
    assert!(msg.contains(&from), "{msg}");
}

#[test]
fn bat_002_reserved_bits() {
    let clean = dynamic(64, &[0]);
    let img = with(&clean, |b| {
        let e = b.bat_entry(0);
        b.set_payload_entry(0, e | 1 << 3);
        b.set_payload_entry(5, 1 << 19);
    });
    fires(
        &clean,
        &img,
        "BAT-002",
        &[payload_at(&clean, 0), payload_at(&clean, 5)],
    );
}

#[test]
fn bat_003_reserved_payload_states() {
    let clean = dynamic(64, &[]);
    let img = with(&clean, |b| {
        b.set_payload_entry(1, 4);
        b.set_payload_entry(2, 5);
    });
    let r = fires(
        &clean,
        &img,
        "BAT-003",
        &[payload_at(&clean, 1), payload_at(&clean, 2)],
    );
    // State 5 was UNMAPPED in the v0.95 draft: annotated (CATALOGUE A12).
    let five = of(&r, "BAT-003")
        .into_iter()
        .find(|f| f.offset == Some(payload_at(&clean, 2)))
        .unwrap();
    assert!(five.message.contains("pre-1.0"), "{}", five.message);
    // Block 2 is virtual bytes [2 MiB, 3 MiB); what QEMU does differs by state.
    assert!(
        five.message.contains(
            "readers disagree on virtual bytes [0x200000, 0x300000); QEMU reads them as zeros"
        ),
        "{}",
        five.message
    );
    let four = of(&r, "BAT-003")
        .into_iter()
        .find(|f| f.offset == Some(payload_at(&clean, 1)))
        .unwrap();
    assert!(
        four.message.contains("QEMU fails to read them"),
        "{}",
        four.message
    );
}

// ---- states by disk type (BAT-004..007, 015) ------------------------------------------

#[test]
fn bat_004_partially_present_outside_differencing() {
    for clean in [dynamic(64, &[0]), fixed()] {
        let img = with(&clean, |b| restate(b, 0, bat::PARTIALLY_PRESENT));
        fires(&clean, &img, "BAT-004", &[payload_at(&clean, 0)]);
    }
    // The differencing baseline holds a PARTIALLY_PRESENT block: legal there.
    silent(&differencing(), "BAT-004");
}

#[test]
fn bat_005_reserved_bitmap_states() {
    let clean = dynamic_two_chunks();
    let img = with(&clean, |b| b.set_bitmap_entry(0, 1));
    fires(&clean, &img, "BAT-005", &[entry_at(&clean, SB0)]);
    // Differencing: state 7 on a bitmap entry is reserved too.
    let clean = differencing();
    let img = with(&clean, |b| {
        let e = b.bat_entry(SB0);
        b.set_bitmap_entry(0, (e & !7) | 7);
    });
    fires(&clean, &img, "BAT-005", &[entry_at(&clean, SB0)]);
}

#[test]
fn bat_006_bitmap_present_outside_differencing() {
    let clean = dynamic_two_chunks();
    let img = with(&clean, |b| {
        let mb = spare_mb(b);
        b.set_bitmap_entry(0, bat::entry(bat::SB_PRESENT, mb));
    });
    let r = fires(&clean, &img, "BAT-006", &[entry_at(&clean, SB0)]);
    assert!(!r.has("BAT-014") && !r.has("BAT-005"), "{}", listing(&r));
    // The differencing baseline has a present sector bitmap: legal there.
    silent(&differencing(), "BAT-006");
}

#[test]
fn bat_007_partial_blocks_without_bitmap() {
    // Two PARTIALLY_PRESENT blocks in chunk 0: one finding for the chunk, at its SB entry.
    let clean = ImageBuilder::differencing(64 * MIB)
        .block_size(BS)
        .write_sectors(0, &[1; 512])
        .write_sectors(5 * MIB, &[2; 1024])
        .build();
    let img = with(&clean, |b| {
        b.set_bitmap_entry(0, bat::entry(bat::SB_NOT_PRESENT, 0))
    });
    fires(&clean, &img, "BAT-007", &[entry_at(&clean, SB0)]);
}

#[test]
fn bat_015_fixed_block_not_fully_present() {
    let clean = fixed();
    let img = with(&clean, |b| {
        b.set_payload_entry(2, bat::entry(bat::ZERO, 0));
        b.set_payload_entry(3, bat::entry(bat::NOT_PRESENT, 0));
    });
    // One finding per image, over the entries from the first such block to the last.
    let r = fires(&clean, &img, "BAT-015", &[payload_at(&clean, 2)]);
    let f = one(&r, "BAT-015");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.length,
        Some(payload_at(&clean, 3) + 8 - payload_at(&clean, 2))
    );
    assert!(
        f.message.starts_with("2 of the ")
            && f.message
                .contains("PAYLOAD_BLOCK_NOT_PRESENT 1, PAYLOAD_BLOCK_ZERO 1")
            && f.message.contains("blocks 2-3;")
            && !f.message.contains("writers keep"),
        "{}",
        listing(&r)
    );
}

/// openvmm's create(is_fully_allocated) sets LeaveBlockAllocated but leaves every payload
/// entry NOT_PRESENT, allocating blocks only when written: one BAT-015 for the image, with
/// the count and the block runs (the list capped), not one per block.
#[test]
fn bat_015_openvmm_fixed_disk_is_one_finding() {
    let built = ImageBuilder::fixed(256 * MIB)
        .block_size(2 * MIB as u32)
        .build();
    let img = with(&built, |img| {
        for blk in 0..128u64 {
            if blk != 0 && blk != 50 && blk % 7 != 3 {
                img.set_payload_entry(blk, bat::entry(bat::NOT_PRESENT, 0));
            }
        }
    });
    let r = report(&img);
    let f = one(&r, "BAT-015");
    let not_full = (0..128u64)
        .filter(|&blk| blk != 0 && blk != 50 && blk % 7 != 3)
        .count();
    assert!(
        f.message
            .starts_with(&format!("{not_full} of the 128 blocks")),
        "{}",
        listing(&r)
    );
    assert!(
        f.message.contains("blocks 1-2, 4-9, 11-16,") && f.message.contains("more run(s)"),
        "{}",
        listing(&r)
    );
    assert!(r.worst() <= Some(Severity::Warning), "{}", listing(&r));
}

// ---- FileOffsetMB versus state (BAT-008..012) -----------------------------------------

#[test]
fn bat_008_present_block_at_offset_zero() {
    let clean = dynamic(64, &[0]);
    let img = with(&clean, |b| {
        b.set_payload_entry(0, bat::entry(bat::FULLY_PRESENT, 0))
    });
    fires(&clean, &img, "BAT-008", &[payload_at(&clean, 0)]);
    let clean = differencing();
    let img = with(&clean, |b| {
        b.set_payload_entry(0, bat::entry(bat::PARTIALLY_PRESENT, 0))
    });
    fires(&clean, &img, "BAT-008", &[payload_at(&clean, 0)]);
}

#[test]
fn bat_009_bitmap_present_at_offset_zero() {
    let clean = differencing();
    let img = with(&clean, |b| {
        b.set_bitmap_entry(0, bat::entry(bat::SB_PRESENT, 0))
    });
    fires(&clean, &img, "BAT-009", &[entry_at(&clean, SB0)]);
}

#[test]
fn bat_010_offset_on_not_present_and_zero_blocks() {
    let clean = dynamic(64, &[]);
    let img = with(&clean, |b| {
        b.set_payload_entry(3, bat::entry(bat::NOT_PRESENT, 40));
        b.set_payload_entry(5, bat::entry(bat::ZERO, 41));
    });
    let r = fires(
        &clean,
        &img,
        "BAT-010",
        &[payload_at(&clean, 3), payload_at(&clean, 5)],
    );
    assert!(
        of(&r, "BAT-010")
            .iter()
            .all(|f| f.severity == Severity::Warning)
    );
    // Both offsets lie past the end of this small file: nothing to examine there.
    for f in of(&r, "BAT-010") {
        let zero = f.offset == Some(payload_at(&clean, 5));
        assert_eq!(f.message.contains("Hyper-V"), zero, "{}", f.message);
        assert!(
            f.message.contains("points past the end of the file"),
            "{}",
            f.message
        );
    }
    // Inside the file: the bytes to examine.
    let mut img = clean.clone();
    let mb = spare_mb(&mut img);
    img.set_payload_entry(3, bat::entry(bat::NOT_PRESENT, mb));
    let r = report(&img);
    let m = &one(&r, "BAT-010").message;
    assert!(
        m.contains(&format!(
            "readers ignore it; examine the bytes at {:#x}",
            mb * MIB
        )),
        "{m}"
    );
}

#[test]
fn bat_011_offset_on_absent_bitmap() {
    let clean = dynamic_two_chunks();
    let img = with(&clean, |b| {
        b.set_bitmap_entry(0, bat::entry(bat::SB_NOT_PRESENT, 9))
    });
    fires(&clean, &img, "BAT-011", &[entry_at(&clean, SB0)]);
}

#[test]
fn bat_012_retained_contents_point_at_the_block() {
    let clean = dynamic(64, &[]);
    let (mut img, mut mbs) = (clean.clone(), [0; 2]);
    mbs[0] = spare_mb(&mut img);
    mbs[1] = spare_mb(&mut img);
    img.set_payload_entry(3, bat::entry(bat::UNDEFINED, mbs[0]));
    img.set_payload_entry(5, bat::entry(bat::UNMAPPED, mbs[1]));
    let r = fires(&clean, &img, "BAT-012", &[mbs[0] * MIB, mbs[1] * MIB]);
    assert!(
        of(&r, "BAT-012")
            .iter()
            .all(|f| f.severity == Severity::Info)
    );
    assert!(!r.has("BAT-014"), "inside the file:{}", listing(&r));
}

// ---- allocation (BAT-013, BAT-014) ----------------------------------------------------

#[test]
fn bat_013_duplicate_file_offset() {
    let clean = dynamic(64, &[0, 1]);
    let img = with(&clean, |b| {
        let mb = mb_of(b, 0);
        b.set_payload_entry(1, bat::entry(bat::FULLY_PRESENT, mb));
    });
    fires(&clean, &img, "BAT-013", &[payload_at(&clean, 1)]);
}

#[test]
fn bat_013_duplicate_in_any_state() {
    // A ZERO entry and a sector-bitmap entry reusing block 0's offset also count.
    let clean = differencing();
    let img = with(&clean, |b| {
        let mb = mb_of(b, 0);
        b.set_payload_entry(7, bat::entry(bat::ZERO, mb));
        b.set_bitmap_entry(0, bat::entry(bat::SB_PRESENT, mb));
    });
    let r = fires(
        &clean,
        &img,
        "BAT-013",
        &[payload_at(&clean, 7), entry_at(&clean, SB0)],
    );
    assert!(r.has("BAT-010"));
}

#[test]
fn bat_014_block_past_eof_is_an_error() {
    let clean = dynamic(64, &[]);
    let img = with(&clean, |b| {
        b.set_payload_entry(3, bat::entry(bat::FULLY_PRESENT, 999))
    });
    assert_eq!(bat_014(&clean, &img, 999 * MIB), Severity::Error);
    // A truncated block that is not the last one of the disk.
    let clean = dynamic(64, &[10]);
    let img = with(&clean, |b| b.len -= 4096);
    assert_eq!(
        bat_014(&clean, &img, clean.layout.block_offset(10)),
        Severity::Error
    );
    // Only the block's last 4 KiB are missing: those are the virtual bytes named.
    let msg = one(&report(&img), "BAT-014").message.clone();
    let lost = format!(
        "reads of virtual bytes [{:#x}, {:#x}) fail or return zeros",
        11 * MIB - 4096,
        11 * MIB
    );
    assert!(msg.contains(&lost), "{msg}");
}

#[test]
fn bat_014_offset_overflow_is_an_error() {
    let top = (1u64 << 44) - 1;
    let clean = dynamic(64, &[]);
    let img = with(&clean, |b| {
        b.set_payload_entry(3, bat::entry(bat::FULLY_PRESENT, top))
    });
    assert_eq!(bat_014(&clean, &img, top * MIB), Severity::Error);
}

#[test]
fn bat_014_bitmap_block_past_eof_is_an_error() {
    let clean = differencing();
    let img = with(&clean, |b| {
        b.set_bitmap_entry(0, bat::entry(bat::SB_PRESENT, 999))
    });
    assert_eq!(bat_014(&clean, &img, 999 * MIB), Severity::Error);
    let msg = one(&report(&img), "BAT-014").message.clone();
    assert!(
        msg.contains("the chunk's sector bitmap is missing"),
        "{msg}"
    );
}

#[test]
fn bat_014_retained_block_past_eof_is_a_warning() {
    let clean = dynamic(64, &[]);
    for state in [bat::UNDEFINED, bat::UNMAPPED] {
        let img = with(&clean, |b| b.set_payload_entry(3, bat::entry(state, 999)));
        assert_eq!(
            bat_014(&clean, &img, 999 * MIB),
            Severity::Warning,
            "state {state}"
        );
        let msg = one(&report(&img), "BAT-014").message.clone();
        assert!(msg.contains("only retained old contents are lost"), "{msg}");
    }
}

#[test]
fn bat_014_last_block_missing_only_bytes_beyond_the_disk_is_a_warning() {
    // VDS = 64.5 MiB: block 64 (the last, P − 1) holds 512 KiB of the disk.
    let clean = ImageBuilder::dynamic(64 * MIB + 512 * KIB)
        .block_size(BS)
        .write_block(64, &[7; 4096])
        .build();
    let at = clean.layout.block_offset(64);
    assert_eq!(clean.len, at + MIB, "block 64 ends the file");
    let beyond_vds = with(&clean, |b| b.len = at + 512 * KIB);
    assert_eq!(bat_014(&clean, &beyond_vds, at), Severity::Warning);
    let msg = one(&report(&beyond_vds), "BAT-014").message.clone();
    assert!(msg.contains("so every virtual byte can be read"), "{msg}");
    let inside_vds = with(&clean, |b| b.len = at + 512 * KIB - 4096);
    assert_eq!(bat_014(&clean, &inside_vds, at), Severity::Error);
    // Only FULLY_PRESENT is downgraded: the same block PARTIALLY_PRESENT is an error.
    let partial = with(&beyond_vds, |b| restate(b, 64, bat::PARTIALLY_PRESENT));
    assert_eq!(bat_014(&clean, &partial, at), Severity::Error);
    // Only the last block: block 63 cut the same way is an error.
    let clean = dynamic(64, &[63]);
    let at = clean.layout.block_offset(63);
    let cut = with(&clean, |b| b.len = at + 512 * KIB);
    assert_eq!(bat_014(&clean, &cut, at), Severity::Error);
}

// ---- outside the disk (BAT-016, BAT-017, BAT-022) -------------------------------------

#[test]
fn bat_016_slack_entries_beyond_t() {
    let clean = dynamic(64, &[]);
    let img = with(&clean, |b| {
        b.set_bat_entry(64, bat::entry(bat::FULLY_PRESENT, 50))
    });
    let r = fires(&clean, &img, "BAT-016", &[entry_at(&clean, 64)]);
    assert!(!r.has("BAT-014"), "slack is not allocated:{}", listing(&r));
}

#[test]
fn bat_016_unused_trailing_bitmap_slot() {
    // P = C = 4096 → T = 4096: the chunk's bitmap slot (index 4096) is slack.
    let clean = dynamic(4096, &[]);
    assert_eq!(clean.layout.bat_entries, 4096);
    let img = with(&clean, |b| {
        b.set_bat_entry(SB0, bat::entry(bat::SB_PRESENT, 7))
    });
    let r = fires(&clean, &img, "BAT-016", &[entry_at(&clean, SB0)]);
    assert!(!r.has("BAT-006"), "{}", listing(&r));
}

#[test]
fn bat_017_differencing_padding_entries() {
    // Payload entries for blocks 64..4095 pad the last chunk.
    let clean = differencing();
    let img = with(&clean, |b| {
        let mb = spare_mb(b);
        b.set_bat_entry(100, bat::entry(bat::FULLY_PRESENT, mb));
        b.set_bat_entry(4095, bat::entry(bat::ZERO, 0));
    });
    let r = fires(
        &clean,
        &img,
        "BAT-017",
        &[entry_at(&clean, 100), entry_at(&clean, 4095)],
    );
    assert!(!r.has("BAT-016"), "{}", listing(&r));
}

#[test]
fn bat_022_oversized_region() {
    let clean = dynamic(64, &[]);
    let img = with(&clean, |b| {
        set_bat_length(b, 2 * MIB);
        b.len = b.layout.bat_offset + 2 * MIB;
    });
    // The spare area starts after the 8·T bytes the entries need.
    fires(&clean, &img, "BAT-022", &[clean.layout.bat_offset + 8 * 64]);
    // 1.53 MiB of entries in a 2 MiB region is just rounding.
    silent(&dynamic(200_000, &[]), "BAT-022");
}

#[test]
fn bat_022_region_offset_near_u64_max() {
    // FileOffset + 8·T overflows: reported without an offset instead of panicking.
    let img = with(&dynamic(64, &[]), |b| {
        let e = rgn::entry(rgn::BAT_ENTRY);
        b.edit_region_tables(|t| {
            put_u64(t, e + rgn::E_FILE_OFFSET, u64::MAX - 0xFF);
            put_u32(t, e + rgn::E_LENGTH, 2 * BS);
        });
    });
    let r = report(&img);
    assert_eq!(one(&r, "BAT-022").offset, None);
}

// ---- differencing chunks (BAT-018) ----------------------------------------------------

#[test]
fn bat_018_bitmap_without_partial_blocks() {
    let clean = differencing();
    let img = with(&clean, |b| restate(b, 0, bat::FULLY_PRESENT));
    let r = fires(&clean, &img, "BAT-018", &[entry_at(&clean, SB0)]);
    assert_eq!(one(&r, "BAT-018").severity, Severity::Info);
}

// ---- summaries and contents (BAT-019..021) --------------------------------------------

#[test]
fn bat_019_statistics() {
    let img = dynamic(64, &[0, 1]);
    let r = report(&img);
    let f = one(&r, "BAT-019");
    assert_eq!(f.offset, Some(img.layout.bat_offset));
    for part in [
        "NOT_PRESENT 62",
        "FULLY_PRESENT 2",
        "2097152 bytes allocated",
    ] {
        assert!(f.message.contains(part), "{part}: {}", f.message);
    }
}

#[test]
fn bat_019_differencing_statistics_count_blocks_not_padding() {
    // 64 blocks in a 4096-block chunk: the 4032 padding entries are not blocks.
    let r = report(&differencing());
    let f = one(&r, "BAT-019");
    for part in [
        "NOT_PRESENT 63 ",
        "PARTIALLY_PRESENT 1 ",
        "PRESENT 1;",
        "2097152 bytes",
    ] {
        assert!(f.message.contains(part), "{part}: {}", f.message);
    }
}

#[test]
fn bat_020_zero_filled_present_block() {
    let clean = dynamic(64, &[3]);
    let img = ImageBuilder::dynamic(64 * MIB)
        .block_size(BS)
        .allocate_block(3)
        .build();
    fires(&clean, &img, "BAT-020", &[img.layout.block_offset(3)]);
}

#[test]
fn bat_021_dynamic_disk_fully_allocated() {
    let clean = dynamic(4, &[0, 1, 2]);
    let img = dynamic(4, &[0, 1, 2, 3]);
    fires(&clean, &img, "BAT-021", &[img.layout.bat_offset]);
    silent(
        &ImageBuilder::fixed(4 * MIB).block_size(BS).build(),
        "BAT-021",
    );
}

// ---- BAT not evaluated (BAT-023) ------------------------------------------------------

/// Asserts BAT-023 is the only BAT finding (at `at`) and returns the report.
fn bat_not_evaluated(img: &Built, at: Option<u64>) -> vhdx_check::ImageReport {
    let r = report(img);
    assert_eq!(one(&r, "BAT-023").offset, at);
    let bat: Vec<_> = r
        .ids()
        .into_iter()
        .filter(|id| id.starts_with("BAT-"))
        .collect();
    assert_eq!(bat, ["BAT-023"], "{}", listing(&r));
    r
}

#[test]
fn bat_023_invalid_block_size_other_families_still_report() {
    let clean = dynamic(64, &[0]);
    silent(&clean, "BAT-023");
    let img = with(&clean, |b| {
        b.metadata_item_mut(&ITEM_FILE_PARAMETERS, |d| put_u32(d, 0, 3 * BS)); // META-023
        b.metadata_item_mut(&ITEM_VIRTUAL_DISK_ID, |d| d.fill(0)); // META-032
        b.edit_header(2, |h| h[hdr::FILE_WRITE_GUID..][..16].fill(0)); // HDR-019
        b.set_payload_entry(1, 4); // would be BAT-003
        b.len += 512; // LAYOUT-003
    });
    let r = bat_not_evaluated(&img, Some(clean.layout.bat_offset));
    let md = &clean.layout;
    all_at(
        &r,
        &[
            ("META-023", md.item(&ITEM_FILE_PARAMETERS).data_offset),
            ("META-032", md.item(&ITEM_VIRTUAL_DISK_ID).data_offset),
            ("HDR-019", md.header_offset(2) + hdr::FILE_WRITE_GUID as u64),
        ],
    );
    assert!(r.has("LAYOUT-003") && r.has("FTI-004"), "{}", listing(&r));
}

#[test]
fn bat_023_each_missing_prerequisite() {
    let shape = || ImageBuilder::dynamic(64 * MIB).block_size(BS);
    let bat_offset = shape().build().layout.bat_offset;
    for id in [
        ITEM_FILE_PARAMETERS,
        ITEM_LOGICAL_SECTOR_SIZE,
        ITEM_VIRTUAL_DISK_SIZE,
    ] {
        let img = shape().omit_metadata_item(id).build();
        bat_not_evaluated(&img, Some(bat_offset));
    }
    let bad_values: [(Guid, &[u8]); 2] = [
        (ITEM_LOGICAL_SECTOR_SIZE, &1024u32.to_le_bytes()),
        (ITEM_VIRTUAL_DISK_SIZE, &((1u64 << 46) + 4096).to_le_bytes()),
    ];
    for (id, value) in bad_values {
        let img = with(&shape().build(), |b| {
            b.metadata_item_mut(&id, |d| d.copy_from_slice(value))
        });
        bat_not_evaluated(&img, Some(bat_offset));
    }
}

#[test]
fn bat_023_no_bat_region() {
    // The BAT region entry becomes an unknown optional region: no BAT to evaluate.
    let img = with(&dynamic(64, &[0]), |b| {
        let e = rgn::entry(rgn::BAT_ENTRY);
        b.edit_region_tables(|t| {
            t[e..e + 16].copy_from_slice(&pseudo_guid(23));
            put_u32(t, e + rgn::E_REQUIRED, 0);
        });
    });
    let r = bat_not_evaluated(&img, None);
    assert!(r.has("FTI-004") && r.ids().iter().any(|id| id.starts_with("RGN-")));
}

// ---- per-rule cap ---------------------------------------------------------------------

#[test]
fn per_rule_cap_shows_100_and_counts_the_rest() {
    // 256 payload entries in reserved state 4: 256 BAT-003 instances.
    let clean = dynamic(256, &[]);
    let img = with(&clean, |b| {
        let bytes: Vec<u8> = (0..256).flat_map(|_| 4u64.to_le_bytes()).collect();
        b.patch(b.layout.bat_offset, &bytes);
    });
    let r = report(&img);
    let shown = of(&r, "BAT-003");
    assert_eq!(shown.len(), 100);
    // The first 100 entries are the ones shown.
    let first: Vec<_> = (0..100).map(|i| Some(entry_at(&clean, i))).collect();
    assert_eq!(shown.iter().map(|f| f.offset).collect::<Vec<_>>(), first);
    let hidden = r.suppressed["BAT-003"];
    assert_eq!(
        (hidden.count, hidden.severity),
        (156, Some(Severity::Error))
    );
    assert!(r.count(Severity::Error) >= 256);
    // A smaller cap.
    let r = check(&img, &CheckOptions { max_per_rule: 10 });
    assert_eq!(of(&r, "BAT-003").len(), 10);
    assert_eq!(r.suppressed["BAT-003"].count, 246);
}

// ---- several faults at once -----------------------------------------------------------

#[test]
fn several_metadata_and_bat_faults_all_reported() {
    let clean = dynamic(64, &[0, 1]);
    let l = &clean.layout;
    let vds_entry = l.item(&ITEM_VIRTUAL_DISK_SIZE).entry_offset;
    let stray = l.metadata_offset + 0x8_0000;
    let img = with(&clean, |b| {
        let mb0 = mb_of(b, 0);
        b.metadata_table_mut(|t| t[meta::RESERVED] = 1);
        b.patch_u32(vds_entry + meta::E_RESERVED2 as u64, 1);
        b.metadata_item_mut(&ITEM_VIRTUAL_DISK_ID, |d| d.fill(0));
        b.metadata_item_mut(&ITEM_FILE_PARAMETERS, |d| put_u32(d, 4, 0x10));
        b.patch(stray, b"stray");
        b.set_payload_entry(1, bat::entry(bat::FULLY_PRESENT, mb0));
        b.set_payload_entry(2, 1 << 5);
        b.set_payload_entry(3, 4);
        b.set_payload_entry(4, bat::entry(bat::ZERO, 33));
        b.set_payload_entry(5, bat::entry(bat::FULLY_PRESENT, 999));
        b.set_payload_entry(6, bat::entry(bat::FULLY_PRESENT, 0));
        b.set_bat_entry(64, 1);
    });
    let r = report(&img);
    all_at(
        &r,
        &[
            ("META-003", l.metadata_offset + 8),
            ("META-014", vds_entry),
            ("META-032", l.item(&ITEM_VIRTUAL_DISK_ID).data_offset),
            ("META-024", l.item(&ITEM_FILE_PARAMETERS).data_offset),
            ("META-037", stray),
            ("BAT-013", payload_at(&clean, 1)),
            ("BAT-002", payload_at(&clean, 2)),
            ("BAT-003", payload_at(&clean, 3)),
            ("BAT-010", payload_at(&clean, 4)),
            ("BAT-014", 999 * MIB),
            ("BAT-008", payload_at(&clean, 6)),
            ("BAT-016", entry_at(&clean, 64)),
        ],
    );
}

#[test]
fn several_differencing_faults_all_reported() {
    // 8191 MiB: P = 8191, two chunks (T = 8194); chunk 1 ends with one padding entry.
    let clean = ImageBuilder::differencing(8191 * MIB)
        .block_size(BS)
        .write_sectors(0, &[1; 512])
        .write_sectors(4096 * MIB, &[2; 512])
        .build();
    let l = &clean.layout;
    assert_eq!(l.bat_entries, 8194);
    let (sb0, sb1, pad) = (l.bitmap_entry_index(0), l.bitmap_entry_index(1), 8192);
    let img = with(&clean, |b| {
        b.metadata_item_mut(&ITEM_FILE_PARAMETERS, |d| put_u32(d, 4, 3));
        b.metadata_item_mut(&ITEM_VIRTUAL_DISK_ID, |d| d.fill(0));
        b.set_bitmap_entry(0, 0);
        restate(b, 4096, bat::FULLY_PRESENT);
        b.set_bat_entry(pad, bat::entry(bat::ZERO, 0));
        b.set_payload_entry(9, bat::entry(bat::FULLY_PRESENT, 0));
    });
    let r = report(&img);
    all_at(
        &r,
        &[
            ("META-025", l.item(&ITEM_FILE_PARAMETERS).data_offset),
            ("META-032", l.item(&ITEM_VIRTUAL_DISK_ID).data_offset),
            ("BAT-007", entry_at(&clean, sb0)),
            ("BAT-018", entry_at(&clean, sb1)),
            ("BAT-017", entry_at(&clean, pad)),
            ("BAT-008", payload_at(&clean, 9)),
        ],
    );
    assert!(!r.has("BAT-004") && !r.has("BAT-006"), "{}", listing(&r));
}

// ---- runs of blocks laid end to end (walked in bulk) ----------------------------------

/// A dynamic disk of `n` MiB with every 1 MiB block allocated; blocks in `written` hold
/// data, the others are allocated zeros.
fn allocated(n: u64, written: &[u64]) -> Built {
    (0..n)
        .fold(ImageBuilder::dynamic(n * MIB).block_size(BS), |b, k| {
            if written.contains(&k) {
                b.write_block(k, &[0xA5; 512])
            } else {
                b.allocate_block(k)
            }
        })
        .build()
}

#[test]
fn bat_020_counts_every_zero_block_of_a_long_run() {
    let img = allocated(256, &[7, 200]);
    let zero_blocks = 254;
    let r = report(&img);
    let shown = of(&r, "BAT-020");
    assert_eq!(shown.len(), 100, "{}", listing(&r));
    let written = [img.layout.block_offset(7), img.layout.block_offset(200)];
    assert!(shown.iter().all(|f| !written.contains(&f.offset.unwrap())));
    assert_eq!(
        (
            r.suppressed["BAT-020"].count,
            r.suppressed["BAT-020"].severity
        ),
        (zero_blocks - 100, Some(of(&r, "BAT-020")[0].severity))
    );
    let r = check(&img, &CheckOptions { max_per_rule: 1000 });
    assert_eq!(of(&r, "BAT-020").len() as u64, zero_blocks);
    assert!(!r.suppressed.contains_key("BAT-020"));
    let r = check(&img, &CheckOptions { max_per_rule: 0 });
    assert_eq!(r.suppressed["BAT-020"].count, zero_blocks);
}

#[test]
fn a_run_reusing_an_earlier_offset_is_still_judged_entry_by_entry() {
    let clean = allocated(64, &[]);
    let img = with(&clean, |b| {
        let mb2 = mb_of(b, 2);
        b.set_payload_entry(40, bat::entry(bat::FULLY_PRESENT, mb2));
    });
    fires(&clean, &img, "BAT-013", &[entry_at(&clean, 40)]);
    let r = report(&img);
    assert!(r.has("LAYOUT-001"), "{}", listing(&r));
}
