//! A file that is another disk format (or empty) gets exactly one finding, FTI-007, that
//! names the format; a VHDX whose signature is merely damaged still gets the full walk.

use crate::builder::*;
use crate::cli::Scratch;
use std::process::Command;
use vhdx_check::io::MemReader;
use vhdx_check::{CheckOptions, ImageReport, check};

fn check_bytes(b: &[u8]) -> ImageReport {
    check(&MemReader(b), &CheckOptions::default())
}

/// Exactly one finding, FTI-007, whose message contains `name`.
fn only_not_vhdx(r: &ImageReport, name: &str, what: &str) {
    let ids: Vec<_> = r.findings.iter().map(|f| f.rule).collect();
    assert_eq!(ids, ["FTI-007"], "{what}: {:#?}", r.findings);
    assert!(r.suppressed.is_empty(), "{what}");
    let msg = &r.findings[0].message;
    assert!(
        msg.starts_with("not a VHDX file") && msg.contains(name),
        "{what}: {msg}"
    );
}

fn bytes(len: usize, parts: &[(usize, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; len];
    for (off, p) in parts {
        b[*off..off + p.len()].copy_from_slice(p);
    }
    b
}

#[test]
fn hand_built_headers_of_other_formats() {
    const M: usize = 2 << 20;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dynamic VHD",
            bytes(M, &[(0, b"conectix"), (M - 512, b"conectix")]),
            "dynamic or differencing VHD",
        ),
        (
            "fixed VHD",
            bytes(M, &[(M - 512, b"conectix")]),
            "fixed VHD",
        ),
        ("qcow2", bytes(M, &[(0, b"QFI\xfb\0\0\0\x03")]), "QCOW2"),
        (
            "vmdk sparse",
            bytes(M, &[(0, b"KDMV\x01\0\0\0")]),
            "VMDK sparse extent",
        ),
        (
            "vmdk descriptor",
            b"# Disk DescriptorFile\nversion=1\n".to_vec(),
            "VMDK descriptor",
        ),
        (
            "vdi",
            bytes(
                M,
                &[
                    (0, b"<<< Oracle VM VirtualBox Disk Image >>>\n"),
                    (0x40, &[0x7f, 0x10, 0xda, 0xbe]),
                ],
            ),
            "VDI",
        ),
        (
            "mbr",
            bytes(M, &[(446, &[0x80, 0, 2, 0, 0x83]), (510, &[0x55, 0xaa])]),
            "MBR",
        ),
        (
            "gpt 512",
            bytes(M, &[(510, &[0x55, 0xaa]), (512, b"EFI PART")]),
            "GPT",
        ),
        (
            "gpt 4096",
            bytes(M, &[(510, &[0x55, 0xaa]), (4096, b"EFI PART")]),
            "GPT",
        ),
        ("empty", Vec::new(), "empty"),
        ("short", b"hello".to_vec(), "too short"),
    ];
    for (what, b, name) in cases {
        only_not_vhdx(&check_bytes(&b), name, what);
    }
}

#[test]
fn a_damaged_vhdx_still_gets_the_full_walk() {
    let mut img = ImageBuilder::dynamic(64 * MIB).build();
    // One signature byte flipped: not "vhdxfile", and no other format's magic.
    img.patch(0, b"whdxfile");
    let r = check(&img, &CheckOptions::default());
    assert!(r.has("FTI-002") && !r.has("FTI-007"), "{:#?}", r.findings);
    // The walk went on past the identifier (the structures are sound, so FTI-004 reports
    // the Creator).
    assert!(r.has("FTI-004"), "{:#?}", r.findings);
    let mut small = ImageBuilder::dynamic(8 * MIB).build();
    small.patch(0, b"VHDXFILE");
    let r = check(&small, &CheckOptions::default());
    assert!(
        !r.has("FTI-007") && r.findings.len() > 1,
        "{:#?}",
        r.findings
    );
}

/// Real files of the other formats, written by qemu-img.
#[test]
fn qemu_img_files_of_other_formats() {
    if Command::new("qemu-img").arg("--version").output().is_err() {
        eprintln!("SKIP qemu_img_files_of_other_formats: qemu-img not installed");
        return;
    }
    let dir = Scratch::new("not-vhdx");
    let cases: &[(&str, &[&str], &str)] = &[
        ("dyn.vhd", &["-f", "vpc"], "dynamic or differencing VHD"),
        (
            "fixed.vhd",
            &["-f", "vpc", "-o", "subformat=fixed"],
            "fixed VHD",
        ),
        ("a.qcow2", &["-f", "qcow2"], "QCOW2"),
        ("sparse.vmdk", &["-f", "vmdk"], "VMDK sparse extent"),
        (
            "flat.vmdk",
            &["-f", "vmdk", "-o", "subformat=monolithicFlat"],
            "VMDK descriptor",
        ),
        ("a.vdi", &["-f", "vdi"], "VDI"),
    ];
    for (name, args, want) in cases {
        let p = dir.path(name);
        let ok = Command::new("qemu-img")
            .arg("create")
            .arg("-q")
            .args(*args)
            .args([&p, "16M"])
            .status()
            .unwrap();
        assert!(ok.success(), "qemu-img create {name}");
        let b = std::fs::read(&p).unwrap();
        only_not_vhdx(&check_bytes(&b), want, name);
    }
    // A raw disk from qemu-img, given an MBR boot signature, then a GPT header.
    let raw = dir.path("gpt.raw");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "raw", &raw, "16M"])
        .status()
        .unwrap();
    assert!(ok.success());
    let mut b = std::fs::read(&raw).unwrap();
    b[510..512].copy_from_slice(&[0x55, 0xaa]);
    only_not_vhdx(&check_bytes(&b), "MBR", "raw + MBR");
    b[512..520].copy_from_slice(b"EFI PART");
    only_not_vhdx(&check_bytes(&b), "GPT", "raw + GPT");
}
