//! BAT tests of where blocks lie: allocation, outside the disk, chunks, summaries, and a BAT
//! that cannot be evaluated.

use super::*;

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
