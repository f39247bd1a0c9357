//! The findings table: one row per listed finding with its rule, location, message and
//! hex preview, and the counts of what was not listed.

use super::escape::{esc, hex};
use super::parts::{HexPreview, Parts};
use super::{MAX_ROWS, MAX_ROWS_PER_RULE, family};
use crate::check::ImageReport;
use crate::findings::{Severity, View};
use crate::report::HIDDEN_DATA_RULES;
use crate::rules::catalogue::catalogue;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Which findings get a row: at most [`MAX_ROWS_PER_RULE`] per rule and [`MAX_ROWS`] in
/// all, in report order.
pub(super) fn listed(r: &ImageReport) -> Vec<bool> {
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rows = 0;
    (r.findings.iter())
        .map(|f| {
            let c = per_rule.entry(f.rule).or_default();
            *c += 1;
            let shown = *c <= MAX_ROWS_PER_RULE && rows < MAX_ROWS;
            rows += usize::from(shown);
            shown
        })
        .collect()
}

fn hexdump(p: &HexPreview) -> String {
    let mut out = String::new();
    for (k, line) in p.bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:#012x}  ", p.offset + (k * 16) as u64);
        for b in line {
            let _ = write!(out, "{b:02x} ");
        }
        for _ in line.len()..16 {
            out.push_str("   ");
        }
        out.push(' ');
        for &b in line {
            out.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        out.push('\n');
    }
    esc(&out)
}

pub(super) fn findings_section(
    s: &mut String,
    n: usize,
    r: &ImageReport,
    img: &Parts,
    rules: &mut BTreeSet<&'static str>,
) {
    let _ = writeln!(
        s,
        "<h3>Findings ({} shown by the check)</h3>",
        r.findings.len()
    );
    let families: BTreeSet<&str> = r.findings.iter().map(|f| family(f.rule)).collect();
    let _ = write!(
        s,
        "<div class=\"filters\" data-table=\"ft-{n}\"><label>severity <select class=\"f-sev\">\
         <option value=\"\">all</option><option>error</option><option>warning</option><option>info</option></select></label>\
         <label>family <select class=\"f-fam\"><option value=\"\">all</option>"
    );
    for f in &families {
        let _ = write!(s, "<option>{}</option>", esc(f));
    }
    s.push_str(
        "</select></label><label>text <input class=\"f-text\" type=\"search\"></label>\
         <span class=\"f-count muted\"></span></div>\n",
    );
    let _ = write!(
        s,
        "<table id=\"ft-{n}\" class=\"findings\"><thead><tr><th class=\"sortable\" data-num=\"1\">#</th>\
         <th class=\"sortable\" data-num=\"1\">severity</th><th class=\"sortable\">rule</th>\
         <th class=\"sortable\" data-num=\"1\">offset</th><th class=\"sortable\" data-num=\"1\">length</th>\
         <th class=\"sortable\">structure</th><th>message</th><th>map</th></tr></thead><tbody>"
    );
    let mut not_shown: BTreeMap<&'static str, u64> = BTreeMap::new();
    let listed = listed(r);
    for (i, f) in r.findings.iter().enumerate() {
        rules.insert(f.rule);
        if !listed[i] {
            *not_shown.entry(f.rule).or_default() += 1;
            continue;
        }
        let waived = r.waiver(i);
        let sev_rank = match f.severity {
            Severity::Error => 3,
            Severity::Warning => 2,
            Severity::Info => 1,
        };
        let _ = write!(
            s,
            "<tr id=\"f-{n}-{i}\" data-sev=\"{sev}\" data-fam=\"{fam}\"{cls}><td data-key=\"{i}\">{i}</td>\
             <td data-key=\"{sev_rank}\" class=\"sev-{sev}\">{sev}</td><td class=\"rule\"><a href=\"#rule-{rule}\" title=\"{title}\">{rule}</a></td>",
            sev = f.severity.as_str(),
            fam = esc(family(f.rule)),
            cls = if waived.is_some() {
                " class=\"waived\""
            } else {
                ""
            },
            rule = esc(f.rule),
            title = esc(catalogue().get(f.rule).map_or("", |c| c.title)),
        );
        match f.offset {
            Some(o) => {
                let _ = write!(s, "<td class=\"off\" data-key=\"{o}\">{}</td>", hex(o));
            }
            None => s.push_str("<td class=\"off\" data-key=\"-1\">-</td>"),
        }
        let _ = write!(
            s,
            "<td data-key=\"{}\">{}</td><td class=\"mono\">{}</td><td class=\"msg\">{}",
            f.length.unwrap_or(0),
            f.length.map_or("-".into(), |l| l.to_string()),
            esc(&f.structure),
            esc(&f.message)
        );
        if f.view == View::Replayed {
            s.push_str(" <span class=\"muted\">(judged after log replay)</span>");
        }
        if let (Some(o), Some(l)) = (f.offset, f.length)
            && HIDDEN_DATA_RULES.contains(&f.rule)
        {
            let _ = write!(
                s,
                " <span class=\"muted\">range {}..{} ({} bytes)</span>",
                hex(o),
                hex(o.saturating_add(l)),
                l
            );
        }
        if let Some(w) = waived {
            let _ = write!(s, "<br><b>waived:</b> {}", esc(w));
        }
        if let Some(p) = img.previews.get(&i) {
            let _ = write!(
                s,
                "<details><summary>hex at {}</summary><pre class=\"hex\">{}</pre></details>",
                hex(p.offset),
                hexdump(p)
            );
        }
        s.push_str("</td><td>");
        if let Some(o) = f.offset
            && img.map.is_some()
        {
            let _ = write!(
                s,
                "<a class=\"to-map\" href=\"#map-{n}\" data-off=\"{o}\">map</a>"
            );
        }
        s.push_str("</td></tr>\n");
    }
    s.push_str("</tbody></table>\n");
    if !r.suppressed.is_empty() || !not_shown.is_empty() {
        s.push_str("<p><b>Not listed:</b></p><ul>");
        for (id, c) in &not_shown {
            rules.insert(id);
            let _ = write!(
                s,
                "<li>{c} more <a href=\"#rule-{0}\">{0}</a> findings not listed in this page (see the JSON output)</li>",
                esc(id)
            );
        }
        for (id, sup) in &r.suppressed {
            rules.insert(id);
            let waived = r
                .waived_suppressed
                .get(id)
                .map_or(String::new(), |w| format!(" (waived: {})", esc(w)));
            let _ = write!(
                s,
                "<li>{} more <a href=\"#rule-{1}\">{1}</a> findings not shown (raise --max-per-rule to see them){waived}</li>",
                sup.count,
                esc(id)
            );
        }
        s.push_str("</ul>\n");
    }
}
