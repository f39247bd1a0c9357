//! The responder's view: hidden-data sweeps name offset, range and a printable preview;
//! `--hash sha256` digests the file and the virtual disk as a guest reads it.

use crate::builder::*;
use crate::cli::{Scratch, corpus, run};
use crate::rules_header::base;
use crate::util::hex;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use vhdx_check::model::Model;
use vhdx_check::report::{self, Checked, HIDDEN_DATA_RULES};
use vhdx_check::{CheckOptions, check};

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[test]
fn hidden_data_lines_give_offset_range_and_preview() {
    let mut img = base();
    let l = img.layout.clone();
    img.patch(0x1234, b"SECRET-FTI");
    img.patch(0x12000, b"SECRET-HDR");
    img.edit_region_tables(|t| t[0x9000..0x900a].copy_from_slice(b"SECRET-RGN"));
    img.patch(l.metadata_offset + 0x8000, b"SECRET-MT");
    img.patch(l.metadata_offset + 0x8_0000, b"SECRET-MFREE");
    img.patch(0x60000, b"SECRET-HS");
    img.patch(l.bat_offset + 8 * 64, b"SECRET-B");
    // Block 5 moves to 8 MiB, leaving units 5..8 to nobody: LAYOUT-004 there.
    let old5 = l.block_offset(5);
    img.set_payload_entry(5, bat::entry(bat::FULLY_PRESENT, 8));
    img.patch(old5, &[0; 1024]);
    img.patch(6 * MIB + 3, b"SECRET-GAP");
    img.len = 12 * MIB;
    img.patch(11 * MIB + 17, b"SECRET-TAIL");

    let r = check(&img, &CheckOptions::default());
    let text = report::text::render(&[Checked {
        path: std::path::Path::new("x.vhdx"),
        outcome: report::Status::Report(&r),
        rejected: false,
        parts: None,
    }]);
    let planted = [
        ("FTI-006", "SECRET-FTI"),
        ("HDR-018", "SECRET-HDR"),
        ("RGN-021", "SECRET-RGN"),
        ("META-036", "SECRET-MT"),
        ("META-037", "SECRET-MFREE"),
        ("LAYOUT-006", "SECRET-HS"),
        ("BAT-016", "0x422d544552434553"), // the slack entry "SECRET-B" as a u64
        ("LAYOUT-004", "SECRET-GAP"),
        ("LAYOUT-005", "SECRET-TAIL"),
    ];
    for (id, preview) in planted {
        assert!(HIDDEN_DATA_RULES.contains(&id));
        let f = r
            .findings
            .iter()
            .find(|f| f.rule == id)
            .unwrap_or_else(|| panic!("{id} did not fire: {:?}", r.ids()));
        let (off, len) = (f.offset.unwrap(), f.length.unwrap());
        let line = text
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} not in text:\n{text}"));
        assert!(
            line.contains(&format!("{off:#010x}")),
            "{id} offset: {line}"
        );
        assert!(
            line.contains(&format!("range {off:#x}..{:#x} ({len} bytes)", off + len)),
            "{id} range: {line}"
        );
        assert!(line.contains(preview), "{id} preview: {line}");
    }
}

/// Expected raw contents of a built dynamic or fixed disk: the builder's writes.
fn raw(size: u64, writes: &[(u64, &[u8])]) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    for (at, data) in writes {
        v[*at as usize..*at as usize + data.len()].copy_from_slice(data);
    }
    v
}

fn digests(img: &Built) -> vhdx_check::hash::Digests {
    vhdx_check::hash::digests(&Model::build(img)).expect("digests")
}

#[test]
fn virtual_digest_of_built_images() {
    let writes: &[(u64, &[u8])] = &[
        (0, b"boot"),
        (3 * MIB + 7, b"middle"),
        // The last block is clipped at VirtualDiskSize (10 MiB + 512).
        (10 * MIB + 500, b"the end!...."),
    ];
    let size = 10 * MIB + 512;
    for builder in [ImageBuilder::dynamic(size), ImageBuilder::fixed(size)] {
        let img = writes
            .iter()
            .fold(builder.block_size(MIB as u32), |b, (at, d)| b.write(*at, d))
            .build();
        let d = digests(&img);
        assert_eq!(
            d.virtual_disk.as_deref(),
            Some(sha256(&raw(size, writes)).as_str())
        );
        assert_eq!(d.file, sha256(&img.to_vec()));
        assert!(d.virtual_unavailable.is_none());
    }

    // A block in any state but FULLY_PRESENT reads as zeros, whatever the file holds.
    let mut img = writes
        .iter()
        .fold(
            ImageBuilder::dynamic(size).block_size(MIB as u32),
            |b, (at, d)| b.write(*at, d),
        )
        .build();
    let at3 = img.layout.block_offset(3);
    img.set_payload_entry(3, bat::entry(bat::ZERO, at3 / MIB));
    assert_eq!(
        digests(&img).virtual_disk,
        Some(sha256(&raw(size, &[writes[0], writes[2]])))
    );

    let child = ImageBuilder::differencing(8 * MIB)
        .block_size(MIB as u32)
        .build();
    let d = digests(&child);
    assert!(d.virtual_disk.is_none());
    assert!(d.virtual_unavailable.unwrap().contains("parent"));
}

#[test]
fn hash_flag_in_text_and_json_only_when_asked() {
    let p = corpus("qemu-dynamic-1M.vhdx");
    let p = p.to_str().unwrap();
    let (_, out, _) = run(&["check", "--format", "json", p]);
    assert!(!out.contains("digests"));
    let (code, out, _) = run(&["check", "--format", "json", "--hash", "sha256", p]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let d = &v["images"][0]["digests"];
    assert_eq!(d["algorithm"], "sha256");
    assert_eq!(d["file"], sha256(&std::fs::read(p).unwrap()));
    let (_, out, _) = run(&["check", "--hash", "sha256", p]);
    assert!(out.contains("sha256 virtual disk  "), "{out}");
    assert_eq!(run(&["check", "--hash", "md5", p]).0, 2);
}

/// The virtual digest equals sha256 of `qemu-img convert -O raw` (the corpus images are
/// qemu-img's).
#[test]
fn virtual_digest_matches_qemu_img_convert() {
    if Command::new("qemu-img").arg("--version").output().is_err() {
        eprintln!("SKIP virtual_digest_matches_qemu_img_convert: qemu-img not installed");
        return;
    }
    let dir = Scratch::new("hash-qemu");
    for name in [
        "qemu-dynamic-1M.vhdx",
        "qemu-dynamic-32M.vhdx",
        "qemu-fixed-1M.vhdx",
        "qemu-fixed-zero-state.vhdx",
    ] {
        let img = corpus(name);
        let out = dir.path("raw");
        let ok = Command::new("qemu-img")
            .args(["convert", "-O", "raw", img.to_str().unwrap(), &out])
            .status()
            .unwrap();
        assert!(ok.success(), "qemu-img convert {name}");
        let want = sha256(&std::fs::read(&out).unwrap());
        let (code, json, _) = run(&[
            "check",
            "--format",
            "json",
            "--hash",
            "sha256",
            img.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{name}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["images"][0]["digests"]["virtual_disk"], want, "{name}");
        assert!(Path::new(&out).exists());
    }
}
