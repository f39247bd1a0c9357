//! LOG tests of one entry: the entry header, its descriptors and data sectors.

use super::*;

// ---- entry header predicates --------------------------------------------------------------

#[test]
fn log_010_damaged_header_right_after_the_head() {
    let (base, _, head) = dirty();
    let mut junk = b"junk".to_vec();
    junk.resize(4096, 0xEE);
    let mut img = base.clone();
    let after = img.put_log_bytes(head.length, &junk);
    // Far from any head: not reported.
    img.put_log_bytes(0x90000, &junk);
    let r = fires_at(&base, &img, "LOG-010", Info, &[(after, At::Entry)]);
    undisturbed(&img, &r);
    // "data" (a data sector) right after the head is no damaged header.
    let mut data = b"data".to_vec();
    data.resize(4096, 0xEE);
    silent(
        &with(&base, |img| {
            img.put_log_bytes(head.length, &data);
        }),
        "LOG-010",
    );
}

#[test]
fn log_011_bad_entry_length() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let e = stale(&img);
    let ring = img.layout.log_length as u32;
    let places: Vec<LogPlace> = [0, 4097, ring + 4096]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let at = STALE + 0x10000 * i as u64;
            let bytes = e
                .clone()
                .tail(at as u32)
                .encode_with(|b| u32_at(b, log::ENTRY_LENGTH, len));
            img.put_log_bytes(at, &bytes)
        })
        .collect();
    let want: Vec<(LogPlace, At)> = places.iter().map(|p| (*p, At::Entry)).collect();
    let r = fires_at(&base, &img, "LOG-011", Info, &want);
    undisturbed(&img, &r);
}

#[test]
fn log_012_torn_entry() {
    let (base, _, _) = dirty();
    let e = stale(&base);
    let (base, img, p) = dirty_with_stale(&e.encode_torn());
    let r = fires_at(&base, &img, "LOG-012", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
    assert!(!r.has("LOG-065"), "not after the head:{}", listing(&r));
}

#[test]
fn log_013_sequence_number_zero() {
    let e = stale(&dirty().0).seq(0);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(&base, &img, "LOG-013", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_014_entry_of_another_session() {
    let e = stale(&dirty().0).guid(pseudo_guid(77));
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(&base, &img, "LOG-014", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
    assert!(!r.has("LOG-001"), "{}", listing(&r));
}

#[test]
fn log_015_tail_misaligned_or_past_the_ring() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let e = stale(&img);
    let a = img.put_log_entry(STALE, &e.clone().tail(STALE as u32 + 0x123));
    let ring = img.layout.log_length as u32;
    let b = img.put_log_entry(STALE + 0x10000, &e.clone().tail(ring));
    let r = fires_at(
        &base,
        &img,
        "LOG-015",
        Info,
        &[(a, At::Entry), (b, At::Entry)],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_015_in_the_lenient_active_sequence_is_a_warning() {
    // The only entry: the lenient scan replays it, the strict scan finds nothing.
    let mut img = clean();
    let e = zero_block(&img, BLOCK).tail(0x123);
    let p = img.write_log(&[e])[0];
    let r = report(&img);
    expect_at(&r, "LOG-015", Warning, &[(p, At::Entry)]);
    assert_eq!(one(&r, "LOG-070").severity, Warning);
    assert_eq!(one(&r, "LOG-002").severity, Error);
    assert!(
        !r.has("LOG-003"),
        "findings come from the strict scan{}",
        listing(&r)
    );
}

#[test]
fn log_016_reserved_nonzero() {
    let e = stale(&dirty().0);
    let bytes = e.encode_with(|b| u32_at(b, log::RESERVED, 1));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(&base, &img, "LOG-016", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_017_flushed_file_offset_not_mib_aligned() {
    let base = dirty().0;
    let e = stale(&base).file_offsets(base.len + 4096, base.len + MIB);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(&base, &img, "LOG-017", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_018_last_file_offset_not_mib_aligned() {
    let base = dirty().0;
    let e = stale(&base).file_offsets(base.len, base.len + 4096);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(&base, &img, "LOG-018", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_019_entry_too_short_for_its_descriptors() {
    // One data descriptor needs 8 KiB; EntryLength says 4 KiB (the data sector cut off).
    let e = stale(&dirty().0);
    assert_eq!(e.length(), 8192);
    let bytes = e.encode_with(|b| {
        b.truncate(4096);
        u32_at(b, log::ENTRY_LENGTH, 4096);
    });
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(&base, &img, "LOG-019", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_020_entry_padded_past_its_content() {
    let e = stale(&dirty().0);
    let bytes = e.encode_padded(1);
    assert_eq!(get_u32(&bytes, log::ENTRY_LENGTH), 3 * 4096);
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(&base, &img, "LOG-020", Info, &[(p, At::Entry)]);
    undisturbed(&img, &r);
}

#[test]
fn log_020_padded_active_entry_splits_strict_and_lenient() {
    let mut img = clean();
    let e = zero_block(&img, BLOCK);
    let p = img.put_log_bytes(0, &e.encode_padded(2));
    img.set_log_guid(e.log_guid);
    let r = report(&img);
    expect_at(&r, "LOG-020", Warning, &[(p, At::Entry)]);
    assert!(r.has("LOG-070") && r.has("LOG-002"), "{}", listing(&r));
}

/// Entries E1 (2 sectors at ring end − 12 KiB) and E2 (2 sectors at ring end − 4 KiB, so its
/// data sector wraps to ring offset 0), one sequence with tail E1, changing blocks 5 and 6.
pub fn wrapped() -> (Built, Vec<LogEntry>, Vec<LogPlace>) {
    let mut img = clean();
    let start = img.layout.log_length - 0x3000;
    let entries = chained(&img, &[BLOCK, 6]);
    let (entries, places) = img.write_sequence(start, LOG_SEQUENCE, &entries);
    assert_eq!(places[1].ring_offset, img.layout.log_length - 0x1000);
    assert_eq!(places[1].length, 0x2000);
    (img, entries, places)
}

#[test]
fn log_021_entry_wraps_the_ring_end() {
    let (img, _, places) = wrapped();
    let r = fires_at(&dirty().0, &img, "LOG-021", Info, &[(places[1], At::Entry)]);
    // Strict and lenient wrap and replay both entries; the no-wrap scan stops at E1.
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6]));
    assert_eq!(one(&r, "LOG-070").severity, Warning);
    assert!(!r.has("LOG-002"), "{}", listing(&r));
    for id in ["LOG-010", "LOG-012", "LOG-036", "LOG-060", "LOG-061"] {
        assert!(!r.has(id), "{id}:{}", listing(&r));
    }
}

#[test]
fn log_022_file_offsets_below_1_mib() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let e = stale(&img);
    let len = img.len;
    let a = img.put_log_entry(STALE, &e.clone().file_offsets(0, len));
    let at = STALE + 0x10000;
    let b = img.put_log_entry(at, &e.clone().tail(at as u32).file_offsets(len, 0));
    let r = fires_at(
        &base,
        &img,
        "LOG-022",
        Info,
        &[(a, At::Entry), (b, At::Entry)],
    );
    undisturbed(&img, &r);
}

// ---- descriptor and data-sector predicates ----------------------------------------------------

/// The stale entry with a second descriptor: zero 4 KiB inside the BAT region.
fn stale2(img: &Built) -> LogEntry {
    stale(img).zero(img.layout.bat_offset + 0x10000, 4096)
}

#[test]
fn log_030_descriptor_signature() {
    let e = stale2(&dirty().0);
    let bytes = e.encode_with(|b| b[log::descriptor(1)..][..4].copy_from_slice(b"xxxx"));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(
        &base,
        &img,
        "LOG-030",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    qemu_refuses(&img, &r, "descriptor 1 of the entry at ring offset 0x80000");
}

#[test]
fn log_031_descriptor_sequence_number() {
    let e = stale2(&dirty().0);
    let bytes = e.encode_with(|b| put_u64(b, log::descriptor(1) + log::D_SEQUENCE_NUMBER, OLD + 1));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(
        &base,
        &img,
        "LOG-031",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    qemu_refuses(&img, &r, "descriptor 1 of the entry at ring offset 0x80000");
}

#[test]
fn log_032_descriptor_file_offset_misaligned() {
    let base = dirty().0;
    let e = stale(&base).data(base.layout.bat_offset + 0x10008, vec![0; 4096]);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(
        &base,
        &img,
        "LOG-032",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    qemu_refuses(&img, &r, "descriptor 1 of the entry at ring offset 0x80000");
}

#[test]
fn log_033_zero_length_misaligned() {
    let base = dirty().0;
    let e = stale(&base).zero(base.layout.bat_offset + 0x10000, 100);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(
        &base,
        &img,
        "LOG-033",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    qemu_refuses(&img, &r, "descriptor 1 of the entry at ring offset 0x80000");
}

#[test]
fn log_034_zero_descriptor_reserved() {
    let e = stale2(&dirty().0);
    let bytes = e.encode_with(|b| u32_at(b, log::descriptor(1) + log::D_RESERVED, 1));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(
        &base,
        &img,
        "LOG-034",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_035_target_overflows_u64() {
    let e = stale(&dirty().0).zero(0xFFFF_FFFF_FFFF_F000, 0x2000);
    let (base, img, p) = dirty_with_stale(&e.encode());
    let r = fires_at(
        &base,
        &img,
        "LOG-035",
        Info,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_036_data_sector_signature() {
    let e = stale(&dirty().0);
    let s = e.data_sector(0);
    let bytes = e.encode_with(|b| b[s..s + 4].copy_from_slice(b"xxxx"));
    let (base, img, p) = dirty_with_stale(&bytes);
    let r = fires_at(
        &base,
        &img,
        "LOG-036",
        Info,
        &[(p, At::Part("data_sector[0]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_037_data_sector_sequence_halves() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let e = stale(&img);
    let s = e.data_sector(0);
    let high = e.encode_with(|b| u32_at(b, s + log::S_SEQUENCE_HIGH, 0xDEAD));
    let at = STALE + 0x10000;
    let low = e
        .clone()
        .tail(at as u32)
        .encode_with(|b| u32_at(b, s + log::S_SEQUENCE_LOW, 0xBEEF));
    let a = img.put_log_bytes(STALE, &high);
    let b = img.put_log_bytes(at, &low);
    let r = fires_at(
        &base,
        &img,
        "LOG-037",
        Info,
        &[
            (a, At::Part("data_sector[0]")),
            (b, At::Part("data_sector[0]")),
        ],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_038_unused_descriptor_slots_not_zero_is_slack() {
    // In the active entry: reported, the entry stays valid and is replayed.
    let mut img = clean();
    let e = zero_block(&img, BLOCK);
    let bytes = e.encode_with(|b| b[4000] = 0x77);
    let p = img.put_log_bytes(0, &bytes);
    img.set_log_guid(e.log_guid);
    let r = fires_at(&dirty().0, &img, "LOG-038", Info, &[(p, At::Within)]);
    undisturbed(&img, &r);
}

#[test]
fn log_038_slack_in_the_second_descriptor_sector() {
    // 127 descriptors: D = 2; the slack after descriptor 126 runs to the end of sector 2.
    let mut img = clean();
    let bat = img.layout.bat_offset;
    let e = (1..127).fold(zero_block(&img, BLOCK), |e, i| e.zero(bat + 4096 * i, 4096));
    assert_eq!(e.descriptors.len(), 127);
    let last = log::descriptor(126) + log::DESCRIPTOR_SIZE;
    assert!(last > 4096 && e.data_sector(0) == 8192);
    let bytes = e.encode_with(|b| b[8000] = 0x77);
    let p = img.put_log_bytes(0, &bytes);
    img.set_log_guid(e.log_guid);
    let r = fires_at(&dirty().0, &img, "LOG-038", Info, &[(p, At::Within)]);
    qemu_refuses(&img, &r, "has 127 descriptors");
}

#[test]
fn multi_sector_entry_is_valid_and_replayed() {
    // 200 zero descriptors (over already-zero BAT sectors) then the data descriptor: two
    // descriptor sectors, the data sector at entry offset 8 KiB.
    let mut img = clean();
    let bat = img.layout.bat_offset;
    let value = bat::entry(bat::ZERO, 0).to_le_bytes();
    let e = (1..=200).fold(img.log_entry(&[]), |e, i| e.zero(bat + 4096 * i, 4096));
    let sector = bat_at(&img, BLOCK) / 4096 * 4096;
    let mut data = img.read(sector, 4096);
    data[(bat_at(&img, BLOCK) - sector) as usize..][..8].copy_from_slice(&value);
    let e = e.data(sector, data);
    assert_eq!((e.length(), e.data_sector(0)), (3 * 4096, 2 * 4096));
    img.write_log(&[e]);
    let r = report(&img);
    qemu_refuses(&img, &r, "has 201 descriptors");
    assert!(
        log_ids(&r)
            .iter()
            .all(|id| ["LOG-003", "LOG-007", "LOG-070"].contains(id)),
        "{}",
        listing(&r)
    );
}

/// Stale entries of 3, 5, 9, 18, 2, 15, 4, 30 and 1 sectors (0 to 29 data descriptors)
/// laid end to end from ring offset `start`, LogGuid zero.
fn stale_ring_across_windows(start: u64) -> (Built, Vec<LogPlace>) {
    const SECTORS: [u64; 9] = [3, 5, 9, 18, 2, 15, 4, 30, 1];
    let mut img = clean();
    let bat = img.layout.bat_offset;
    let entries: Vec<LogEntry> = (SECTORS.iter())
        .map(|&k| {
            let e = (1..k).fold(img.log_entry(&[]), |e, i| {
                e.data(bat + 4096 * i, img.read(bat + 4096 * i, 4096))
            });
            assert_eq!(e.length(), k * 4096);
            e
        })
        .collect();
    let (_, places) = img.write_sequence(start, OLD, &entries);
    img.set_log_guid([0; 16]);
    (img, places)
}

/// The ring is read in windows (64 KiB): entries that run past a window's end, entries
/// longer than a window and entries that wrap the ring end are each checksummed whole —
/// every one is a stale entry with a correct CRC (LOG-001), and a byte changed near the end
/// of any one of them takes its LOG-001 away and no other.
#[test]
fn entries_across_read_windows_are_checksummed_whole() {
    let ring = clean().layout.log_length;
    for start in [0, ring - 40 * 1024] {
        let (img, places) = stale_ring_across_windows(start);
        let all: Vec<(LogPlace, At)> = places.iter().map(|&p| (p, At::Entry)).collect();
        expect_at(&report(&img), "LOG-001", Info, &all);
        for (n, p) in places.iter().enumerate() {
            let mut bad = img.clone();
            let at = (p.ring_offset + p.length - 8) % ring;
            let byte = bad.read_log(at, 1)[0];
            bad.put_log_bytes(at, &[byte ^ 0xFF]);
            let rest: Vec<(LogPlace, At)> = (all.iter().enumerate())
                .filter(|&(m, _)| m != n)
                .map(|(_, &w)| w)
                .collect();
            expect_at(&report(&bad), "LOG-001", Info, &rest);
        }
    }
}

/// The targets LOG-001 names are kept by the sweep (no second read of the ring), and they
/// are the ones the entries' descriptors hold: asked of an empty file, the kept targets
/// still equal those read from the image.
#[test]
fn targets_named_for_stale_entries_are_kept_from_the_sweep() {
    let (img, places) = stale_ring_across_windows(0);
    let model = vhdx_check::model::Model::build(&img);
    let log = model.log().expect("the ring is analysed");
    assert_eq!(log.entries.len(), places.len());
    let nothing = vhdx_check::io::MemReader(&[]);
    for (i, e) in log.entries.iter().enumerate() {
        let read = log.read_named_targets(&img, i);
        assert_eq!(read.len() as u32, e.descriptors.min(4), "entry {i}");
        assert_eq!(log.named_targets(&nothing, i), read, "entry {i}");
    }
}

#[test]
fn stale_damage_is_not_a_target_finding() {
    // LOG-040..047 judge the active sequence only.
    let e = stale(&dirty().0).zero(0, 4096);
    let (_, img, _) = dirty_with_stale(&e.encode());
    let r = report(&img);
    assert!(!r.has("LOG-040"), "{}", listing(&r));
    undisturbed(&img, &r);
}
