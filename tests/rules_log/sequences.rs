//! LOG tests of sequences: which entries chain, which sequence is active.

use super::*;

// ---- sequences -------------------------------------------------------------------------------

#[test]
fn log_060_sequence_number_gap_stops_the_run() {
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let b_at = a.length;
    let b = zero_block(&img, 6).seq(LOG_SEQUENCE + 5).tail(b_at as u32);
    let b = img.put_log_entry(b_at, &b);
    let r = fires_at(&base, &img, "LOG-060", Info, &[(b, At::Entry)]);
    // Two valid sequences; B has the higher head and is replayed alone.
    assert!(r.has("LOG-063"), "{}", listing(&r));
    replay_changes(&r, &bat_entries(&img, &[6]));
}

#[test]
fn log_061_head_tail_outside_its_run() {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    // A two-entry run whose head names a tail that is no entry start: one finding.
    let bogus = (STALE + 0x10000) as u32;
    let c1 = img.put_log_entry(STALE, &stale(&img).tail(bogus));
    let c2 = stale(&img).seq(OLD + 1).tail(bogus);
    let c2 = img.put_log_entry(STALE + c1.length, &c2);
    silent(&base, "LOG-061");
    let r = report(&img);
    let f = one(&r, "LOG-061");
    assert_eq!(f.severity, Info);
    let head = f.offset.expect("LOG-061 offset");
    assert!(
        (c2.file_offset..=c2.file_offset + c2.length).contains(&head),
        "LOG-061 should point at the run's head (entry or position):{}",
        listing(&r)
    );
    undisturbed(&img, &r);
}

#[test]
fn log_062_older_entries_before_the_tail() {
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let b_at = a.length;
    let b = zero_block(&img, 6).seq(LOG_SEQUENCE + 1).tail(b_at as u32);
    img.put_log_entry(b_at, &b);
    silent(&base, "LOG-062");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-062").severity, Info);
    // The strict scan replays B only; QEMU replays A and B of the same run, with the same
    // head: LOG-062's subject, not a disagreement on the head (LOG-070).
    replay_changes(&r, &bat_entries(&img, &[6]));
    assert!(!r.has("LOG-070"), "{}", listing(&r));
}

/// The dirty baseline plus a second valid sequence at [`STALE`] with head sequence `seq`.
fn two_sequences(seq: u64) -> (Built, Built) {
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let d = stale(&img).seq(seq);
    img.put_log_entry(STALE, &d);
    (base, img)
}

#[test]
fn log_063_more_than_one_valid_sequence() {
    let (base, img) = two_sequences(OLD);
    silent(&base, "LOG-063");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-063").severity, Info);
    assert!(!r.has("LOG-064"), "{}", listing(&r));
    undisturbed(&img, &r);
}

#[test]
fn log_064_two_sequences_with_equal_heads() {
    let (base, img) = two_sequences(LOG_SEQUENCE);
    silent(&base, "LOG-064");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-064").severity, Warning);
    assert!(r.has("LOG-063"), "{}", listing(&r));
    // The first found (ring offset 0) stays the active one.
    undisturbed(&img, &r);
}

#[test]
fn log_065_torn_entry_right_after_the_head() {
    let (base, _, a) = dirty();
    let next = zero_block(&base, 6).seq(LOG_SEQUENCE + 1).tail(0);
    let mut img = base.clone();
    let b = img.put_log_bytes(a.length, &next.encode_torn());
    let r = fires_at(&base, &img, "LOG-065", Info, &[(b, At::Entry)]);
    assert_eq!(one(&r, "LOG-065").length, Some(4096));
    expect_at(&r, "LOG-012", Info, &[(b, At::Entry)]);
    undisturbed(&img, &r);
    // Not the next sequence number, or another session: no evidence of a torn write.
    for e in [
        next.clone().seq(LOG_SEQUENCE + 2),
        next.clone().guid(pseudo_guid(77)),
    ] {
        let img = with(&base, |img| {
            img.put_log_bytes(a.length, &e.encode_torn());
        });
        silent(&img, "LOG-065");
    }
    // The signature itself torn: still the header of the next entry (LogGuid and
    // SequenceNumber match), also a damaged would-be header (LOG-010).
    let mut bytes = next.encode();
    bytes[..4].copy_from_slice(b"lo\0\0");
    let img = with(&base, |img| {
        img.put_log_bytes(a.length, &bytes);
    });
    let r = report(&img);
    expect_at(&r, "LOG-065", Info, &[(b, At::Entry)]);
    expect_at(&r, "LOG-010", Info, &[(b, At::Entry)]);
}

#[test]
fn log_066_file_offsets_decrease_along_the_sequence() {
    let base = dirty().0;
    let mut img = clean();
    let len = img.len;
    let ab = chained(&img, &[BLOCK, 6]);
    let a = ab[0].clone().file_offsets(len + 2 * MIB, len + 2 * MIB);
    let b = ab[1].clone().file_offsets(len, len);
    img.write_sequence(0, LOG_SEQUENCE, &[a, b]);
    silent(&base, "LOG-066");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-066").severity, Info);
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6]));
    assert!(!r.has("LOG-005") && !r.has("LOG-006"), "{}", listing(&r));

    // Either offset alone decreasing is enough; both growing is not a finding.
    for ((fa, la), (fb, lb), fires) in [
        ((len + MIB, len), (len, len), true),
        ((len, len + MIB), (len, len), true),
        ((len, len), (len + MIB, len + MIB), false),
    ] {
        let mut img = clean();
        let a = ab[0].clone().file_offsets(fa, la);
        let b = ab[1].clone().file_offsets(fb, lb);
        img.write_sequence(0, LOG_SEQUENCE, &[a, b]);
        let r = report(&img);
        assert_eq!(
            r.has("LOG-066"),
            fires,
            "{:?}:{}",
            (fa, la, fb, lb),
            listing(&r)
        );
    }
}

#[test]
fn log_067_tail_regresses() {
    let base = dirty().0;
    let mut img = clean();
    let entries = chained(&img, &[BLOCK, 6, 7]);
    let (written, places) = img.write_sequence(0, LOG_SEQUENCE, &entries);
    // B names itself as tail, C goes back to A.
    let b = written[1].clone().tail(places[1].ring_offset as u32);
    img.put_log_entry(places[1].ring_offset, &b);
    silent(&base, "LOG-067");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-067").severity, Info);
    assert!(!r.has("LOG-062") && !r.has("LOG-061"), "{}", listing(&r));
    replay_changes(&r, &bat_entries(&img, &[BLOCK, 6, 7]));
}

#[test]
fn log_067_oldest_tail_in_the_previous_lap_is_no_regression() {
    // A wrapped ring: E1 at 0x10000 still names a Tail of the previous lap (0xf0000, the
    // entries there long applied), E2 and E3 name E1. The tails advance: no LOG-067.
    let mut img = clean();
    let entries = chained(&img, &[BLOCK, 6, 7]);
    let (written, places) = img.write_sequence(0x10000, LOG_SEQUENCE, &entries);
    let e1 = written[0].clone().tail(0xf0000);
    img.put_log_entry(places[0].ring_offset, &e1);
    let r = report(&img);
    assert!(!r.has("LOG-067"), "{}", listing(&r));
    // E2 going back into the previous lap, behind E1's Tail, is a regression.
    let e2 = written[1].clone().tail(0xe0000);
    img.put_log_entry(places[1].ring_offset, &e2);
    let r = report(&img);
    assert_eq!(one(&r, "LOG-067").severity, Info);
}

#[test]
fn log_070_strict_and_lenient_disagree() {
    let mut img = clean();
    let e = zero_block(&img, BLOCK);
    let p = img.put_log_bytes(0, &e.encode_with(|b| u32_at(b, log::RESERVED, 1)));
    img.set_log_guid(e.log_guid);
    silent(&dirty().0, "LOG-070");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-070").severity, Warning);
    assert_eq!(one(&r, "LOG-002").severity, Error);
    expect_at(&r, "LOG-016", Warning, &[(p, At::Entry)]);
}

/// LOG-070's message when QEMU opens the image and leaves other bytes than the strict
/// replay: `qemu` is how it reads the log.
fn qemu_differs(r: &ImageReport, qemu: &str) {
    let m = &one(r, "LOG-070").message;
    assert!(
        m.contains(qemu) && m.contains("differs from the strict replay"),
        "{}",
        listing(r)
    );
}

#[test]
fn log_070_qemu_takes_the_run_whose_first_entry_is_greater() {
    // The dirty baseline's [A] (SequenceNumber S, block 5) and a run [S-2, S-1, S, S+1] at
    // STALE: the specification takes the greater head (S+1), QEMU the greater first entry.
    let (base, _, _) = dirty();
    let mut img = base.clone();
    let entries = chained(&img, &[6, 7, 8, 9]);
    let mut at = STALE;
    for (k, e) in entries.into_iter().enumerate() {
        let e = e.seq(LOG_SEQUENCE - 2 + k as u64).tail(STALE as u32);
        at += img.put_log_entry(at, &e).length;
    }
    let r = report(&img);
    replay_changes(&r, &bat_entries(&img, &[6, 7, 8, 9]));
    qemu_differs(&r, "QEMU replays 1 entry from 0x100000");
    silent(&base, "LOG-070");
}

#[test]
fn log_070_qemu_takes_a_second_entry_of_the_same_sequence_number() {
    // [A, B] with B's SequenceNumber equal to A's: the run ends at A (LOG-060) and [B] has
    // no Tail of its own; QEMU never compares a run's second entry and replays both.
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let b = zero_block(&img, 6).seq(LOG_SEQUENCE).tail(0);
    img.put_log_entry(a.length, &b);
    let r = report(&img);
    replay_changes(&r, &bat_entries(&img, &[BLOCK]));
    qemu_differs(&r, "QEMU replays 2 entries from 0x100000");
}

#[test]
fn log_070_qemu_replays_entries_before_the_tail() {
    // [A, B], B's Tail names B: the specification replays B alone; QEMU A and B, and only A
    // changes block 5.
    let (base, _, a) = dirty();
    let mut img = base.clone();
    let b = LogEntry {
        descriptors: vec![],
        ..zero_block(&img, 6)
    }
    .zero(img.layout.bat_offset + 0x10000, 4096)
    .seq(LOG_SEQUENCE + 1)
    .tail(a.length as u32);
    img.put_log_entry(a.length, &b);
    let r = report(&img);
    assert!(r.has("LOG-062") && !r.has("LOG-003"), "{}", listing(&r));
    qemu_differs(&r, "QEMU replays 2 entries from 0x100000");
    assert!(
        one(&r, "LOG-062")
            .message
            .contains("QEMU replays 2 entries")
    );
}

#[test]
fn log_072_replay_no_file_can_undergo() {
    let (base, entry, _) = dirty();
    silent(&base, "LOG-072");
    let len = base.len;
    // The head's LastFileOffset at 2^63, or a zero descriptor of 2^62 bytes.
    for (e, why) in [
        (
            entry.clone().file_offsets(len, 1 << 63),
            "LastFileOffset is 0x8000000000000000",
        ),
        (
            entry.clone().zero(8 * MIB, 1 << 62),
            "writes 0x4000000000000000 bytes at 0x800000",
        ),
    ] {
        let mut img = clean();
        img.write_log(std::slice::from_ref(&e));
        let r = report(&img);
        let f = one(&r, "LOG-072");
        assert_eq!(f.severity, Error);
        assert!(
            f.message.contains(why) && f.message.contains("cannot open the image"),
            "{}",
            listing(&r)
        );
    }
}

/// LOG-072 decides the readers too: no replayed export, no virtual digest, no `replay`
/// (the reason, not an internal error, and nothing written); the raw view still exports.
#[test]
fn log_072_images_have_no_replayed_disk() {
    let (base, entry, _) = dirty();
    let len = base.len;
    let tmp = crate::cli::Scratch::new("log072-readers");
    for (k, e) in [
        entry.clone().file_offsets(len, 1 << 63),
        entry.clone().zero(8 * MIB, 1 << 62),
    ]
    .into_iter()
    .enumerate()
    {
        let mut img = clean();
        img.write_log(std::slice::from_ref(&e));
        let p = tmp.path(&format!("i{k}.vhdx"));
        img.write_to(std::path::Path::new(&p)).unwrap();
        let out = tmp.path(&format!("o{k}.raw"));
        let (code, _, err) = crate::cli::run(&["export", &p, &out]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("replay cannot be performed") && err.contains("(LOG-072)"),
            "{err}"
        );
        assert!(!std::path::Path::new(&out).exists());
        let (code, _, err) = crate::cli::run(&["export", "--view", "raw", &p, &out]);
        assert_eq!(code, 0, "{err}");
        let (code, doc, err) =
            crate::cli::run(&["check", "--hash", "sha256", "--format", "json", &p]);
        assert_eq!(code, 1, "{err}");
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let d = &v["images"][0]["digests"];
        assert_eq!(d["virtual_disk"], serde_json::Value::Null, "{d}");
        assert!(
            d["virtual_unavailable"]
                .as_str()
                .unwrap()
                .contains("LOG-072"),
            "{d}"
        );
        let copy = tmp.path(&format!("r{k}.vhdx"));
        let (code, _, err) = crate::cli::run(&["replay", &p, &copy]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("replay cannot be performed") && err.contains("(LOG-072)"),
            "{err}"
        );
        assert!(!std::path::Path::new(&copy).exists());
    }
}

#[test]
fn log_071_descriptor_bound() {
    // One entry of 2^20 + 64 zero descriptors (all of length 0, so replay is cheap and the
    // descriptors do not overlap): more than the 1 Mi descriptors analysis applies.
    let n = (1usize << 20) + 64;
    let sectors = log::descriptor_sectors(n) as u64;
    let ring = (sectors * 4096).div_ceil(MIB) * MIB + MIB;
    let mut img = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .write_block(0, &[0xA5; 4096])
        .log_length(ring as u32)
        .build();
    let target = img.layout.bat_offset + 0x10000;
    let mut e = zero_block(&img, BLOCK);
    e.descriptors.extend((0..n).map(|_| Descriptor::Zero {
        file_offset: target,
        length: 0,
    }));
    img.write_log(&[e]);
    silent(&dirty().0, "LOG-071");
    let r = report(&img);
    assert_eq!(one(&r, "LOG-071").severity, Warning, "{}", listing(&r));
}
