//! The edges of a run: reports that cannot be written, stderr that cannot be written,
//! `--output` replaced atomically, what a directory walk meets (links, FIFOs, unreadable
//! directories), and paths that are not plain UTF-8.

mod paths;
mod walk;

use crate::builder::*;
use crate::cli::{Scratch, bin, corpus, run};
use serde_json::Value;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn small(seed: u64) -> Built {
    ImageBuilder::dynamic(8 * MIB)
        .block_size(MIB as u32)
        .seed(seed)
        .write(0, b"data")
        .build()
}

/// (exit code, stdout, stderr) of `cmd`.
fn output(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run vhdx-check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dev_full() -> Option<File> {
    match File::options().write(true).open("/dev/full") {
        Ok(f) => Some(f),
        Err(e) => {
            println!("skipped: /dev/full not available ({e})");
            None
        }
    }
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn stdout_that_cannot_be_written_is_exit_2_with_one_line() {
    let img = corpus("qemu-dynamic-1M.vhdx");
    let img = img.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["check", img],
        &["check", "--format", "json", img],
        &["check", "--format", "sarif", img],
        &["info", img],
        &["info", "--format", "json", img],
        &["rules"],
        &["rules", "--format", "json"],
        &["explain", "BAT-013"],
        &["--help"],
        &["check", "--help"],
        &["--version"],
    ];
    for args in commands {
        let Some(full) = dev_full() else { return };
        let (code, _, err) = output(bin().args(*args).stdout(full));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
        let report = err.starts_with("vhdx-check: cannot write the report to standard output");
        let help = err.starts_with("vhdx-check: cannot write to standard output");
        assert!(
            report || (help && args.iter().any(|a| a.starts_with("--"))),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn stderr_that_cannot_be_written_never_panics() {
    let missing = "/nonexistent/gone.vhdx";
    let good = corpus("qemu-dynamic-1M.vhdx");
    let good = good.to_str().unwrap();
    // Each writes a reason on stderr: an unreadable image, an unknown rule, a bad flag.
    let commands: &[&[&str]] = &[
        &["check", good, missing],
        &["explain", "NOPE-999"],
        &["info", missing],
        &["check", "--max-per-rule", "x", good],
    ];
    for args in commands {
        let Some(full) = dev_full() else { return };
        let (code, out, _) = output(bin().args(*args).stderr(full));
        assert_eq!(code, 2, "{args:?} with stderr on /dev/full: {out}");
        // Both at once: the report cannot be written either.
        let (Some(a), Some(b)) = (dev_full(), dev_full()) else {
            return;
        };
        let (code, _, _) = output(bin().args(*args).stdout(a).stderr(b));
        assert_eq!(code, 2, "{args:?} with stdout and stderr on /dev/full");

        // A closed pipe: the read end is gone before the binary writes its line.
        let mut child = bin()
            .args(*args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        let code = child.wait().unwrap().code();
        assert_eq!(code, Some(2), "{args:?} with stderr a closed pipe");
    }
}

#[test]
fn a_reader_that_goes_away_is_not_a_failure() {
    let dir = Scratch::new("edges-epipe");
    for i in 0..6u64 {
        small(i)
            .write_to(Path::new(&dir.path(&format!("i{i}.vhdx"))))
            .unwrap();
    }
    for format in ["text", "json", "sarif"] {
        let mut child = bin()
            .args(["check", "--format", format, &dir.path("")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        // The exit code is still the verdict on every image; nothing on stderr.
        assert_eq!(out.status.code(), Some(0), "{format}");
        assert!(out.stderr.is_empty(), "{format}: {:?}", out.stderr);
    }
}

/// Names in `dir` other than `keep`.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

#[test]
fn output_file_is_replaced_only_when_complete() {
    let dir = Scratch::new("edges-output");
    let out_dir = dir.0.join("reports");
    std::fs::create_dir_all(&out_dir).unwrap();
    let report = out_dir.join("r.sarif");
    std::fs::write(&report, "old report").unwrap();
    let report_s = report.to_str().unwrap();
    let damaged = corpus("damaged-multi.vhdx");
    let damaged = damaged.to_str().unwrap();

    // Written: the whole report, nothing on stdout, no temporary file left.
    let (code, out, err) = run(&["check", "--format", "sarif", "--output", report_s, damaged]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    let doc = json(&std::fs::read_to_string(&report).unwrap());
    assert_eq!(doc["version"], "2.1.0");
    assert_eq!(leftovers(&out_dir, &["r.sarif"]), Vec::<String>::new());
    let whole = std::fs::read(&report).unwrap();

    // A write that fails midway (file size limit: EFBIG, SIGXFSZ ignored) leaves the old
    // report as it was and no temporary file.
    std::fs::write(&report, "old report").unwrap();
    let limited = |args: &[&str]| {
        output(
            Command::new("sh")
                .arg("-c")
                .arg("trap '' XFSZ; ulimit -f 8 && exec \"$0\" \"$@\"")
                .arg(env!("CARGO_BIN_EXE_vhdx-check"))
                .args(args),
        )
    };
    let (code, _, err) = limited(&["check", "--format", "sarif", "--output", report_s, damaged]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot write the report to"), "{err}");
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "old report");
    assert_eq!(leftovers(&out_dir, &["r.sarif"]), Vec::<String>::new());
    // The same limit on stdout: exit 2 too (a truncated report is never a verdict).
    let (code, _, err) = output(
        Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 8 && exec \"$0\" \"$@\" > \"$OUT\"")
            .arg(env!("CARGO_BIN_EXE_vhdx-check"))
            .args(["check", "--format", "sarif", damaged])
            .env("OUT", dir.path("stdout.sarif")),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot write the report to standard output"),
        "{err}"
    );

    // A directory that does not exist: exit 2 before anything is checked.
    let (code, out, err) = run(&["check", "--output", &dir.path("missing/r.txt"), damaged]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Never over an image being read (the rename would replace the evidence).
    let img = dir.0.join("evidence.vhdx");
    std::fs::copy(corpus("qemu-dynamic-1M.vhdx"), &img).unwrap();
    let before = std::fs::read(&img).unwrap();
    let (code, _, err) = run(&["check", "-o", img.to_str().unwrap(), img.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("refusing to replace"), "{err}");
    assert_eq!(std::fs::read(&img).unwrap(), before);

    // info --output as well; the report is what stdout would have carried.
    let info = out_dir.join("info.json");
    let (code, _, err) = run(&[
        "info",
        "--format",
        "json",
        "--output",
        info.to_str().unwrap(),
        damaged,
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, stdout_doc, _) = run(&["info", "--format", "json", damaged]);
    assert_eq!(std::fs::read_to_string(&info).unwrap(), stdout_doc);
    let (_, stdout_sarif, _) = run(&["check", "--format", "sarif", damaged]);
    assert_eq!(whole, stdout_sarif.as_bytes());
}

/// `--output` onto something that is not a regular file is refused and the node is left
/// as it was: renaming over it would replace a device (as root, the system's
/// `/dev/full`), a FIFO a reader waits on, or a symbolic link such as `/dev/stdout`.
#[test]
fn output_onto_a_device_fifo_link_or_directory_is_refused() {
    let dir = Scratch::new("edges-output-nodes");
    let img = dir.path("img.vhdx");
    small(3).write_to(Path::new(&img)).unwrap();
    let mut targets = vec![];
    let link = dir.0.join("stdout-link");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
    targets.push((link, "a symbolic link"));
    let sub = dir.0.join("subdir");
    std::fs::create_dir(&sub).unwrap();
    targets.push((sub, "a directory"));
    let fifo = dir.0.join("fifo");
    if Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        targets.push((fifo, "a FIFO"));
    } else {
        println!("mkfifo unavailable: FIFO case not covered");
    }
    let node = dir.0.join("full");
    let made = Command::new("mknod")
        .args(["-m", "666"])
        .arg(&node)
        .args(["c", "1", "7"])
        .status()
        .is_ok_and(|s| s.success());
    if made {
        targets.push((node, "a character device"));
    } else {
        println!("mknod not permitted (not root): device case not covered");
    }
    for (t, kind) in &targets {
        let before = std::fs::symlink_metadata(t).unwrap();
        for sub in [&["check"][..], &["info"][..]] {
            let (code, out, err) = output(bin().args(sub).arg("--output").arg(t).arg(&img));
            assert_eq!(code, 2, "{kind}: {out}{err}");
            assert!(
                err.contains(kind) && err.contains("not a regular file"),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        let after = std::fs::symlink_metadata(t).unwrap();
        assert_eq!(
            (before.file_type(), before.len()),
            (after.file_type(), after.len()),
            "{kind} changed"
        );
    }
    // A regular file is still replaced, as before.
    let plain = dir.path("report.txt");
    std::fs::write(&plain, "old").unwrap();
    let (code, _, err) = output(bin().args(["check", "--output", &plain, &img]));
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&plain).unwrap().contains("ACCEPT"));
    assert!(
        leftovers(
            &dir.0,
            &[
                "img.vhdx",
                "report.txt",
                "stdout-link",
                "subdir",
                "fifo",
                "full"
            ]
        )
        .is_empty()
    );
}
