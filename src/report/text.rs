//! Text output a responder reads at a glance: a verdict line, then findings grouped by
//! structure, each with a hex offset, severity, rule id and spec section; waived findings
//! marked with their reason; digests last.

use super::{Checked, HIDDEN_DATA_RULES, Render, Status, escape_controls, path_line};
use crate::hash::Digests;
use crate::rules::finding::{Finding, Severity, View};
use std::fmt::Write;
use std::io;

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

/// The text renderer: one block per image, written as each image is done.
pub struct Text;

impl Render for Text {
    fn begin(&mut self, _: &mut dyn io::Write) -> io::Result<()> {
        Ok(())
    }

    fn image(&mut self, out: &mut dyn io::Write, c: &Checked) -> io::Result<()> {
        out.write_all(image(c).as_bytes())
    }

    fn end(&mut self, _: &mut dyn io::Write) -> io::Result<()> {
        Ok(())
    }
}

pub fn render(images: &[Checked]) -> String {
    super::render_all(&mut Text, images)
}

/// One image's block. The path is escaped (one line, and never a forged verdict line);
/// finding messages quote image bytes escaped already (`preview`, `quote`), and any
/// control character left in a message or reason is escaped here.
fn image(c: &Checked) -> String {
    let mut out = String::new();
    let path = path_line(c.path);
    let r = match c.outcome {
        Status::Report(r) => r,
        Status::Error(e) => {
            let _ = writeln!(out, "{path}: ERROR  {}", escape_controls(e));
            return out;
        }
        Status::Skipped(why) => {
            let _ = writeln!(out, "{path}: SKIPPED  {}", escape_controls(why));
            return out;
        }
    };
    let waived = match r.count_waived() {
        0 => String::new(),
        n => format!(", {n} waived"),
    };
    let _ = writeln!(
        out,
        "{path}: {}  ({} errors, {} warnings, {} info{waived}; {} bytes)",
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
        for (i, f) in r.findings.iter().enumerate().filter(|(_, f)| group(f) == g) {
            let off = f.offset.map_or("-".to_string(), |o| format!("{o:#010x}"));
            let view = if f.view == View::Replayed {
                " (replayed)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    {off:>12}  {:<7}  {}  {}{view}{}  [{}]{}",
                f.severity.as_str(),
                f.rule,
                escape_controls(&f.message),
                swept_range(f),
                f.spec,
                waiver_note(r.waiver(i))
            );
        }
    }
    for (id, s) in &r.suppressed {
        let _ = writeln!(
            out,
            "  ... {} more {id} findings not shown (raise --max-per-rule to see them){}",
            s.count,
            waiver_note(r.waived_suppressed.get(id).map(String::as_str))
        );
    }
    if let Some(d) = &r.digests {
        digests(&mut out, d);
    }
    out
}

/// For hidden-data sweeps: the byte range swept, which the message (first bytes found)
/// does not state.
fn swept_range(f: &Finding) -> String {
    match (f.offset, f.length) {
        (Some(o), Some(n)) if HIDDEN_DATA_RULES.contains(&f.rule) => {
            format!("; range {o:#x}..{:#x} ({n} bytes)", o.saturating_add(n))
        }
        _ => String::new(),
    }
}

fn waiver_note(reason: Option<&str>) -> String {
    reason.map_or(String::new(), |r| format!("  WAIVED: {r}"))
}

fn digests(out: &mut String, d: &Digests) {
    let _ = writeln!(out, "  {} file          {}", d.algorithm, d.file);
    match (&d.virtual_disk, &d.virtual_unavailable) {
        (Some(v), _) => {
            let _ = writeln!(out, "  {} virtual disk  {v}", d.algorithm);
        }
        (None, why) => {
            let _ = writeln!(
                out,
                "  {} virtual disk  unavailable: {}",
                d.algorithm,
                why.as_deref().unwrap_or("unknown")
            );
        }
    }
}
