//! The chain section: the members the image was checked with, and where the chain broke.

use super::MAX_TABLE_ROWS;
use super::escape::esc;
use super::parts::Parts;
use crate::check::ImageReport;
use crate::findings::Finding;
use std::fmt::Write as _;

pub(super) fn chain_section(s: &mut String, img: &Parts, r: &ImageReport) {
    s.push_str("<h3>Chain</h3>");
    if img.chain.len() <= 1 && img.chain.iter().all(|m| m.broken.is_none()) {
        s.push_str(
            "<p class=\"muted\">checked alone (no parent resolved: --parent / --find-parents)</p>",
        );
    } else {
        s.push_str(
            "<table><thead><tr><th>#</th><th>member</th><th>found via</th><th>chain ends</th></tr></thead><tbody>",
        );
        for (k, m) in img.chain.iter().enumerate().take(MAX_TABLE_ROWS) {
            let how = match m.found_via {
                Some(key) => key,
                None if k == 0 => "the image checked",
                None => "named with --parent",
            };
            let _ = write!(
                s,
                "<tr{}><td>{k}</td><td class=\"path\">{}{}</td><td>{}</td><td>",
                if k == img.chain_index {
                    " class=\"this\""
                } else {
                    ""
                },
                esc(&m.path),
                if k == img.chain_index {
                    " <span class=\"muted\">(this image)</span>"
                } else {
                    ""
                },
                esc(how)
            );
            if let Some((rule, why)) = &m.broken {
                let _ = write!(s, "<a href=\"#rule-{0}\">{0}</a> {1}", esc(rule), esc(why));
            }
            s.push_str("</td></tr>");
        }
        s.push_str("</tbody></table>");
    }
    if let Some(info) = &img.info
        && let Some(entries) = info["parent_locator"]["entries"].as_array()
    {
        s.push_str("<p>Parent locator:</p><table><thead><tr><th>entry</th><th>key</th><th>value</th></tr></thead><tbody>");
        for e in entries.iter().take(MAX_TABLE_ROWS) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
                e["entry"].as_u64().unwrap_or(0),
                esc(e["key"].as_str().unwrap_or("")),
                esc(e["value"].as_str().unwrap_or(""))
            );
        }
        s.push_str("</tbody></table>");
    }
    let linkage: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.rule.starts_with("CHAIN-"))
        .collect();
    if !img.chain.is_empty() || !linkage.is_empty() {
        if linkage.is_empty() {
            s.push_str("<p>Linkage checks (CHAIN rules): no finding.</p>");
        } else {
            s.push_str("<p>Linkage checks (CHAIN rules):</p><ul>");
            for f in linkage.iter().take(MAX_TABLE_ROWS) {
                let _ = write!(
                    s,
                    "<li><span class=\"sev-{0}\">{0}</span> <a href=\"#rule-{1}\">{1}</a> {2}</li>",
                    f.severity.as_str(),
                    esc(f.rule),
                    esc(&f.message)
                );
            }
            s.push_str("</ul>");
        }
    }
    s.push('\n');
}
