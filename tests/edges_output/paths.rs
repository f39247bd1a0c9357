//! Paths and image strings that could forge output: not UTF-8, newlines, markers; usage
//! errors and streamed documents.

use super::*;
use crate::util::hex;

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
    let bytes = |p: &Path| hex(p.as_os_str().as_bytes());
    assert_eq!(images[0]["path_bytes"], bytes(&paths[0]));
    assert_eq!(images[1]["path_bytes"], bytes(&paths[1]));

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
