//! Blessed snapshots of the reports on corpus/images/*: `check --format text`, `check
//! --format json` and `info --format json` of every image, compared byte for byte with
//! tests/snapshots/IMAGE.{check.txt,check.json,info.json}; each run's exit code and
//! standard error are in tests/snapshots/status.txt. `BLESS=1 cargo test snapshots`
//! rewrites them (and removes those of images no longer in the corpus).
//!
//! The binary runs in the repository root on `corpus/images/NAME`, so the paths in the
//! reports are the same on every machine, with the colour variables removed so the text
//! is plain. The one field that is not a property of the image or of the checks is the
//! package version in the JSON `tool` object: it is written as `[VERSION]` in the
//! snapshots, so a release does not rewrite them. Nothing else is normalised.

use crate::cli::bin;
use crate::util::snapshot;
use std::path::Path;

/// The file-name suffix of each snapshot and the arguments that produce it.
const RUNS: &[(&str, &[&str])] = &[
    ("check.txt", &["check", "--format", "text"]),
    ("check.json", &["check", "--format", "json"]),
    ("info.json", &["info", "--format", "json"]),
];

const DIR: &str = "tests/snapshots";

/// `out` with the package version of the JSON `tool` object as `[VERSION]`.
fn without_version(out: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8(out).expect("reports are UTF-8");
    let tool = |v: &str| {
        format!("\"tool\": {{\n    \"name\": \"vhdx-check\",\n    \"version\": \"{v}\"\n  }}")
    };
    text.replacen(&tool(env!("CARGO_PKG_VERSION")), &tool("[VERSION]"), 1)
        .into_bytes()
}

#[test]
fn corpus_reports_match_their_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut images: Vec<String> = std::fs::read_dir(root.join("corpus/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".vhdx") || n.ends_with(".avhdx"))
        .collect();
    images.sort();
    assert!(!images.is_empty(), "no images in corpus/images");
    let mut status = String::new();
    let mut wanted = vec!["status.txt".to_string()];
    let mut differ = Vec::new();
    for name in &images {
        for (suffix, args) in RUNS {
            let out = bin()
                .current_dir(root)
                .env_remove("CLICOLOR_FORCE")
                .env_remove("NO_COLOR")
                .args(*args)
                .arg(format!("corpus/images/{name}"))
                .output()
                .unwrap();
            let code = out.status.code();
            status.push_str(&format!(
                "{name} {}: exit {}\n",
                args.join(" "),
                code.map_or("by a signal".to_string(), |c| c.to_string())
            ));
            for line in String::from_utf8_lossy(&out.stderr).lines() {
                status.push_str(&format!("  stderr: {line}\n"));
            }
            let file = format!("{name}.{suffix}");
            differ.extend(snapshot(
                &format!("{DIR}/{file}"),
                &without_version(out.stdout),
            ));
            wanted.push(file);
        }
    }
    differ.extend(snapshot(&format!("{DIR}/status.txt"), status.as_bytes()));
    for e in std::fs::read_dir(root.join(DIR)).into_iter().flatten() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if !wanted.contains(&name) {
            if std::env::var_os("BLESS").is_some() {
                std::fs::remove_file(e.path()).unwrap();
            } else {
                differ.push(format!("{DIR}/{name}: no image has this snapshot"));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{} snapshots differ (`BLESS=1 cargo test snapshots` rewrites them after review):\n{}",
        differ.len(),
        differ.join("\n")
    );
}
