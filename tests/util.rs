//! Helpers shared by the test modules: the one positive assertion on a report
//! ([`assert_fires`]), byte comparison with hex on failure, and blessed snapshot files
//! (`BLESS=1` rewrites them).

use serde_json::Value;
use std::path::Path;
use vhdx_check::{Finding, ImageReport};

/// Asserts that rule `id` fired on `r` and returns its findings (never empty). Every
/// helper that asserts a rule fires goes through this one; the catalogue test counts a
/// rule as tested when a test names its id in a call of one of them
/// (`catalogue::POSITIVE`).
#[track_caller]
pub fn assert_fires<'r>(r: &'r ImageReport, id: &str) -> Vec<&'r Finding> {
    let found: Vec<&Finding> = r.findings.iter().filter(|f| f.rule == id).collect();
    assert!(!found.is_empty(), "{id} did not fire; fired: {:?}", r.ids());
    found
}

/// Asserts that rule `id` fired in `image` (one image of a JSON report) and returns its
/// findings (never empty): [`assert_fires`] for reports read back from the command line.
#[track_caller]
pub fn assert_fires_json<'v>(image: &'v Value, id: &str) -> Vec<&'v Value> {
    let all = image["findings"].as_array().map_or(&[][..], Vec::as_slice);
    let found: Vec<&Value> = all.iter().filter(|f| f["rule"] == id).collect();
    assert!(!found.is_empty(), "no {id} in {image}");
    found
}

/// `bytes` in lower-case hex, two digits each (digests, `*_bytes` fields of the JSON).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` as a hex dump: 16 bytes a line, each line led by the offset of its first byte
/// plus `base`.
pub fn hex_dump(bytes: &[u8], base: usize) -> String {
    let mut out = String::new();
    for (k, line) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:08x} ", base + k * 16));
        for b in line {
            out.push_str(&format!(" {b:02x}"));
        }
        out.push('\n');
    }
    out
}

/// Where `got` and `want` first differ, with the bytes around it from both in hex; `None`
/// when they are equal.
pub fn byte_difference(got: &[u8], want: &[u8]) -> Option<String> {
    if got == want {
        return None;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let from = at.saturating_sub(32) / 16 * 16;
    let around = |b: &[u8]| hex_dump(&b[from.min(b.len())..(at + 48).min(b.len())], from);
    Some(format!(
        "{} bytes, want {}; first difference at byte {at:#x}\ngot:\n{}want:\n{}",
        got.len(),
        want.len(),
        around(got),
        around(want)
    ))
}

/// Asserts `got == want`, showing where they differ in hex.
#[track_caller]
pub fn assert_bytes_eq(what: &str, got: &[u8], want: &[u8]) {
    if let Some(d) = byte_difference(got, want) {
        panic!("{what}: {d}");
    }
}

/// Compares `got` with the committed snapshot `path` (relative to the repository root):
/// `None` when equal, else why not. With `BLESS` set in the environment the file is
/// rewritten instead.
pub fn snapshot(path: &str, got: &[u8]) -> Option<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("BLESS").is_some() {
        if std::fs::read(&file).ok().as_deref() != Some(got) {
            std::fs::create_dir_all(file.parent().expect("a snapshot has a directory"))
                .expect("create the snapshot directory");
            std::fs::write(&file, got).expect("write the snapshot");
        }
        return None;
    }
    match std::fs::read(&file) {
        Ok(want) => byte_difference(got, &want).map(|d| format!("{path}: {d}")),
        Err(e) => Some(format!("{path}: {e} (BLESS=1 writes it)")),
    }
}

#[test]
fn byte_difference_shows_both_sides_in_hex() {
    assert_eq!(byte_difference(b"same", b"same"), None);
    let d = byte_difference(b"abcdef", b"abcXef").unwrap();
    assert!(d.contains("first difference at byte 0x3"), "{d}");
    assert!(d.contains("got:\n00000000  61 62 63 64 65 66\n"), "{d}");
    assert!(d.contains("want:\n00000000  61 62 63 58 65 66\n"), "{d}");
    let d = byte_difference(b"ab", b"abc").unwrap();
    assert!(
        d.starts_with("2 bytes, want 3; first difference at byte 0x2"),
        "{d}"
    );
}
