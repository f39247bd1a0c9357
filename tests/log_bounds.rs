//! The log scan on hostile rings: the work stays linear and bounded, and a bound reached
//! is a finding (LOG-071), never a hang. No timing is asserted; the figures are in the
//! issue notes (release build).

use crate::builder::*;
use crate::cli::{Scratch, run as run_cli};
use crate::rules_header::run;
use crate::rules_log::{clean, zero_block};

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
    // QEMU's scan comes back to the run's first entry after the ring end and starts over:
    // qemu-img check -r all on this image did not end in 30 s (LOG-070 says it hangs).
    let m = &r
        .findings
        .iter()
        .find(|f| f.rule == "LOG-070")
        .expect("LOG-070")
        .message;
    assert!(m.contains("QEMU hangs"), "{m}");
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

// Found by review: a log that sets huge sizes, stale entries at the top of the address
// space, and requirements judged after replay.

/// Checks `img` through the command line (the whole pipeline, as a user runs it) and
/// returns the text report; the tool must judge the image (exit 0 or 1), not die.
fn check_cli(img: &Built, name: &str) -> String {
    let dir = Scratch::new(name);
    let p = dir.path(&format!("{name}.vhdx"));
    img.write_to(std::path::Path::new(&p)).unwrap();
    let (code, out, err) = run_cli(&["check", &p]);
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        err.lines().next().unwrap_or("")
    );
    out
}

/// A valid pending entry whose head LastFileOffset is 2^60 (a multiple of 1 MiB, so every
/// predicate holds): the REPLAYED view is 2^60 bytes long (CATALOGUE 3.5 step 2). The
/// per-MiB grids of the LAYOUT and BAT passes once took their size from it and the
/// process aborted on the allocation; they are capped now.
#[test]
fn huge_last_file_offset_does_not_abort() {
    let mut img = clean();
    let e = zero_block(&img, 5).file_offsets(img.len, 1 << 60);
    img.write_log(&[e]);
    let out = check_cli(&img, "review-huge-lfo");
    assert!(out.contains("LOG-006"), "{out}");
}

/// Same with a data descriptor whose target is near the top of the address space
/// (FileOffset 0xFFFF_FFFF_FFFF_E000 + 4096 does not overflow: LOG-035 holds).
#[test]
fn far_target_does_not_abort() {
    let mut img = clean();
    let e = zero_block(&img, 5).data(0xFFFF_FFFF_FFFF_E000, vec![1; 4096]);
    img.write_log(&[e]);
    let out = check_cli(&img, "review-far-target");
    assert!(out.contains("LOG-045"), "{out}");
}

/// LogGuid 0: a stale entry is listed with its targets (LOG-001). Its descriptors are not
/// validated, so FileOffset may be anything: naming a target at u64::MAX must not overflow
/// (it did, in the LOG-001 message, wherever overflow checks are on).
#[test]
fn stale_entry_with_top_offset_is_listed() {
    let mut img = clean();
    let e = zero_block(&img, 5).data(u64::MAX, vec![1; 4096]);
    img.put_log_entry(0, &e);
    let r = crate::rules_header::run(&img);
    assert!(r.has("LOG-001"), "{:?}", r.ids());
}

/// A pending log that grows VirtualDiskSize from 64 MiB to 128 MiB (CATALOGUE 0.4: the
/// REPLAYED view is authoritative; META is judged there). The policy's requirements are
/// judged on the REPLAYED model too: a `max_virtual_size = "100 MiB"` policy rejects the
/// image (it once accepted it, judging the RAW metadata, and rejected only the copy
/// `vhdx-check replay` writes).
#[test]
fn policy_requirements_judge_the_replayed_metadata() {
    let mut img = clean();
    let vds = img.layout.item(&ITEM_VIRTUAL_DISK_SIZE).data_offset;
    let e = img.log_entry(&[(vds, &(128 * MIB).to_le_bytes())]);
    img.write_log(&[e]);
    let dir = Scratch::new("review-policy-replayed");
    let p = dir.path("grow.vhdx");
    img.write_to(std::path::Path::new(&p)).unwrap();
    let pol = dir.path("policy.toml");
    std::fs::write(&pol, "[require]\nmax_virtual_size = \"100 MiB\"\n").unwrap();
    let (code, out, _) = run_cli(&["check", "--policy", &pol, &p]);
    assert!(
        out.contains("POLICY-002") && code == 1,
        "exit {code}\n{out}"
    );
}
