//! The published JSON Schemas (schemas/*.schema.json, draft 2020-12) against the output of
//! `check --format json` and `info --format json` for every committed image, in every
//! shape the output takes (digests, waivers, suppressed findings, errors, skipped entries,
//! statistics, a chain, a path that is not UTF-8). The schemas refuse unknown fields, so
//! a field added to the output without the schema fails here.

use crate::builder::*;
use crate::cli::{Scratch, corpus, run};
use serde_json::Value;
use std::path::Path;

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{name}.schema.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles")
}

fn violations(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors = violations(v, doc);
    assert!(errors.is_empty(), "{what}:\n{}", errors.join("\n"));
}

fn corpus_images() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/images");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .filter(|p| p.ends_with(".vhdx"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    names
}

fn json_of(args: &[&str]) -> Value {
    let (_, out, err) = run(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {err}"))
}

#[test]
fn check_output_matches_its_schema() {
    let v = schema("check");
    let dir = Scratch::new("schema-check");
    let policy = dir.file(
        "p.toml",
        "fail_on = \"warning\"\n[[waiver]]\nrule = \"LOG-001\"\nreason = \"stale\"\n\
         [[waiver]]\nrule = \"RGN-020\"\nreason = \"qemu-img writes Required = 0\"\n\
         [require]\nallow_parent = false\n",
    );
    let images = corpus_images();
    for img in &images {
        for extra in [
            &[][..],
            &["--hash", "sha256"][..],
            &["--policy", &policy][..],
            &["--max-per-rule", "0", "--statistics"][..],
        ] {
            let mut args = vec!["check", "--format", "json"];
            args.extend_from_slice(extra);
            args.push(img);
            assert_valid(&v, &json_of(&args), &format!("{args:?}"));
        }
    }
    // A batch: a directory with an image, a symbolic link (skipped) and an unreadable
    // entry, with digests, a policy with suppressed waivers and statistics.
    let batch = dir.0.join("batch");
    std::fs::create_dir(&batch).unwrap();
    std::fs::copy(&images[0], batch.join("a.vhdx")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&images[1], batch.join("link.vhdx")).unwrap();
    let doc = json_of(&[
        "check",
        "--format",
        "json",
        "--hash",
        "sha256",
        "--max-per-rule",
        "1",
        "--policy",
        &policy,
        "--statistics",
        batch.to_str().unwrap(),
        "missing.vhdx",
    ]);
    let verdicts: Vec<&str> = (doc["images"].as_array().unwrap().iter())
        .map(|i| i["verdict"].as_str().unwrap())
        .collect();
    #[cfg(unix)]
    assert_eq!(verdicts, ["reject", "skipped", "error"]);
    assert!(doc["images"][0].get("suppressed_waived").is_some());
    assert!(doc["images"][0].get("digests").is_some());
    assert!(doc.get("statistics").is_some());
    assert_valid(&v, &doc, "batch");
}

#[test]
fn info_output_matches_its_schema() {
    let v = schema("info");
    for img in corpus_images() {
        let doc = json_of(&["info", "--format", "json", &img]);
        // The envelope, as in check's output.
        assert_eq!(doc["schema"], 1);
        assert_eq!(doc["tool"]["name"], "vhdx-check");
        assert_eq!(doc["path"], img.as_str());
        assert_valid(&v, &doc, &img);
    }
    // A differencing child with its parent: locator entries and the chain.
    let dir = Scratch::new("schema-info");
    let parent = ImageBuilder::dynamic(8 * MIB)
        .block_size(MIB as u32)
        .build();
    let parent_path = dir.path("base.vhdx");
    parent.write_to(Path::new(&parent_path)).unwrap();
    let child = ImageBuilder::differencing(8 * MIB)
        .block_size(MIB as u32)
        .build();
    let child_path = dir.path("child.avhdx");
    child.write_to(Path::new(&child_path)).unwrap();
    let doc = json_of(&[
        "info",
        "--format",
        "json",
        "--parent",
        &parent_path,
        &child_path,
    ]);
    assert!(doc["parent_locator"]["entries"].as_array().unwrap().len() >= 2);
    assert_eq!(doc["chain"].as_array().unwrap().len(), 2);
    assert_valid(&v, &doc, "differencing child");
    // Its parent missing: the chain says where it broke (CHAIN-006).
    let orphan_dir = Scratch::new("schema-info-orphan");
    let orphan = orphan_dir.path("child.avhdx");
    child.write_to(Path::new(&orphan)).unwrap();
    let doc = json_of(&["info", "--format", "json", "--find-parents", &orphan]);
    assert_eq!(doc["chain"][0]["broken"]["rule"], "CHAIN-006", "{doc}");
    assert_valid(&v, &doc, "differencing child without its parent");
    // Not a VHDX at all: most parts are null.
    let junk = dir.file("junk.vhdx", "not an image");
    assert_valid(&v, &json_of(&["info", "--format", "json", &junk]), "junk");
}

#[cfg(unix)]
#[test]
fn a_path_that_is_not_utf8_matches_both_schemas() {
    use std::os::unix::ffi::OsStrExt;
    let dir = Scratch::new("schema-bytes");
    let name = dir.0.join(std::ffi::OsStr::from_bytes(b"odd\xff.vhdx"));
    std::fs::copy(corpus("qemu-dynamic-1M.vhdx"), &name).unwrap();
    let out = crate::cli::bin()
        .args(["check", "--format", "json"])
        .arg(&name)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["images"][0]["path_bytes"].is_string());
    assert_valid(&schema("check"), &doc, "check");
    let out = crate::cli::bin()
        .args(["info", "--format", "json"])
        .arg(&name)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["path_bytes"].is_string());
    assert_valid(&schema("info"), &doc, "info");
}

/// What is broken, and how.
type Mutation = (&'static str, fn(&mut Value));

#[test]
fn the_schemas_refuse_what_the_output_never_holds() {
    // Guards the validation itself: a wrong document must not pass.
    let img = corpus("damaged-multi.vhdx");
    let check = schema("check");
    let good = json_of(&["check", "--format", "json", img.to_str().unwrap()]);
    assert_valid(&check, &good, "as written");
    let mutations: [Mutation; 6] = [
        ("unknown field", |d| d["images"][0]["extra"] = 1.into()),
        ("severity", |d| {
            d["images"][0]["findings"][0]["severity"] = "fatal".into()
        }),
        ("verdict", |d| d["images"][0]["verdict"] = "maybe".into()),
        ("view", |d| {
            d["images"][0]["findings"][0]["view"] = "both".into()
        }),
        ("missing summary", |d| {
            d["images"][0].as_object_mut().unwrap().remove("summary");
        }),
        ("negative offset", |d| {
            d["images"][0]["findings"][0]["offset"] = (-1).into()
        }),
    ];
    for (what, mutate) in mutations {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!violations(&check, &bad).is_empty(), "{what} passed");
    }
    let info = schema("info");
    let good = json_of(&["info", "--format", "json", img.to_str().unwrap()]);
    assert_valid(&info, &good, "as written");
    let mutations: [Mutation; 4] = [
        ("no path", |d| {
            d.as_object_mut().unwrap().remove("path");
        }),
        ("guid case", |d| {
            d["headers"][0]["log_guid"] = "0000000a-0000-0000-0000-000000000000".into()
        }),
        ("disk type", |d| d["disk_type"] = "sparse".into()),
        ("unknown field", |d| d["geometry"]["extra"] = true.into()),
    ];
    for (what, mutate) in mutations {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!violations(&info, &bad).is_empty(), "{what} passed");
    }
}
