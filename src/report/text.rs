//! Text output a responder reads at a glance: a verdict line, then findings grouped by
//! structure, each with a hex offset, severity, rule id and spec section.

use super::Checked;
use crate::rules::finding::{Finding, Severity, View};
use std::fmt::Write;

/// The top-level structure a finding belongs to, for grouping.
fn group(f: &Finding) -> &str {
    let s = f.structure.as_str();
    let head = s.split('.').next().unwrap_or(s);
    if head.starts_with("bat[") {
        "bat"
    } else {
        head
    }
}

pub fn render(images: &[Checked]) -> String {
    let mut out = String::new();
    for c in images {
        let r = match c.outcome {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "{}: ERROR  {e}", c.path);
                continue;
            }
        };
        let _ = writeln!(
            out,
            "{}: {}  ({} errors, {} warnings, {} info; {} bytes)",
            c.path,
            if c.rejected { "REJECT" } else { "ACCEPT" },
            r.count(Severity::Error),
            r.count(Severity::Warning),
            r.count(Severity::Info),
            r.size
        );
        let mut groups: Vec<&str> = Vec::new();
        for f in &r.findings {
            if !groups.contains(&group(f)) {
                groups.push(group(f));
            }
        }
        for g in groups {
            let _ = writeln!(out, "  {g}");
            for f in r.findings.iter().filter(|f| group(f) == g) {
                let off = f.offset.map_or("-".to_string(), |o| format!("{o:#010x}"));
                let view = if f.view == View::Replayed {
                    " (replayed)"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "    {off:>12}  {:<7}  {}  {}{view}  [{}]",
                    f.severity.as_str(),
                    f.rule,
                    f.message,
                    f.spec
                );
            }
        }
        for (id, s) in &r.suppressed {
            let _ = writeln!(
                out,
                "  ... {} more {id} findings not shown (raise --max-per-rule to see them)",
                s.count
            );
        }
    }
    out
}
