//! SARIF 2.1.0 (`--format sarif`) for code-scanning services such as GitHub's: one run,
//! the rule catalogue as the driver's rules, one result per finding located by its byte
//! range in the image, waived findings as accepted suppressions, and each image as an
//! artifact with its verdict and digests.

use super::{ArrayWriter, Checked, Render, Status, path_bytes, pretty_at, split_template};
use crate::findings::{Finding, Severity};
use crate::rules::catalogue::{RuleInfo, catalogue};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};

pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
pub const VERSION: &str = "2.1.0";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// Results in the run at most: GitHub code scanning rejects a run with more than 25,000.
pub const MAX_RESULTS: u64 = 25_000;

const SUCCESSFUL: &str = "@@vhdx-check executionSuccessful@@";
const NOTIFICATIONS: &str = "@@vhdx-check notifications@@";
const ARTIFACTS: &str = "@@vhdx-check artifacts@@";
const RESULTS: &str = "@@vhdx-check results@@";

/// The SARIF renderer. The run's `invocations` (whether it succeeded, which only the last
/// image decides) come before `artifacts` and `results` in the document, so the three
/// arrays are written to [`Spill`]s as images are done (memory up to 1 MiB each, then an
/// unlinked temporary file) and copied out in order at the end: memory stays bounded
/// whatever the number of images, and the document is laid out exactly as
/// `serde_json::to_string_pretty` lays out the whole.
///
/// Results are capped at [`MAX_RESULTS`]: they are spooled by level (one [`Bucket`] each
/// for error, warning, note, each keeping at most the cap) and written errors first, then
/// warnings, then notes, each level in input order, until the cap; a run-level
/// notification says how many were left out. Info findings (level note) are left out
/// unless `info` is set, so an accepted image leaves no standing alert. What is left out
/// changes neither the verdicts (artifact properties) nor the exit code.
pub struct Sarif {
    index: BTreeMap<&'static str, usize>,
    template: String,
    notifications: (ArrayWriter, Spill),
    artifacts: (ArrayWriter, Spill),
    results: ArrayWriter,
    /// By level: error, warning, note.
    buckets: [Bucket; 3],
    images: usize,
    failed: bool,
    /// Info findings are results too (`--sarif-info`).
    pub info: bool,
    /// The cap (a parameter for tests; [`MAX_RESULTS`] otherwise).
    pub max_results: u64,
}

/// Results of one level, each one's text (laid out for the results array) one after the
/// other in `spill`, with its length in `lengths`; `total` counts those not kept too.
#[derive(Default)]
struct Bucket {
    spill: Spill,
    lengths: Vec<u64>,
    total: u64,
}

impl Default for Sarif {
    fn default() -> Self {
        let rules: Vec<&RuleInfo> = catalogue().rules().collect();
        let index = (rules.iter().enumerate()).map(|(i, r)| (r.id, i)).collect();
        let template = serde_json::to_string_pretty(&json!({
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
                    "executionSuccessful": SUCCESSFUL,
                    "toolExecutionNotifications": NOTIFICATIONS,
                }],
                "artifacts": ARTIFACTS,
                "results": RESULTS,
            }],
        }))
        .unwrap_or_default();
        let at = |key, marker| ArrayWriter::new(split_template(&template, key, marker).1);
        Sarif {
            index,
            notifications: (
                at("toolExecutionNotifications", NOTIFICATIONS),
                Spill::default(),
            ),
            artifacts: (at("artifacts", ARTIFACTS), Spill::default()),
            results: at("results", RESULTS),
            buckets: Default::default(),
            template,
            images: 0,
            failed: false,
            info: false,
            max_results: MAX_RESULTS,
        }
    }
}

impl Render for Sarif {
    fn begin(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn image(&mut self, _: &mut dyn Write, c: &Checked) -> io::Result<()> {
        let a = self.images;
        self.images += 1;
        let location = json!({ "uri": uri(&path_bytes(c.path)), "index": a });
        let artifact = match c.outcome {
            Status::Report(r) => {
                for (i, f) in r.findings.iter().enumerate() {
                    let bucket = match f.severity {
                        Severity::Error => 0,
                        Severity::Warning => 1,
                        Severity::Info if self.info => 2,
                        Severity::Info => continue,
                    };
                    let b = &mut self.buckets[bucket];
                    b.total = b.total.saturating_add(1);
                    // One level alone fills the run: the rest of it is only counted.
                    if b.lengths.len() as u64 >= self.max_results {
                        continue;
                    }
                    let mut res = result(f, &location, self.index.get(f.rule).copied());
                    if let (Some(reason), Some(obj)) = (r.waiver(i), res.as_object_mut()) {
                        obj.insert(
                            "suppressions".into(),
                            json!([{ "kind": "external", "status": "accepted", "justification": reason }]),
                        );
                    }
                    let text = pretty_at(&res, self.results.inner());
                    b.spill.write_all(text.as_bytes())?;
                    b.lengths.push(text.len() as u64);
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
                    "location": { "uri": uri(&path_bytes(c.path)) },
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
                artifact
            }
            Status::Error(e) => {
                self.failed = true;
                let n = json!({
                    "level": "error",
                    "message": { "text": e },
                    "locations": [{ "physicalLocation": { "artifactLocation": location } }],
                });
                let (w, spill) = &mut self.notifications;
                w.push(spill, &n)?;
                json!({
                    "location": { "uri": uri(&path_bytes(c.path)) },
                    "properties": { "verdict": "error" },
                })
            }
            // Not a failure of the run: a warning naming the entry and why it was left.
            Status::Skipped(why) => {
                let n = json!({
                    "level": "warning",
                    "message": { "text": format!("skipped: {why}") },
                    "locations": [{ "physicalLocation": { "artifactLocation": location } }],
                });
                let (w, spill) = &mut self.notifications;
                w.push(spill, &n)?;
                json!({
                    "location": { "uri": uri(&path_bytes(c.path)) },
                    "properties": { "verdict": "skipped" },
                })
            }
        };
        let (w, spill) = &mut self.artifacts;
        w.push(spill, &artifact)
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let total = (self.buckets.iter()).fold(0u64, |n, b| n.saturating_add(b.total));
        let left_out = total.saturating_sub(self.max_results);
        if left_out > 0 {
            let n = json!({
                "level": "warning",
                "message": { "text": format!(
                    "{left_out} of {total} results left out: a run holds at most {} (GitHub code \
                     scanning rejects more); kept errors first, then warnings, then notes, each \
                     in input order. Verdicts and the exit code count every finding; the JSON \
                     report (--format json) lists them all.",
                    self.max_results
                ) },
                "descriptor": { "id": "vhdx-check/results-capped" },
            });
            let (w, spill) = &mut self.notifications;
            w.push(spill, &n)?;
        }
        let t = &self.template;
        let (head, _, t) = split_template(t, "executionSuccessful", SUCCESSFUL);
        out.write_all(head.as_bytes())?;
        out.write_all(if self.failed { b"false" } else { b"true" })?;
        let mut rest = t;
        for (key, marker, (w, spill)) in [
            (
                "toolExecutionNotifications",
                NOTIFICATIONS,
                &mut self.notifications,
            ),
            ("artifacts", ARTIFACTS, &mut self.artifacts),
        ] {
            let (before, _, after) = split_template(rest, key, marker);
            out.write_all(before.as_bytes())?;
            w.finish(spill)?;
            spill.copy_to(out)?;
            rest = after;
        }
        let (before, _, after) = split_template(rest, "results", RESULTS);
        out.write_all(before.as_bytes())?;
        let mut room = self.max_results;
        for b in &mut self.buckets {
            let keep = b
                .lengths
                .len()
                .min(usize::try_from(room).unwrap_or(usize::MAX));
            room = room.saturating_sub(keep as u64);
            let mut reader = b.spill.reader()?;
            for &len in &b.lengths[..keep] {
                self.results.push_with(out, |out, _| {
                    let copied = io::copy(&mut (&mut reader).take(len), out)?;
                    if copied != len {
                        return Err(spill_error(io::ErrorKind::UnexpectedEof.into()));
                    }
                    Ok(())
                })?;
            }
        }
        self.results.finish(out)?;
        out.write_all(after.as_bytes())
    }
}

pub fn render(images: &[Checked]) -> String {
    super::render_all(&mut Sarif::default(), images)
}

/// Bytes kept in memory up to [`Spill::MEMORY`], then moved to a temporary file that is
/// unlinked as soon as it is created (nothing is left behind, whatever ends the process).
/// Without a usable temporary directory everything stays in memory.
#[derive(Default)]
struct Spill {
    memory: Vec<u8>,
    file: Option<std::fs::File>,
}

impl Spill {
    const MEMORY: usize = 1 << 20;

    /// Everything written, from the start (the spill is not written to after this).
    fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        match &mut self.file {
            Some(f) => {
                f.write_all(&self.memory).map_err(spill_error)?;
                self.memory.clear();
                f.flush().map_err(spill_error)?;
                f.seek(SeekFrom::Start(0)).map_err(spill_error)?;
                Ok(Box::new(SpillRead(f)))
            }
            None => Ok(Box::new(&self.memory[..])),
        }
    }

    fn copy_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(f) = &mut self.file {
            f.write_all(&self.memory).map_err(spill_error)?;
            self.memory.clear();
            f.flush().map_err(spill_error)?;
            f.seek(SeekFrom::Start(0)).map_err(spill_error)?;
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = f.read(&mut buf).map_err(spill_error)?;
                if n == 0 {
                    return Ok(());
                }
                out.write_all(&buf[..n])?;
            }
        }
        out.write_all(&self.memory)?;
        self.memory.clear();
        Ok(())
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.memory.extend_from_slice(buf);
        if self.memory.len() >= Spill::MEMORY {
            if self.file.is_none() {
                self.file = anonymous_file();
            }
            if let Some(f) = &mut self.file {
                f.write_all(&self.memory).map_err(spill_error)?;
                self.memory.clear();
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads of the temporary file, failures named as such.
struct SpillRead<'a>(&'a mut std::fs::File);

impl Read for SpillRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(spill_error)
    }
}

/// A failed read or write of the temporary file, said as such (not as the report's).
fn spill_error(e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("temporary file in {}: {e}", std::env::temp_dir().display()),
    )
}

/// A new file in the temporary directory, already unlinked.
fn anonymous_file() -> Option<std::fs::File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let name = format!(
            ".vhdx-check-sarif-{}-{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&path);
                return Some(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) => return None,
        }
    }
    None
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
fn uri(path: &[u8]) -> String {
    let mut out = String::from(if path.starts_with(b"/") {
        "file://"
    } else {
        ""
    });
    for &b in path {
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
        assert_eq!(uri(b"images/a b.vhdx"), "images/a%20b.vhdx");
        assert_eq!(uri(b"/srv/x#1.vhdx"), "file:///srv/x%231.vhdx");
        // Raw bytes, not the lossy U+FFFD: two names stay two URIs.
        assert_eq!(uri(b"a\xff.vhdx"), "a%FF.vhdx");
        assert_eq!(uri(b"a\xfe.vhdx"), "a%FE.vhdx");
        let r = catalogue().get("LAYOUT-001").unwrap();
        assert_eq!(name(r), "TwoStructuresOccupyTheSameBytesOfTheFile");
        assert_eq!(name(catalogue().get("FTI-007").unwrap()), "NotAVHDXFile");
        for r in catalogue().rules() {
            assert!(!name(r).is_empty(), "{}", r.id);
        }
    }
}
