//! SARIF 2.1.0 (`--format sarif`) for code-scanning services such as GitHub's: one run,
//! the rule catalogue as the driver's rules, one result per finding located by its byte
//! range in the image, waived findings as accepted suppressions, and each image as an
//! artifact with its verdict and digests.

use super::Checked;
use crate::rules::catalogue::{RuleInfo, catalogue};
use crate::rules::finding::{Finding, Severity};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
pub const VERSION: &str = "2.1.0";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

pub fn render(images: &[Checked]) -> String {
    let rules: Vec<&RuleInfo> = catalogue().rules().collect();
    let index: BTreeMap<&str, usize> = (rules.iter().enumerate()).map(|(i, r)| (r.id, i)).collect();
    let mut results = Vec::new();
    let mut artifacts = Vec::new();
    let mut notifications = Vec::new();
    for (a, c) in images.iter().enumerate() {
        let location = json!({ "uri": uri(c.path), "index": a });
        match c.outcome {
            Ok(r) => {
                for (i, f) in r.findings.iter().enumerate() {
                    let mut res = result(f, &location, index.get(f.rule).copied());
                    if let (Some(reason), Some(obj)) = (r.waiver(i), res.as_object_mut()) {
                        obj.insert(
                            "suppressions".into(),
                            json!([{ "kind": "external", "status": "accepted", "justification": reason }]),
                        );
                    }
                    results.push(res);
                }
                let mut props = json!({
                    "verdict": if c.rejected { "reject" } else { "accept" },
                    "summary": {
                        "error": r.count(Severity::Error),
                        "warning": r.count(Severity::Warning),
                        "info": r.count(Severity::Info),
                        "waived": r.count_waived(),
                    },
                    "suppressed": r.suppressed,
                });
                let mut artifact = json!({
                    "location": { "uri": uri(c.path) },
                    "length": r.size,
                });
                if let Some(d) = &r.digests {
                    artifact["hashes"] = json!({ "sha-256": d.file });
                    props["virtualDiskSha256"] = json!(d.virtual_disk);
                    if let Some(why) = &d.virtual_unavailable {
                        props["virtualDiskSha256Unavailable"] = json!(why);
                    }
                }
                artifact["properties"] = props;
                artifacts.push(artifact);
            }
            Err(e) => {
                notifications.push(json!({
                    "level": "error",
                    "message": { "text": e },
                    "locations": [{ "physicalLocation": { "artifactLocation": location } }],
                }));
                artifacts.push(json!({
                    "location": { "uri": uri(c.path) },
                    "properties": { "verdict": "error" },
                }));
            }
        }
    }
    let doc = json!({
        "$schema": SCHEMA_URI,
        "version": VERSION,
        "runs": [{
            "tool": { "driver": {
                "name": "vhdx-check",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|r| descriptor(r)).collect::<Vec<_>>(),
            }},
            "invocations": [{
                "executionSuccessful": notifications.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "artifacts": artifacts,
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// A catalogue entry as a SARIF reportingDescriptor: the title as the short description,
/// what the rule means as the full one, what to do as help, its page as helpUri.
fn descriptor(r: &RuleInfo) -> Value {
    let family = r.id.split('-').next().unwrap_or("");
    let help = format!(
        "{}\n\nWhat to do: {}\n\nApplies to: {}. Specification: {}.",
        r.rationale,
        r.advice(),
        r.applies_to,
        r.spec
    );
    let markdown = format!(
        "**{}**: {}\n\n{}\n\n**What to do:** {}\n\n- applies to: {}\n- specification: {}\n\n[Rule page]({})",
        r.id,
        r.title,
        r.rationale,
        r.advice(),
        r.applies_to,
        r.spec,
        r.doc_url()
    );
    let mut d = json!({
        "id": r.id,
        "name": name(r),
        "shortDescription": { "text": r.title },
        "fullDescription": { "text": r.rationale },
        "help": { "text": help, "markdown": markdown },
        "helpUri": r.doc_url(),
        "defaultConfiguration": { "level": level(r.severity) },
        "properties": { "tags": ["vhdx", family], "spec": r.spec, "precision": "very-high" },
    });
    if let Some(why) = &r.deferred {
        d["properties"]["deferred"] = json!(why);
    }
    d
}

/// A readable PascalCase name from the plain title: its words up to the first parenthesis
/// or colon, capitalised and joined ("Header checksum does not match its contents" ->
/// HeaderChecksumDoesNotMatchItsContents).
fn name(r: &RuleInfo) -> String {
    let head = r.title.split(['(', ':', ';']).next().unwrap_or("");
    let n: String = head
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect();
    if n.is_empty() {
        r.id.replace('-', "")
    } else {
        n
    }
}

fn result(f: &Finding, artifact: &Value, rule_index: Option<usize>) -> Value {
    // GitHub code scanning needs a line; an image has none, so every result is put on
    // line 1 and the byte range says where it really is.
    let mut region = json!({ "startLine": 1 });
    if let Some(o) = f.offset {
        region["byteOffset"] = json!(o);
        if let Some(n) = f.length {
            region["byteLength"] = json!(n);
        }
    }
    let mut r = json!({
        "ruleId": f.rule,
        "level": level(f.severity),
        "message": { "text": format!("{} [{}]", f.message, f.spec) },
        "locations": [{
            "physicalLocation": { "artifactLocation": artifact, "region": region },
            "logicalLocations": [{ "fullyQualifiedName": f.structure }],
        }],
        "partialFingerprints": { "vhdxFinding/v1": fingerprint(f) },
        "properties": { "structure": f.structure, "view": f.view },
    });
    if let Some(i) = rule_index {
        r["ruleIndex"] = json!(i);
    }
    r
}

/// Stable across runs for the same fault in the same place, so a code-scanning service
/// tracks one alert per fault rather than per run.
fn fingerprint(f: &Finding) -> String {
    let key = format!("{}\0{}\0{:?}\0{:?}", f.rule, f.structure, f.offset, f.view);
    crate::hash::hex(&Sha256::digest(key.as_bytes())[..16])
}

/// The image path as a URI reference: relative paths stay relative (code scanning maps
/// them onto the repository), absolute ones become file: URIs; bytes outside the
/// unreserved set and `/` are percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::from(if path.starts_with('/') { "file://" } else { "" });
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_names() {
        assert_eq!(uri("images/a b.vhdx"), "images/a%20b.vhdx");
        assert_eq!(uri("/srv/x#1.vhdx"), "file:///srv/x%231.vhdx");
        let r = catalogue().get("LAYOUT-001").unwrap();
        assert_eq!(name(r), "TwoStructuresOccupyTheSameBytesOfTheFile");
        assert_eq!(name(catalogue().get("FTI-007").unwrap()), "NotAVHDXFile");
        for r in catalogue().rules() {
            assert!(!name(r).is_empty(), "{}", r.id);
        }
    }
}
