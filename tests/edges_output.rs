//! The edges of a run: reports that cannot be written, stderr that cannot be written,
//! `--output` replaced atomically, what a directory walk meets (links, FIFOs, unreadable
//! directories), and paths that are not plain UTF-8.

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

/// The non-root user tests drop to, when they run as root (root reads any directory).
fn as_nobody(cmd: &mut Command) -> Option<Command> {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if !root {
        return Some(std::mem::replace(cmd, Command::new("true")));
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        println!("skipped: running as root and setpriv is not available");
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    c.arg(cmd.get_program()).args(cmd.get_args());
    Some(c)
}

#[test]
fn an_unreadable_directory_is_an_entry_and_the_rest_is_checked() {
    let dir = Scratch::new("edges-unreadable");
    let root = &dir.0;
    std::fs::create_dir_all(root.join("locked")).unwrap();
    small(1).write_to(&root.join("a.vhdx")).unwrap();
    small(2).write_to(&root.join("locked/hidden.vhdx")).unwrap();
    let mut bad = small(3);
    bad.patch(0, b"XXXX"); // FTI-002: rejected
    bad.write_to(&root.join("z.vhdx")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    for p in [root.as_path(), &root.join("a.vhdx"), &root.join("z.vhdx")] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for format in ["json", "sarif", "text"] {
        let mut plain = bin();
        plain.args(["check", "--format", format, root.to_str().unwrap()]);
        let Some(mut cmd) = as_nobody(&mut plain) else {
            return;
        };
        let (code, out, err) = output(&mut cmd);
        assert_eq!(code, 2, "{format}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("cannot read directory"), "{err}");
        let locked = dir.path("locked");
        match format {
            "json" => {
                let v = json(&out);
                let images = v["images"].as_array().unwrap();
                let got: Vec<(&str, &str)> = images
                    .iter()
                    .map(|i| (i["path"].as_str().unwrap(), i["verdict"].as_str().unwrap()))
                    .collect();
                let a = dir.path("a.vhdx");
                let z = dir.path("z.vhdx");
                assert_eq!(
                    got,
                    vec![
                        (a.as_str(), "accept"),
                        (locked.as_str(), "error"),
                        (z.as_str(), "reject")
                    ]
                );
                assert_eq!(images[1]["status"], "error");
                let why = images[1]["error"].as_str().unwrap();
                assert!(why.contains("Permission denied"), "{why}");
            }
            "sarif" => {
                let v = json(&out);
                let run0 = &v["runs"][0];
                assert_eq!(run0["artifacts"].as_array().unwrap().len(), 3);
                let inv = &run0["invocations"][0];
                assert_eq!(inv["executionSuccessful"], false);
                let n = &inv["toolExecutionNotifications"][0];
                assert_eq!(n["level"], "error");
                assert!(n["message"]["text"].as_str().unwrap().contains("locked"));
            }
            _ => {
                assert!(out.contains(&format!("{locked}: ERROR  cannot read directory")));
                assert!(
                    out.contains(": ACCEPT") && out.contains(": REJECT"),
                    "{out}"
                );
            }
        }
    }
    // Removable again when the tests do not run as root.
    std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_walk_follows_no_symlink_and_lists_what_it_skips() {
    let dir = Scratch::new("edges-links");
    let tree = dir.0.join("tree");
    let outside = dir.0.join("outside");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    small(1).write_to(&tree.join("real.vhdx")).unwrap();
    // Files a link could lead to: their first bytes would be quoted by FTI-002/FTI-004.
    std::fs::write(
        outside.join("secret.txt"),
        b"SECRETBYTES-of-an-unrelated-file",
    )
    .unwrap();
    std::fs::write(
        outside.join("deep.vhdx"),
        b"SECRETBYTES-in-a-linked-directory",
    )
    .unwrap();
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, tree.join(name)).unwrap();
    };
    link(&outside.join("secret.txt"), "link.vhdx");
    link(&outside, "linked-dir");
    link(&outside, "dirlink.vhdx");
    link(&dir.0.join("nowhere"), "dangling.avhdx");
    link(&tree.join("loop.vhdx"), "loop.vhdx"); // leads back to itself
    link(&outside.join("secret.txt"), "notes.txt"); // no image name: not a candidate
    let have_fifo = Command::new("mkfifo")
        .arg(tree.join("pipe.vhdx"))
        .status()
        .is_ok_and(|s| s.success());
    if !have_fifo {
        println!("mkfifo unavailable: FIFO case not covered");
    }
    let mut want = vec![
        ("dangling.avhdx", "skipped"),
        ("dirlink.vhdx", "skipped"),
        ("link.vhdx", "skipped"),
        ("loop.vhdx", "skipped"),
    ];
    if have_fifo {
        want.push(("pipe.vhdx", "skipped"));
    }
    want.push(("real.vhdx", "accept"));
    let tree_s = tree.to_str().unwrap();
    for format in ["text", "json", "sarif"] {
        let (code, out, err) = run(&["check", "--format", format, tree_s]);
        // Skipped entries do not fail the run; a FIFO is never opened (no hang).
        assert_eq!(code, 0, "{format}: {err}");
        assert!(err.is_empty(), "{err}");
        assert!(
            !out.contains("SECRET"),
            "{format}: a link was followed:\n{out}"
        );
        match format {
            "json" => {
                let v = json(&out);
                let got: Vec<(String, String)> = (v["images"].as_array().unwrap().iter())
                    .map(|i| {
                        let p = i["path"].as_str().unwrap();
                        let name = p.rsplit('/').next().unwrap().to_string();
                        (name, i["verdict"].as_str().unwrap().to_string())
                    })
                    .collect();
                let want: Vec<(String, String)> = (want.iter())
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect();
                assert_eq!(got, want);
                for i in v["images"].as_array().unwrap() {
                    if i["verdict"] == "skipped" {
                        assert_eq!(i["status"], "skipped");
                        assert!(i["reason"].as_str().is_some_and(|r| !r.is_empty()));
                    }
                }
                let dangling = &v["images"][0]["reason"];
                assert!(
                    dangling.as_str().unwrap().contains("dangling"),
                    "{dangling}"
                );
                let looping = &v["images"][3]["reason"];
                assert!(looping.as_str().unwrap().contains("loops"), "{looping}");
            }
            "sarif" => {
                let v = json(&out);
                let inv = &v["runs"][0]["invocations"][0];
                assert_eq!(inv["executionSuccessful"], true);
                let notes = inv["toolExecutionNotifications"].as_array().unwrap();
                assert_eq!(notes.len(), want.len() - 1);
                assert!(notes.iter().all(|n| n["level"] == "warning"));
                crate::sarif::assert_valid_sarif(&v);
            }
            _ => {
                assert_eq!(out.matches(": SKIPPED  ").count(), want.len() - 1, "{out}");
            }
        }
    }
    // A link named on the command line is followed: the user asked for it.
    let (code, out, _) = run(&["check", "--format", "json", &format!("{tree_s}/link.vhdx")]);
    assert_eq!(code, 1);
    // The target (32 bytes) was read: it is too short to be a VHDX (FTI-007).
    let v = json(&out);
    assert_eq!(v["images"][0]["size"], 32, "{out}");
    assert_eq!(v["images"][0]["findings"][0]["rule"], "FTI-007", "{out}");
}

#[test]
fn paths_that_are_not_utf8_stay_distinct() {
    let dir = Scratch::new("edges-bytes");
    let names: [&[u8]; 2] = [b"a\xff.vhdx", b"a\xfe.vhdx"];
    for n in names {
        let p = dir.0.join(OsStr::from_bytes(n));
        if let Err(e) = small(1).write_to(&p) {
            println!("skipped: the filesystem refuses non-UTF-8 names ({e})");
            return;
        }
    }
    let paths: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.0.join(OsStr::from_bytes(n)))
        .collect();
    let out = |format: &str| {
        let o = bin()
            .args(["check", "--format", format])
            .args(&paths)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
        String::from_utf8(o.stdout).expect("the report is UTF-8")
    };
    let base = dir.path("");
    let v = json(&out("json"));
    let images = v["images"].as_array().unwrap();
    assert_eq!(images[0]["path"], format!("{base}a\\xff.vhdx"));
    assert_eq!(images[1]["path"], format!("{base}a\\xfe.vhdx"));
    let hex = |p: &Path| -> String {
        p.as_os_str()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(images[0]["path_bytes"], hex(&paths[0]));
    assert_eq!(images[1]["path_bytes"], hex(&paths[1]));

    let s = json(&out("sarif"));
    let uris: Vec<&str> = (s["runs"][0]["artifacts"].as_array().unwrap().iter())
        .map(|a| a["location"]["uri"].as_str().unwrap())
        .collect();
    assert!(uris[0].ends_with("/a%FF.vhdx"), "{uris:?}");
    assert!(uris[1].ends_with("/a%FE.vhdx"), "{uris:?}");
    crate::sarif::assert_valid_sarif(&s);

    let text = out("text");
    assert!(text.contains("a\\xff.vhdx: ACCEPT"), "{text}");
    assert!(text.contains("a\\xfe.vhdx: ACCEPT"), "{text}");
}

#[test]
fn a_newline_in_a_name_cannot_forge_a_verdict_line() {
    let dir = Scratch::new("edges-newline");
    let forged =
        "evil\nclean.vhdx: ACCEPT  (0 errors, 0 warnings, 0 info; 8388608 bytes)\n\x1b[2K.vhdx";
    let mut bad = small(1);
    bad.patch(0, b"XXXX");
    let p = dir.0.join(forged);
    bad.write_to(&p).unwrap();
    let (code, out, err) = run(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let verdicts: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(": ACCEPT") || l.contains(": REJECT"))
        .collect();
    assert_eq!(verdicts.len(), 1, "{out}");
    assert!(verdicts[0].contains("evil\\nclean.vhdx") && verdicts[0].contains("REJECT"));
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(!out.lines().any(|l| l.starts_with("clean.vhdx")), "{out}");
    // An unreadable path with a newline: the stderr line and the ERROR line stay one line.
    let gone = dir.0.join("gone\nFORGED: ACCEPT.vhdx");
    let (code, out, err) = run(&["check", gone.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn max_per_rule_above_the_limit_is_a_usage_error() {
    let img = corpus("qemu-dynamic-1M.vhdx");
    let img = img.to_str().unwrap();
    let (code, out, err) = run(&["check", "--max-per-rule", "100001", img]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("100001"), "{err}");
    let (code, _, err) = run(&["check", "--max-per-rule", "100000", img]);
    assert_eq!(code, 0, "{err}");
}

/// Every usage error is one line on stderr (exit 2), with clap's detail kept on it.
#[test]
fn usage_errors_are_one_line() {
    for (args, want) in [
        (&["check", "--max-per-rule", "100001", "x"][..], "100001"),
        (
            &["check", "--format", "bogus", "x"][..],
            "[possible values: text, json, sarif, html]",
        ),
        (&["check"][..], "<IMAGE|DIR>"),
        (&["bogus"][..], "'bogus'"),
        (&["check", "-1", "x"][..], "'-1'"),
    ] {
        let (code, out, err) = run(args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("vhdx-check: ") && err.contains(want),
            "{err}"
        );
    }
}

#[test]
fn streamed_documents_are_valid_for_a_mixed_batch() {
    let dir = Scratch::new("edges-stream");
    let root = &dir.0;
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let mut names = Vec::new();
    for i in 0..30u64 {
        let mut img = small(i);
        if i % 7 == 2 {
            img.patch(0, b"XXXX");
        }
        let name = format!("{}img{i:02}.vhdx", if i % 3 == 0 { "sub/" } else { "" });
        img.write_to(&root.join(&name)).unwrap();
        names.push(name);
    }
    std::os::unix::fs::symlink(root.join("nowhere"), root.join("sub/zz.vhdx")).unwrap();
    let root_s = root.to_str().unwrap();
    let (code, out, _) = run(&["check", "--format", "json", root_s, "/nonexistent.vhdx"]);
    assert_eq!(code, 2);
    let v = json(&out);
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 32);
    // The layout is serde_json's for the whole document, byte for byte.
    assert_eq!(serde_json::to_string_pretty(&v).unwrap(), out);

    let (code, out, _) = run(&["check", "--format", "sarif", root_s, "/nonexistent.vhdx"]);
    assert_eq!(code, 2);
    let s = json(&out);
    crate::sarif::assert_valid_sarif(&s);
    assert_eq!(serde_json::to_string_pretty(&s).unwrap(), out);
    let run0 = &s["runs"][0];
    let artifacts = run0["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 32);
    for r in run0["results"].as_array().unwrap() {
        let loc = &r["locations"][0]["physicalLocation"]["artifactLocation"];
        let i = loc["index"].as_u64().unwrap() as usize;
        assert_eq!(artifacts[i]["location"]["uri"], loc["uri"]);
    }
    let notes = run0["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    let levels: Vec<&str> = notes.iter().map(|n| n["level"].as_str().unwrap()).collect();
    assert_eq!(levels, vec!["warning", "error"]);
}

#[test]
fn a_path_spelled_like_an_internal_marker_stays_a_path() {
    // The streamed JSON layout splits pretty-printed text at marker values; a file named
    // exactly like one must not move the findings into its path.
    let dir = Scratch::new("edges-marker");
    let name = "@@vhdx-check findings@@";
    let mut bad = small(1);
    bad.patch(0, b"XXXX");
    bad.write_to(&dir.0.join(name)).unwrap();
    let (code, out, err) = output(
        bin()
            .args(["check", "--format", "json", name])
            .current_dir(&dir.0),
    );
    assert_eq!(code, 1, "{err}");
    let v = json(&out);
    assert_eq!(v["images"][0]["path"], name);
    let findings = v["images"][0]["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["rule"] == "FTI-002"), "{out}");
}

#[test]
fn image_strings_in_info_text_stay_on_their_line() {
    let dir = Scratch::new("edges-info");
    let p = dir.path("c.vhdx");
    ImageBuilder::dynamic(8 * MIB)
        .creator("evil\nforged: yes\x1b[2K")
        .build()
        .write_to(Path::new(&p))
        .unwrap();
    let (code, out, err) = run(&["info", &p]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with("forged")),
        "{out}"
    );
    assert!(out.contains("evil\\nforged: yes\\u{1b}[2K"), "{out}");
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
