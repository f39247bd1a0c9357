//! Many images in one run: input order kept, one exit code, directories expanded.

use crate::builder::*;
use crate::cli::{Scratch, corpus, run};
use std::path::Path;

fn paths(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON output");
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect()
}

fn small(seed: u64) -> Built {
    ImageBuilder::dynamic(8 * MIB)
        .block_size(MIB as u32)
        .seed(seed)
        .write(0, b"data")
        .build()
}

#[test]
fn output_follows_input_order_and_one_exit_code() {
    let good = corpus("qemu-dynamic-1M.vhdx");
    let good2 = corpus("qemu-fixed-1M.vhdx");
    let bad = corpus("damaged-multi.vhdx");
    let (good, good2, bad) = (
        good.to_str().unwrap(),
        good2.to_str().unwrap(),
        bad.to_str().unwrap(),
    );
    let (code, out, err) = run(&["check", "--format", "json", good2, good, good2]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(paths(&out), vec![good2, good, good2]);
    assert!(
        err.is_empty(),
        "no progress line when stderr is not a terminal: {err:?}"
    );

    let (code, out, _) = run(&["check", "--format", "json", bad, good]);
    assert_eq!(code, 1);
    assert_eq!(paths(&out), vec![bad, good]);

    // An unreadable image makes the run exit 2, after reporting every other image.
    let missing = "/nonexistent/gone.vhdx";
    let (code, out, err) = run(&["check", "--format", "json", good, missing, bad]);
    assert_eq!(code, 2);
    assert_eq!(paths(&out), vec![good, missing, bad]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"][1]["verdict"], "error");
    assert_eq!(v["images"][2]["verdict"], "reject");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot read /nonexistent/gone.vhdx"), "{err}");
}

#[test]
fn many_built_images_keep_their_order() {
    let dir = Scratch::new("batch-many");
    let mut names = Vec::new();
    for i in 0..12u64 {
        let mut img = small(i);
        if i % 5 == 3 {
            img.patch(0, b"XXXX"); // FTI-002: rejected
        }
        let p = dir.path(&format!("img{:02}.vhdx", 11 - i));
        img.write_to(Path::new(&p)).unwrap();
        names.push(p);
    }
    let mut args = vec!["check", "--format", "json"];
    args.extend(names.iter().map(String::as_str));
    let (code, out, _) = run(&args);
    assert_eq!(code, 1);
    assert_eq!(paths(&out), names);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for (i, img) in v["images"].as_array().unwrap().iter().enumerate() {
        let want = if i % 5 == 3 { "reject" } else { "accept" };
        assert_eq!(img["verdict"], want, "{}", names[i]);
    }
}

#[test]
fn directories_expand_to_sorted_images_recursively() {
    let dir = Scratch::new("batch-dirs");
    let root = &dir.0;
    for sub in ["b", "a/deep", "empty"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let img = small(1);
    for name in ["z.vhdx", "b/m.vhdx", "a/deep/child.AVHDX", "a/x.vhdx"] {
        img.write_to(&root.join(name)).unwrap();
    }
    std::fs::write(root.join("notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("b/copy.vhdx.bak"), "not an image").unwrap();
    let single = corpus("qemu-dynamic-1M.vhdx");
    let single = single.to_str().unwrap();

    let (code, out, err) = run(&["check", "--format", "json", single, root.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let want: Vec<String> = std::iter::once(single.to_string())
        .chain(
            ["a/deep/child.AVHDX", "a/x.vhdx", "b/m.vhdx", "z.vhdx"]
                .iter()
                .map(|n| dir.path(n)),
        )
        .collect();
    assert_eq!(paths(&out), want);

    let (code, _, err) = run(&["check", &dir.path("empty")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no *.vhdx or *.avhdx files under directory") && err.contains("empty"),
        "{err}"
    );
}
