//! Per-rule tests of the LAYOUT family (how the objects of the file lie: overlaps, gaps,
//! alignment, CATALOGUE 2.10). Region-table helpers are in `rules_region`, the shared ones
//! in `rules_header`.

use crate::builder::*;
use crate::rules_header::{assert_family_tested, base, expect, fires, message, of, run};
use crate::rules_region::*;
use vhdx_check::Severity::{self, Error, Info, Warning};

#[test]
fn every_layout_rule_has_a_test() {
    assert_family_tested("LAYOUT", include_str!("rules_layout.rs"));
}

/// A dynamic disk with 2 MiB blocks 0 and 1 written: blocks at 4 and 6 MiB, 8 MiB long.
fn two_mib_blocks() -> Built {
    ImageBuilder::dynamic(64 * MIB)
        .block_size(2 * MIB as u32)
        .write(0, b"zero")
        .write(2 * MIB, b"one")
        .build()
}

fn assert_overlap(r: &vhdx_check::ImageReport, sev: Severity, at: u64) {
    expect(r, "LAYOUT-001", sev, &[at]);
    // The consequence matches the severity: live data shared, or only retained contents.
    let follows = if sev == Error {
        "both read the same bytes, and writing one changes the other"
    } else {
        "only a retained block's old contents share the bytes"
    };
    let msg = message(r, "LAYOUT-001");
    assert!(msg.contains(follows), "{msg}");
}

#[test]
fn layout_001_region_overlaps_region() {
    // An extra region on top of the metadata region (2 MiB).
    let r = fires(&base(), "LAYOUT-001", add_region(2 * MIB, MIB as u32, 0));
    assert_overlap(&r, Error, 2 * MIB);
}

#[test]
fn layout_001_region_overlaps_log() {
    let r = fires(&base(), "LAYOUT-001", add_region(MIB, 2 * MIB as u32, 0));
    // Overlaps the log [1, 2) MiB and the metadata region [2, 3) MiB.
    expect(&r, "LAYOUT-001", Error, &[MIB, 2 * MIB]);
}

#[test]
fn layout_001_log_overlaps_block() {
    let r = fires(&base(), "LAYOUT-001", |img| {
        for copy in [1, 2] {
            img.edit_header(copy, |h| put_u64(h, hdr::LOG_OFFSET, 5 * MIB));
        }
    });
    assert_overlap(&r, Error, 5 * MIB);
}

#[test]
fn layout_001_block_overlaps_region() {
    // Block 5 moved onto the BAT region (3 MiB).
    let r = fires(&base(), "LAYOUT-001", |img| {
        img.set_payload_entry(5, bat::entry(bat::FULLY_PRESENT, 3))
    });
    assert_overlap(&r, Error, 3 * MIB);
}

#[test]
fn layout_001_block_overlaps_block() {
    // Block 1 moved from 6 MiB to 5 MiB: [5, 7) overlaps block 0's [4, 6) in [5, 6).
    let r = fires(&two_mib_blocks(), "LAYOUT-001", |img| {
        img.set_payload_entry(1, bat::entry(bat::FULLY_PRESENT, 5))
    });
    assert_overlap(&r, Error, 5 * MIB);
    assert!(!r.has("BAT-013"), "different offsets");
}

#[test]
fn layout_001_block_at_offset_zero_overlaps_header_section() {
    // FileOffsetMB 0 (BAT-008): the block is still allocated, on the header section.
    let r = fires(&base(), "LAYOUT-001", |img| {
        img.set_payload_entry(9, bat::entry(bat::FULLY_PRESENT, 0))
    });
    assert_overlap(&r, Error, 0);
    assert!(r.has("BAT-008"));
    // A 32 MiB block there also covers the log, metadata and BAT regions and block 0.
    let base = ImageBuilder::dynamic(256 * MIB).write(0, b"zero").build();
    let r = fires(&base, "LAYOUT-001", |img| {
        img.set_payload_entry(3, bat::entry(bat::FULLY_PRESENT, 0))
    });
    expect(
        &r,
        "LAYOUT-001",
        Error,
        &[0, MIB, 2 * MIB, 3 * MIB, 4 * MIB],
    );
}

#[test]
fn layout_001_blocks_at_the_same_offset() {
    let r = fires(&base(), "LAYOUT-001", |img| {
        img.set_payload_entry(9, bat::entry(bat::FULLY_PRESENT, 4))
    });
    assert_overlap(&r, Error, 4 * MIB);
    assert!(r.has("BAT-013"));
}

#[test]
fn layout_001_retained_block_overlap_is_a_warning() {
    // Block 9 UNDEFINED, its retained contents on top of block 0 (and of block 5 for state
    // UNMAPPED): a retained block downgrades the overlap.
    for (state, at) in [(bat::UNDEFINED, 4), (bat::UNMAPPED, 5)] {
        let r = fires(&base(), "LAYOUT-001", |img| {
            img.set_payload_entry(9, bat::entry(state, at))
        });
        assert_overlap(&r, Warning, at * MIB);
    }
    // A retained block on the BAT region.
    let r = fires(&base(), "LAYOUT-001", |img| {
        img.set_payload_entry(9, bat::entry(bat::UNDEFINED, 3))
    });
    assert_overlap(&r, Warning, 3 * MIB);
}

#[test]
fn layout_001_overlap_past_end_of_file() {
    // A truncated image: blocks 1 and 2 moved to [100, 102) and [101, 103) MiB, both past
    // EOF, overlap in [101, 102) MiB.
    let r = fires(&two_mib_blocks(), "LAYOUT-001", |img| {
        img.set_payload_entry(1, bat::entry(bat::FULLY_PRESENT, 100));
        img.set_payload_entry(2, bat::entry(bat::FULLY_PRESENT, 101));
    });
    assert_overlap(&r, Error, 101 * MIB);
    expect(&r, "LAYOUT-002", Error, &[100 * MIB, 101 * MIB]);
}

#[test]
fn layout_001_overlap_straddling_end_of_file() {
    // File cut to 7 MiB: block 1 [6, 8) straddles EOF; block 2 at [7, 9) overlaps it only
    // in the missing part. Reported once.
    let r = fires(&two_mib_blocks(), "LAYOUT-001", |img| {
        img.len = 7 * MIB;
        img.set_payload_entry(2, bat::entry(bat::FULLY_PRESENT, 7));
    });
    assert_overlap(&r, Error, 7 * MIB);
}

#[test]
fn layout_001_block_overlaps_log_past_end_of_file() {
    let r = fires(&base(), "LAYOUT-001", |img| {
        move_log(50 * MIB)(img);
        img.set_payload_entry(9, bat::entry(bat::FULLY_PRESENT, 50));
    });
    assert_overlap(&r, Error, 50 * MIB);
}

#[test]
fn layout_001_many_retained_overlaps_stay_warnings() {
    // More block↔block overlaps than the checker attributes pair by pair (100): 150
    // retained blocks on top of block 0. Each pair involves a retained block: no error.
    let base = ImageBuilder::dynamic(256 * MIB)
        .block_size(MIB as u32)
        .write(0, b"zero")
        .build();
    let r = fires(&base, "LAYOUT-001", |img| {
        for k in 1..=150 {
            img.set_payload_entry(k, bat::entry(bat::UNDEFINED, 4));
        }
    });
    let shown = of(&r, "LAYOUT-001");
    assert!(shown.iter().all(|f| f.severity == Warning), "{shown:#?}");
    let hidden = r
        .suppressed
        .get("LAYOUT-001")
        .map(|s| (s.count, s.severity));
    assert_eq!(hidden, Some((50, Some(Warning))));
}

#[test]
fn layout_002_block_past_end_of_file() {
    let r = fires(&base(), "LAYOUT-002", |img| img.len -= MIB);
    expect(&r, "LAYOUT-002", Error, &[5 * MIB]);
    expect(&r, "BAT-014", Error, &[5 * MIB]);
}

#[test]
fn layout_002_region_and_log_past_end_of_file() {
    let base = base();
    let end = base.len;
    let r = fires(&base, "LAYOUT-002", |img| {
        add_region(end, MIB as u32, 0)(img);
        img.edit_header(2, |h| put_u64(h, hdr::LOG_OFFSET, end + MIB));
    });
    expect(&r, "LAYOUT-002", Error, &[end, end + MIB]);
}

#[test]
fn layout_002_retained_block_past_eof_is_a_warning() {
    let r = fires(&base(), "LAYOUT-002", |img| {
        img.set_payload_entry(9, bat::entry(bat::UNMAPPED, 100))
    });
    expect(&r, "LAYOUT-002", Warning, &[100 * MIB]);
    expect(&r, "BAT-014", Warning, &[100 * MIB]);
}

#[test]
fn layout_002_last_partial_block_short_only_beyond_disk_end() {
    // VDS 2.5 MiB, 1 MiB blocks: block 2 (the last) holds only 0.5 MiB of disk.
    let base = ImageBuilder::dynamic(2 * MIB + MIB / 2)
        .block_size(MIB as u32)
        .write(2 * MIB, b"last")
        .build();
    let at = base.layout.block_offset(2);
    // Only bytes beyond VDS are missing: warning.
    let r = fires(&base, "LAYOUT-002", |img| img.len = at + MIB / 2);
    expect(&r, "LAYOUT-002", Warning, &[at]);
    expect(&r, "BAT-014", Warning, &[at]);
    // Bytes inside the disk are missing too: error.
    let r = fires(&base, "LAYOUT-002", |img| img.len = at + MIB / 2 - 4096);
    expect(&r, "LAYOUT-002", Error, &[at]);
}

#[test]
fn layout_002_non_last_block_short_is_an_error() {
    // Block 5 is not the last block of the 64-block disk: no downgrade.
    let r = fires(&base(), "LAYOUT-002", |img| img.len -= 4096);
    expect(&r, "LAYOUT-002", Error, &[5 * MIB]);
}

#[test]
fn layout_003_file_size_not_mib_multiple() {
    let base = base();
    let end = base.len;
    // Disk2VHD ends its files with 512 zero bytes after the last object: information.
    let r = fires(&base, "LAYOUT-003", |img| img.len += 512);
    expect(&r, "LAYOUT-003", Info, &[end]);
    assert!(message(&r, "LAYOUT-003").contains("512 bytes"), "{r:?}");
    assert!(!r.has("LAYOUT-005"));
    // Data in that tail: a warning, and LAYOUT-005 shows the data.
    let r = fires(&base, "LAYOUT-003", |img| {
        img.len += 512;
        img.patch(end + 100, b"\x01");
    });
    expect(&r, "LAYOUT-003", Warning, &[end]);
    expect(&r, "LAYOUT-005", Info, &[end + 100]);
    assert!(message(&r, "LAYOUT-003").contains("hold data, which readers ignore (LAYOUT-005)"));
    // The file ends inside the last block: a warning (LAYOUT-002 says which).
    let r = fires(&base, "LAYOUT-003", |img| img.len -= MIB / 2);
    expect(&r, "LAYOUT-003", Warning, &[end - MIB]);
    assert!(message(&r, "LAYOUT-003").contains("whose tail is missing"));
}

#[test]
fn layout_004_uncovered_unit_holds_data() {
    // Block 0 freed (NOT_PRESENT) but its old contents stay at 4 MiB, before block 5.
    let r = fires(&base(), "LAYOUT-004", |img| {
        img.set_payload_entry(0, bat::NOT_PRESENT)
    });
    expect(&r, "LAYOUT-004", Info, &[4 * MIB]);
    assert!(!r.has("LAYOUT-005"));
    let msg = message(&r, "LAYOUT-004");
    assert!(msg.contains("[0x400000, 0x500000) holds data"), "{msg}");
    assert!(
        msg.contains("which readers ignore (not part of the virtual disk)"),
        "{msg}"
    );
}

#[test]
fn layout_004_zero_units_are_not_reported() {
    let r = run(&{
        let mut img = ImageBuilder::dynamic(64 * MIB)
            .block_size(MIB as u32)
            .allocate_block(0)
            .write(5 * MIB, b"five")
            .build();
        img.set_payload_entry(0, bat::NOT_PRESENT);
        img
    });
    assert!(!r.has("LAYOUT-004"), "{:#?}", of(&r, "LAYOUT-004"));
}

#[test]
fn layout_005_data_after_last_object() {
    let base = base();
    let end = base.len;
    let r = fires(&base, "LAYOUT-005", |img| {
        img.len += 2 * MIB;
        img.patch(end + MIB + 0x100, b"appended");
    });
    expect(&r, "LAYOUT-005", Info, &[end + MIB + 0x100]);
    assert!(!r.has("LAYOUT-004"));
}

#[test]
fn layout_006_header_section_reserved_not_zero() {
    for at in [0x50000, 0xFFFFF] {
        let r = fires(&base(), "LAYOUT-006", |img| img.patch(at, b"\x01"));
        expect(&r, "LAYOUT-006", Info, &[at]);
    }
}

#[test]
fn layout_007_fixed_file_size_unexpected() {
    let fixed = ImageBuilder::fixed(8 * MIB).block_size(MIB as u32).build();
    let r = fires(&fixed, "LAYOUT-007", |img| img.len += MIB);
    expect(&r, "LAYOUT-007", Info, &[0]);
    let msg = message(&r, "LAYOUT-007");
    assert!(
        msg.contains("the file is 1048576 bytes longer than both"),
        "{msg}"
    );
    let r = fires(&fixed, "LAYOUT-007", |img| img.len -= MIB);
    expect(&r, "LAYOUT-007", Info, &[0]);
    let msg = message(&r, "LAYOUT-007");
    assert!(
        msg.contains("1048576 bytes fewer than a fixed disk of this size needs"),
        "{msg}"
    );
    // Only fixed disks are expected to have an exact size.
    let mut dynamic = base();
    dynamic.len += MIB;
    assert!(!run(&dynamic).has("LAYOUT-007"));
}

#[test]
fn layout_008_structures_past_the_log_heads_last_file_offset() {
    // An applied log entry (no descriptors) whose LastFileOffset stops at 2 MiB, while
    // the BAT, metadata and blocks lie further out.
    let mut logged = base();
    let mut entry = logged.log_entry(&[]);
    logged.write_log(std::slice::from_ref(&entry));
    let r = fires(&logged, "LAYOUT-008", |img| {
        entry.last_file_offset = 2 * MIB;
        entry.flushed_file_offset = 2 * MIB;
        img.write_log(&[entry]);
    });
    expect(&r, "LAYOUT-008", Warning, &[2 * MIB]);
    assert!(message(&r, "LAYOUT-008").contains("0x200000"));
}

/// Damage: the BAT region moved to `to` (its entries copied, both tables updated).
fn move_bat(to: u64) -> impl FnOnce(&mut Built) {
    move |img| {
        let bat = img.read(img.layout.bat_offset, 4096);
        img.patch(to, &bat);
        set_rgn(rgn::entry(0) + rgn::E_FILE_OFFSET, &to.to_le_bytes())(img);
    }
}

/// Damage: the log moved to `to` in both headers.
fn move_log(to: u64) -> impl FnOnce(&mut Built) {
    move |img| {
        for copy in [1, 2] {
            img.edit_header(copy, |h| put_u64(h, hdr::LOG_OFFSET, to));
        }
    }
}

#[test]
fn layout_009_log_after_the_regions() {
    // BAT and log swap places: BAT at 1 MiB, log at 3 MiB, still before every block.
    let r = fires(&base(), "LAYOUT-009", |img| {
        move_bat(MIB)(img);
        move_log(3 * MIB)(img);
    });
    let f = of(&r, "LAYOUT-009");
    assert_eq!((f.len(), f[0].severity, f[0].offset), (1, Info, None));
    assert!(f[0].message.contains("(log after the regions)"), "{f:#?}");
    assert_eq!(r.count(Error) + r.count(Warning), 0, "{:#?}", r.findings);
}

#[test]
fn layout_009_block_before_metadata() {
    // The BAT region moved to the end of the file, after the blocks.
    let base = base();
    let end = base.len;
    let r = fires(&base, "LAYOUT-009", |img| {
        img.len += MIB;
        move_bat(end)(img);
    });
    assert!(message(&r, "LAYOUT-009").contains("(payload blocks before metadata structures)"));
    // Both reasons at once are both named.
    let r = fires(&base, "LAYOUT-009", |img| {
        img.len += MIB;
        move_log(end)(img);
    });
    let msg = message(&r, "LAYOUT-009");
    assert!(
        msg.contains("payload blocks before") && msg.contains("log after the regions"),
        "{msg}"
    );
}

#[test]
fn layout_009_map_of_a_full_region_table_is_capped() {
    // EntryCount 2048: 2047 entries read, all but two empty regions at 0 (after the log in
    // the list). The map names the first 16 objects and counts the rest.
    let r = fires(
        &base(),
        "LAYOUT-009",
        set_rgn(rgn::ENTRY_COUNT, &2048u32.to_le_bytes()),
    );
    let msg = message(&r, "LAYOUT-009");
    assert!(msg.contains("and 2033 more objects"), "{msg}");
    assert!(msg.len() < 1000, "{} characters", msg.len());
}
