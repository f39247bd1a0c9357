//! JSON output, schema version 1 (DESIGN.md "Contracts").

use super::Checked;
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
            Ok(r) => json!({
                "path": c.path,
                "size": r.size,
                "verdict": if c.rejected { "reject" } else { "accept" },
                "summary": {
                    "error": r.count(Severity::Error),
                    "warning": r.count(Severity::Warning),
                    "info": r.count(Severity::Info),
                },
                "findings": r.findings,
                "suppressed": r.suppressed,
            }),
            Err(e) => json!({"path": c.path, "verdict": "error", "error": e}),
        })
        .collect();
    let doc = json!({"schema": SCHEMA, "tool": tool(), "images": images});
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
