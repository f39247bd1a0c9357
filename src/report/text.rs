//! Text output a responder reads at a glance: a verdict line, then findings grouped by
//! structure, each with a hex offset, severity, rule id and spec section; waived findings
//! marked with their reason; digests last.

use super::{Checked, HIDDEN_DATA_RULES, Render, Statistics, Status, escape_controls, path_line};
use crate::findings::Digests;
use crate::findings::{Finding, Severity, View};
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
#[derive(Default)]
pub struct Text {
    /// ANSI colour on the verdict and severity words (a terminal only: see the CLI).
    pub color: bool,
    /// The verdict line of each image only (`check -q`).
    pub quiet: bool,
    /// Per-rule counts after the last image (`check --statistics`).
    pub statistics: Option<Statistics>,
}

impl Render for Text {
    fn begin(&mut self, _: &mut dyn io::Write) -> io::Result<()> {
        Ok(())
    }

    fn image(&mut self, out: &mut dyn io::Write, c: &Checked) -> io::Result<()> {
        if let (Some(s), Status::Report(r)) = (&mut self.statistics, c.outcome) {
            s.add(r);
        }
        out.write_all(image(c, self.color, self.quiet).as_bytes())
    }

    fn end(&mut self, out: &mut dyn io::Write) -> io::Result<()> {
        match &self.statistics {
            Some(s) => out.write_all(statistics(s, self.color).as_bytes()),
            None => Ok(()),
        }
    }
}

pub fn render(images: &[Checked]) -> String {
    super::render_all(&mut Text::default(), images)
}

/// `word` left-aligned in `width` columns, in colour `sgr` (an SGR parameter list) when
/// `color`: the padding stays outside the escape codes, so columns line up either way.
fn paint(word: &str, sgr: &str, width: usize, color: bool) -> String {
    let pad = " ".repeat(width.saturating_sub(word.chars().count()));
    if color {
        format!("\x1b[{sgr}m{word}\x1b[0m{pad}")
    } else {
        format!("{word}{pad}")
    }
}

fn severity_sgr(s: Severity) -> &'static str {
    match s {
        Severity::Error => "1;31",
        Severity::Warning => "33",
        Severity::Info => "36",
    }
}

/// The `--statistics` block: one line per rule that fired, most instances first.
fn statistics(s: &Statistics, color: bool) -> String {
    let mut out = String::new();
    let rows = s.rows();
    let _ = writeln!(
        out,
        "statistics: {} rule(s) fired in {} checked image(s)",
        rows.len(),
        s.checked
    );
    for (id, c) in rows {
        let waived = match c.waived {
            0 => String::new(),
            n => format!(" ({n} waived)"),
        };
        let _ = writeln!(
            out,
            "  {:>8}  {}  {:<11} {}{waived}",
            c.count,
            paint(c.severity.as_str(), severity_sgr(c.severity), 7, color),
            id,
            escape_controls(Statistics::title(id))
        );
    }
    out
}

/// One image's block. The path is escaped (one line, and never a forged verdict line);
/// finding messages quote image bytes escaped already (`preview`, `quote`), and any
/// control character left in a message or reason is escaped here.
fn image(c: &Checked, color: bool, quiet: bool) -> String {
    let mut out = String::new();
    let path = path_line(c.path);
    let r = match c.outcome {
        Status::Report(r) => r,
        Status::Error(e) => {
            let word = paint("ERROR", "1;31", 0, color);
            let _ = writeln!(out, "{path}: {word}  {}", escape_controls(e));
            return out;
        }
        Status::Skipped(why) => {
            let word = paint("SKIPPED", "33", 0, color);
            let _ = writeln!(out, "{path}: {word}  {}", escape_controls(why));
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
        if c.rejected {
            paint("REJECT", "1;31", 0, color)
        } else {
            paint("ACCEPT", "1;32", 0, color)
        },
        r.count(Severity::Error),
        r.count(Severity::Warning),
        r.count(Severity::Info),
        r.size
    );
    if quiet {
        return out;
    }
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
                "    {off:>12}  {}  {}  {}{view}{}  [{}]{}",
                paint(f.severity.as_str(), severity_sgr(f.severity), 7, color),
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
