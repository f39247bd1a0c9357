//! Images written by qemu-img / qemu-io (committed under corpus/images): no error, and
//! the warnings are exactly the known QEMU departure (RGN-020).

use vhdx_check::io::FileReader;
use vhdx_check::{CheckOptions, Severity, check};

const QEMU_IMAGES: &[&str] = &[
    "qemu-dynamic-1M.vhdx",
    "qemu-dynamic-32M.vhdx",
    "qemu-fixed-1M.vhdx",
    "qemu-fixed-zero-state.vhdx",
];

#[test]
fn qemu_images_have_no_error() {
    for name in QEMU_IMAGES {
        let f = FileReader::open(&crate::cli::corpus(name)).unwrap();
        let r = check(&f, &CheckOptions::default());
        let errors: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        let warnings: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .map(|f| f.rule)
            .collect();
        let allowed: &[&str] = if name.contains("zero-state") {
            &["RGN-020", "BAT-015"]
        } else {
            &["RGN-020"]
        };
        assert!(
            warnings.iter().all(|w| allowed.contains(w)),
            "{name}: {warnings:?}"
        );
        assert!(
            r.has("FTI-004") && r.has("BAT-019"),
            "{name}: provenance and statistics"
        );
    }
}

/// Fresh qemu-img images (when qemu-img is installed): dynamic and fixed, 1 MiB and
/// 32 MiB blocks, with data written by qemu-io.
#[test]
fn fresh_qemu_images_have_no_error() {
    if std::process::Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP fresh_qemu_images_have_no_error: qemu-img not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vhdx-check-qemu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("dyn1", "block_size=1M", "256M"),
        ("dyn32", "block_size=32M", "1G"),
        ("fix1", "subformat=fixed,block_size=1M", "16M"),
        (
            "fix32",
            "subformat=fixed,block_size=32M,block_state_zero=off",
            "64M",
        ),
    ];
    for (name, opts, size) in cases {
        let p = dir.join(format!("{name}.vhdx"));
        let ps = p.to_str().unwrap();
        let ok = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "vhdx", "-o", opts, ps, size])
            .status()
            .unwrap();
        assert!(ok.success());
        let ok = std::process::Command::new("qemu-io")
            .args(["-c", "write -P 0xa5 0 2M", "-c", "write -P 0x5a 5M 4k", ps])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let r = check(&FileReader::open(&p).unwrap(), &CheckOptions::default());
        let bad: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert!(bad.is_empty(), "{name}: {bad:#?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `qemu-log-pending.vhdx`: qemu-dynamic-1M.vhdx with the current header's LogGuid set back
/// to the LogGuid of QEMU's last log entry (which rewrites the BAT sector) and that BAT
/// sector zeroed: a pending log QEMU wrote itself. Replay restores the original BAT.
#[test]
fn qemu_pending_log_is_judged_after_replay() {
    use vhdx_check::View;
    let f = FileReader::open(&crate::cli::corpus("qemu-log-pending.vhdx")).unwrap();
    let r = check(&f, &CheckOptions::default());
    let dirty: Vec<_> = r.findings.iter().filter(|f| f.rule == "LOG-003").collect();
    assert_eq!(dirty.len(), 1, "{dirty:#?}");
    assert_eq!(dirty[0].offset, Some(0x200000));
    assert!(dirty[0].structure.starts_with("bat[0.."), "{dirty:#?}");
    assert!(!r.has("LOG-002") && !r.has("LOG-004"));
    // The BAT statistics: all NOT_PRESENT on disk, QEMU's four blocks after replay.
    let bat019: Vec<_> = r.findings.iter().filter(|f| f.rule == "BAT-019").collect();
    assert_eq!(bat019.len(), 1);
    assert_eq!(bat019[0].view, View::Replayed);
    assert!(bat019[0].message.contains("FULLY_PRESENT 4"));
    let raw_only: Vec<_> = (r.findings.iter())
        .filter(|f| f.rule == "LOG-007" && f.view == View::Raw)
        .collect();
    assert!(
        raw_only
            .iter()
            .any(|f| f.message.contains("BAT-019") && f.message.contains("NOT_PRESENT 64")),
        "{raw_only:#?}"
    );
    let errors: Vec<_> = (r.findings.iter())
        .filter(|f| f.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The guest sees after replay exactly what it sees on the image the log came from.
    let digest = |name: &str| {
        let f = FileReader::open(&crate::cli::corpus(name)).unwrap();
        let model = vhdx_check::model::Model::build(&f);
        vhdx_check::hash::digests(&model).unwrap().virtual_disk
    };
    assert_eq!(
        digest("qemu-log-pending.vhdx"),
        digest("qemu-dynamic-1M.vhdx")
    );
    assert!(digest("qemu-dynamic-1M.vhdx").is_some());
}
