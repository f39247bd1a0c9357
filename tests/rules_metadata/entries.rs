//! META tests of the metadata table entries (META-006..019).

use super::*;

// ---- entries (META-006..019) ----------------------------------------------------------

#[test]
fn meta_006_item_inside_table() {
    let clean = dynamic();
    let id = &ITEM_VIRTUAL_DISK_ID;
    let img = with(&clean, |b| set_entry(b, id, meta::E_OFFSET, 0x8000));
    fires(&clean, &img, "META-006", &[entry_at(&clean, id)]);
}

#[test]
fn meta_006_boundary_64k_is_allowed() {
    // The first item sits at exactly 64 KiB in every builder image (CATALOGUE A18: ≥).
    let clean = dynamic();
    assert_eq!(
        value_at(&clean, &ITEM_FILE_PARAMETERS) - md(&clean),
        64 * KIB
    );
    silent(&clean, "META-006");
}

#[test]
fn meta_007_empty_item_with_offset() {
    let clean = dynamic();
    let img = dynamic_with_items(&[(unknown_id(7), 0, &[])]);
    assert_ne!(img.layout.items.last().unwrap().data_offset, md(&img));
    fires(&clean, &img, "META-007", &[last_entry_at(&img)]);
}

#[test]
fn meta_008_item_longer_than_1mib() {
    let clean = dynamic();
    let mut img = dynamic_with_items(&[(unknown_id(8), 0, &[1; 8])]);
    set_last_entry(&mut img, meta::E_LENGTH, MIB as u32 + 1);
    fires(&clean, &img, "META-008", &[last_entry_at(&img)]);
}

#[test]
fn meta_009_item_past_region_end_in_u64() {
    // Offset + Length overflows u32: the check must be done in u64.
    let clean = dynamic();
    let id = &ITEM_VIRTUAL_DISK_ID;
    let img = with(&clean, |b| set_entry(b, id, meta::E_OFFSET, 0xFFFF_FFF0));
    fires(&clean, &img, "META-009", &[entry_at(&clean, id)]);
    // And the plain case: 4 bytes short of fitting.
    let img = with(&clean, |b| {
        set_entry(
            b,
            id,
            meta::E_OFFSET,
            (clean.layout.metadata_length - 12) as u32,
        )
    });
    fires(&clean, &img, "META-009", &[entry_at(&clean, id)]);
}

#[test]
fn meta_010_overlapping_items() {
    let clean = dynamic();
    let mut img = dynamic_with_items(&[(unknown_id(10), 0, &[1; 8])]);
    // The extra item moves into the second half of the Virtual Disk ID value.
    let vdid = img.layout.item(&ITEM_VIRTUAL_DISK_ID).clone();
    let region_offset = (vdid.data_offset - md(&img) + 8) as u32;
    set_last_entry(&mut img, meta::E_OFFSET, region_offset);
    silent(&clean, "META-010");
    let r = report(&img);
    let f = one(&r, "META-010");
    let pair = [Some(vdid.entry_offset), Some(last_entry_at(&img))];
    assert!(pair.contains(&f.offset), "{}", listing(&r));
}

#[test]
fn meta_011_duplicate_item() {
    let clean = dynamic();
    let flags = meta::IS_VIRTUAL_DISK | meta::IS_REQUIRED;
    let img = dynamic_with_items(&[(ITEM_VIRTUAL_DISK_ID, flags, &[9; 16])]);
    let r = fires(&clean, &img, "META-011", &[last_entry_at(&img)]);
    let msg = &one(&r, "META-011").message;
    assert!(
        msg.contains("readers may take either value, and QEMU refuses the file"),
        "{msg}"
    );
    // An unknown item listed twice: QEMU does not look at it.
    let twice = unknown_id(11);
    let img = dynamic_with_items(&[(twice, 0, &[1; 8]), (twice, 0, &[2; 8])]);
    let r = fires(&clean, &img, "META-011", &[last_entry_at(&img)]);
    let msg = &one(&r, "META-011").message;
    assert!(
        msg.contains("either value") && !msg.contains("QEMU"),
        "{msg}"
    );
}

#[test]
fn meta_012_more_than_1024_user_items() {
    let items = |n: u64| -> Vec<(Guid, u32, Vec<u8>)> {
        (0..n)
            .map(|i| (unknown_id(1000 + i), meta::IS_USER, vec![1; 4]))
            .collect()
    };
    let build = |n| {
        let v = items(n);
        let refs: Vec<(Guid, u32, &[u8])> = v.iter().map(|(g, f, d)| (*g, *f, &d[..])).collect();
        dynamic_with_items(&refs)
    };
    let (clean, img) = (build(1024), build(1025));
    fires(&clean, &img, "META-012", &[md(&img)]);
}

#[test]
fn meta_013_entry_reserved_flags() {
    let clean = dynamic();
    let id = &ITEM_VIRTUAL_DISK_SIZE;
    let flags = meta::IS_VIRTUAL_DISK | meta::IS_REQUIRED | 0x8000_0008;
    let img = with(&clean, |b| set_entry(b, id, meta::E_FLAGS, flags));
    fires(&clean, &img, "META-013", &[entry_at(&clean, id)]);
}

#[test]
fn meta_014_entry_reserved2() {
    let clean = dynamic();
    let id = &ITEM_LOGICAL_SECTOR_SIZE;
    let img = with(&clean, |b| set_entry(b, id, meta::E_RESERVED2, 1));
    fires(&clean, &img, "META-014", &[entry_at(&clean, id)]);
}

#[test]
fn meta_015_unknown_required_system_item() {
    let clean = dynamic();
    let img = dynamic_with_items(&[(unknown_id(15), meta::IS_REQUIRED, &[1; 8])]);
    let r = fires(&clean, &img, "META-015", &[last_entry_at(&img)]);
    assert!(!r.has("META-016") && !r.has("META-017"));
    assert!(
        one(&r, "META-015")
            .message
            .contains("must refuse the file, as QEMU and Hyper-V do")
    );
}

/// openvmm's create(create_incomplete) adds its "incomplete file" item: a required system
/// item with Offset 0 and Length 0 (GUID 71cc85f0-1b69-4e28-9558-c3bf83ae75d3, in openvmm's
/// format.rs); openvmm refuses to open such a file. META-015 names the item and what it is.
#[test]
fn meta_015_names_openvmm_incomplete_file_item() {
    const INCOMPLETE: Guid = [
        0xF0, 0x85, 0xCC, 0x71, 0x69, 0x1B, 0x28, 0x4E, 0x95, 0x58, 0xC3, 0xBF, 0x83, 0xAE, 0x75,
        0xD3,
    ];
    let mut img = dynamic_with_items(&[(INCOMPLETE, meta::IS_REQUIRED, &[])]);
    set_last_entry(&mut img, meta::E_OFFSET, 0);
    let r = fires(&dynamic(), &img, "META-015", &[last_entry_at(&img)]);
    let f = one(&r, "META-015");
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.contains("71CC85F0-1B69-4E28-9558-C3BF83AE75D3")
            && f.message.contains("openvmm's \"incomplete file\" item"),
        "{}",
        listing(&r)
    );
    // Another unknown item is not given that name.
    let other = dynamic_with_items(&[(unknown_id(15), meta::IS_REQUIRED, &[1; 8])]);
    let r = report(&other);
    assert!(
        !one(&r, "META-015").message.contains("openvmm"),
        "{}",
        listing(&r)
    );
}

#[test]
fn meta_016_unknown_required_user_item() {
    let clean = dynamic();
    let flags = meta::IS_USER | meta::IS_REQUIRED;
    let img = dynamic_with_items(&[(unknown_id(16), flags, &[1; 8])]);
    let r = fires(&clean, &img, "META-016", &[last_entry_at(&img)]);
    assert!(!r.has("META-015") && !r.has("META-017"));
}

#[test]
fn meta_017_unknown_optional_items_point_at_their_data() {
    // Reported at the item's data (worth extracting), one per item, user or system.
    let clean = dynamic();
    let img = dynamic_with_items(&[
        (unknown_id(17), 0, &[1; 8]),
        (
            unknown_id(18),
            meta::IS_USER | meta::IS_VIRTUAL_DISK,
            &[2; 8],
        ),
    ]);
    let data: Vec<u64> = img.layout.items[5..]
        .iter()
        .map(|i| i.data_offset)
        .collect();
    let r = fires(&clean, &img, "META-017", &data);
    assert!(!r.has("META-015") && !r.has("META-016"));
}

#[test]
fn meta_018_known_id_marked_user() {
    let clean = dynamic();
    let flags = meta::IS_USER | meta::IS_VIRTUAL_DISK | meta::IS_REQUIRED;
    let img = dynamic_with_items(&[(ITEM_LOGICAL_SECTOR_SIZE, flags, &512u32.to_le_bytes())]);
    let r = fires(&clean, &img, "META-018", &[last_entry_at(&img)]);
    // (ItemId, IsUser) differs from the system item: not a duplicate.
    assert!(!r.has("META-011"), "{}", listing(&r));
}

#[test]
fn meta_019_known_item_flags_differ() {
    let clean = dynamic();
    let (vds, fp) = (&ITEM_VIRTUAL_DISK_SIZE, &ITEM_FILE_PARAMETERS);
    let img = with(&clean, |b| {
        set_entry(b, vds, meta::E_FLAGS, meta::IS_REQUIRED);
        set_entry(
            b,
            fp,
            meta::E_FLAGS,
            meta::IS_REQUIRED | meta::IS_VIRTUAL_DISK,
        );
    });
    fires(
        &clean,
        &img,
        "META-019",
        &[entry_at(&clean, vds), entry_at(&clean, fp)],
    );
}
