//! JSON output, schema version 1 (DESIGN.md "Contracts").

use super::{
    ArrayWriter, Checked, Render, Statistics, Status, path_bytes, path_str, pretty_at,
    split_template,
};
use crate::findings::ImageReport;
use crate::findings::Severity;
use serde_json::{Value, json};
use std::io::{self, Write};

pub const SCHEMA: u32 = 1;

pub fn tool() -> Value {
    json!({"name": "vhdx-check", "version": env!("CARGO_PKG_VERSION")})
}

const IMAGES: &str = "@@vhdx-check images@@";
const FINDINGS: &str = "@@vhdx-check findings@@";
const STATISTICS: &str = "@@vhdx-check statistics@@";

/// The JSON renderer: the document's head, one element of `images` per image as it is
/// done, then the closing brackets: one valid document, laid out exactly as
/// `serde_json::to_string_pretty` lays out the whole.
pub struct Json {
    images: ArrayWriter,
    tail: String,
    /// Per-rule counts over the run, written after `images` (`check --statistics`).
    pub statistics: Option<Statistics>,
}

impl Default for Json {
    fn default() -> Self {
        Json {
            images: ArrayWriter::new(0),
            tail: String::new(),
            statistics: None,
        }
    }
}

impl Json {
    pub fn with_statistics() -> Json {
        Json {
            statistics: Some(Statistics::default()),
            ..Json::default()
        }
    }
}

/// The top-level `statistics` object.
fn statistics(s: &Statistics) -> Value {
    let rules: Vec<Value> = (s.rows().into_iter())
        .map(|(id, c)| {
            json!({
                "rule": id,
                "severity": c.severity,
                "count": c.count,
                "waived": c.waived,
                "title": Statistics::title(id),
            })
        })
        .collect();
    json!({ "checked": s.checked, "rules": rules })
}

/// The document of `rules --format json`: every catalogue rule.
pub fn rules_document() -> String {
    let rules: Vec<_> = crate::rules::catalogue::catalogue().rules().collect();
    let doc = json!({"schema": SCHEMA, "tool": tool(), "rules": rules});
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

impl Render for Json {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut doc = json!({"schema": SCHEMA, "tool": tool(), "images": IMAGES});
        if self.statistics.is_some() {
            doc["statistics"] = json!(STATISTICS);
        }
        let doc = serde_json::to_string_pretty(&doc).unwrap_or_default();
        let (head, indent, tail) = split_template(&doc, "images", IMAGES);
        self.images = ArrayWriter::new(indent);
        self.tail = tail.to_string();
        out.write_all(head.as_bytes())
    }

    /// A checked image's findings are written one at a time (with a high
    /// `--max-per-rule` they are most of the document).
    fn image(&mut self, out: &mut dyn Write, c: &Checked) -> io::Result<()> {
        if let (Some(s), Status::Report(r)) = (&mut self.statistics, c.outcome) {
            s.add(r);
        }
        let Status::Report(r) = c.outcome else {
            return self.images.push(out, &entry(c));
        };
        self.images.push_with(out, |out, inner| {
            let text = pretty_at(&entry_with(c, Some(FINDINGS)), inner);
            let (before, indent, after) = split_template(&text, "findings", FINDINGS);
            out.write_all(before.as_bytes())?;
            let mut findings = ArrayWriter::new(indent);
            for i in 0..r.findings.len() {
                findings.push(out, &finding(r, i))?;
            }
            findings.finish(out)?;
            out.write_all(after.as_bytes())
        })
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.images.finish(out)?;
        let Some(s) = &self.statistics else {
            return out.write_all(self.tail.as_bytes());
        };
        let (before, indent, after) = split_template(&self.tail, "statistics", STATISTICS);
        out.write_all(before.as_bytes())?;
        out.write_all(pretty_at(&statistics(s), indent).as_bytes())?;
        out.write_all(after.as_bytes())
    }
}

pub fn render(images: &[Checked]) -> String {
    super::render_all(&mut Json::default(), images)
}

/// One element of `images`. A path that is not UTF-8 is given escaped (`\\xNN` for each
/// byte of an invalid sequence) with its raw bytes in hex as `path_bytes`.
pub fn entry(c: &Checked) -> Value {
    entry_with(c, None)
}

/// [`entry`], with the string `marker` in place of the findings when given.
fn entry_with(c: &Checked, marker: Option<&str>) -> Value {
    let mut v = serde_json::Map::new();
    v.insert("path".into(), json!(path_str(c.path)));
    if c.path.to_str().is_none() {
        let hex = crate::hash::hex(&path_bytes(c.path));
        v.insert("path_bytes".into(), json!(hex));
    }
    let rest = match c.outcome {
        Status::Report(r) => image(c.rejected, r, marker),
        Status::Error(e) => json!({"verdict": "error", "status": "error", "error": e}),
        Status::Skipped(why) => json!({"verdict": "skipped", "status": "skipped", "reason": why}),
    };
    if let Value::Object(rest) = rest {
        v.extend(rest);
    }
    Value::Object(v)
}

/// One checked image. Schema 1 only grows: `summary.waived` is always there; a finding's
/// `waived`, `suppressed_waived` and `digests` appear only when they apply.
fn image(rejected: bool, r: &ImageReport, marker: Option<&str>) -> Value {
    let findings = match marker {
        Some(m) => json!(m),
        None => Value::Array((0..r.findings.len()).map(|i| finding(r, i)).collect()),
    };
    let mut v = json!({
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

/// Finding `i` of `r`, with its waiver when one covers it.
fn finding(r: &ImageReport, i: usize) -> Value {
    let mut v = json!(r.findings.get(i));
    if let (Some(reason), Some(obj)) = (r.waiver(i), v.as_object_mut()) {
        obj.insert("waived".into(), json!({ "reason": reason }));
    }
    v
}
