//! SARIF output against the official SARIF 2.1.0 JSON schema (tests/data/, see
//! sarif-schema-2.1.0.SOURCE.md), and the sample gate script.

use crate::builder::*;
use crate::cli::{Scratch, corpus, run};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Validates `doc` against the schema (formats asserted), listing every violation.
pub fn assert_valid_sarif(doc: &Value) {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(data("sarif-schema-2.1.0.json")).unwrap())
            .unwrap();
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF schema violations:\n{}",
        errors.join("\n")
    );
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let dir = Scratch::new("sarif");
    // An image whose findings are waived, one rejected, one unreadable, digests on.
    let mut img = ImageBuilder::dynamic(8 * MIB)
        .block_size(MIB as u32)
        .write(0, b"data")
        .build();
    img.patch(0x60000, b"hidden");
    let odd = dir.path("odd name #1.vhdx");
    img.write_to(Path::new(&odd)).unwrap();
    let policy = dir.file(
        "p.toml",
        "[[waiver]]\nrule = \"LAYOUT-006\"\nreason = \"vendor tag\"\n[require]\nallow_parent = false\n",
    );
    let damaged = corpus("damaged-multi.vhdx");
    let (code, out, _) = run(&[
        "check",
        "--format",
        "sarif",
        // The waived finding below is info-level: left out without this.
        "--sarif-info",
        "--hash",
        "sha256",
        "--policy",
        &policy,
        &odd,
        damaged.to_str().unwrap(),
        "missing.vhdx",
    ]);
    assert_eq!(code, 2);
    let doc: Value = serde_json::from_str(&out).expect("SARIF is JSON");
    assert_valid_sarif(&doc);

    assert_eq!(doc["version"], "2.1.0");
    let run0 = &doc["runs"][0];
    let driver = &run0["tool"]["driver"];
    assert_eq!(driver["name"], "vhdx-check");
    let rules = driver["rules"].as_array().unwrap();
    let policy_rule = rules.iter().find(|r| r["id"] == "POLICY-005").unwrap();
    for key in ["name", "shortDescription", "fullDescription", "help"] {
        assert!(policy_rule.get(key).is_some(), "rule lacks {key}");
    }
    assert_eq!(policy_rule["defaultConfiguration"]["level"], "error");
    // Every rule links its page (an absolute URI, as SARIF requires) and is named and
    // described in words from the catalogue.
    for r in rules {
        let id = r["id"].as_str().unwrap();
        let uri = r["helpUri"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no helpUri"));
        assert!(
            uri.starts_with("https://") && uri.ends_with(&format!("/{id}.md")),
            "{id}: {uri}"
        );
        let name = r["name"].as_str().unwrap();
        assert!(
            name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{id}: name {name:?}"
        );
        let full = r["fullDescription"]["text"].as_str().unwrap();
        assert_ne!(
            full,
            r["shortDescription"]["text"].as_str().unwrap(),
            "{id}"
        );
        assert!(
            r["help"]["text"].as_str().unwrap().contains("What to do:"),
            "{id}"
        );
    }

    let results = run0["results"].as_array().unwrap();
    let waived = results
        .iter()
        .find(|r| r["ruleId"] == "LAYOUT-006")
        .unwrap();
    assert_eq!(waived["suppressions"][0]["justification"], "vendor tag");
    let loc = &waived["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], format!("{}", uri_of(&odd)));
    assert_eq!(loc["region"]["byteOffset"], 0x60000);
    assert_eq!(loc["region"]["byteLength"], 0x100000 - 0x60000);
    // Every result's ruleIndex points at its rule.
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
    }
    let bat014 = results.iter().find(|r| r["ruleId"] == "BAT-014").unwrap();
    assert_eq!(bat014["level"], "error");
    assert!(bat014.get("suppressions").is_none());

    let artifacts = run0["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 3);
    assert_eq!(
        artifacts[0]["hashes"]["sha-256"].as_str().unwrap().len(),
        64
    );
    assert_eq!(artifacts[1]["properties"]["verdict"], "reject");
    assert_eq!(artifacts[2]["properties"]["verdict"], "error");
    let inv = &run0["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    assert!(
        inv["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("missing.vhdx")
    );
}

/// The URI the report uses for an absolute path.
fn uri_of(path: &str) -> String {
    let mut out = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn the_schema_rejects_what_it_should() {
    // Guards the validation itself: a broken document must not pass.
    let (_, out, _) = run(&[
        "check",
        "--format",
        "sarif",
        corpus("qemu-dynamic-1M.vhdx").to_str().unwrap(),
    ]);
    let mut doc: Value = serde_json::from_str(&out).unwrap();
    assert_valid_sarif(&doc);
    doc["runs"][0]["results"][0]["level"] = "fatal".into();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(data("sarif-schema-2.1.0.json")).unwrap())
            .unwrap();
    assert!(!jsonschema::draft4::new(&schema).unwrap().is_valid(&doc));
}

#[test]
fn sample_gate_script_writes_valid_sarif() {
    let dir = Scratch::new("gate");
    let images = dir.0.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for name in ["qemu-dynamic-1M.vhdx", "qemu-fixed-1M.vhdx"] {
        std::fs::copy(corpus(name), images.join(name)).unwrap();
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let sarif = dir.path("out.sarif");
    let gate = |args: &[&str]| {
        Command::new("sh")
            .arg(format!("{root}/examples/gate.sh"))
            .args(args)
            .env("VHDX_CHECK", env!("CARGO_BIN_EXE_vhdx-check"))
            .current_dir(root)
            .status()
            .expect("run gate.sh")
            .code()
    };
    let dir_arg = images.to_str().unwrap();
    assert_eq!(gate(&[dir_arg, "examples/policy.toml", &sarif]), Some(0));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_valid_sarif(&doc);
    assert_eq!(doc["runs"][0]["artifacts"].as_array().unwrap().len(), 2);

    // A differencing image breaks the sample policy (disk type, parent): exit 1.
    ImageBuilder::differencing(8 * MIB)
        .block_size(MIB as u32)
        .build()
        .write_to(&images.join("child.avhdx"))
        .unwrap();
    assert_eq!(gate(&[dir_arg, "examples/policy.toml", &sarif]), Some(1));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_valid_sarif(&doc);
    let ids: Vec<&str> = doc["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["ruleId"].as_str())
        .collect();
    assert!(
        ids.contains(&"POLICY-001") && ids.contains(&"POLICY-005"),
        "{ids:?}"
    );
}

#[test]
fn sample_gate_script_fails_when_its_sarif_cannot_be_written() {
    let dir = Scratch::new("gate-full");
    let images = dir.0.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(corpus("qemu-dynamic-1M.vhdx"), images.join("a.vhdx")).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let sarif = dir.path("out.sarif");
    std::fs::write(&sarif, "previous run").unwrap();
    // A disk that fills after 4 KiB (file size limit; EFBIG rather than SIGXFSZ).
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 8 && exec sh \"$@\"")
        .arg("sh")
        .arg(format!("{root}/examples/gate.sh"))
        .args([images.to_str().unwrap(), "examples/policy.toml", &sarif])
        .env("VHDX_CHECK", env!("CARGO_BIN_EXE_vhdx-check"))
        .current_dir(root)
        .output()
        .expect("run gate.sh");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("every image accepted"), "{err}");
    assert!(err.contains("cannot write the report to"), "{err}");
    // The previous report is left whole rather than truncated.
    assert_eq!(std::fs::read_to_string(&sarif).unwrap(), "previous run");
}

fn sarif_of(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check", "--format", "sarif"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {err}"));
    (code, doc)
}

fn levels(doc: &Value) -> Vec<String> {
    (doc["runs"][0]["results"].as_array().unwrap().iter())
        .map(|r| r["level"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sarif_leaves_info_findings_out_unless_asked() {
    let dir = Scratch::new("sarif-info");
    // A clean dynamic image: accepted, with info findings only.
    let img = ImageBuilder::dynamic(8 * MIB)
        .block_size(MIB as u32)
        .write(0, b"data")
        .build();
    let clean = dir.path("clean.vhdx");
    img.write_to(Path::new(&clean)).unwrap();
    let (_, json, _) = run(&["check", "--format", "json", &clean]);
    let json: Value = serde_json::from_str(&json).unwrap();
    let info = json["images"][0]["summary"]["info"].as_u64().unwrap();
    assert!(info > 0, "the clean image has info findings to leave out");
    assert_eq!(json["images"][0]["summary"]["warning"], 0);

    let (code, doc) = sarif_of(&[&clean]);
    assert_eq!(code, 0);
    assert_valid_sarif(&doc);
    assert_eq!(
        levels(&doc),
        Vec::<String>::new(),
        "an accepted image leaves no alert"
    );
    // The artifact still counts them, and the verdict is the same.
    let props = &doc["runs"][0]["artifacts"][0]["properties"];
    assert_eq!(props["summary"]["info"].as_u64(), Some(info));
    assert_eq!(props["verdict"], "accept");

    let (code, doc) = sarif_of(&["--sarif-info", &clean]);
    assert_eq!(code, 0);
    assert_valid_sarif(&doc);
    let with = levels(&doc);
    assert_eq!(with.len() as u64, info);
    assert!(with.iter().all(|l| l == "note"));

    // A qemu-img image: its warnings stay, its info findings go.
    let qemu = corpus("qemu-dynamic-1M.vhdx");
    let (_, doc) = sarif_of(&[qemu.to_str().unwrap()]);
    assert!(!levels(&doc).iter().any(|l| l == "note"));
    let (_, doc) = sarif_of(&["--sarif-info", qemu.to_str().unwrap()]);
    assert!(levels(&doc).iter().any(|l| l == "note"));
}

#[test]
fn sarif_run_is_capped_at_25000_results_with_a_notification() {
    let dir = Scratch::new("sarif-cap");
    // 1 GiB in 1 MiB blocks: 1024 payload entries, each FULLY_PRESENT past the end of
    // the file (BAT-014, an error; 100 shown per image), so 300 images hold 30,000+.
    let mut img = ImageBuilder::dynamic(1 << 30)
        .block_size(MIB as u32)
        .build();
    for block in 0..1024 {
        img.set_payload_entry(block, 6 | ((4096 + block) << 20));
    }
    let first = dir.path("000.vhdx");
    img.write_to(Path::new(&first)).unwrap();
    for i in 1..300 {
        std::fs::hard_link(&first, dir.path(&format!("{i:03}.vhdx"))).unwrap();
    }
    let (code, doc) = sarif_of(&[dir.0.to_str().unwrap()]);
    assert_eq!(code, 1, "the verdicts are unaffected by the cap");
    let run0 = &doc["runs"][0];
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), 25_000);
    // Every artifact is there with its verdict; the total is what SARIF would hold
    // without the cap: shown error and warning findings.
    let artifacts = run0["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 300);
    let mut total = 0;
    for a in artifacts {
        let p = &a["properties"];
        assert_eq!(p["verdict"], "reject");
        let hidden: u64 = (p["suppressed"].as_object().unwrap().values())
            .filter(|s| s["severity"] != "info")
            .map(|s| s["count"].as_u64().unwrap())
            .sum();
        total += p["summary"]["error"].as_u64().unwrap()
            + p["summary"]["warning"].as_u64().unwrap()
            - hidden;
    }
    assert!(total > 25_000, "{total}");
    // Errors first: every kept error comes before any kept warning.
    let lv = levels(&doc);
    let first_warning = lv.iter().position(|l| l == "warning").unwrap_or(lv.len());
    assert!(lv[first_warning..].iter().all(|l| l != "error"));
    let notes = run0["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    let cap = notes
        .iter()
        .find(|n| n["descriptor"]["id"] == "vhdx-check/results-capped")
        .expect("a notification about the cap");
    assert_eq!(cap["level"], "warning");
    let text = cap["message"]["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("{} of {total} results left out", total - 25_000)),
        "{text}"
    );
    assert_eq!(run0["invocations"][0]["executionSuccessful"], true);
    assert_valid_sarif(&doc);
}
