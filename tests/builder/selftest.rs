//! Tests of the image builder itself: geometry against CATALOGUE §1.8 worked by hand,
//! checksums against an independent bit-by-bit CRC-32C, structure contents decoded by hand,
//! and — where `qemu-img` is installed — QEMU's own checker and converter as an independent
//! reader of the images.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use vhdx_check::io::ReadAt;

// ---------------------------------------------------------------------------------------
// Geometry (CATALOGUE §1.8), numbers computed by hand.

#[test]
fn geometry_matches_catalogue_formulas() {
    use DiskKind::{Differencing, Dynamic, Fixed};
    // (kind, VDS, BS, LSS) -> (C, P, S, T)
    #[rustfmt::skip]
    let cases = [
        // 512-byte sectors, 32 MiB blocks: C = 2^23·512 / 2^25 = 128.
        (Dynamic, 64 * MIB, 32 << 20, 512, (128, 2, 1, 2)),
        // P = C exactly: no SB entry at all.
        (Dynamic, 128 * 32 * MIB, 32 << 20, 512, (128, 128, 1, 128)),
        // P = C + 1: one SB entry sits between block C-1 and block C.
        (Dynamic, 129 * 32 * MIB, 32 << 20, 512, (128, 129, 2, 130)),
        // 4096-byte sectors, 1 MiB blocks: C = 2^23·4096 / 2^20 = 32768.
        (Fixed, 3 * MIB, 1 << 20, 4096, (32768, 3, 1, 3)),
        // 512-byte sectors, 256 MiB blocks: C = 16 (the minimum).
        (Dynamic, 17 * 256 * MIB, 256 << 20, 512, (16, 17, 2, 18)),
        // Differencing: every chunk complete, T = S·(C+1).
        (Differencing, 64 * MIB, 32 << 20, 512, (128, 2, 1, 129)),
        (Differencing, 17 * 256 * MIB, 256 << 20, 512, (16, 17, 2, 34)),
        // Empty disk: T = 0.
        (Dynamic, 0, 32 << 20, 512, (128, 0, 0, 0)),
    ];
    for (kind, vds, bs, lss, (c, p, s, t)) in cases {
        let b = ImageBuilder::new(kind, vds)
            .block_size(bs)
            .logical_sector(lss);
        let l = b.build().layout;
        let got = (
            l.chunk_ratio,
            l.payload_blocks,
            l.bitmap_blocks,
            l.bat_entries,
        );
        assert_eq!(got, (c, p, s, t), "{kind:?} VDS={vds} BS={bs} LSS={lss}");
        assert!(l.bat_length >= 8 * t && l.bat_length % MIB == 0 && l.bat_length > 0);
    }
}

#[test]
fn bat_interleave_maps_blocks_and_chunks() {
    let l = ImageBuilder::dynamic(129 * 32 * MIB).build().layout; // C = 128
    assert_eq!(l.payload_entry_index(0), 0);
    assert_eq!(l.payload_entry_index(127), 127);
    assert_eq!(l.bitmap_entry_index(0), 128);
    assert_eq!(l.payload_entry_index(128), 129);
    assert_eq!(l.bitmap_entry_index(1), 257);
}

#[test]
fn dynamic_layout_is_as_documented() {
    let img = ImageBuilder::dynamic(100 * MIB)
        .write(40 * MIB, b"x")
        .allocate_block(3)
        .build();
    let l = &img.layout;
    assert_eq!((l.log_offset, l.log_length), (MIB, MIB));
    assert_eq!((l.metadata_offset, l.metadata_length), (2 * MIB, MIB));
    assert_eq!((l.bat_offset, l.bat_length), (3 * MIB, MIB));
    // Blocks in BAT order right after the BAT, each a whole block long.
    let bs = 32 * MIB;
    assert_eq!(
        l.blocks.iter().map(|(&k, &o)| (k, o)).collect::<Vec<_>>(),
        [(1, 4 * MIB), (3, 4 * MIB + bs)]
    );
    assert_eq!(img.len, 4 * MIB + 2 * bs);
    assert_eq!(img.bat_entry(0), bat::NOT_PRESENT);
    assert_eq!(img.bat_entry(1), bat::entry(bat::FULLY_PRESENT, 4));
    assert_eq!(img.bat_entry(2), bat::NOT_PRESENT);
    assert_eq!(img.bat_entry(3), bat::entry(bat::FULLY_PRESENT, 4 + 32));
    assert_eq!(img.read(4 * MIB + 8 * MIB, 2), b"x\0");
}

#[test]
fn fixed_disk_allocates_every_block() {
    let img = ImageBuilder::fixed(5 * MIB + 512)
        .block_size(1 << 20)
        .build();
    let l = &img.layout;
    assert_eq!(l.payload_blocks, 6);
    for k in 0..6 {
        assert_eq!(img.bat_entry(k), bat::entry(bat::FULLY_PRESENT, 4 + k));
    }
    // The last, partial block is still whole in the file.
    assert_eq!(img.len, 4 * MIB + 6 * MIB);
    let params = img.read(l.item(&ITEM_FILE_PARAMETERS).data_offset, 8);
    assert_eq!(get_u32(&params, 4), meta::LEAVE_BLOCK_ALLOCATED);
}

// ---------------------------------------------------------------------------------------
// Header section and metadata, decoded by hand.

/// CRC-32C bit by bit (reflected polynomial 0x82F63B78), independent of the crc32c crate.
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Whether the checksum at byte 4 of `span` matches, by the independent CRC.
fn checksum_ok(span: &[u8]) -> bool {
    let mut zeroed = span.to_vec();
    zeroed[4..8].fill(0);
    crc32c_bitwise(&zeroed) == get_u32(span, 4)
}

#[test]
fn checksums_verify_with_independent_crc() {
    assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c_bitwise(&[0; 4096]), 0x98F9_4189);
    let img = ImageBuilder::dynamic(64 * MIB).build();
    for copy in 1..=2 {
        assert!(checksum_ok(
            &img.read(img.layout.header_offset(copy), HEADER_SIZE)
        ));
        assert!(checksum_ok(
            &img.read(img.layout.region_table_offset(copy), TABLE_SIZE)
        ));
    }
}

#[test]
fn header_section_fields() {
    let img = ImageBuilder::dynamic(64 * MIB).creator("unit ✓").build();
    let fti = img.read(0, 520);
    assert_eq!(&fti[..8], b"vhdxfile");
    let units: Vec<u16> = fti[8..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let end = units.iter().position(|&u| u == 0).unwrap();
    assert_eq!(String::from_utf16(&units[..end]).unwrap(), "unit ✓");

    let (h1, h2) = (img.read(0x10000, 4096), img.read(0x20000, 4096));
    for h in [&h1, &h2] {
        assert_eq!(&h[..4], b"head");
        assert_ne!(&h[16..32], &[0; 16], "FileWriteGuid");
        assert_ne!(&h[32..48], &[0; 16], "DataWriteGuid");
        assert_ne!(&h[16..32], &h[32..48]);
        assert_eq!(&h[48..64], &[0; 16], "LogGuid");
        assert_eq!(
            (get_u16(h, 64), get_u16(h, 66)),
            (0, 1),
            "LogVersion, Version"
        );
        assert_eq!((get_u32(h, 68), get_u64(h, 72)), (1 << 20, 1 << 20));
        assert!(h[80..].iter().all(|&b| b == 0));
    }
    assert_eq!(get_u64(&h2, 8), get_u64(&h1, 8) + 1, "header 2 is current");
    assert_eq!(&h1[16..80], &h2[16..80]);

    let (t1, t2) = (img.read(0x30000, 65536), img.read(0x40000, 65536));
    assert_eq!(t1, t2);
    assert_eq!(
        (&t1[..4], get_u32(&t1, 8), get_u32(&t1, 12)),
        (&b"regi"[..], 2, 0)
    );
    let entry = |n: usize| -> (Guid, u64, u32, u32) {
        let e = &t1[16 + 32 * n..48 + 32 * n];
        (
            e[..16].try_into().unwrap(),
            get_u64(e, 16),
            get_u32(e, 24),
            get_u32(e, 28),
        )
    };
    assert_eq!(entry(0), (REGION_BAT, 3 << 20, 1 << 20, 1));
    assert_eq!(entry(1), (REGION_METADATA, 2 << 20, 1 << 20, 1));
}

#[test]
fn metadata_items_have_catalogue_flags_and_values() {
    let img = ImageBuilder::dynamic(100 * MIB)
        .block_size(8 << 20)
        .logical_sector(4096)
        .physical_sector(512)
        .build();
    let region = img.read(img.layout.metadata_offset, MIB as usize);
    assert_eq!(&region[..8], b"metadata");
    assert_eq!(get_u16(&region, 10), 5);
    assert!(region[8..10].iter().chain(&region[12..32]).all(|&b| b == 0));
    let mut items = BTreeMap::new();
    for n in 0..5 {
        let e = &region[32 + 32 * n..64 + 32 * n];
        let (offset, length) = (get_u32(e, 16) as usize, get_u32(e, 20) as usize);
        assert!(offset >= 65536 && get_u32(e, 28) == 0);
        let id: Guid = e[..16].try_into().unwrap();
        items.insert(
            id,
            (get_u32(e, 24), region[offset..offset + length].to_vec()),
        );
    }
    let disk = meta::IS_VIRTUAL_DISK | meta::IS_REQUIRED;
    let mut params = (8u32 << 20).to_le_bytes().to_vec();
    params.extend(0u32.to_le_bytes());
    assert_eq!(items[&ITEM_FILE_PARAMETERS], (meta::IS_REQUIRED, params));
    assert_eq!(
        items[&ITEM_VIRTUAL_DISK_SIZE],
        (disk, (100 * MIB).to_le_bytes().to_vec())
    );
    assert_eq!(
        items[&ITEM_VIRTUAL_DISK_ID],
        (disk, img.layout.virtual_disk_id.to_vec())
    );
    assert_eq!(
        items[&ITEM_LOGICAL_SECTOR_SIZE],
        (disk, 4096u32.to_le_bytes().to_vec())
    );
    assert_eq!(
        items[&ITEM_PHYSICAL_SECTOR_SIZE],
        (disk, 512u32.to_le_bytes().to_vec())
    );
}

#[test]
fn guid_text_round_trips() {
    let text = "2DC27766-F623-4200-9D64-115E9BFD4A08";
    assert_eq!(guid(text), REGION_BAT);
    assert_eq!(guid_text(&REGION_BAT), text.to_lowercase());
    assert_eq!(
        guid_braced(&REGION_BAT),
        format!("{{{}}}", text.to_lowercase())
    );
    assert_ne!(pseudo_guid(1), pseudo_guid(2));
}

// ---------------------------------------------------------------------------------------
// Differencing disks (qemu cannot open them: checked against the catalogue here).

/// Decodes the parent locator item: (type, key/value pairs).
fn decode_locator(item: &[u8]) -> (Guid, Vec<(String, String)>) {
    let utf16 = |at: u32, len: u16| -> String {
        let b = &item[at as usize..at as usize + len as usize];
        String::from_utf16(
            &b.chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    };
    assert_eq!(get_u16(item, 16), 0, "reserved");
    let count = get_u16(item, 18) as usize;
    let pairs = (0..count)
        .map(|n| {
            let e = &item[20 + 12 * n..32 + 12 * n];
            let (ko, vo, kl, vl) = (get_u32(e, 0), get_u32(e, 4), get_u16(e, 8), get_u16(e, 10));
            assert!(ko > 0 && vo > 0 && kl > 0 && vl > 0);
            (utf16(ko, kl), utf16(vo, vl))
        })
        .collect();
    (item[..16].try_into().unwrap(), pairs)
}

#[test]
fn differencing_disk_structures() {
    let lss = 512u64;
    let bs = 32 * MIB; // C = 128, 65536 sectors per block
    let img = ImageBuilder::differencing(200 * bs)
        .write(5 * bs, b"full")
        // Block 130 (chunk 1): sectors 3..5 present.
        .write_sectors(130 * bs + 3 * lss, &[0xAB; 1024])
        .build();
    let l = &img.layout;
    assert_eq!(
        (l.chunk_ratio, l.payload_blocks, l.bitmap_blocks),
        (128, 200, 2)
    );
    assert_eq!(l.bat_entries, 2 * 129);

    // File Parameters: HasParent; parent locator item with IsRequired only.
    let params = img.read(l.item(&ITEM_FILE_PARAMETERS).data_offset, 8);
    assert_eq!(get_u32(&params, 4), meta::HAS_PARENT);
    let loc = l.item(&ITEM_PARENT_LOCATOR);
    assert_eq!(loc.flags, meta::IS_REQUIRED);
    let (kind, pairs) = decode_locator(&img.read(loc.data_offset, loc.length as usize));
    assert_eq!(kind, LOCATOR_TYPE_VHDX);
    let linkage = guid_braced(&l.parent_linkage.unwrap());
    assert_eq!(pairs[0], ("parent_linkage".into(), linkage.clone()));
    assert!(linkage.starts_with('{') && linkage.len() == 38 && linkage == linkage.to_lowercase());
    assert_eq!(pairs[1].0, "relative_path");

    // Layout in BAT order: block 5, then chunk 1's block 130 and its bitmap block.
    let after_bat = l.bat_offset + l.bat_length;
    assert_eq!(l.block_offset(5), after_bat);
    assert_eq!(l.block_offset(130), after_bat + bs);
    assert_eq!(l.bitmap_offset(1), after_bat + 2 * bs);
    assert_eq!(img.len, after_bat + 2 * bs + MIB);
    assert_eq!(
        img.bat_entry(5),
        bat::entry(bat::FULLY_PRESENT, after_bat / MIB)
    );
    assert_eq!(
        img.bat_entry(130 + 1),
        bat::entry(bat::PARTIALLY_PRESENT, after_bat / MIB + 32)
    );
    assert_eq!(
        img.bat_entry(128),
        bat::SB_NOT_PRESENT,
        "chunk 0 has no partial block"
    );
    assert_eq!(
        img.bat_entry(257),
        bat::entry(bat::SB_PRESENT, after_bat / MIB + 64)
    );

    // Sector bitmap: block 130 is slot 2 of chunk 1; its slice starts at byte
    // (130 mod 128)·BS/(8·LSS) = 2·8192; sectors 3 and 4 are bits 3 and 4 of that byte.
    let bitmap = img.read(l.bitmap_offset(1), MIB as usize);
    let slice = 2 * (bs / (8 * lss)) as usize;
    assert_eq!(bitmap[slice], 0b0001_1000);
    assert_eq!(bitmap.iter().filter(|&&b| b != 0).count(), 1);
    assert_eq!(img.read(l.block_offset(130) + 3 * lss, 2), [0xAB, 0xAB]);
}

#[test]
fn parent_locator_can_be_replaced() {
    let parent = ImageBuilder::dynamic(64 * MIB).seed(7).build();
    let img = ImageBuilder::differencing(64 * MIB)
        .parent_linkage(parent.layout.data_write_guid)
        .parent_locator(&[
            ("parent_linkage", "{x}"),
            ("volume_path", r"\\?\Volume{1}\p.vhdx"),
        ])
        .build();
    assert_eq!(
        img.layout.parent_linkage,
        Some(parent.layout.data_write_guid)
    );
    let loc = img.layout.item(&ITEM_PARENT_LOCATOR);
    let (_, pairs) = decode_locator(&img.read(loc.data_offset, loc.length as usize));
    assert_eq!(pairs.len(), 2);
    assert_eq!(
        pairs[1],
        ("volume_path".into(), r"\\?\Volume{1}\p.vhdx".into())
    );

    // The same encoding, as an extra item of a disk without a parent.
    let locator = parent_locator_item(&[("parent_linkage", "{x}")]);
    let img = ImageBuilder::dynamic(64 * MIB)
        .metadata_item(ITEM_PARENT_LOCATOR, meta::IS_REQUIRED, &locator)
        .build();
    let loc = img.layout.item(&ITEM_PARENT_LOCATOR);
    let (kind, pairs) = decode_locator(&img.read(loc.data_offset, loc.length as usize));
    assert_eq!(kind, LOCATOR_TYPE_VHDX);
    assert_eq!(pairs, [("parent_linkage".to_string(), "{x}".to_string())]);
}

// ---------------------------------------------------------------------------------------
// The sparse image and its corruption hooks.

#[test]
fn readers_agree_with_to_vec() {
    let mut img = ImageBuilder::dynamic(8 * MIB)
        .block_size(1 << 20)
        .write(MIB + 5, b"abc")
        .build();
    img.patch(img.len - 2, b"tail-past-end");
    let bytes = img.to_vec();
    assert_eq!(bytes.len() as u64, img.len);
    let sparse = img.reader();
    let mut buf = vec![0; bytes.len() + 100];
    assert_eq!(sparse.read_at(0, &mut buf).unwrap(), bytes.len());
    assert_eq!(&buf[..bytes.len()], &bytes[..]);
    assert_eq!(img.read_at(0, &mut buf).unwrap(), bytes.len());
    assert_eq!(&buf[..bytes.len()], &bytes[..]);
    assert_eq!(&bytes[bytes.len() - 2..], b"ta");

    let dir = TempDir::new("readers");
    let path = dir.path.join("img.vhdx");
    img.write_to(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn hooks_patch_and_reseal() {
    let mut img = ImageBuilder::dynamic(64 * MIB).build();
    img.edit_header(1, |h| put_u16(h, hdr::VERSION, 2));
    img.header_mut(2, |h| h[hdr::RESERVED] = 1);
    let (h1, h2) = (img.read(0x10000, 4096), img.read(0x20000, 4096));
    assert_eq!(get_u16(&h1, hdr::VERSION), 2);
    assert!(checksum_ok(&h1), "edit_header reseals");
    assert!(!checksum_ok(&h2), "header_mut does not");
    img.reseal_header(2);
    assert!(checksum_ok(&img.read(0x20000, 4096)));

    img.edit_region_tables(|t| put_u32(t, rgn::RESERVED, 9));
    for copy in 1..=2 {
        let t = img.read(img.layout.region_table_offset(copy), TABLE_SIZE);
        assert!(checksum_ok(&t) && get_u32(&t, rgn::RESERVED) == 9);
    }

    img.metadata_item_mut(&ITEM_FILE_PARAMETERS, |d| put_u32(d, 0, 3 << 20));
    assert_eq!(
        img.read_u32(img.layout.item(&ITEM_FILE_PARAMETERS).data_offset),
        3 << 20
    );
    img.metadata_entry_mut(&ITEM_VIRTUAL_DISK_ID, |e| put_u32(e, meta::E_FLAGS, 0));
    assert_eq!(
        img.read_u32(img.layout.item(&ITEM_VIRTUAL_DISK_ID).entry_offset + 24),
        0
    );

    img.set_bat_entry(0, 6 | (999 << 20));
    img.set_payload_entry(1, bat::entry(bat::ZERO, 0));
    assert_eq!((img.bat_entry(0), img.bat_entry(1)), (6 | (999 << 20), 2));
}

#[test]
fn metadata_items_can_be_added_and_omitted() {
    let user = pseudo_guid(99);
    let img = ImageBuilder::dynamic(64 * MIB)
        .omit_metadata_item(ITEM_VIRTUAL_DISK_ID)
        .metadata_item(user, meta::IS_USER, b"hello")
        .build();
    let ids: Vec<Guid> = img.layout.items.iter().map(|i| i.id).collect();
    assert_eq!(ids.len(), 5);
    assert!(!ids.contains(&ITEM_VIRTUAL_DISK_ID));
    let item = img.layout.item(&user);
    assert_eq!(img.read(item.data_offset, 5), b"hello");
    assert_eq!(
        get_u16(&img.read(img.layout.metadata_offset, 32), meta::ENTRY_COUNT),
        5
    );
}

// ---------------------------------------------------------------------------------------
// Log entries, decoded by hand.

#[test]
fn log_entry_encoding_matches_catalogue() {
    let img = ImageBuilder::dynamic(64 * MIB).build();
    let sector = pattern(4096, 0x5A);
    let defaults = img.log_entry(&[]);
    assert_eq!(defaults.sequence, LOG_SEQUENCE);
    assert_eq!((defaults.tail, defaults.log_guid), (0, img.layout.log_guid));
    assert_eq!(
        (defaults.flushed_file_offset, defaults.last_file_offset),
        (img.len, img.len)
    );
    let entry = LogEntry {
        sequence: 0x0000_0007_0000_0009,
        tail: 0x3000,
        log_guid: pseudo_guid(42),
        flushed_file_offset: 5 * MIB,
        last_file_offset: 6 * MIB,
        descriptors: vec![],
    }
    .data(3 * MIB, sector.clone())
    .zero(3 * MIB + 4096, 8192);
    let e = entry.encode();
    assert_eq!(e.len(), 2 * 4096, "one descriptor sector + one data sector");
    assert!(checksum_ok(&e));
    assert_eq!(&e[..4], b"loge");
    assert_eq!(
        (get_u32(&e, 8), get_u32(&e, 12)),
        (8192, 0x3000),
        "EntryLength, Tail"
    );
    assert_eq!(get_u64(&e, 16), entry.sequence);
    assert_eq!(
        (get_u32(&e, 24), get_u32(&e, 28)),
        (2, 0),
        "DescriptorCount, Reserved"
    );
    assert_eq!(&e[32..48], &pseudo_guid(42));
    assert_eq!((get_u64(&e, 48), get_u64(&e, 56)), (5 * MIB, 6 * MIB));

    let (d0, d1) = (&e[64..96], &e[96..128]);
    assert_eq!(&d0[..4], b"desc");
    assert_eq!(
        (get_u64(d0, 16), get_u64(d0, 24)),
        (3 * MIB, entry.sequence)
    );
    assert_eq!(&d1[..4], b"zero");
    assert_eq!(get_u32(d1, 4), 0);
    let zero = (get_u64(d1, 8), get_u64(d1, 16), get_u64(d1, 24));
    assert_eq!(zero, (8192, 3 * MIB + 4096, entry.sequence));
    assert!(
        e[128..4096].iter().all(|&b| b == 0),
        "unused descriptor slots"
    );

    let ds = &e[4096..];
    assert_eq!(&ds[..4], b"data");
    assert_eq!(
        (get_u32(ds, 4), get_u32(ds, 4092)),
        (7, 9),
        "SequenceHigh, SequenceLow"
    );
    // Leading bytes (descriptor) ‖ data sector bytes 8..4092 ‖ trailing bytes (descriptor).
    let rebuilt = [&d0[8..16], &ds[8..4092], &d0[4..8]].concat();
    assert_eq!(rebuilt, sector);
}

#[test]
fn log_descriptor_sectors_hold_126_then_128() {
    let img = ImageBuilder::dynamic(64 * MIB).build();
    let zeros = |n: usize| {
        (0..n).fold(img.log_entry(&[]), |e, i| {
            e.zero(4 * MIB + 4096 * i as u64, 4096)
        })
    };
    assert_eq!(zeros(0).encode().len(), 4096);
    assert_eq!(zeros(126).encode().len(), 4096);
    assert_eq!(zeros(127).encode().len(), 8192);
    assert_eq!(zeros(254).encode().len(), 8192);
    assert_eq!(zeros(255).encode().len(), 3 * 4096);
}

#[test]
fn log_entries_from_writes_and_wrapping() {
    let mut img = ImageBuilder::dynamic(64 * MIB).build();
    let bat = img.layout.bat_offset;
    // Two writes into one BAT sector and one into the next: two data descriptors.
    let entry = img.log_entry(&[(bat, &[1]), (bat + 8, &[2]), (bat + 4096, &[3])]);
    let sectors: Vec<(u64, [u8; 3])> = entry
        .descriptors
        .iter()
        .map(|d| match d {
            Descriptor::Data { file_offset, data } => (*file_offset, [data[0], data[8], data[9]]),
            Descriptor::Zero { .. } => unreachable!(),
        })
        .collect();
    assert_eq!(sectors, [(bat, [1, 2, 0]), (bat + 4096, [3, 0, 0])]);

    let places = img.write_log(std::slice::from_ref(&entry));
    assert_eq!(places[0].file_offset, img.layout.log_offset);
    assert_eq!(places[0].length, 3 * 4096);
    assert_eq!(&img.read(img.layout.log_offset, 4), b"loge");
    for copy in 1..=2 {
        let h = img.read(img.layout.header_offset(copy), HEADER_SIZE);
        assert!(checksum_ok(&h) && h[48..64] == img.layout.log_guid);
    }
    assert_eq!(img.bat_entry(0), 0, "replay pending: the file is unchanged");
    img.apply_log_entry(&entry);
    assert_eq!(
        (img.bat_entry(0), img.bat_entry(1), img.bat_entry(512)),
        (1, 2, 3)
    );

    // An entry placed 4 KiB before the ring end continues at the ring start.
    let at = img.layout.log_length - 4096;
    let place = img.put_log_entry(at, &entry);
    let bytes = entry.encode();
    assert_eq!(img.read(img.layout.log_offset + at, 4096), &bytes[..4096]);
    assert_eq!(img.read(img.layout.log_offset, 8192), &bytes[4096..]);
    let file_offset = img.layout.log_offset + at;
    assert_eq!(
        place,
        LogPlace {
            ring_offset: at,
            file_offset,
            length: 3 * 4096
        }
    );
}

#[test]
fn log_raw_overrides_padding_tearing_and_sequences() {
    let mut img = ImageBuilder::dynamic(64 * MIB).build();
    let e = img.log_entry(&[(img.layout.bat_offset, &[1])]);
    let plain = e.encode();
    assert_eq!((e.length(), e.data_sector(0)), (8192, 4096));
    assert_eq!(plain.len() as u64, e.length());

    // A raw override keeps the entry CRC-valid.
    let odd = e.encode_with(|b| put_u32(b, log::RESERVED, 7));
    assert!(checksum_ok(&odd) && get_u32(&odd, log::RESERVED) == 7);
    assert_eq!(odd[8..28], plain[8..28]);

    // Padding: EntryLength covers the extra zero sectors, the content is unchanged.
    let padded = e.encode_padded(2);
    assert_eq!(padded.len(), plain.len() + 2 * 4096);
    assert_eq!(get_u32(&padded, log::ENTRY_LENGTH) as usize, padded.len());
    assert!(checksum_ok(&padded));
    assert_eq!(padded[12..plain.len()], plain[12..]);
    assert!(padded[plain.len()..].iter().all(|&b| b == 0));

    // Torn: header intact, checksum wrong.
    let torn = e.encode_torn();
    assert_eq!(torn[..4096], plain[..4096]);
    assert!(!checksum_ok(&torn));

    // A sequence from 4 KiB before the ring end: the first entry wraps, the second follows.
    let ring = img.layout.log_length;
    let start = ring - 0x1000;
    let (written, places) = img.write_sequence(start, 9, &[e.clone(), e.clone()]);
    assert_eq!(
        written
            .iter()
            .map(|w| (w.sequence, w.tail))
            .collect::<Vec<_>>(),
        [(9, start as u32), (10, start as u32)]
    );
    assert_eq!(
        places.iter().map(|p| p.ring_offset).collect::<Vec<_>>(),
        [start, 0x1000]
    );
    assert_eq!(img.read_log(start, 8192), written[0].encode());
    assert_eq!(
        img.read(img.layout.log_offset, 0x1000),
        written[0].encode()[4096..]
    );
    assert_eq!(img.read_log(0x1000, 8192), written[1].encode());
    for copy in 1..=2 {
        let h = img.read(img.layout.header_offset(copy), HEADER_SIZE);
        assert!(checksum_ok(&h) && h[48..64] == img.layout.log_guid);
    }
}

// ---------------------------------------------------------------------------------------
// qemu-img as an independent reader.

/// A directory under the system temp dir, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("vhdx-check-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Whether `qemu-img` can be run; prints why the calling test is skipped when not.
fn have_qemu_img(test: &str) -> bool {
    let ok = Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED {test}: qemu-img not found on PATH (install qemu-utils)");
    }
    ok
}

/// Runs `qemu-img` with `args`; returns (success, stdout + stderr).
fn qemu_img(args: &[&str]) -> (bool, String) {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("run qemu-img");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp path is UTF-8")
}

/// Writes `img` to disk, asserts that `qemu-img check` finds no errors and that
/// `qemu-img convert -O raw` yields exactly `writes` over zeros at their virtual offsets.
fn assert_qemu_reads(name: &str, img: &Built, writes: &[(u64, Vec<u8>)]) {
    let dir = TempDir::new(name);
    let vhdx = dir.path.join("image.vhdx");
    img.write_to(&vhdx).unwrap();
    assert_qemu_file_reads(name, &vhdx, img.layout.virtual_size, writes);
}

/// [`assert_qemu_reads`] for an image file already on disk.
fn assert_qemu_file_reads(name: &str, vhdx: &Path, virtual_size: u64, writes: &[(u64, Vec<u8>)]) {
    let (ok, out) = qemu_img(&["check", "-f", "vhdx", path_str(vhdx)]);
    assert!(
        ok && out.contains("No errors were found"),
        "{name}: qemu-img check: {out}"
    );

    let (ok, out) = qemu_img(&["info", "-f", "vhdx", "--output=json", path_str(vhdx)]);
    assert!(ok, "{name}: qemu-img info: {out}");
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["virtual-size"].as_u64(), Some(virtual_size), "{name}");

    let raw = vhdx.with_extension("raw");
    let (ok, out) = qemu_img(&[
        "convert",
        "-f",
        "vhdx",
        "-O",
        "raw",
        path_str(vhdx),
        path_str(&raw),
    ]);
    assert!(ok, "{name}: qemu-img convert: {out}");
    assert_raw_equals(name, &raw, virtual_size, writes);
}

/// Checks a raw disk file against zeros overlaid by `writes`: each written range is read
/// back directly, and `qemu-img compare` with a sparse file of the expected contents
/// covers the zeros everywhere else (it skips holes; reading gigabytes of them is slow).
fn assert_raw_equals(name: &str, raw: &Path, size: u64, writes: &[(u64, Vec<u8>)]) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::File::open(raw).unwrap();
    assert_eq!(file.metadata().unwrap().len(), size, "{name}: raw size");
    let expected_path = raw.with_file_name("expected.raw");
    let mut expected = std::fs::File::create(&expected_path).unwrap();
    expected.set_len(size).unwrap();
    for (offset, data) in writes {
        let mut got = vec![0; data.len()];
        file.seek(SeekFrom::Start(*offset)).unwrap();
        file.read_exact(&mut got).unwrap();
        assert!(
            got == *data,
            "{name}: data written at virtual offset {offset:#x} differs"
        );
        expected.seek(SeekFrom::Start(*offset)).unwrap();
        expected.write_all(data).unwrap();
    }
    drop(expected);
    let (ok, out) = qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "raw",
        path_str(raw),
        path_str(&expected_path),
    ]);
    assert!(ok && out.contains("Images are identical"), "{name}: {out}");
}

/// A recognisable pattern: every byte depends on its position and on `tag`.
fn pattern(len: usize, tag: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8 ^ tag)
        .collect()
}

/// Writes spanning block starts, block ends, a block boundary and the disk end.
fn sample_writes(vds: u64, bs: u64, lss: u64) -> Vec<(u64, Vec<u8>)> {
    vec![
        (0, pattern(lss as usize, 1)),
        (bs - 1000, pattern(3000, 2)), // crosses from block 0 into block 1
        (2 * bs + 12345, pattern(777, 3)),
        (vds - 2 * lss, pattern(2 * lss as usize, 4)), // last sectors of the disk
    ]
}

fn build_with(builder: ImageBuilder, writes: &[(u64, Vec<u8>)]) -> Built {
    writes
        .iter()
        .fold(builder, |b, (offset, data)| b.write(*offset, data))
        .build()
}

/// QEMU (up to at least 10.0) reads only 512-byte logical sectors and refuses 4096 with
/// ENOTSUP. For a 4096-sector image whose disk fits in one chunk even at 512-byte sectors
/// (P ≤ C/8, so no sector-bitmap slot moves), relabelling the sector size to 512 changes
/// nothing else QEMU reads; that lets it check the rest of the image.
fn relabel_sectors_for_qemu(name: &str, img: &Built) -> Built {
    let mut img = img.clone();
    if img.layout.logical_sector == 4096 {
        let dir = TempDir::new(name);
        let vhdx = dir.path.join("image.vhdx");
        img.write_to(&vhdx).unwrap();
        let (ok, out) = qemu_img(&["check", "-f", "vhdx", path_str(&vhdx)]);
        assert!(
            !ok && out.contains("Operation not supported"),
            "{name}: {out}"
        );
        assert!(img.layout.payload_blocks <= img.layout.chunk_ratio / 8);
        img.metadata_item_mut(&ITEM_LOGICAL_SECTOR_SIZE, |d| put_u32(d, 0, 512));
    }
    img
}

#[test]
fn qemu_accepts_dynamic_and_fixed_images() {
    if !have_qemu_img("qemu_accepts_dynamic_and_fixed_images") {
        return;
    }
    for kind in [DiskKind::Dynamic, DiskKind::Fixed] {
        for bs in [1u64 << 20, 32 << 20, 256 << 20] {
            for lss in [512u64, 4096] {
                // 3.5 blocks: the last block is partial (VDS not a multiple of BS).
                let vds = 3 * bs + bs / 2;
                let builder = ImageBuilder::new(kind, vds)
                    .block_size(bs as u32)
                    .logical_sector(lss as u32)
                    .physical_sector(4096)
                    .creator("selftest");
                let writes = sample_writes(vds, bs, lss);
                let img = build_with(builder, &writes);
                let name = format!("{kind:?}-bs{}M-lss{lss}", bs >> 20);
                assert_qemu_reads(&name, &relabel_sectors_for_qemu(&name, &img), &writes);
            }
        }
    }
}

#[test]
fn qemu_reads_blocks_across_the_sector_bitmap_slot() {
    if !have_qemu_img("qemu_reads_blocks_across_the_sector_bitmap_slot") {
        return;
    }
    // BS 256 MiB, LSS 512: C = 16, so block 16 is at BAT index 17, after chunk 0's SB slot.
    let bs = 256 * MIB;
    let vds = 17 * bs;
    let writes = vec![(15 * bs + 7, pattern(4096, 5)), (16 * bs, pattern(4096, 6))];
    let img = build_with(ImageBuilder::dynamic(vds).block_size(bs as u32), &writes);
    assert_eq!(img.layout.bat_entries, 18);
    assert_eq!(img.bat_entry(16), bat::SB_NOT_PRESENT);
    assert_ne!(img.bat_entry(17), 0);
    assert_qemu_reads("sb-slot", &img, &writes);
}

#[test]
fn qemu_reads_differencing_layout_with_has_parent_cleared() {
    if !have_qemu_img("qemu_reads_differencing_layout_with_has_parent_cleared") {
        return;
    }
    // QEMU refuses HasParent images, and any image with a parent locator item (its
    // "all items present" test is an equality that the locator bit breaks). With the flag
    // cleared and the locator entry (the last one) dropped from the count, it reads the rest
    // as a dynamic disk — its T is smaller than S·(C+1), so the longer BAT is acceptable —
    // which checks the region table, metadata, two-chunk BAT placement and FULLY_PRESENT
    // blocks of a differencing image. Partial blocks need a parent: not checkable here.
    let bs = 1 << 20;
    let vds = 4100 * MIB; // C = 4096 at LSS 512: two chunks
    let writes = vec![(7, pattern(100, 7)), (4097 * MIB + 3, pattern(5000, 8))];
    let mut img = build_with(ImageBuilder::differencing(vds).block_size(bs), &writes);
    assert_eq!(img.layout.bat_entries, 2 * 4097);
    let dir = TempDir::new("diff-refused");
    let vhdx = dir.path.join("child.vhdx");
    img.write_to(&vhdx).unwrap();
    let (ok, out) = qemu_img(&["check", "-f", "vhdx", path_str(&vhdx)]);
    assert!(
        !ok,
        "qemu-img is expected to refuse a differencing image: {out}"
    );

    img.metadata_item_mut(&ITEM_FILE_PARAMETERS, |d| put_u32(d, 4, 0));
    assert_eq!(img.layout.items[5].id, ITEM_PARENT_LOCATOR);
    img.metadata_table_mut(|t| put_u16(t, meta::ENTRY_COUNT, 5));
    assert_qemu_reads("diff-as-dynamic", &img, &writes);
}

#[test]
fn qemu_detects_corruptions_made_with_the_hooks() {
    if !have_qemu_img("qemu_detects_corruptions_made_with_the_hooks") {
        return;
    }
    // Negative controls: the check above would catch a broken image.
    let base = ImageBuilder::dynamic(64 * MIB).write(0, b"data").build();
    let mut bad_crc = base.clone();
    bad_crc.header_mut(1, |h| h[hdr::RESERVED] = 1);
    bad_crc.header_mut(2, |h| h[hdr::RESERVED] = 1);
    let mut past_eof = base.clone();
    past_eof.set_payload_entry(0, bat::entry(bat::FULLY_PRESENT, 999));
    let mut resealed = base.clone();
    resealed.edit_header(2, |h| put_u16(h, hdr::VERSION, 2)); // QEMU falls back to header 1
    for (name, img, accepted) in [
        ("bad-crc", bad_crc, false),
        ("past-eof", past_eof, false),
        ("v2", resealed, true),
    ] {
        let dir = TempDir::new(name);
        let vhdx = dir.path.join("image.vhdx");
        img.write_to(&vhdx).unwrap();
        let (ok, out) = qemu_img(&["check", "-f", "vhdx", path_str(&vhdx)]);
        let clean = ok && out.contains("No errors were found");
        assert_eq!(clean, accepted, "{name}: qemu-img check: {out}");
    }
}

#[test]
fn qemu_replays_a_pending_log() {
    if !have_qemu_img("qemu_replays_a_pending_log") {
        return;
    }
    // 1 MiB blocks, 600 blocks: BAT entries of blocks 0..511 in the first 4 KiB BAT sector,
    // block 520's in the second.
    let writes = vec![
        (7, pattern(100, 9)),
        (MIB + 5, pattern(200, 10)),
        (520 * MIB, pattern(300, 11)),
    ];
    let mut img = build_with(
        ImageBuilder::dynamic(600 * MIB).block_size(1 << 20),
        &writes,
    );
    let l = img.layout.clone();
    assert_eq!(
        l.bat_entry_offset(l.payload_entry_index(520)),
        l.bat_offset + 4160
    );

    // The file as after a crash: block 1's data written, its BAT entry not yet; the log
    // maps block 1 (data descriptor) and unmaps block 520 (zero descriptor over sector 2).
    let block1 = img.bat_entry(1);
    img.set_payload_entry(1, bat::NOT_PRESENT);
    let entry = img
        .log_entry(&[(l.bat_entry_offset(1), &block1.to_le_bytes())])
        .zero(l.bat_offset + 4096, 4096);
    img.write_log(&[entry]);

    let dir = TempDir::new("log-replay");
    let vhdx = dir.path.join("image.vhdx");
    img.write_to(&vhdx).unwrap();
    // A read-only open sees a valid, pending log (an invalid one would be ignored).
    let (ok, out) = qemu_img(&["info", "-f", "vhdx", path_str(&vhdx)]);
    assert!(
        !ok && out.contains("log that needs to be replayed"),
        "qemu-img info: {out}"
    );
    let (ok, out) = qemu_img(&["check", "-r", "all", "-f", "vhdx", path_str(&vhdx)]);
    assert!(ok, "qemu-img check -r all: {out}");
    // Replayed: block 1 reads its data, block 520 reads zeros.
    assert_qemu_file_reads("log-replay", &vhdx, l.virtual_size, &writes[..2]);
}
