//! Log replay end to end through the command line (CATALOGUE §3; notes/log-semantics.md):
//!
//! * `vhdx-check replay IMAGE OUT` writes the REPLAYED view: OUT equals what the builder's
//!   [`Built::apply_log_entry`] makes of IMAGE for the strict scan's entries, outside the
//!   header slots [0x10000, 0x30000) (replay rewrites the headers with LogGuid = 0); OUT is a
//!   clean image for vhdx-check and for `qemu-img check`; IMAGE is never modified; an
//!   existing OUT is refused (exit 2, OUT unchanged).
//! * `check --format json` labels findings with the view they were judged on.
//! * Logs written by QEMU itself (qemu-img / qemu-io), made at test time.

use crate::builder::*;
use crate::cli::{Scratch, run};
use crate::rules_log::{bat_at, chained, clean, wrapped, zero_block};
use serde_json::Value;
use std::ops::Range;
use std::path::Path;
use std::process::Command;
use vhdx_check::io::MemReader;
use vhdx_check::{CheckOptions, ImageReport, check};

/// The header slots: replay rewrites them, so OUT is compared outside.
const HEADER_SLOTS: Range<u64> = 0x10000..0x30000;

/// Block 600's BAT entry lies in the second 4 KiB sector of the BAT.
const FAR: u64 = 600;

/// A 1 GiB dynamic disk with 1 MiB blocks (a two-sector BAT), block 0 written.
fn big() -> Built {
    ImageBuilder::dynamic(1024 * MIB)
        .block_size(MIB as u32)
        .write_block(0, &[0xA5; 4096])
        .build()
}

/// The file offset of the BAT sector holding block `block`'s entry.
fn bat_sector(img: &Built, block: u64) -> u64 {
    bat_at(img, block) / 4096 * 4096
}

fn past_eof() -> u64 {
    bat::entry(bat::FULLY_PRESENT, 999)
}

/// Returns `img` with `entries` applied, the file grown to `len`.
fn applied(img: &Built, entries: &[LogEntry], len: u64) -> Built {
    let mut out = img.clone();
    for e in entries {
        out.apply_log_entry(e);
    }
    out.len = len;
    out
}

fn have(tool: &str, test: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED {test}: {tool} not found on PATH (install qemu-utils)");
    }
    ok
}

/// Runs a QEMU tool: (success, stdout + stderr).
fn qemu(tool: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `check --format json` of one file: (exit code, the image's JSON object).
fn check_json(path: &str) -> (i32, Value) {
    let (code, out, err) = run(&["check", "--format", "json", path]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, v["images"][0].clone())
}

fn findings(img: &Value) -> Vec<Value> {
    img["findings"].as_array().expect("findings").clone()
}

fn rules_of(img: &Value) -> Vec<String> {
    findings(img)
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

/// The current header (valid signature and checksum, greater sequence number) of `bytes`.
fn current_header(bytes: &[u8]) -> Option<(u64, Vec<u8>)> {
    HEADER_OFFSETS
        .iter()
        .map(|&at| (at, bytes[at as usize..at as usize + HEADER_SIZE].to_vec()))
        .filter(|(_, h)| {
            &h[..4] == SIG_HEADER && crc_with_zeroed_field(h, hdr::CHECKSUM) == get_u32(h, 4)
        })
        .max_by_key(|(_, h)| get_u64(h, hdr::SEQUENCE_NUMBER))
}

/// Writes `img`, replays it to a new file and checks the result against `want` (the
/// builder's applied image): byte for byte outside the header slots, both headers valid
/// with LogGuid 0, IMAGE unchanged, OUT clean for vhdx-check and `qemu-img check`.
fn assert_replays_to(name: &str, img: &Built, want: &Built) {
    let dir = Scratch::new(&format!("replay-{name}"));
    let image = dir.path("image.vhdx");
    let out = dir.path("out.vhdx");
    img.write_to(Path::new(&image)).unwrap();
    let before = std::fs::read(&image).unwrap();
    let mtime = std::fs::metadata(&image).unwrap().modified().unwrap();

    let (code, stdout, stderr) = run(&["replay", &image, &out]);
    assert_eq!(code, 0, "{name}: replay: {stdout}{stderr}");

    assert!(
        std::fs::read(&image).unwrap() == before,
        "{name}: replay modified IMAGE"
    );
    assert_eq!(
        std::fs::metadata(&image).unwrap().modified().unwrap(),
        mtime,
        "{name}: IMAGE mtime"
    );

    let got = std::fs::read(&out).unwrap();
    let expected = want.to_vec();
    assert_eq!(got.len(), expected.len(), "{name}: OUT length");
    let diff = (0..got.len())
        .filter(|&i| !HEADER_SLOTS.contains(&(i as u64)))
        .find(|&i| got[i] != expected[i]);
    assert!(
        diff.is_none(),
        "{name}: OUT differs from the applied image at {:#x} (got {:#04x}, want {:#04x})",
        diff.unwrap(),
        got[diff.unwrap()],
        expected[diff.unwrap()]
    );
    for at in HEADER_OFFSETS {
        let h = &got[at as usize..at as usize + HEADER_SIZE];
        assert_eq!(&h[..4], SIG_HEADER, "{name}: header at {at:#x}");
        assert_eq!(
            crc_with_zeroed_field(h, hdr::CHECKSUM),
            get_u32(h, hdr::CHECKSUM),
            "{name}: header at {at:#x} checksum"
        );
        assert_eq!(
            &h[hdr::LOG_GUID..][..16],
            &[0; 16],
            "{name}: header at {at:#x} LogGuid"
        );
    }

    // OUT is an image with an empty log: the entries stay in the ring as history (LOG-001).
    let (code, report) = check_json(&out);
    let rules = rules_of(&report);
    assert_eq!(code, 0, "{name}: check OUT: {report:#}");
    assert!(
        rules.iter().any(|r| r == "LOG-001"),
        "{name}: OUT ring: {rules:?}"
    );
    for id in ["LOG-002", "LOG-003", "LOG-004", "LOG-005", "LOG-006"] {
        assert!(!rules.iter().any(|r| r == id), "{name}: OUT: {rules:?}");
    }
    assert_eq!(report["summary"]["error"], 0, "{name}: {report:#}");

    if have("qemu-img", name) {
        let (ok, text) = qemu("qemu-img", &["check", "-f", "vhdx", &out]);
        assert!(ok, "{name}: qemu-img check OUT: {text}");
    }
}

#[test]
fn replay_applies_data_and_zero_descriptors() {
    // RAW: block 600's BAT entry points past EOF (an error); the pending log makes block 5
    // PAYLOAD_BLOCK_ZERO (data descriptor) and zeroes the BAT sector of block 600.
    let mut img = big();
    img.patch_u64(bat_at(&img, FAR), past_eof());
    let sector = bat_sector(&img, FAR);
    assert_ne!(sector, bat_sector(&img, 5));
    let e1 = zero_block(&img, 5);
    let e2 = img.log_entry(&[]).zero(sector, 4096);
    let (written, _) = img.write_sequence(0, LOG_SEQUENCE, &[e1, e2]);
    let want = applied(&img, &written, img.len);
    assert_eq!(want.bat_entry(FAR), 0);
    assert_replays_to("data-zero", &img, &want);
}

#[test]
fn replay_of_a_sequence_wrapping_the_ring_end() {
    let (img, entries, _) = wrapped();
    let want = applied(&img, &entries, img.len);
    assert_eq!(want.bat_entry(6), bat::ZERO);
    assert_replays_to("wrapped", &img, &want);
}

#[test]
fn replay_of_an_entry_with_two_descriptor_sectors() {
    // 200 zero descriptors then a data descriptor: D = 2, data sector at entry offset 8 KiB.
    let mut img = big();
    img.patch_u64(bat_at(&img, FAR), past_eof());
    let sector = bat_sector(&img, FAR);
    let e = (0..200).fold(img.log_entry(&[]), |acc, i| {
        acc.zero(sector + 4096 * i, 4096)
    });
    let Descriptor::Data { file_offset, data } = zero_block(&img, 5).descriptors[0].clone() else {
        unreachable!()
    };
    let e = e.data(file_offset, data);
    assert_eq!(e.length(), 3 * 4096);
    img.write_log(std::slice::from_ref(&e));
    let want = applied(&img, &[e], img.len);
    assert_eq!((want.bat_entry(5), want.bat_entry(FAR)), (bat::ZERO, 0));
    assert_replays_to("two-descriptor-sectors", &img, &want);
}

#[test]
fn replay_starts_at_the_heads_tail() {
    // A (older: block 600 ZERO) then B (tail = B, block 5 ZERO):
    // the strict scan replays B only (LOG-062); QEMU would replay A too.
    let mut img = big();
    let a = zero_block(&img, FAR);
    let b = zero_block(&img, 5);
    let (written, places) = img.write_sequence(0, LOG_SEQUENCE, &[a, b]);
    let b = written[1].clone().tail(places[1].ring_offset as u32);
    img.put_log_entry(places[1].ring_offset, &b);
    let want = applied(&img, std::slice::from_ref(&b), img.len);
    assert_eq!((want.bat_entry(5), want.bat_entry(FAR)), (bat::ZERO, 0));
    assert_replays_to("from-tail", &img, &want);
}

#[test]
fn replay_grows_the_file_to_last_file_offset() {
    let mut img = clean();
    let len = img.len;
    let e = zero_block(&img, 5).file_offsets(len, len + 2 * MIB);
    img.write_log(std::slice::from_ref(&e));
    let want = applied(&img, &[e], len + 2 * MIB);
    assert_replays_to("grow", &img, &want);
}

#[test]
fn replay_grows_the_file_to_the_last_write() {
    // A data descriptor 4 MiB past EOF (LastFileOffset = the file size): the replayed file
    // ends where that write ends, with zeros in the gap (CATALOGUE §3.5 step 2).
    let mut img = clean();
    let len = img.len;
    let at = len + 4 * MIB;
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8 | 1).collect();
    let e = zero_block(&img, 5).data(at, pattern);
    img.write_log(std::slice::from_ref(&e));
    let want = applied(&img, &[e], at + 4096);
    assert_replays_to("grow-to-write", &img, &want);
}

#[test]
fn replay_of_chained_entries_over_one_sector() {
    let mut img = clean();
    let entries = chained(&img, &[5, 6, 7]);
    let (written, _) = img.write_sequence(0x4000, LOG_SEQUENCE + 10, &entries);
    let want = applied(&img, &written, img.len);
    assert_replays_to("chained", &img, &want);
}

#[test]
fn replay_reassembles_leading_and_trailing_bytes() {
    // A 4 KiB update whose every byte differs from its neighbours: descriptor LeadingBytes
    // (0..8) ‖ data sector (8..4092) ‖ descriptor TrailingBytes (4092..4096). Written into
    // the metadata region's free space (beyond the items, inside the region).
    let mut img = big();
    let at = img.layout.metadata_offset + 0x80000;
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let e = img.log_entry(&[]).data(at, pattern.clone());
    img.write_log(std::slice::from_ref(&e));
    let want = applied(&img, &[e], img.len);
    assert_eq!(want.read(at, 4096), pattern);
    assert_replays_to("leading-trailing", &img, &want);
}

#[test]
fn replay_applies_overlapping_descriptors_in_order() {
    // One entry: zero the BAT sector of block 600, then a data descriptor re-writing it
    // with block 600 ZERO; a second entry: the data first, then a zero descriptor. The
    // later descriptor wins (LOG-047), so block 600 ends ZERO after entry 1 and NOT_PRESENT
    // after entry 2; block 601 (data of entry 2) is zeroed too.
    let mut img = big();
    let sector = bat_sector(&img, FAR);
    let Descriptor::Data { data: far_zero, .. } = zero_block(&img, FAR).descriptors[0].clone()
    else {
        unreachable!()
    };
    let Descriptor::Data {
        data: near_zero, ..
    } = zero_block(&img, FAR + 1).descriptors[0].clone()
    else {
        unreachable!()
    };
    let e1 = img
        .log_entry(&[])
        .zero(sector, 4096)
        .data(sector, far_zero.clone());
    let e2 = img
        .log_entry(&[])
        .data(sector, near_zero)
        .zero(sector, 4096);
    let (written, _) = img.write_sequence(0, LOG_SEQUENCE, std::slice::from_ref(&e1));
    let want = applied(&img, &written, img.len);
    assert_eq!(want.bat_entry(FAR), bat::ZERO);
    assert_replays_to("overlap-data-wins", &img, &want);

    let mut img = big();
    let (written, _) = img.write_sequence(0, LOG_SEQUENCE, &[e1, e2]);
    let want = applied(&img, &written, img.len);
    assert_eq!((want.bat_entry(FAR), want.bat_entry(FAR + 1)), (0, 0));
    assert_replays_to("overlap-zero-wins", &img, &want);
}

#[test]
fn replay_refuses_an_existing_output() {
    let (img, _, _) = crate::rules_log::dirty();
    let dir = Scratch::new("replay-exists");
    let image = dir.path("image.vhdx");
    img.write_to(Path::new(&image)).unwrap();
    let out = dir.file("out.vhdx", "keep me");
    let before = std::fs::read(&image).unwrap();
    let mtime = std::fs::metadata(&image).unwrap().modified().unwrap();
    let (code, stdout, stderr) = run(&["replay", &image, &out]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(!stderr.is_empty(), "a one-line reason on stderr");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    assert!(std::fs::read(&image).unwrap() == before);
    assert_eq!(
        std::fs::metadata(&image).unwrap().modified().unwrap(),
        mtime
    );
    // OUT = IMAGE is an existing file too.
    let (code, _, _) = run(&["replay", &image, &image]);
    assert_eq!(code, 2);
    assert!(std::fs::read(&image).unwrap() == before);
}

#[test]
fn replay_without_a_pending_log_writes_nothing() {
    let dir = Scratch::new("replay-none");
    for (name, img) in [
        ("empty-log", clean()),
        ("log-guid-no-sequence", {
            let mut img = clean();
            img.set_log_guid(img.layout.log_guid);
            img
        }),
    ] {
        let image = dir.path(&format!("{name}.vhdx"));
        let out = dir.path(&format!("{name}-out.vhdx"));
        img.write_to(Path::new(&image)).unwrap();
        let (code, stdout, stderr) = run(&["replay", &image, &out]);
        assert_eq!(code, 2, "{name}: {stdout}{stderr}");
        assert!(!Path::new(&out).exists(), "{name}: OUT created");
    }
}

// ---- views in the JSON report -------------------------------------------------------------

fn of_rule<'a>(f: &'a [Value], rule: &str) -> Vec<&'a Value> {
    f.iter().filter(|x| x["rule"] == rule).collect()
}

#[test]
fn json_views_raw_error_fixed_by_the_log() {
    // RAW: block 5 FULLY_PRESENT past EOF (BAT-014 on RAW); the log writes the BAT back.
    let mut img = clean();
    let clean_sector = img.read(bat_sector(&img, 5), 4096);
    img.patch_u64(bat_at(&img, 5), past_eof());
    let raw_rules: Vec<&str> = ["BAT-014", "LAYOUT-002"]
        .into_iter()
        .filter(|id| report(&img).has(id))
        .collect();
    assert!(!raw_rules.is_empty(), "the RAW damage fires BAT-014");
    let e = img.log_entry(&[]).data(bat_sector(&img, 5), clean_sector);
    img.write_log(&[e]);

    let dir = Scratch::new("json-raw-fixed");
    let p = dir.path("image.vhdx");
    img.write_to(Path::new(&p)).unwrap();
    let (_, v) = check_json(&p);
    let f = findings(&v);
    assert!(!of_rule(&f, "LOG-003").is_empty(), "{v:#}");
    for id in &raw_rules {
        assert!(
            !f.iter()
                .any(|x| x["rule"] == *id && x["view"] == "replayed"),
            "{id} on the replayed view: {v:#}"
        );
        assert!(
            of_rule(&f, "LOG-007")
                .iter()
                .any(|x| x["view"] == "raw" && x["message"].as_str().unwrap().contains(id)),
            "no LOG-007 (view raw) for {id}: {v:#}"
        );
    }
}

#[test]
fn json_views_error_introduced_by_the_log() {
    let mut img = clean();
    let e = img.log_entry(&[(bat_at(&img, 5), &past_eof().to_le_bytes())]);
    img.write_log(&[e]);
    let dir = Scratch::new("json-introduced");
    let p = dir.path("image.vhdx");
    img.write_to(Path::new(&p)).unwrap();
    let (code, v) = check_json(&p);
    let f = findings(&v);
    assert_eq!(
        code, 1,
        "the REPLAYED view's error rejects the image: {v:#}"
    );
    let bat014 = of_rule(&f, "BAT-014");
    assert!(
        !bat014.is_empty() && bat014.iter().all(|x| x["view"] == "replayed"),
        "{v:#}"
    );
    assert!(
        of_rule(&f, "LOG-007")
            .iter()
            .any(|x| x["view"] == "replayed" && x["message"].as_str().unwrap().contains("BAT-014")),
        "{v:#}"
    );
    // LOG findings are judged on RAW bytes.
    assert!(
        of_rule(&f, "LOG-003").iter().all(|x| x["view"] == "raw"),
        "{v:#}"
    );
}

fn report(img: &Built) -> ImageReport {
    check(img, &CheckOptions::default())
}

// ---- logs written by QEMU ---------------------------------------------------------------------

/// A 64 MiB dynamic image (1 MiB blocks) after `qemu-io` wrote 4 MiB: QEMU logged each BAT
/// update and cleared LogGuid on close. Returns its bytes and the entries' ring offsets.
fn qemu_written(dir: &Scratch) -> Option<(String, Vec<u8>)> {
    if !have("qemu-img", "qemu logs") || !have("qemu-io", "qemu logs") {
        return None;
    }
    let p = dir.path("qemu.vhdx");
    let (ok, text) = qemu(
        "qemu-img",
        &["create", "-f", "vhdx", "-o", "block_size=1M", &p, "64M"],
    );
    assert!(ok, "qemu-img create: {text}");
    let (ok, text) = qemu("qemu-io", &["-f", "vhdx", "-c", "write -P 0xab 0 4M", &p]);
    assert!(ok, "qemu-io: {text}");
    let bytes = std::fs::read(&p).unwrap();
    Some((p, bytes))
}

/// Ring positions (ring offset, SequenceNumber, LogGuid) of entries with a correct CRC.
fn ring_entries(bytes: &[u8], h: &[u8]) -> Vec<(u64, u64, Guid)> {
    let (lo, ll) = (
        get_u64(h, hdr::LOG_OFFSET) as usize,
        get_u32(h, hdr::LOG_LENGTH) as usize,
    );
    (0..ll)
        .step_by(4096)
        .filter_map(|pos| {
            let e = &bytes[lo + pos..];
            let len = get_u32(e, log::ENTRY_LENGTH) as usize;
            (&e[..4] == SIG_LOG_ENTRY
                && len > 0
                && pos + len <= ll
                && crc_with_zeroed_field(&e[..len], log::CHECKSUM) == get_u32(e, log::CHECKSUM))
            .then(|| {
                let guid: Guid = e[log::LOG_GUID..][..16].try_into().unwrap();
                (pos as u64, get_u64(e, log::SEQUENCE_NUMBER), guid)
            })
        })
        .collect()
}

#[test]
fn qemu_written_log_is_history_after_close() {
    let dir = Scratch::new("qemu-log-closed");
    let Some((_, bytes)) = qemu_written(&dir) else {
        return;
    };
    let (_, h) = current_header(&bytes).expect("a current header");
    assert_eq!(&h[hdr::LOG_GUID..][..16], &[0; 16], "QEMU clears LogGuid");
    let lo = get_u64(&h, hdr::LOG_OFFSET);
    let entries = ring_entries(&bytes, &h);
    assert!(!entries.is_empty(), "QEMU left no log entries in the ring");

    let r = check(&MemReader(&bytes), &CheckOptions::default());
    let mut got: Vec<Option<u64>> = r
        .findings
        .iter()
        .filter(|f| f.rule == "LOG-001")
        .map(|f| f.offset)
        .collect();
    got.sort();
    let want: Vec<Option<u64>> = entries.iter().map(|e| Some(lo + e.0)).collect();
    assert_eq!(got, want, "one LOG-001 per QEMU entry");
    let errors: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity == vhdx_check::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let log: Vec<_> = r
        .ids()
        .into_iter()
        .filter(|i| i.starts_with("LOG-"))
        .collect();
    assert_eq!(log, ["LOG-001"]);
}

#[test]
fn qemu_written_log_made_pending_again() {
    let dir = Scratch::new("qemu-log-pending");
    let Some((p, mut bytes)) = qemu_written(&dir) else {
        return;
    };
    let (at, mut h) = current_header(&bytes).expect("a current header");
    let entries = ring_entries(&bytes, &h);
    // QEMU gives every log flush its own LogGuid: the newest entry's session is pending.
    let (pos, _, guid) = *entries.iter().max_by_key(|e| e.1).unwrap();
    h[hdr::LOG_GUID..][..16].copy_from_slice(&guid);
    seal(&mut h, hdr::CHECKSUM);
    bytes[at as usize..at as usize + HEADER_SIZE].copy_from_slice(&h);
    let lo = get_u64(&h, hdr::LOG_OFFSET);

    let r = check(&MemReader(&bytes), &CheckOptions::default());
    let ids = r.ids();
    assert!(
        ids.contains("LOG-003") || ids.contains("LOG-004"),
        "no active sequence: {ids:?}"
    );
    for id in ["LOG-001", "LOG-002", "LOG-070", "LOG-005", "LOG-006"] {
        assert!(!ids.contains(id), "{id}: {:#?}", r.findings);
    }
    // The other sessions' entries are remnants (LOG-014), the newest one is not.
    let mut stale: Vec<Option<u64>> = r
        .findings
        .iter()
        .filter(|f| f.rule == "LOG-014")
        .map(|f| f.offset)
        .collect();
    stale.sort();
    let want: Vec<Option<u64>> = entries
        .iter()
        .filter(|e| e.2 != guid)
        .map(|e| Some(lo + e.0))
        .collect();
    assert_eq!(stale, want, "LOG-014 at every other session's entry");
    assert!(!stale.contains(&Some(lo + pos)));

    // vhdx-check's replay of QEMU's own log yields an image qemu-img accepts.
    std::fs::write(&p, &bytes).unwrap();
    let out = dir.path("out.vhdx");
    let (code, stdout, stderr) = run(&["replay", &p, &out]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (ok, text) = qemu("qemu-img", &["check", "-f", "vhdx", &out]);
    assert!(ok, "qemu-img check OUT: {text}");
    // And QEMU agrees it had a pending log to replay in the edited file.
    let (ok, text) = qemu("qemu-img", &["info", "-f", "vhdx", &p]);
    assert!(
        !ok && text.contains("log that needs to be replayed"),
        "qemu-img info: {text}"
    );
}

// ---- OUT appears only complete -------------------------------------------------------

/// The names in `dir` (a replay that failed leaves none of its own behind).
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn replay_killed_part_way_leaves_no_output() {
    // RLIMIT_FSIZE below OUT's size: the kernel kills the replay with SIGXFSZ in the middle
    // of writing OUT (a kill at a deterministic point).
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("SKIPPED replay_killed_part_way_leaves_no_output: prlimit not found");
        return;
    }
    let (img, _, _) = crate::rules_log::dirty();
    let dir = Scratch::new("replay-killed");
    let image = dir.path("image.vhdx");
    img.write_to(Path::new(&image)).unwrap();
    let out_dir = dir.0.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("out.vhdx");
    let status = Command::new("prlimit")
        .arg("--fsize=200000")
        .arg(env!("CARGO_BIN_EXE_vhdx-check"))
        .args(["replay", &image, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!status.status.success(), "{status:?}");
    assert!(!out.exists(), "a partial OUT was left behind");
    let left = names_in(&out_dir);
    assert!(
        left.iter()
            .all(|n| n.starts_with(".out.vhdx.vhdx-check-tmp.")),
        "{left:?}"
    );
    // Unlimited, the same replay writes OUT.
    let (code, stdout, stderr) = run(&["replay", &image, out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(std::fs::metadata(&out).unwrap().len() > 200000);
}

#[test]
fn replay_failing_part_way_leaves_nothing() {
    // OUT on a filesystem that fills up while it is written (a 128 KiB tmpfs; needs root).
    let (img, _, _) = crate::rules_log::dirty();
    let dir = Scratch::new("replay-full");
    let image = dir.path("image.vhdx");
    img.write_to(Path::new(&image)).unwrap();
    let mnt = dir.0.join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=128k",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!(
            "SKIPPED replay_failing_part_way_leaves_nothing: cannot mount a tmpfs (not root?)"
        );
        return;
    }
    let out = mnt.join("out.vhdx");
    let (code, stdout, stderr) = run(&["replay", &image, out.to_str().unwrap()]);
    let left = names_in(&mnt);
    let _ = Command::new("umount").arg(&mnt).status();
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("cannot write"), "{stderr}");
    assert_eq!(
        left,
        Vec::<String>::new(),
        "nothing left on the full filesystem"
    );
}
