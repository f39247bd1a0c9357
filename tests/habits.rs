//! Command-line habits: -q / -qq, --statistics, colour, completions, the manual page,
//! --version.

use crate::cli::{Scratch, bin, corpus, run};
use serde_json::Value;
use std::collections::BTreeMap;

fn images() -> Vec<String> {
    [
        "damaged-multi.vhdx",
        "qemu-dynamic-1M.vhdx",
        "qemu-log-pending.vhdx",
    ]
    .iter()
    .map(|n| corpus(n).to_str().unwrap().to_string())
    .collect()
}

fn with<'a>(args: &[&'a str], images: &'a [String]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(images.iter().map(String::as_str));
    all
}

#[test]
fn quiet_prints_the_verdict_line_of_each_image_only() {
    let imgs = images();
    let (full_code, full, _) = run(&with(&["check"], &imgs));
    let (code, quiet, err) = run(&with(&["check", "-q"], &imgs));
    assert_eq!(code, full_code);
    assert_eq!(code, 1);
    assert!(err.is_empty(), "{err}");
    // The verdict lines of the full report, nothing else.
    let verdicts: Vec<&str> = full.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(verdicts.len(), imgs.len());
    assert_eq!(quiet.lines().collect::<Vec<_>>(), verdicts);
    assert!(quiet.contains(": REJECT  (") && quiet.contains(": ACCEPT  ("));
    // An unreadable entry keeps its one line.
    let (code, out, err) = run(&["check", "--quiet", &imgs[1], "missing.vhdx"]);
    assert_eq!(code, 2);
    assert_eq!(out.lines().count(), 2);
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .starts_with("missing.vhdx: ERROR  ")
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn double_quiet_writes_nothing_and_keeps_the_exit_code() {
    let imgs = images();
    for format in ["text", "json", "sarif"] {
        let (code, out, err) = run(&with(&["check", "-qq", "--format", format], &imgs));
        assert_eq!((code, out.as_str(), err.as_str()), (1, "", ""), "{format}");
    }
    let (code, out, _) = run(&["check", "-qq", &imgs[1]]);
    assert_eq!((code, out.as_str()), (0, ""));
    // Errors are still one line each on stderr.
    let (code, out, err) = run(&["check", "-qq", &imgs[1], "missing.vhdx"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("missing.vhdx"), "{err}");
}

#[test]
fn quiet_combinations_that_mean_nothing_are_usage_errors() {
    let img = corpus("qemu-dynamic-1M.vhdx");
    let img = img.to_str().unwrap();
    let dir = Scratch::new("quiet-usage");
    let out_file = dir.path("r.txt");
    for args in [
        vec!["check", "-q", "--format", "json", img],
        vec!["check", "-q", "--format", "sarif", img],
        vec!["check", "-qqq", img],
        vec!["check", "-qq", "--output", &out_file, img],
        vec!["check", "--statistics", "--format", "sarif", img],
        vec!["check", "--sarif-info", img],
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert!(!std::path::Path::new(&out_file).exists());
}

/// Per rule: every instance in the JSON report (shown findings plus suppressed counts)
/// and the waived ones among them.
fn counts_from_report(doc: &Value) -> BTreeMap<String, (u64, u64)> {
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for img in doc["images"].as_array().unwrap() {
        for f in img["findings"].as_array().into_iter().flatten() {
            let e = counts
                .entry(f["rule"].as_str().unwrap().into())
                .or_default();
            e.0 += 1;
            e.1 += u64::from(f.get("waived").is_some());
        }
        for (id, s) in img["suppressed"].as_object().into_iter().flatten() {
            let n = s["count"].as_u64().unwrap();
            let e = counts.entry(id.clone()).or_default();
            e.0 += n;
            if img["suppressed_waived"].get(id).is_some() {
                e.1 += n;
            }
        }
    }
    counts
}

#[test]
fn statistics_count_every_instance_per_rule() {
    let dir = Scratch::new("statistics");
    let policy = dir.file(
        "p.toml",
        "[[waiver]]\nrule = \"LOG-001\"\nreason = \"stale entries are expected\"\n",
    );
    let mut imgs = images();
    imgs.push("missing.vhdx".into());
    // --max-per-rule 1: most rules have suppressed instances, which count too.
    let base = ["check", "--max-per-rule", "1", "--policy", &policy];
    let (code, json, _) = run(&with(&[&base[..], &["--format", "json"]].concat(), &imgs));
    assert_eq!(code, 2);
    let plain: Value = serde_json::from_str(&json).unwrap();
    assert!(plain.get("statistics").is_none(), "only with --statistics");
    let expected = counts_from_report(&plain);
    assert!(
        expected.values().any(|c| c.1 > 0),
        "a waived rule is counted"
    );

    let (code, json, _) = run(&with(
        &[&base[..], &["--format", "json", "--statistics"]].concat(),
        &imgs,
    ));
    assert_eq!(code, 2);
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        doc["images"], plain["images"],
        "the report itself is unchanged"
    );
    let stats = &doc["statistics"];
    assert_eq!(stats["checked"], 3);
    let rows = stats["rules"].as_array().unwrap();
    let got: BTreeMap<String, (u64, u64)> = (rows.iter())
        .map(|r| {
            let id = r["rule"].as_str().unwrap().to_string();
            (
                id,
                (r["count"].as_u64().unwrap(), r["waived"].as_u64().unwrap()),
            )
        })
        .collect();
    assert_eq!(got, expected);
    // Most instances first.
    let n: Vec<u64> = rows.iter().map(|r| r["count"].as_u64().unwrap()).collect();
    assert!(n.windows(2).all(|w| w[0] >= w[1]), "{n:?}");
    for r in rows {
        assert!(!r["title"].as_str().unwrap().is_empty());
    }

    // Text: the same counts, one line per rule after the report.
    let (code, text, _) = run(&with(&[&base[..], &["--statistics"]].concat(), &imgs));
    assert_eq!(code, 2);
    let (_, plain_text, _) = run(&with(&base, &imgs));
    let tail = text
        .strip_prefix(plain_text.as_str())
        .expect("report first");
    let mut lines = tail.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "statistics: {} rule(s) fired in 3 checked image(s)",
            expected.len()
        )
    );
    let mut seen = BTreeMap::new();
    for l in lines {
        let w: Vec<&str> = l.split_whitespace().collect();
        let count: u64 = w[0].parse().unwrap();
        assert!(["error", "warning", "info"].contains(&w[1]), "{l}");
        seen.insert(w[2].to_string(), count);
    }
    let counts: BTreeMap<String, u64> = expected.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    assert_eq!(seen, counts);
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = bin();
    cmd.args(args)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `s` without ANSI SGR sequences.
fn strip_sgr(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('m').expect("SGR ends with m");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let imgs = images();
    let args = with(&["check", "--statistics"], &imgs);
    // Not a terminal (a pipe): no colour, whatever the format.
    let (code, plain) = run_env(&args, &[]);
    assert_eq!(code, 1);
    assert!(!plain.contains('\x1b'));
    let (_, always) = run_env(&[&["--color", "always"][..], &args].concat(), &[]);
    assert!(always.contains("\x1b[1;31mREJECT\x1b[0m"), "{always}");
    assert!(always.contains("\x1b[1;32mACCEPT\x1b[0m"));
    assert!(always.contains("\x1b[1;31merror\x1b[0m"));
    assert!(always.contains("\x1b[33mwarning\x1b[0m"));
    // Only the words are coloured: without the codes it is the plain report, columns
    // and all.
    assert_eq!(strip_sgr(&always), plain);
    // The flag after the subcommand too (it is global).
    let (_, after) = run_env(
        &[&args[..1], &["--color", "always"], &args[1..]].concat(),
        &[],
    );
    assert_eq!(after, always);
    for (flags, env) in [
        (vec!["--color", "never"], vec![]),
        (vec!["--color", "auto"], vec![]),
        (vec![], vec![("NO_COLOR", "1")]),
        (vec![], vec![("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]),
        (vec!["--color", "never"], vec![("CLICOLOR_FORCE", "1")]),
    ] {
        let (_, out) = run_env(&[&flags[..], &args].concat(), &env);
        assert_eq!(out, plain, "{flags:?} {env:?}");
    }
    // CLICOLOR_FORCE turns auto on; an empty NO_COLOR does not turn it off.
    let (_, forced) = run_env(&args, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")]);
    assert_eq!(forced, always);
    // Never in JSON or SARIF, nor in a file.
    for format in ["json", "sarif"] {
        let (_, out) = run_env(
            &with(&["--color", "always", "check", "--format", format], &imgs),
            &[],
        );
        assert!(!out.contains('\x1b'), "{format}");
    }
    let dir = Scratch::new("colour-file");
    let file = dir.path("r.txt");
    let (_, out) = run_env(
        &[&["--color", "always"][..], &args, &["--output", &file]].concat(),
        &[],
    );
    assert!(out.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), plain);
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("vhdx-check"), "{shell}");
        // Subcommands and check's flags are completed.
        for word in ["check", "info", "explain", "statistics", "sarif-info"] {
            assert!(out.contains(word), "{shell} lacks {word}");
        }
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("tcsh"), "{err}");
}

#[test]
fn manual_page_names_every_subcommand() {
    let (code, out, _) = run(&["manpage"]);
    assert_eq!(code, 0);
    assert!(out.starts_with(".ie") || out.contains(".TH"), "roff");
    assert!(out.contains(".TH vhdx-check 1"));
    for sub in [
        "check",
        "info",
        "replay",
        "rules",
        "explain",
        "completions",
        "manpage",
    ] {
        assert!(
            out.contains(&format!("vhdx\\-check\\-{sub}(1)")),
            "lacks {sub}"
        );
    }
    assert!(out.contains("\\-\\-color"));
    assert!(!out.contains("vhdx\\-check\\-help(1)"), "no page for help");
    // Each page the main one names exists: one subcommand's, or all into a directory.
    let (code, check, _) = run(&["manpage", "check"]);
    assert_eq!(code, 0);
    assert!(check.contains(".TH vhdx-check-check 1"));
    for flag in ["quiet", "statistics", "sarif\\-info", "max\\-per\\-rule"] {
        assert!(check.contains(&format!("\\-\\-{flag}")), "lacks --{flag}");
    }
    let (code, _, err) = run(&["manpage", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("nope"));
    let dir = Scratch::new("manpages");
    let (code, out, _) = run(&["manpage", "--dir", dir.0.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (0, ""));
    let mut pages: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "vhdx-check-check.1",
            "vhdx-check-completions.1",
            "vhdx-check-explain.1",
            "vhdx-check-export.1",
            "vhdx-check-info.1",
            "vhdx-check-manpage.1",
            "vhdx-check-map.1",
            "vhdx-check-replay.1",
            "vhdx-check-rules.1",
            "vhdx-check.1"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dir.0.join("vhdx-check-check.1")).unwrap(),
        check
    );
}

#[test]
fn version_names_the_commit_when_built_from_git() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    let version = env!("CARGO_PKG_VERSION");
    assert!(out.starts_with(&format!("vhdx-check {version}")), "{out}");
    let root = env!("CARGO_MANIFEST_DIR");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output();
    let top = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(root)
        .output();
    match (head, top) {
        (Ok(h), Ok(t))
            if h.status.success()
                && std::fs::canonicalize(String::from_utf8_lossy(&t.stdout).trim()).ok()
                    == std::fs::canonicalize(root).ok() =>
        {
            let commit = String::from_utf8_lossy(&h.stdout).trim().to_string();
            assert!(
                out.starts_with(&format!("vhdx-check {version} ({commit}")),
                "{out} lacks {commit}"
            );
        }
        _ => {
            eprintln!("SKIP version commit: not built from a git checkout");
            assert_eq!(out.trim_end(), format!("vhdx-check {version}"));
        }
    }
}
