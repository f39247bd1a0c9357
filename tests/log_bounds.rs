//! The log scan on hostile rings: the work stays linear and bounded, and a bound reached
//! is a finding (LOG-071), never a hang. No timing is asserted; the figures are in the
//! issue notes (release build).

use crate::builder::*;
use crate::rules_header::run;

/// `n` entries laid end to end from ring offset 4 KiB, consecutive sequence numbers, each
/// with a CRC-valid header whose Tail (0) names no entry: every run fails the tail test,
/// so the strict scan tries every suffix of one long chain.
fn chained_without_tail(log_length: u64) -> Built {
    let mut img = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .log_length(log_length as u32)
        .build();
    let n = log_length / 4096 - 1;
    let guid = img.layout.log_guid;
    for k in 0..n {
        let entry = LogEntry {
            sequence: k + 1,
            tail: 0,
            log_guid: guid,
            flushed_file_offset: img.len,
            last_file_offset: img.len,
            descriptors: vec![],
        };
        img.put_log_entry(4096 * (k + 1), &entry);
    }
    img.set_log_guid(guid);
    img
}

/// With `VHDX_DUMP=DIR` set, writes `img` there for timing it with the release binary.
fn dump(img: &Built, name: &str) {
    if let Ok(dir) = std::env::var("VHDX_DUMP") {
        img.write_to(&std::path::Path::new(&dir).join(name))
            .expect("dump image");
    }
}

#[test]
fn a_long_chain_without_its_tail_is_scanned_once() {
    // 8191 entries: without the scan's memo the suffixes would cost 33 million steps.
    let img = chained_without_tail(32 * MIB);
    dump(&img, "log-chain-no-tail.vhdx");
    let r = run(&img);
    assert!(r.has("LOG-002"), "strict: no sequence; fired {:?}", r.ids());
    assert!(r.has("LOG-061"), "the run's head is reported");
    // QEMU replays the run without the tail test: the readings disagree.
    assert!(r.has("LOG-070"));
    assert!(!r.has("LOG-071"), "no bound is needed for a chain");
    let heads: Vec<_> = r.findings.iter().filter(|f| f.rule == "LOG-061").collect();
    assert_eq!(heads.len(), 1, "one head, reported once: {heads:#?}");
}

#[test]
fn entries_claiming_the_whole_ring_stop_at_the_byte_bound() {
    // Every 4 KiB position claims EntryLength = LogLength with a wrong checksum: without
    // the bound that is 8192 x 32 MiB = 256 GiB of CRC.
    let mut img = chained_without_tail(32 * MIB);
    let log = img.layout.log_offset;
    for k in 1..(32 * MIB / 4096) {
        img.patch_u32(log + 4096 * k + 8, (32 * MIB) as u32);
    }
    dump(&img, "log-whole-ring-claims.vhdx");
    let r = run(&img);
    assert!(r.has("LOG-071"), "bound reported; fired {:?}", r.ids());
    assert!(r.has("LOG-012"), "examined entries fail their checksum");
    assert!(r.has("LOG-002"));
}
