//! Per-rule tests for the META family (CATALOGUE 2.7). Each test damages a clean image,
//! checks that the clean image does not fire the rule and that the damaged one fires it
//! at the right file offset (the metadata table, the 32-byte entry, or the item value).
//!
//! The first block holds helpers shared with the other rule-test modules.

use crate::builder::*;
use crate::util::assert_fires;
use vhdx_check::{CheckOptions, Finding, ImageReport, Severity, check};

// ---- shared helpers -------------------------------------------------------------------

pub fn report(img: &Built) -> ImageReport {
    check(img, &CheckOptions::default())
}

/// One line per finding, for assertion messages.
pub fn listing(r: &ImageReport) -> String {
    r.findings
        .iter()
        .map(|f| {
            let at = f.offset.map_or("-".into(), |o| format!("{o:#x}"));
            format!(
                "\n  {} {} @{at} {}: {}",
                f.rule, f.severity, f.structure, f.message
            )
        })
        .collect()
}

/// A copy of `clean` with `damage` applied.
pub fn with(clean: &Built, damage: impl FnOnce(&mut Built)) -> Built {
    let mut img = clean.clone();
    damage(&mut img);
    img
}

/// The shown findings of rule `id`.
pub fn of<'r>(r: &'r ImageReport, id: &str) -> Vec<&'r Finding> {
    r.findings.iter().filter(|f| f.rule == id).collect()
}

/// The only finding of rule `id`.
#[track_caller]
pub fn one<'r>(r: &'r ImageReport, id: &str) -> &'r Finding {
    let v = assert_fires(r, id);
    assert_eq!(v.len(), 1, "expected one {id}:{}", listing(r));
    v[0]
}

/// Asserts that `id` does not fire on `img`.
#[track_caller]
pub fn silent(img: &Built, id: &str) {
    let r = report(img);
    assert!(!r.has(id), "{id} fires:{}", listing(&r));
}

/// Asserts that `id` is silent on `clean` and fires on `img` once per offset in `offsets`
/// (file offsets, any order) and nowhere else. Returns the report of `img`.
#[track_caller]
pub fn fires(clean: &Built, img: &Built, id: &str, offsets: &[u64]) -> ImageReport {
    silent(clean, id);
    let r = report(img);
    let mut got: Vec<Option<u64>> = assert_fires(&r, id).iter().map(|f| f.offset).collect();
    let mut want: Vec<Option<u64>> = offsets.iter().map(|&o| Some(o)).collect();
    got.sort();
    want.sort();
    assert_eq!(
        got,
        want,
        "{id} offsets (want {offsets:#x?}):{}",
        listing(&r)
    );
    r
}

/// Asserts that each `(id, offset)` has a finding of `id` at file offset `offset`
/// (several planted faults in one image: the checker must report them all).
#[track_caller]
pub fn all_at(r: &ImageReport, planted: &[(&str, u64)]) {
    let missing: Vec<_> = planted
        .iter()
        .filter(|(id, at)| !of(r, id).iter().any(|f| f.offset == Some(*at)))
        .map(|(id, at)| format!("{id}@{at:#x}"))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?}:{}", listing(r));
    // Each through the one positive assertion (what the catalogue test counts).
    for (id, _) in planted {
        assert_fires(r, id);
    }
}

// ---- metadata helpers -----------------------------------------------------------------

/// The baseline: a 64 MiB dynamic disk with 1 MiB blocks.
fn dynamic() -> Built {
    ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .build()
}

/// The baseline with extra metadata items `(id, entry flags, data)`.
fn dynamic_with_items(items: &[(Guid, u32, &[u8])]) -> Built {
    items
        .iter()
        .fold(
            ImageBuilder::dynamic(64 * MIB).block_size(MIB as u32),
            |b, (id, flags, data)| b.metadata_item(*id, *flags, data),
        )
        .build()
}

/// An id no specification item uses.
fn unknown_id(n: u64) -> Guid {
    pseudo_guid(0x5EED_0000 + n)
}

fn md(img: &Built) -> u64 {
    img.layout.metadata_offset
}

/// File offset of the table entry of item `id`.
fn entry_at(img: &Built, id: &Guid) -> u64 {
    img.layout.item(id).entry_offset
}

/// File offset of the value of item `id`.
fn value_at(img: &Built, id: &Guid) -> u64 {
    img.layout.item(id).data_offset
}

/// Sets a u32 field of the table entry of item `id`.
fn set_entry(img: &mut Built, id: &Guid, field: usize, v: u32) {
    img.metadata_entry_mut(id, |e| put_u32(e, field, v));
}

/// Sets a u32 field of the last table entry (an extra item).
fn set_last_entry(img: &mut Built, field: usize, v: u32) {
    let at = img.layout.items.last().unwrap().entry_offset;
    img.patch_u32(at + field as u64, v);
}

fn last_entry_at(img: &Built) -> u64 {
    img.layout.items.last().unwrap().entry_offset
}

/// Overwrites the start of item `id`'s value.
fn set_value(img: &mut Built, id: &Guid, bytes: &[u8]) {
    img.metadata_item_mut(id, |d| d[..bytes.len()].copy_from_slice(bytes));
}

/// Asserts that damaging a value of item `id` fires `rule` at the item value.
#[track_caller]
fn value_fires(clean: &Built, id: &Guid, bytes: &[u8], rule: &str) -> ImageReport {
    let img = with(clean, |b| set_value(b, id, bytes));
    fires(clean, &img, rule, &[value_at(clean, id)])
}

// ---- table header (META-001..005, 036) ------------------------------------------------

#[test]
fn meta_001_region_smaller_than_table() {
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.edit_region_tables(|t| {
            put_u32(t, rgn::entry(rgn::METADATA_ENTRY) + rgn::E_LENGTH, 0x8000)
        })
    });
    let r = fires(&clean, &img, "META-001", &[md(&clean)]);
    assert_eq!(one(&r, "META-001").length, Some(0x8000));
}

#[test]
fn meta_002_bad_table_signature() {
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.metadata_table_mut(|t| t[..8].copy_from_slice(b"METADATA"))
    });
    let r = fires(&clean, &img, "META-002", &[md(&clean)]);
    // Item parsing stops: no consequential entry findings.
    assert!(!r.has("META-020") && !r.has("META-017"), "{}", listing(&r));
    // The message says what follows, and it is true: the BAT is not checked.
    let msg = &one(&r, "META-002").message;
    assert!(msg.contains("readers refuse the image"), "{msg}");
    assert!(
        msg.contains("the BAT is not checked") && r.has("BAT-023"),
        "{msg}"
    );
}

#[test]
fn meta_003_table_reserved_nonzero() {
    let clean = dynamic();
    let img = with(&clean, |b| b.metadata_table_mut(|t| t[meta::RESERVED] = 1));
    fires(&clean, &img, "META-003", &[md(&clean) + 8]);
}

#[test]
fn meta_004_entry_count_above_2047() {
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.metadata_table_mut(|t| put_u16(t, meta::ENTRY_COUNT, 2048))
    });
    fires(&clean, &img, "META-004", &[md(&clean) + 10]);
}

#[test]
fn meta_005_table_reserved2_nonzero() {
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.metadata_table_mut(|t| t[meta::RESERVED2 + 19] = 1)
    });
    fires(&clean, &img, "META-005", &[md(&clean) + 12]);
}

#[test]
fn meta_036_stale_entry_after_entry_count() {
    // EntryCount 5 → 4: the Physical Sector Size entry becomes a stale row, its value
    // free space, and the item is missing.
    let clean = dynamic();
    let img = with(&clean, |b| {
        b.metadata_table_mut(|t| put_u16(t, meta::ENTRY_COUNT, 4))
    });
    let pss = &ITEM_PHYSICAL_SECTOR_SIZE;
    let r = fires(&clean, &img, "META-036", &[entry_at(&clean, pss)]);
    // Free-space findings point at the first non-zero byte: 4096 is 00 10 00 00.
    assert_eq!(one(&r, "META-037").offset, Some(value_at(&clean, pss) + 1));
    assert_eq!(one(&r, "META-020").offset, Some(md(&clean)));
}

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
