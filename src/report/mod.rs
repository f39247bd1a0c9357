//! Rendering: text for people, JSON (schema 1) and SARIF 2.1.0 for machines, and an HTML
//! evidence report for people who do not read JSON. Nothing here judges.

pub mod html;
pub mod info;
pub mod json;
pub mod sarif;
pub mod text;

use crate::findings::ImageReport;
use crate::findings::Severity;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

/// Rules that sweep space no structure uses for data a responder may want to carve. Their
/// messages carry the first non-zero bytes; text output adds the byte range swept.
pub const HIDDEN_DATA_RULES: &[&str] = &[
    "FTI-006",
    "HDR-018",
    "RGN-021",
    "META-036",
    "META-037",
    "META-038",
    "PLOC-026",
    "BAT-016",
    "LAYOUT-004",
    "LAYOUT-005",
    "LAYOUT-006",
];

/// What became of one entry of a run.
#[derive(Debug, Clone, Copy)]
pub enum Status<'a> {
    /// Checked: the report (`Checked::rejected` is its verdict).
    Report(&'a ImageReport),
    /// Could not be checked (unreadable file or directory): the reason. The run exits 2.
    Error(&'a str),
    /// Met in a directory walk and not checked (FIFO, socket, symbolic link): the reason.
    Skipped(&'a str),
}

/// Per-rule counts over a run (`check --statistics`): every instance, shown, suppressed
/// and waived alike, with the rule's severity as reported (policy overrides applied).
#[derive(Debug, Default)]
pub struct Statistics {
    /// Images checked (entries that could not be checked or were skipped are not).
    pub checked: u64,
    rules: BTreeMap<&'static str, RuleCount>,
}

#[derive(Debug, Clone, Copy)]
pub struct RuleCount {
    pub severity: Severity,
    pub count: u64,
    pub waived: u64,
}

impl Statistics {
    pub fn add(&mut self, r: &ImageReport) {
        self.checked += 1;
        for (i, f) in r.findings.iter().enumerate() {
            self.tally(
                f.rule,
                Some(f.severity),
                1,
                u64::from(r.waiver(i).is_some()),
            );
        }
        for (id, s) in &r.suppressed {
            let waived = if r.waived_suppressed.contains_key(id) {
                s.count
            } else {
                0
            };
            self.tally(id, s.severity, s.count, waived);
        }
    }

    fn tally(&mut self, id: &'static str, severity: Option<Severity>, n: u64, waived: u64) {
        let default = || {
            crate::rules::catalogue::catalogue()
                .get(id)
                .map_or(Severity::Info, |r| r.severity)
        };
        let e = self.rules.entry(id).or_insert_with(|| RuleCount {
            severity: severity.unwrap_or_else(default),
            count: 0,
            waived: 0,
        });
        if let Some(s) = severity {
            e.severity = e.severity.max(s);
        }
        e.count = e.count.saturating_add(n);
        e.waived = e.waived.saturating_add(waived);
    }

    /// The rules that fired, most instances first (ties by id).
    pub fn rows(&self) -> Vec<(&'static str, RuleCount)> {
        let mut rows: Vec<_> = self.rules.iter().map(|(id, c)| (*id, *c)).collect();
        rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        rows
    }

    /// The catalogue title of `id`.
    pub fn title(id: &str) -> &'static str {
        crate::rules::catalogue::catalogue()
            .get(id)
            .map_or("", |r| r.title)
    }
}

/// One entry as the renderers see it.
pub struct Checked<'a> {
    pub path: &'a Path,
    pub outcome: Status<'a>,
    pub rejected: bool,
    /// What the HTML report shows beyond the report (computed by the batch worker from
    /// the models checked; `None` for the other formats).
    pub parts: Option<&'a html::Parts>,
}

/// A report written one image at a time, so memory does not grow with the number of
/// images: `begin`, then `image` for each in input order, then `end`.
pub trait Render {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()>;
    fn image(&mut self, out: &mut dyn Write, c: &Checked) -> io::Result<()>;
    fn end(&mut self, out: &mut dyn Write) -> io::Result<()>;
}

/// No report at all (`check -qq`): the exit code says it.
pub struct Silent;

impl Render for Silent {
    fn begin(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
    fn image(&mut self, _: &mut dyn Write, _: &Checked) -> io::Result<()> {
        Ok(())
    }
    fn end(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

/// The whole document for `images` in memory (tests, fuzzing, one image).
pub fn render_all(r: &mut dyn Render, images: &[Checked]) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = r.begin(&mut out);
    for c in images {
        let _ = r.image(&mut out, c);
    }
    let _ = r.end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The bytes of a path as the system gives them (lossless; not UTF-8 on every system).
pub fn path_bytes(p: &Path) -> Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Cow::Borrowed(p.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    {
        match p.to_string_lossy() {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        }
    }
}

/// The path as a string: itself when it is UTF-8; otherwise each byte of an invalid
/// sequence as `\xNN` (JSON adds the raw bytes as `path_bytes`).
pub fn path_str(p: &Path) -> Cow<'_, str> {
    if let Some(s) = p.to_str() {
        return Cow::Borrowed(s);
    }
    let bytes = path_bytes(p);
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// The path for a line of text: control characters (newline, CR, ESC, ...) escaped
/// (`\n`, `\u{1b}`), a backslash doubled, each byte of an invalid UTF-8 sequence as
/// `\xNN`: one line, and two paths never print alike.
pub fn path_line(p: &Path) -> String {
    let bytes = path_bytes(p);
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape_line(chunk.valid()));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// `s` with control characters escaped and backslashes doubled, for one line of text.
pub fn escape_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    for c in s.chars() {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` with control characters escaped: text from elsewhere (an error, a message) kept
/// on one line.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `v` pretty-printed as serde_json does, for a value that starts at column `indent` of a
/// larger pretty-printed document (JSON strings hold no raw newline, so every line after
/// the first moves right by `indent`).
pub(crate) fn pretty_at(v: &serde_json::Value, indent: usize) -> String {
    let s = serde_json::to_string_pretty(v).unwrap_or_default();
    if indent == 0 {
        return s;
    }
    s.replace('\n', &format!("\n{}", " ".repeat(indent)))
}

/// A JSON array written one element at a time, laid out as serde_json's pretty printer
/// lays out the whole array when its closing bracket is at column `indent`.
pub(crate) struct ArrayWriter {
    indent: usize,
    count: u64,
}

impl ArrayWriter {
    pub(crate) fn new(indent: usize) -> ArrayWriter {
        ArrayWriter { indent, count: 0 }
    }

    /// The column an element starts at.
    pub(crate) fn inner(&self) -> usize {
        self.indent + 2
    }

    pub(crate) fn push(&mut self, out: &mut dyn Write, v: &serde_json::Value) -> io::Result<()> {
        self.push_with(out, |out, inner| {
            out.write_all(pretty_at(v, inner).as_bytes())
        })
    }

    /// An element `write` lays out itself, starting at column `inner` (given to it).
    pub(crate) fn push_with(
        &mut self,
        out: &mut dyn Write,
        write: impl FnOnce(&mut dyn Write, usize) -> io::Result<()>,
    ) -> io::Result<()> {
        let inner = self.indent + 2;
        out.write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
        out.write_all(" ".repeat(inner).as_bytes())?;
        write(out, inner)?;
        self.count += 1;
        Ok(())
    }

    pub(crate) fn finish(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.count == 0 {
            return out.write_all(b"[]");
        }
        out.write_all(b"\n")?;
        out.write_all(" ".repeat(self.indent).as_bytes())?;
        out.write_all(b"]")
    }
}

/// Splits a pretty-printed template at the value of `"key": "marker"`: the text before
/// the value, the column the key's line starts at, the text after. Matched with its key:
/// a string value (a path) equal to the marker cannot match, since within a string value
/// every quote is escaped.
pub(crate) fn split_template<'t>(
    doc: &'t str,
    key: &str,
    marker: &str,
) -> (&'t str, usize, &'t str) {
    let pair = format!("\"{key}\": \"{marker}\"");
    let at = doc.find(&pair).map_or(doc.len(), |i| i + key.len() + 4);
    let (before, after) = doc.split_at(at);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = &before[line_start..];
    let indent = line.len() - line.trim_start().len();
    (before, indent, after.get(marker.len() + 2..).unwrap_or(""))
}
