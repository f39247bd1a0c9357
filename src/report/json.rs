//! JSON output, schema version 1 (DESIGN.md "Contracts").

use super::Checked;
use crate::check::ImageReport;
use crate::rules::finding::Severity;
use serde_json::{Value, json};

pub const SCHEMA: u32 = 1;

pub fn tool() -> Value {
    json!({"name": "vhdx-check", "version": env!("CARGO_PKG_VERSION")})
}

pub fn render(images: &[Checked]) -> String {
    let images: Vec<Value> = images
        .iter()
        .map(|c| match c.outcome {
            Ok(r) => image(c.path, c.rejected, r),
            Err(e) => json!({"path": c.path, "verdict": "error", "error": e}),
        })
        .collect();
    let doc = json!({"schema": SCHEMA, "tool": tool(), "images": images});
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// One checked image. Schema 1 only grows: `summary.waived` is always there; a finding's
/// `waived`, `suppressed_waived` and `digests` appear only when they apply.
fn image(path: &str, rejected: bool, r: &ImageReport) -> Value {
    let findings: Vec<Value> = (r.findings.iter().enumerate())
        .map(|(i, f)| {
            let mut v = json!(f);
            if let (Some(reason), Some(obj)) = (r.waiver(i), v.as_object_mut()) {
                obj.insert("waived".into(), json!({ "reason": reason }));
            }
            v
        })
        .collect();
    let mut v = json!({
        "path": path,
        "size": r.size,
        "verdict": if rejected { "reject" } else { "accept" },
        "summary": {
            "error": r.count(Severity::Error),
            "warning": r.count(Severity::Warning),
            "info": r.count(Severity::Info),
            "waived": r.count_waived(),
        },
        "findings": findings,
        "suppressed": r.suppressed,
    });
    if let Some(obj) = v.as_object_mut() {
        if !r.waived_suppressed.is_empty() {
            let waived: serde_json::Map<String, Value> = (r.waived_suppressed.iter())
                .map(|(id, reason)| (id.to_string(), json!({ "reason": reason })))
                .collect();
            obj.insert("suppressed_waived".into(), Value::Object(waived));
        }
        if let Some(d) = &r.digests {
            obj.insert("digests".into(), json!(d));
        }
    }
    v
}
