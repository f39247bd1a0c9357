//! HTML evidence report: one self-contained page (inline CSS, JS and SVG, no network
//! reference) for people who do not read JSON: the verdict, a map of the file, the
//! findings with their rule texts, the log timeline, the chain, the virtual-disk map and
//! the digests. Every string that comes from an image is escaped; a Content-Security-
//! Policy with the hashes of the two inline blocks forbids anything else to run or load.
//!
//! What the page needs from the image beyond its report ([`Parts`]: the info document,
//! the file map, hex previews, the virtual-disk map, the chain) is computed by the batch
//! worker from the models the check judged, never by reading the file again; [`Html`] is
//! a [`Render`] that writes one image section at a time (the index comes last), so a
//! batch streams.

mod chain;
mod escape;
mod file_map;
mod findings;
mod log;
mod parts;
mod scale;
mod structures;
mod svg;
mod virtual_disk;

pub use escape::esc;
pub use file_map::{FileMap, MapPart, file_map};
pub use parts::{ChainMember, HexPreview, NOT_THROUGH_PARENTS, Parts};
pub use scale::Scale;
pub use virtual_disk::{MAX_EXTENTS, STATES, VirtualExtent, VirtualMap, virtual_map};

use super::{Checked, Render, Status};
use crate::check::ImageReport;
use crate::findings::Severity;
use crate::format::MIB;
use crate::rules::catalogue::catalogue;
use chain::chain_section;
use escape::{b64, size};
use file_map::file_map_section;
use findings::findings_section;
use log::log_section;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write};
use structures::{digests_section, structures_section};
use virtual_disk::virtual_section;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("script.js");

/// Bins of the whole-file and virtual-disk bars: each lane has at most this many rects.
pub const BINS: usize = 600;
/// Structures (header section, regions, log) drawn individually.
const MAX_PARTS: usize = 64;
/// Block objects drawn exactly in the zoomed view of the structures' area.
const MAX_ZOOM_BLOCKS: usize = 400;
/// Finding rows per rule and per image; the rest are counted (as with --max-per-rule).
const MAX_ROWS_PER_RULE: usize = 200;
const MAX_ROWS: usize = 5000;
/// Hex previews read per image, and their length.
const MAX_PREVIEWS: usize = 200;
const PREVIEW_BYTES: usize = 64;
/// How far into a hidden-data range the first non-zero byte is looked for.
const PREVIEW_SEARCH: u64 = 4 * MIB;
/// Rows of the log, replay-change and extent tables.
const MAX_TABLE_ROWS: usize = 1024;
/// The info document embedded as JSON, at most.
const MAX_INFO_JSON: usize = 256 * 1024;
const WIDTH: f64 = 1000.0;

fn csp_hash(block: &str) -> String {
    format!("'sha256-{}'", b64(&Sha256::digest(block.as_bytes())))
}

/// The Content-Security-Policy of every page: nothing loads, only the page's own style and
/// script blocks apply (by hash), no form, no base URL, images only as data: URLs.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src {}; script-src {}; img-src data:; base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
}

fn family(rule: &str) -> &str {
    rule.split('-').next().unwrap_or(rule)
}

/// Rules whose findings mark an overlap or an object past the end of the file: the map
/// shows them in the error colour.
const MAP_ERROR_RULES: &[&str] = &["LAYOUT-001", "LAYOUT-002", "BAT-013", "BAT-014"];

struct IndexEntry {
    anchor: String,
    path: String,
    verdict: &'static str,
    counts: [u64; 3],
}

/// The HTML report as a [`Render`]: `begin` writes the head, `image` each image's
/// section as it arrives (from the report and its [`Parts`]), `end` the index (moved to
/// the top by CSS) and the texts of the rules that fired. Memory holds one index line per
/// image and the set of rule ids, never a page.
pub struct Html {
    title: String,
    index: Vec<IndexEntry>,
    rules: BTreeSet<&'static str>,
}

impl Html {
    /// `title`: the page's title (what was checked).
    pub fn new(title: &str) -> Html {
        Html {
            title: title.to_string(),
            index: Vec::new(),
            rules: BTreeSet::new(),
        }
    }
}

impl Default for Html {
    fn default() -> Html {
        Html::new("vhdx-check report")
    }
}

impl Render for Html {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
             <header class=\"doc\"><h1>{}</h1><p class=\"muted\">vhdx-check {} evidence \
             report. Offsets are byte offsets in the image file (hex). The index of images \
             and the texts of the rules are at the end of the file.</p></header>\n",
            content_security_policy(),
            esc(&self.title),
            esc(&self.title),
            env!("VHDX_CHECK_VERSION")
        )
    }

    fn image(&mut self, out: &mut dyn Write, c: &Checked) -> io::Result<()> {
        let n = self.index.len();
        let anchor = format!("img-{n}");
        let path = super::path_str(c.path).into_owned();
        let mut s = String::new();
        let (verdict, counts) = match c.outcome {
            Status::Report(r) => (
                if c.rejected { "reject" } else { "accept" },
                [
                    r.count(Severity::Error),
                    r.count(Severity::Warning),
                    r.count(Severity::Info),
                ],
            ),
            Status::Error(_) => ("error", [0; 3]),
            Status::Skipped(_) => ("skipped", [0; 3]),
        };
        let _ = write!(
            s,
            "<section class=\"image\" id=\"{anchor}\" data-verdict=\"{verdict}\">\n<h2>\
             <span class=\"verdict v-{verdict}\">{}</span><span class=\"path\">{}</span></h2>\n",
            verdict.to_ascii_uppercase(),
            esc(&path)
        );
        let none = Parts::default();
        let parts = c.parts.unwrap_or(&none);
        match c.outcome {
            Status::Error(e) => {
                let _ = writeln!(s, "<p class=\"sev-error\">Not checked: {}</p>", esc(e));
            }
            Status::Skipped(why) => {
                let _ = writeln!(
                    s,
                    "<p class=\"muted\">Skipped, not opened: {}</p>",
                    esc(why)
                );
            }
            Status::Report(r) => {
                summary(&mut s, r, parts);
                if let Some(map) = &parts.map {
                    file_map_section(&mut s, n, map, r);
                } else {
                    s.push_str("<h3>File map</h3><p class=\"muted\">not available</p>\n");
                }
                findings_section(&mut s, n, r, parts, &mut self.rules);
                if let Some(info) = &parts.info {
                    log_section(&mut s, n, info);
                }
                chain_section(&mut s, parts, r);
                virtual_section(&mut s, n, parts.virtual_disk.as_ref());
                digests_section(&mut s, r);
                if let Some(info) = &parts.info {
                    structures_section(&mut s, info);
                }
            }
        }
        s.push_str("</section>\n");
        self.index.push(IndexEntry {
            anchor,
            path,
            verdict,
            counts,
        });
        out.write_all(s.as_bytes())
    }

    fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut s = String::new();
        let _ = write!(
            s,
            "<nav class=\"index\" id=\"index\"><h2>Images ({})</h2><ol>",
            self.index.len()
        );
        for e in &self.index {
            let counts = match e.verdict {
                "error" => "not checked".to_string(),
                "skipped" => "not opened".to_string(),
                _ => format!(
                    "{} errors, {} warnings, {} info",
                    e.counts[0], e.counts[1], e.counts[2]
                ),
            };
            let _ = write!(
                s,
                "<li><a href=\"#{}\"><span class=\"verdict v-{}\">{}</span></a> \
                 <span class=\"path\">{}</span> <span class=\"muted\">{counts}</span></li>",
                e.anchor,
                e.verdict,
                e.verdict.to_ascii_uppercase(),
                esc(&e.path),
            );
        }
        s.push_str(
            "</ol></nav>\n<section class=\"image rules\" id=\"rules\"><h2>Rules that fired</h2>\
            <p class=\"muted\">From the rule catalogue (rules/*.toml; `vhdx-check explain ID`); \
            each rule's page is docs/rules/ID.md in the source tree.</p><dl>",
        );
        for id in &self.rules {
            let Some(r) = catalogue().get(id) else {
                continue;
            };
            let _ = write!(
                s,
                "<dt id=\"rule-{}\">{} <span class=\"sev-{}\">{}</span> <span class=\"muted\">{}</span> \
                 <a href=\"{}\">rule page</a></dt><dd><b>{}</b><br><span class=\"muted\">\
                 applies to: {}</span><br>{}<br><b>What to do:</b> {}</dd>",
                esc(r.id),
                esc(r.id),
                r.severity.as_str(),
                r.severity.as_str(),
                esc(r.spec),
                esc(&r.doc_path()),
                esc(r.title),
                esc(r.applies_to),
                esc(r.rationale),
                esc(r.advice())
            );
        }
        let _ = write!(
            s,
            "</dl></section>\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
        );
        out.write_all(s.as_bytes())
    }
}

/// The whole page for `images` at once (tests, one image).
pub fn render(images: &[Checked]) -> String {
    let title = match images {
        [one] => format!("vhdx-check report: {}", super::path_str(one.path)),
        _ => format!("vhdx-check report: {} images", images.len()),
    };
    super::render_all(&mut Html::new(&title), images)
}

fn summary(s: &mut String, r: &ImageReport, img: &Parts) {
    let _ = writeln!(
        s,
        "<p class=\"counts\"><span class=\"sev-error\">{} errors</span><span class=\"sev-warning\">\
         {} warnings</span><span class=\"sev-info\">{} info</span><span>{} waived</span>\
         <span>{} bytes ({})</span></p>",
        r.count(Severity::Error),
        r.count(Severity::Warning),
        r.count(Severity::Info),
        r.count_waived(),
        r.size,
        size(r.size)
    );
    if let Some(info) = &img.info {
        let dt = info["disk_type"].as_str().unwrap_or("unknown");
        let vsize = info["parameters"]["virtual_disk_size"].as_u64();
        let _ = writeln!(
            s,
            "<dl class=\"kv\"><dt>disk type</dt><dd>{}</dd><dt>virtual size</dt><dd>{}</dd>\
             <dt>creator</dt><dd>{}</dd><dt>current header</dt><dd>{}</dd><dt>log</dt><dd>{}</dd></dl>",
            esc(dt),
            vsize.map_or("unknown".into(), |v| format!("{v} bytes ({})", size(v))),
            esc(info["creator"].as_str().unwrap_or("")),
            esc(info["current_header"].as_str().unwrap_or("")),
            esc(info["log"]["state"].as_str().unwrap_or("no log"))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{Finding, View};
    use std::collections::BTreeMap;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
        // sha256("") in base64, as browsers compute CSP hashes.
        assert_eq!(
            b64(&Sha256::digest(b"")),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    /// Map marks link to rows that exist: findings past the row cap get none.
    #[test]
    fn map_marks_link_only_to_listed_rows() {
        let finding = |k: u64| Finding {
            rule: "BAT-002",
            severity: Severity::Error,
            message: format!("entry {k}"),
            offset: Some(k * MIB),
            length: Some(8),
            structure: format!("bat[{k}]"),
            spec: "MS-VHDX 2.5.1",
            view: View::Raw,
        };
        let report = ImageReport {
            size: 600 * MIB,
            findings: (0..600).map(finding).collect(),
            suppressed: BTreeMap::new(),
            waived: BTreeMap::new(),
            waived_suppressed: BTreeMap::new(),
            digests: None,
        };
        let parts = Parts {
            map: Some(FileMap {
                file_size: 600 * MIB,
                span: 600 * MIB,
                parts: Vec::new(),
                bins: vec![[0; 3]; BINS],
                scale: Scale::linear(600 * MIB),
                blocks: [0; 3],
                zoom: None,
            }),
            ..Parts::default()
        };
        let page = render(&[Checked {
            path: std::path::Path::new("x.vhdx"),
            outcome: Status::Report(&report),
            rejected: true,
            parts: Some(&parts),
        }]);
        let links: Vec<&str> = page
            .split("<a href=\"#f-0-")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        assert_eq!(
            links.len(),
            MAX_ROWS_PER_RULE,
            "one mark per listed finding"
        );
        for i in links {
            assert!(
                page.contains(&format!("<tr id=\"f-0-{i}\"")),
                "mark to missing row {i}"
            );
        }
        assert!(
            page.contains("400 more <a href=\"#rule-BAT-002\">BAT-002</a> findings not listed")
        );
    }

    #[test]
    fn escaping_neutralises_markup_and_controls() {
        let e = esc("<script>alert('x')</script>\"&\u{1}\u{7f}\u{fffe}");
        assert_eq!(
            e,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;\\u{1}\\u{7f}\\u{fffe}"
        );
    }
}
