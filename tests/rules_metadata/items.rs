//! META tests of the known items, their values and the free space of the region.

use super::*;

// ---- known items (META-020..027, 038) -------------------------------------------------

#[test]
fn meta_020_each_required_item_missing() {
    let clean = dynamic();
    for id in [
        ITEM_FILE_PARAMETERS,
        ITEM_VIRTUAL_DISK_SIZE,
        ITEM_VIRTUAL_DISK_ID,
        ITEM_LOGICAL_SECTOR_SIZE,
        ITEM_PHYSICAL_SECTOR_SIZE,
    ] {
        let img = ImageBuilder::dynamic(64 * MIB)
            .block_size(MIB as u32)
            .omit_metadata_item(id)
            .build();
        fires(&clean, &img, "META-020", &[md(&img)]);
    }
}

#[test]
fn meta_020_user_copy_does_not_count() {
    // A Virtual Disk ID with IsUser = 1 is not the system item (pair semantics).
    let flags = meta::IS_USER | meta::IS_VIRTUAL_DISK | meta::IS_REQUIRED;
    let img = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .omit_metadata_item(ITEM_VIRTUAL_DISK_ID)
        .metadata_item(ITEM_VIRTUAL_DISK_ID, flags, &[3; 16])
        .build();
    fires(&dynamic(), &img, "META-020", &[md(&img)]);
}

#[test]
fn meta_021_item_shorter_than_its_size() {
    let clean = dynamic();
    let id = &ITEM_VIRTUAL_DISK_SIZE;
    let img = with(&clean, |b| set_entry(b, id, meta::E_LENGTH, 4));
    fires(&clean, &img, "META-021", &[entry_at(&clean, id)]);
}

#[test]
fn meta_022_item_longer_than_its_size() {
    // Physical Sector Size is the last item: the 4 extra bytes are zero (no META-038).
    let clean = dynamic();
    let id = &ITEM_PHYSICAL_SECTOR_SIZE;
    let img = with(&clean, |b| set_entry(b, id, meta::E_LENGTH, 8));
    let r = fires(&clean, &img, "META-022", &[entry_at(&clean, id)]);
    assert!(!r.has("META-038") && !r.has("META-034"), "{}", listing(&r));
}

#[test]
fn meta_038_data_beyond_defined_size() {
    let clean = dynamic();
    let id = &ITEM_PHYSICAL_SECTOR_SIZE;
    let img = with(&clean, |b| {
        set_entry(b, id, meta::E_LENGTH, 8);
        b.patch_u32(value_at(b, id) + 4, 0xDEAD);
    });
    fires(&clean, &img, "META-038", &[value_at(&clean, id) + 4]);
}

#[test]
fn meta_026_differencing_without_locator() {
    let clean = ImageBuilder::differencing(64 * MIB)
        .block_size(MIB as u32)
        .build();
    let img = ImageBuilder::differencing(64 * MIB)
        .block_size(MIB as u32)
        .omit_metadata_item(ITEM_PARENT_LOCATOR)
        .build();
    let r = fires(&clean, &img, "META-026", &[md(&img)]);
    let msg = &one(&r, "META-026").message;
    assert!(msg.contains("the virtual disk cannot be read"), "{msg}");
}

#[test]
fn meta_027_locator_without_has_parent() {
    let locator = parent_locator_item(&[
        ("parent_linkage", "{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}"),
        ("relative_path", r".\parent.vhdx"),
    ]);
    let img = dynamic_with_items(&[(ITEM_PARENT_LOCATOR, meta::IS_REQUIRED, &locator)]);
    fires(&dynamic(), &img, "META-027", &[last_entry_at(&img)]);
    // The differencing disk the locator belongs to is fine.
    silent(&ImageBuilder::differencing(64 * MIB).build(), "META-027");
}

// ---- values (META-023..025, 028..035) -------------------------------------------------

#[test]
fn meta_023_block_size_invalid() {
    let clean = dynamic();
    for bs in [
        0,
        512 * KIB as u32,
        3 * MIB as u32,
        512 * MIB as u32,
        u32::MAX,
    ] {
        let r = value_fires(&clean, &ITEM_FILE_PARAMETERS, &bs.to_le_bytes(), "META-023");
        assert!(
            r.has("BAT-023"),
            "bs {bs:#x}: BAT geometry unknown{}",
            listing(&r)
        );
    }
    for bs in [MIB as u32, 256 * MIB as u32] {
        silent(
            &with(&clean, |b| {
                set_value(b, &ITEM_FILE_PARAMETERS, &bs.to_le_bytes())
            }),
            "META-023",
        );
    }
}

/// Sets the File Parameters flags (bytes 4..8 of the value).
fn set_fp_flags(img: &mut Built, flags: u32) {
    img.metadata_item_mut(&ITEM_FILE_PARAMETERS, |d| put_u32(d, 4, flags));
}

#[test]
fn meta_024_file_parameters_reserved_flags() {
    let clean = dynamic();
    let img = with(&clean, |b| set_fp_flags(b, 0x4));
    fires(
        &clean,
        &img,
        "META-024",
        &[value_at(&clean, &ITEM_FILE_PARAMETERS)],
    );
}

#[test]
fn meta_025_has_parent_and_leave_allocated() {
    let clean = ImageBuilder::differencing(64 * MIB)
        .block_size(MIB as u32)
        .build();
    let flags = meta::HAS_PARENT | meta::LEAVE_BLOCK_ALLOCATED;
    let img = with(&clean, |b| set_fp_flags(b, flags));
    let r = fires(
        &clean,
        &img,
        "META-025",
        &[value_at(&clean, &ITEM_FILE_PARAMETERS)],
    );
    assert_eq!(one(&r, "META-025").severity, Severity::Info);
    // Still a differencing disk: the locator is expected, the BAT evaluated.
    assert!(!r.has("META-027") && !r.has("BAT-023"), "{}", listing(&r));
}

#[test]
fn meta_028_size_not_multiple_of_logical_sector() {
    let v = 64 * MIB + 256;
    value_fires(
        &dynamic(),
        &ITEM_VIRTUAL_DISK_SIZE,
        &v.to_le_bytes(),
        "META-028",
    );
}

#[test]
fn meta_029_size_above_64_tib() {
    let clean = dynamic();
    let v: u64 = (1 << 46) + 4096;
    value_fires(
        &clean,
        &ITEM_VIRTUAL_DISK_SIZE,
        &v.to_le_bytes(),
        "META-029",
    );
    let limit = with(&clean, |b| {
        set_value(b, &ITEM_VIRTUAL_DISK_SIZE, &(1u64 << 46).to_le_bytes())
    });
    silent(&limit, "META-029");
}

#[test]
fn meta_030_size_zero() {
    let r = value_fires(
        &dynamic(),
        &ITEM_VIRTUAL_DISK_SIZE,
        &0u64.to_le_bytes(),
        "META-030",
    );
    assert_eq!(one(&r, "META-030").severity, Severity::Warning);
}

#[test]
fn meta_031_size_not_multiple_of_block() {
    let img = ImageBuilder::dynamic(64 * MIB + 512 * KIB)
        .block_size(MIB as u32)
        .build();
    fires(
        &dynamic(),
        &img,
        "META-031",
        &[value_at(&img, &ITEM_VIRTUAL_DISK_SIZE)],
    );
}

#[test]
fn meta_032_zero_virtual_disk_id() {
    value_fires(&dynamic(), &ITEM_VIRTUAL_DISK_ID, &[0; 16], "META-032");
}

#[test]
fn meta_033_logical_sector_size_invalid() {
    for v in [0u32, 1024, 520] {
        value_fires(
            &dynamic(),
            &ITEM_LOGICAL_SECTOR_SIZE,
            &v.to_le_bytes(),
            "META-033",
        );
    }
}

#[test]
fn meta_034_physical_sector_size_invalid() {
    value_fires(
        &dynamic(),
        &ITEM_PHYSICAL_SECTOR_SIZE,
        &1024u32.to_le_bytes(),
        "META-034",
    );
}

#[test]
fn meta_035_4k_logical_on_512_physical() {
    let shape = || ImageBuilder::dynamic(64 * MIB).logical_sector(4096);
    let clean = shape().physical_sector(4096).build();
    let img = shape().physical_sector(512).build();
    fires(
        &clean,
        &img,
        "META-035",
        &[value_at(&img, &ITEM_PHYSICAL_SECTOR_SIZE)],
    );
}

// ---- free space (META-037) ------------------------------------------------------------

#[test]
fn meta_037_data_in_free_space() {
    let clean = dynamic();
    let at = md(&clean) + 0x8_0000;
    let img = with(&clean, |b| b.patch(at, b"remnant"));
    let r = fires(&clean, &img, "META-037", &[at]);
    let msg = &one(&r, "META-037").message;
    assert!(
        msg.contains("which readers ignore (not part of the virtual disk)"),
        "{msg}"
    );
    assert!(msg.contains("\"remnant"), "{msg}");
}
