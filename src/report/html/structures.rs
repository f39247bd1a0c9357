//! The digests and the structures sections (everything parsed, from the info document).

use super::escape::{esc, hex, scalar};
use super::{MAX_INFO_JSON, MAX_TABLE_ROWS};
use crate::check::ImageReport;
use serde_json::Value;
use std::fmt::Write as _;

pub(super) fn digests_section(s: &mut String, r: &ImageReport) {
    let Some(d) = &r.digests else { return };
    let _ = writeln!(
        s,
        "<h3>Digests</h3><dl class=\"kv\"><dt>{0} file</dt><dd class=\"mono\">{1}</dd><dt>{0} virtual disk</dt><dd class=\"mono\">{2}</dd></dl>",
        esc(d.algorithm),
        esc(&d.file),
        match (&d.virtual_disk, &d.virtual_unavailable) {
            (Some(v), _) => esc(v),
            (None, why) => format!("unavailable: {}", esc(why.as_deref().unwrap_or("unknown"))),
        }
    );
}

pub(super) fn structures_section(s: &mut String, info: &Value) {
    s.push_str("<h3>Parsed structures</h3>");
    if let Some(md) = info["metadata"]["items"].as_array() {
        s.push_str("<table><thead><tr><th>metadata item</th><th>item id</th><th>offset</th><th>length</th><th>flags</th></tr></thead><tbody>");
        for it in md.iter().take(MAX_TABLE_ROWS) {
            let flags: Vec<&str> = [
                ("is_user", "user"),
                ("is_virtual_disk", "virtual disk"),
                ("is_required", "required"),
            ]
            .iter()
            .filter(|(k, _)| it[*k].as_bool().unwrap_or(false))
            .map(|(_, n)| *n)
            .collect();
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"off\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(it["name"].as_str().unwrap_or("")),
                esc(&scalar(&it["item_id"])),
                hex(it["offset"].as_u64().unwrap_or(0)),
                it["length"].as_u64().unwrap_or(0),
                flags.join(", ")
            );
        }
        s.push_str("</tbody></table>");
    }
    let mut json = serde_json::to_string_pretty(info).unwrap_or_default();
    let note = if json.len() > MAX_INFO_JSON {
        let mut cut = MAX_INFO_JSON;
        while !json.is_char_boundary(cut) {
            cut -= 1;
        }
        json.truncate(cut);
        " (truncated; `vhdx-check info --format json` gives all)"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "<details><summary>Everything parsed (the info document){note}</summary><pre class=\"json\">{}</pre></details>",
        esc(&json)
    );
}
