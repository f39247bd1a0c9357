//! BAT tests of the region and the entries: encoding, states by disk type, FileOffsetMB.

use super::*;

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
