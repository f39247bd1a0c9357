//! Policy files (`--policy`): parse errors, waivers, severity overrides, fail_on, and the
//! requirements of examples/policy.toml, each failed by an image built here and asserted
//! by its POLICY id.

use crate::builder::*;
use crate::cli::{Scratch, corpus, run};
use crate::util::assert_fires;
use std::path::Path;
use vhdx_check::model::Model;
use vhdx_check::policy::Policy;
use vhdx_check::{CheckOptions, ImageReport, Severity, check};

fn sample_policy() -> Policy {
    Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml"))
        .expect("examples/policy.toml parses")
}

/// The whole pipeline on a built image: rules, then the policy.
fn judged(img: &Built, policy: &Policy) -> ImageReport {
    let mut r = check(img, &CheckOptions::default());
    policy.judge(&Model::build(img), &mut r, 100);
    r
}

fn policy_ids(r: &ImageReport) -> Vec<&'static str> {
    r.ids()
        .into_iter()
        .filter(|id| id.starts_with("POLICY-"))
        .collect()
}

/// Passes the sample policy: dynamic, 1 MiB blocks, 512-byte sectors, no extras.
fn acceptable() -> Built {
    ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .write(0, b"boot sector")
        .build()
}

/// A third region entry with a GUID no reader knows, inside the file.
fn with_unknown_region(mut img: Built) -> Built {
    let offset = img.layout.bat_offset + img.layout.bat_length;
    img.len = img.len.max(offset + MIB);
    img.edit_region_tables(|t| {
        put_u32(t, rgn::ENTRY_COUNT, 3);
        let e = rgn::entry(2);
        t[e..e + 16].copy_from_slice(&pseudo_guid(77));
        put_u64(t, e + rgn::E_FILE_OFFSET, offset);
        put_u32(t, e + rgn::E_LENGTH, MIB as u32);
    });
    img
}

/// Every `[require]` key of the sample policy, the POLICY id it reports and an image
/// that fails it.
fn requirement_cases() -> Vec<(&'static str, &'static str, Built)> {
    let mut pending = acceptable();
    pending.set_log_guid(pseudo_guid(9));
    vec![
        (
            "disk_types",
            "POLICY-001",
            ImageBuilder::differencing(64 * MIB)
                .block_size(MIB as u32)
                .build(),
        ),
        (
            "max_virtual_size",
            "POLICY-002",
            ImageBuilder::dynamic(4 << 40).build(),
        ),
        (
            "block_sizes",
            "POLICY-003",
            ImageBuilder::dynamic(64 * MIB)
                .block_size(2 * MIB as u32)
                .build(),
        ),
        (
            "logical_sector_sizes",
            "POLICY-004",
            ImageBuilder::dynamic(64 * MIB)
                .block_size(MIB as u32)
                .logical_sector(4096)
                .build(),
        ),
        (
            "allow_parent",
            "POLICY-005",
            ImageBuilder::differencing(64 * MIB)
                .block_size(MIB as u32)
                .build(),
        ),
        ("allow_pending_log", "POLICY-006", pending),
        (
            "allow_unknown_regions",
            "POLICY-007",
            with_unknown_region(acceptable()),
        ),
        (
            "allow_unknown_metadata_items",
            "POLICY-008",
            ImageBuilder::dynamic(64 * MIB)
                .block_size(MIB as u32)
                .metadata_item(pseudo_guid(42), meta::IS_USER, b"asset tag 1234")
                .build(),
        ),
    ]
}

#[test]
fn each_sample_requirement_has_an_image_that_fails_it() {
    let policy = sample_policy();
    let clean = judged(&acceptable(), &policy);
    assert!(policy_ids(&clean).is_empty(), "{:?}", clean.findings);
    assert!(!clean.has("RGN-020"));

    let cases = requirement_cases();
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml"))
            .unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let keys: Vec<&String> = doc["require"].as_table().unwrap().keys().collect();
    for key in &keys {
        assert!(
            cases.iter().any(|(k, ..)| k == key),
            "sample requirement {key} has no test image"
        );
    }
    // Each requirement by name, with the id it reports written where it is asserted.
    let asserted = [
        requirement_fails(&policy, &cases, "disk_types", "POLICY-001"),
        requirement_fails(&policy, &cases, "max_virtual_size", "POLICY-002"),
        requirement_fails(&policy, &cases, "block_sizes", "POLICY-003"),
        requirement_fails(&policy, &cases, "logical_sector_sizes", "POLICY-004"),
        requirement_fails(&policy, &cases, "allow_parent", "POLICY-005"),
        requirement_fails(&policy, &cases, "allow_pending_log", "POLICY-006"),
        requirement_fails(&policy, &cases, "allow_unknown_regions", "POLICY-007"),
        requirement_fails(
            &policy,
            &cases,
            "allow_unknown_metadata_items",
            "POLICY-008",
        ),
    ];
    for (key, ..) in &cases {
        assert!(asserted.contains(key), "case {key} is not asserted");
    }
}

/// Asserts the image of requirement `key` (in `cases`) fails it with `id`, an error at an
/// offset whose message names the requirement; returns `key`.
#[track_caller]
fn requirement_fails<'k>(
    policy: &Policy,
    cases: &[(&str, &str, Built)],
    key: &'k str,
    id: &str,
) -> &'k str {
    let (_, case_id, img) = cases.iter().find(|(k, ..)| *k == key).unwrap();
    assert_eq!(*case_id, id, "{key}");
    let r = judged(img, policy);
    let f = assert_fires(&r, id)[0];
    assert_eq!(f.severity, Severity::Error, "{key}");
    assert!(f.offset.is_some(), "{key}: {id} has no offset");
    assert!(!r.has("POLICY-009"), "{key}: {:?}", r.ids());
    // The message names the way on: the fix, or the requirement to change.
    let knob = format!("require.{key}");
    assert!(f.message.contains(&knob), "{key}: {}", f.message);
    key
}

#[test]
fn requirement_findings_locate_the_value() {
    let policy = sample_policy();
    let cases = requirement_cases();
    let at = |id: &str, img: &Built| {
        judged(img, &policy)
            .findings
            .iter()
            .find(|f| f.rule == id)
            .and_then(|f| f.offset)
    };
    let (_, _, pending) = &cases[5];
    assert_eq!(
        at("POLICY-006", pending),
        Some(pending.layout.header_offset(2) + hdr::LOG_GUID as u64),
        "the current header's LogGuid"
    );
    let (_, _, region) = &cases[6];
    assert_eq!(
        at("POLICY-007", region),
        Some(region.layout.region_table_offset(1) + rgn::entry(2) as u64)
    );
    let (_, _, sectors) = &cases[3];
    assert_eq!(
        at("POLICY-004", sectors),
        Some(sectors.layout.item(&ITEM_LOGICAL_SECTOR_SIZE).data_offset)
    );
}

#[test]
fn a_parent_locator_without_has_parent_is_a_parent_too() {
    let img = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .metadata_item(
            ITEM_PARENT_LOCATOR,
            meta::IS_REQUIRED,
            &parent_locator_item(&[("relative_path", "base.vhdx")]),
        )
        .build();
    let r = judged(&img, &sample_policy());
    assert_fires(&r, "POLICY-005");
}

#[test]
fn unreadable_values_fail_closed() {
    let policy = sample_policy();
    let mut img = acceptable();
    let fp = img.layout.item(&ITEM_FILE_PARAMETERS).entry_offset;
    img.patch(fp, &[0xEE; 16]); // the File Parameters entry loses its GUID
    let r = judged(&img, &policy);
    assert_fires(&r, "POLICY-009");
    assert!(!r.has("POLICY-001"));
    let f = r.findings.iter().find(|f| f.rule == "POLICY-009").unwrap();
    assert!(
        f.message
            .contains("so it counts as not met (the gate fails closed)"),
        "{}",
        f.message
    );
    // Garbage: every requirement that needs a value says so.
    let bytes = vec![0x5au8; 2 << 20];
    let src = vhdx_check::io::MemReader(&bytes);
    let mut r = check(&src, &CheckOptions::default());
    policy.judge(&Model::build(&src), &mut r, 100);
    assert_eq!(policy_ids(&r), vec!["POLICY-009"]);
    assert_eq!(
        r.findings.iter().filter(|f| f.rule == "POLICY-009").count(),
        8
    );
}

#[test]
fn no_policy_means_no_policy_findings() {
    for (_, _, img) in requirement_cases() {
        assert!(policy_ids(&judged(&img, &Policy::default())).is_empty());
    }
}

// ---- the command line -------------------------------------------------------------------

#[test]
fn policy_errors_exit_2_with_line_and_column() {
    let dir = Scratch::new("policy-errors");
    let img = corpus("qemu-dynamic-1M.vhdx");
    let img = img.to_str().unwrap();
    let cases = [
        (
            "fail_on = \"error\"\n[require]\nmax_size = 5\n",
            "line 3, column 1",
        ),
        ("[[waiver]]\nrule = \"RGN-020\"\n", "line 1, column 1"),
        (
            "[[waiver]]\nrule = \"RGN-020\"\nreason = \"\"\n",
            "line 3, column 10",
        ),
        ("[severity]\n\"RGN-999\" = \"info\"\n", "line 2, column 1"),
        ("fail_on = \"sometimes\"\n", "line 1, column 11"),
        ("[require\n", "line 1"),
    ];
    for (i, (text, place)) in cases.iter().enumerate() {
        let p = dir.file(&format!("p{i}.toml"), text);
        let (code, out, err) = run(&["check", "--policy", &p, img]);
        assert_eq!(code, 2, "{text:?}: {err}");
        assert!(out.is_empty(), "nothing on stdout for a bad policy: {out}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(place) && err.contains("bad policy file"),
            "{text:?}: {err}"
        );
    }
    let (code, _, err) = run(&["check", "--policy", &dir.path("missing.toml"), img]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read policy file"), "{err}");
}

#[test]
fn waived_findings_stay_visible_and_do_not_reject() {
    let dir = Scratch::new("policy-waivers");
    // qemu's fixed image with ZERO-state blocks: one BAT-015 (for its eight blocks) and two
    // RGN-020 warnings.
    let img = corpus("qemu-fixed-zero-state.vhdx");
    let img = img.to_str().unwrap();
    let strict = dir.file("strict.toml", "fail_on = \"warning\"\n");
    assert_eq!(run(&["check", "--policy", &strict, img]).0, 1);

    let waive = dir.file(
        "waive.toml",
        "fail_on = \"warning\"\n\
         [[waiver]]\nrule = \"BAT-015\"\nreason = \"qemu writes fixed blocks as ZERO\"\n\
         [[waiver]]\nrule = \"RGN-020\"\nreason = \"qemu region flags\"\n",
    );
    let (code, out, _) = run(&["check", "--policy", &waive, "--format", "json", img]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let image = &v["images"][0];
    assert_eq!(image["verdict"], "accept");
    assert_eq!(image["summary"]["warning"], 0);
    assert_eq!(image["summary"]["waived"], 3);
    let findings = image["findings"].as_array().unwrap();
    let bat015: Vec<_> = findings.iter().filter(|f| f["rule"] == "BAT-015").collect();
    assert_eq!(bat015.len(), 1, "waived findings stay in the report");
    assert!(bat015.iter().all(|f| f["severity"] == "warning"
        && f["waived"]["reason"] == "qemu writes fixed blocks as ZERO"));
    assert!(
        findings
            .iter()
            .filter(|f| f["rule"] == "FTI-004")
            .all(|f| f.get("waived").is_none())
    );

    let (code, out, _) = run(&["check", "--policy", &waive, img]);
    assert_eq!(code, 0);
    assert!(out.contains("ACCEPT") && out.contains("3 waived"), "{out}");
    assert!(
        out.lines().any(
            |l| l.contains("BAT-015") && l.contains("WAIVED: qemu writes fixed blocks as ZERO")
        ),
        "{out}"
    );

    // A waiver narrowed to one structure leaves the other RGN-020 deciding.
    let narrow = dir.file(
        "narrow.toml",
        "fail_on = \"warning\"\n\
         [[waiver]]\nrule = \"BAT-015\"\nreason = \"qemu\"\n\
         [[waiver]]\nrule = \"RGN-020\"\nreason = \"only the BAT entry\"\nstructure = \"region_table[1].entry[0]\"\n",
    );
    let (code, out, _) = run(&["check", "--policy", &narrow, "--format", "json", img]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"][0]["summary"]["warning"], 1);
}

#[test]
fn waivers_cover_suppressed_instances_only_rule_wide() {
    let dir = Scratch::new("policy-suppressed");
    let img = corpus("qemu-fixed-zero-state.vhdx");
    let img = img.to_str().unwrap();
    let wide = dir.file(
        "wide.toml",
        "fail_on = \"warning\"\n\
         [[waiver]]\nrule = \"BAT-015\"\nreason = \"qemu\"\n\
         [[waiver]]\nrule = \"RGN-020\"\nreason = \"qemu\"\n",
    );
    let (code, out, _) = run(&[
        "check",
        "--policy",
        &wide,
        "--max-per-rule",
        "1",
        "--format",
        "json",
        img,
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"][0]["suppressed"]["RGN-020"]["count"], 1);
    assert_eq!(
        v["images"][0]["suppressed_waived"]["RGN-020"]["reason"],
        "qemu"
    );
    assert_eq!(v["images"][0]["summary"]["waived"], 3);

    let scoped = dir.file(
        "scoped.toml",
        "fail_on = \"warning\"\n\
         [[waiver]]\nrule = \"BAT-015\"\nreason = \"qemu\"\n\
         [[waiver]]\nrule = \"RGN-020\"\nreason = \"qemu\"\nstructure = \"region_table[1].entry[0]\"\n",
    );
    let (code, out, _) = run(&["check", "--policy", &scoped, "--max-per-rule", "1", img]);
    assert_eq!(
        code, 1,
        "suppressed instances have no structure to match: {out}"
    );
}

#[test]
fn severity_overrides_and_fail_on_precedence() {
    let dir = Scratch::new("policy-severity");
    let img = corpus("qemu-dynamic-1M.vhdx");
    let img = img.to_str().unwrap();
    // RGN-020 (warning) raised to error: rejected at the default level.
    let raise = dir.file("raise.toml", "[severity]\n\"RGN-020\" = \"error\"\n");
    let (code, out, _) = run(&["check", "--policy", &raise, "--format", "json", img]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = &v["images"][0]["findings"];
    assert!(
        f.as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "RGN-020")
            .all(|f| f["severity"] == "error")
    );
    assert_eq!(v["images"][0]["summary"]["error"], 2);

    // fail_on from the policy rejects on warnings; --fail-on on the command line wins.
    let strict = dir.file("strict.toml", "fail_on = \"warning\"\n");
    assert_eq!(run(&["check", "--policy", &strict, img]).0, 1);
    assert_eq!(
        run(&["check", "--policy", &strict, "--fail-on", "error", img]).0,
        0
    );
    // Lowered to info, the warnings no longer reject at fail_on = warning.
    let lower = dir.file(
        "lower.toml",
        "fail_on = \"warning\"\n[severity]\n\"RGN-020\" = \"info\"\n",
    );
    let (code, out, _) = run(&["check", "--policy", &lower, img]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 warnings"), "{out}");
}

#[test]
fn failed_requirement_rejects_in_every_format() {
    let dir = Scratch::new("policy-formats");
    let img = ImageBuilder::dynamic(64 * MIB)
        .block_size(MIB as u32)
        .logical_sector(4096)
        .build();
    let path = dir.path("4k.vhdx");
    img.write_to(Path::new(&path)).unwrap();
    let policy = dir.file("p.toml", "[require]\nlogical_sector_sizes = [512]\n");
    for format in ["text", "json", "sarif"] {
        let (code, out, _) = run(&["check", "--policy", &policy, "--format", format, &path]);
        assert_eq!(code, 1, "{format}: {out}");
        assert!(out.contains("POLICY-004"), "{format}: {out}");
    }
    // Waived with a reason, the same image passes.
    let waived = dir.file(
        "w.toml",
        "[require]\nlogical_sector_sizes = [512]\n\
         [[waiver]]\nrule = \"POLICY-004\"\nreason = \"guest OS supports 4K sectors\"\n",
    );
    assert_eq!(run(&["check", "--policy", &waived, &path]).0, 0);
}

/// The sample policy accepts what `qemu-img create -f vhdx` writes by default: it picks
/// 8 MiB blocks up to 1 GiB and 16 MiB above (the images are sparse, so 10 GiB is cheap),
/// and a fixed disk's blocks are in state ZERO (BAT-015, waived in the sample).
#[test]
fn sample_policy_accepts_fresh_qemu_img_images() {
    if std::process::Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP sample_policy_accepts_fresh_qemu_img_images: qemu-img not installed");
        return;
    }
    let dir = Scratch::new("policy-qemu");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml");
    for (name, size, fixed, block) in [
        ("d64m.vhdx", "64M", false, "8388608"),
        ("d1g.vhdx", "1G", false, "8388608"),
        ("d10g.vhdx", "10G", false, "16777216"),
        ("f64m.vhdx", "64M", true, "8388608"),
    ] {
        let p = dir.path(name);
        let mut cmd = std::process::Command::new("qemu-img");
        cmd.args(["create", "-q", "-f", "vhdx"]);
        if fixed {
            cmd.args(["-o", "subformat=fixed"]);
        }
        assert!(cmd.args([&p, size]).status().unwrap().success(), "{name}");
        let (_, info, _) = run(&["info", "--format", "json", &p]);
        let v: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert_eq!(v["parameters"]["block_size"].to_string(), block, "{name}");
        let (code, out, err) = run(&["check", "--policy", sample.to_str().unwrap(), &p]);
        assert_eq!(code, 0, "{name} rejected by the sample policy: {out}{err}");
    }
}
