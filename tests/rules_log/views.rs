//! LOG tests of sequences, structures and the raw and replayed views together.

use super::*;

// ---- more on sequences, structures and views ---------------------------------------------------

/// E1 at ring end − 12 KiB, E2 wrapping, E3 after the wrap, every entry its own tail: in
/// ring order from E1 the tails advance (0xfd000, 0xff000, 0x1000), although 0x1000 <
/// 0xff000 as numbers. E3 (tail E3) is met twice by the scan: alone from ring offset 0,
/// and at the end of the run E1..E3 — the same sequence (E3 only is replayed either way).
fn self_tailed_across_the_ring_end() -> Built {
    let mut img = clean();
    let start = img.layout.log_length - 0x3000;
    let entries = chained(&img, &[BLOCK, 6, 7]);
    let (written, places) = img.write_sequence(start, LOG_SEQUENCE, &entries);
    assert_eq!(places[2].ring_offset, 0x1000);
    for (e, p) in written.iter().zip(&places) {
        img.put_log_entry(p.ring_offset, &e.clone().tail(p.ring_offset as u32));
    }
    img
}

#[test]
fn tail_advancing_across_the_ring_end_is_no_regression() {
    let img = self_tailed_across_the_ring_end();
    silent(&dirty().0, "LOG-067");
    let r = report(&img);
    assert!(!r.has("LOG-067"), "{}", listing(&r));
    // E3 was built on E1 and E2's result: replaying E3 alone changes all three entries.
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6, 7]));
}

#[test]
fn same_head_met_twice_is_one_sequence() {
    // Two runs ending at the same head entry are one sequence (tail..head is the same):
    // neither "more than one valid sequence" nor a tie to break.
    let img = self_tailed_across_the_ring_end();
    let r = report(&img);
    for id in ["LOG-063", "LOG-064"] {
        assert!(!r.has(id), "{id}:{}", listing(&r));
    }
}

#[test]
fn sequence_across_the_ring_end_is_replayed_whole() {
    // A writer's normal state after wrapping: E1, E2 (wrapping) and E3, all with tail E1.
    // One valid sequence E1..E3 (the strict scan meets E3 first from ring offset 0, but the
    // run [E3] alone is no valid sequence). QEMU keeps the run [E3] it meets first (equal
    // head SequenceNumber is not "greater"): the same head, so no disagreement there; but a
    // reader that does not wrap (DiscUtils) stops at E1: LOG-070.
    let mut img = clean();
    let start = img.layout.log_length - 0x3000;
    let entries = chained(&img, &[BLOCK, 6, 7]);
    img.write_sequence(start, LOG_SEQUENCE, &entries);
    let r = report(&img);
    for id in ["LOG-062", "LOG-063", "LOG-064", "LOG-067", "LOG-002"] {
        assert!(!r.has(id), "{id}:{}", listing(&r));
    }
    assert_eq!(one(&r, "LOG-070").severity, Warning);
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6, 7]));
}

#[test]
fn log_007_reports_only_the_structural_families() {
    // LOG-007 compares the RGN/META/PLOC/BAT/SBM/LAYOUT/CHAIN findings of the two views;
    // the target findings (LOG-040..047) are about the log itself, not view differences.
    let (img, _) = active_with(|img, e| {
        e.data(0x10000, img.read(0x10000, 4096))
            .zero(img.layout.log_offset + 0x80000, 4096)
            .zero(0x60000, 4096)
    });
    let r = report(&img);
    assert!(
        r.has("LOG-041") && r.has("LOG-042") && r.has("LOG-044"),
        "{}",
        listing(&r)
    );
    for f in of(&r, "LOG-007") {
        assert!(
            !f.message.contains("LOG-0"),
            "LOG-007 re-reports a LOG finding:{}",
            listing(&r)
        );
    }
    let targets = [
        "LOG-040", "LOG-041", "LOG-042", "LOG-043", "LOG-044", "LOG-045",
    ];
    for f in r
        .findings
        .iter()
        .filter(|f| f.rule.starts_with("LOG-") && f.rule != "LOG-007" && !targets.contains(&f.rule))
    {
        assert_eq!(f.view, View::Raw, "{} view:{}", f.rule, listing(&r));
    }
}

#[test]
fn log_010_only_after_the_active_head() {
    // Contract update 13:55: the position after the ACTIVE head (offset = that position).
    // A non-active valid sequence followed by junk is not reported.
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let d = img.put_log_entry(STALE, &stale(&img));
    let mut junk = b"junk".to_vec();
    junk.resize(4096, 0xEE);
    let after_a = img.put_log_bytes(a.length, &junk);
    img.put_log_bytes(STALE + d.length, &junk);
    let r = fires_at(&base, &img, "LOG-010", Info, &[(after_a, At::Entry)]);
    assert!(r.has("LOG-063"), "{}", listing(&r));
    assert_eq!(one(&r, "LOG-010").length, Some(4), "the signature");
}

#[test]
fn log_003_names_the_structure_it_changes() {
    let mut img = clean();
    let len = img.len;
    let mark = [0xEE; 16];
    let md = img.layout.metadata_offset;
    let targets: Vec<(u64, &str)> = vec![
        (REGION_TABLE_OFFSETS[0] + 0x800, "region_table["),
        (md + 0x8000, "metadata.table"),
        (0x11000, "header"),
        (img.layout.log_offset + 0x80000, "log"),
        (0x60000, "unowned"),
        (len + MIB, "beyond EOF"),
    ];
    let writes: Vec<(u64, &[u8])> = targets.iter().map(|&(at, _)| (at, &mark[..])).collect();
    let e = img.log_entry(&writes).file_offsets(len, len + 2 * MIB);
    img.write_log(&[e]);
    let r = report(&img);
    let wrong: Vec<String> = targets
        .iter()
        .filter_map(|(at, name)| {
            let f = of(&r, "LOG-003")
                .into_iter()
                .find(|f| f.offset == Some(*at));
            match f {
                None => Some(format!("no LOG-003 at {at:#x}")),
                Some(f) if !f.structure.starts_with(name) => Some(format!(
                    "LOG-003 at {at:#x} names {:?}, contract: {name}",
                    f.structure
                )),
                Some(_) => None,
            }
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}{}", listing(&r));
}

#[test]
fn log_003_names_the_sector_bitmap() {
    let mut img = ImageBuilder::differencing(64 * MIB)
        .block_size(MIB as u32)
        .write_sectors(0, &[0x5A; 512])
        .build();
    let at = img.layout.bitmap_offset(0) + 0x100;
    let e = img.log_entry(&[(at, &[0xFF])]);
    img.write_log(&[e]);
    let r = report(&img);
    let f = one(&r, "LOG-003");
    assert_eq!(f.offset, Some(at));
    assert!(f.structure.starts_with("sector_bitmap"), "{}", listing(&r));
}

#[test]
fn findings_in_both_views_are_reported_once_as_replayed() {
    // RAW and REPLAYED share block 9's error; the log changes block 5 only.
    let mut img = clean();
    img.patch_u64(bat_at(&img, 9), past_eof());
    let reference = report(&img);
    let shared = structural(&reference);
    assert!(!shared.is_empty());
    let e = zero_block(&img, BLOCK);
    img.write_log(&[e]);
    let r = report(&img);
    replay_changes(&r, &bat_entries(&img, &[BLOCK]));
    for f in &shared {
        let both: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|g| g.rule == f.rule && g.offset == f.offset)
            .collect();
        assert_eq!(both.len(), 1, "{} @{:?}:{}", f.rule, f.offset, listing(&r));
        assert_eq!(both[0].view, View::Replayed, "{}", listing(&r));
    }
    assert!(view_diffs(&r).is_empty(), "{}", listing(&r));
}

#[test]
fn log_071_entry_byte_bound() {
    // A crafted 4 MiB ring: at every 4 KiB position an entry (no descriptors, padded) that
    // runs to the ring end, all CRC-valid (sealed from the last to the first, each CRC
    // covering the later entries as finally written). Examining every candidate would read
    // ~2 GiB of entry bytes, far beyond 8 x LogLength + 256 MiB.
    let ring = 4 * MIB;
    let mut img = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .write_block(0, &[0xA5; 4096])
        .log_length(ring as u32)
        .build();
    let guid = img.layout.log_guid;
    let len = img.len;
    let mut bytes = vec![0u8; ring as usize];
    for k in (0..ring / 4096).rev() {
        let p = (k * 4096) as usize;
        let e = &mut bytes[p..];
        e[..4].copy_from_slice(SIG_LOG_ENTRY);
        put_u32(e, log::ENTRY_LENGTH, (ring as usize - p) as u32);
        put_u32(e, log::TAIL, p as u32);
        put_u64(e, log::SEQUENCE_NUMBER, 1 + k);
        e[log::LOG_GUID..][..16].copy_from_slice(&guid);
        put_u64(e, log::FLUSHED_FILE_OFFSET, len);
        put_u64(e, log::LAST_FILE_OFFSET, len);
        seal(e, log::CHECKSUM);
    }
    img.put_log_bytes(0, &bytes);
    img.set_log_guid(guid);
    let r = report(&img);
    assert_eq!(one(&r, "LOG-071").severity, Warning, "{}", listing(&r));
}
