//! The log timeline: the entries of the log ring from the info document, and what replay
//! changes.

use super::escape::{esc, hex, scalar};
use super::svg::rect;
use super::{MAX_TABLE_ROWS, WIDTH};
use serde_json::Value;
use std::fmt::Write as _;

pub(super) fn log_section(s: &mut String, n: usize, info: &Value) {
    s.push_str("<h3>Log</h3>");
    let log = &info["log"];
    if log.is_null() {
        s.push_str("<p class=\"muted\">no log region</p>\n");
        return;
    }
    let _ = write!(
        s,
        "<dl class=\"kv\"><dt>state</dt><dd>{}</dd><dt>LogGuid (header)</dt><dd class=\"mono\">{}</dd>\
         <dt>log region</dt><dd class=\"mono\">{} ({} bytes)</dd><dt>entries found</dt><dd>{}</dd>",
        esc(log["state"].as_str().unwrap_or("")),
        esc(&scalar(&log["log_guid"])),
        hex(log["offset"].as_u64().unwrap_or(0)),
        log["length"].as_u64().unwrap_or(0),
        log["entry_count"].as_u64().unwrap_or(0)
    );
    if let Some(seqs) = log["sequences"].as_array() {
        for sq in seqs {
            let _ = write!(
                s,
                "<dt>{} scan</dt><dd>{} valid sequence(s); active head SequenceNumber {}; {} entries replayed</dd>",
                esc(sq["mode"].as_str().unwrap_or("")),
                sq["sequences"].as_array().map_or(0, |a| a.len()),
                esc(&scalar(&sq["active_head_sequence"])),
                sq["replayed"].as_array().map_or(0, |a| a.len())
            );
        }
    }
    s.push_str("</dl>\n");
    let entries: Vec<&Value> = log["entries"]
        .as_array()
        .map_or(Vec::new(), |a| a.iter().collect());
    if entries.is_empty() {
        s.push_str("<p class=\"muted\">no log entries</p>\n");
    } else {
        let mut sorted = entries.clone();
        sorted.sort_by_key(|e| {
            (
                e["sequence_number"].as_u64().unwrap_or(0),
                e["ring_offset"].as_u64().unwrap_or(0),
            )
        });
        // Sessions: entries by LogGuid, in order of first appearance by sequence.
        let mut sessions: Vec<String> = Vec::new();
        for e in &sorted {
            let g = scalar(&e["log_guid"]);
            if !sessions.contains(&g) {
                sessions.push(g);
            }
        }
        let session = |e: &Value| {
            sessions
                .iter()
                .position(|g| *g == scalar(&e["log_guid"]))
                .unwrap_or(0)
        };
        s.push_str("<p class=\"muted\">Timeline: entries by SequenceNumber, coloured by LogGuid (session); outlined entries are the ones replay applies.</p>");
        let count = sorted.len().min(MAX_TABLE_ROWS);
        let w = WIDTH / count.max(1) as f64;
        let _ = write!(
            s,
            "<svg class=\"map\" id=\"log-{n}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} 30\" role=\"img\" aria-label=\"log timeline\">"
        );
        for (k, e) in sorted.iter().take(count).enumerate() {
            let replayed = e["replayed"].as_bool().unwrap_or(false);
            let class = format!(
                "s-{}{}",
                session(e) % 6,
                if replayed { " replayed" } else { "" }
            );
            let title = format!(
                "SequenceNumber {} at ring offset {} (file {}), LogGuid {}, {}{}",
                e["sequence_number"].as_u64().unwrap_or(0),
                hex(e["ring_offset"].as_u64().unwrap_or(0)),
                hex(e["file_offset"].as_u64().unwrap_or(0)),
                scalar(&e["log_guid"]),
                if e["valid_strict"].as_bool().unwrap_or(false) {
                    "valid"
                } else {
                    "not valid"
                },
                if replayed { ", replayed" } else { "" }
            );
            rect(
                s,
                k as f64 * w + 0.5,
                4.0,
                (w - 1.0).max(0.8),
                22.0,
                &class,
                &title,
            );
        }
        s.push_str("</svg>\n<ul>");
        for (k, g) in sessions.iter().enumerate() {
            let members: Vec<u64> = sorted
                .iter()
                .filter(|e| scalar(&e["log_guid"]) == *g)
                .filter_map(|e| e["sequence_number"].as_u64())
                .collect();
            let _ = write!(
                s,
                "<li><i class=\"sw c-{k6}\"></i> session {k}: LogGuid <span class=\"mono\">{}</span>: {} entries, SequenceNumber {}..{}</li>",
                esc(g),
                members.len(),
                members.first().copied().unwrap_or(0),
                members.last().copied().unwrap_or(0),
                k6 = k % 6
            );
        }
        s.push_str("</ul>\n");
        let _ = write!(
            s,
            "<table><thead><tr><th>SequenceNumber</th><th>session</th><th>ring offset</th><th>file offset</th>\
             <th>length</th><th>descriptors (data)</th><th>valid strict / lenient</th><th>replayed</th><th>fails</th></tr></thead><tbody>"
        );
        for e in sorted.iter().take(count) {
            let fails: Vec<String> = e["fails"]
                .as_array()
                .map_or(Vec::new(), |a| a.iter().map(scalar).collect());
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"off\">{}</td><td class=\"off\">{}</td><td>{}</td><td>{} ({})</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>",
                e["sequence_number"].as_u64().unwrap_or(0),
                session(e),
                hex(e["ring_offset"].as_u64().unwrap_or(0)),
                hex(e["file_offset"].as_u64().unwrap_or(0)),
                e["entry_length"].as_u64().unwrap_or(0),
                e["descriptor_count"].as_u64().unwrap_or(0),
                e["data_descriptors"].as_u64().unwrap_or(0),
                e["valid_strict"].as_bool().unwrap_or(false),
                e["valid_lenient"].as_bool().unwrap_or(false),
                if e["replayed"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    ""
                },
                esc(&fails.join(", "))
            );
        }
        s.push_str("</tbody></table>\n");
    }
    let replay = &log["replay"];
    if !replay.is_null() {
        let changes: Vec<&Value> = replay["changes"]
            .as_array()
            .map_or(Vec::new(), |a| a.iter().collect());
        let _ = write!(
            s,
            "<p>Replay {}: {} descriptors applied, file size {} → {}; {} byte range(s) change.</p>",
            if replay["dirty"].as_bool().unwrap_or(false) {
                "pending"
            } else {
                "already applied"
            },
            replay["descriptors_applied"].as_u64().unwrap_or(0),
            replay["size_before"].as_u64().unwrap_or(0),
            replay["size_after"].as_u64().unwrap_or(0),
            changes.len()
        );
        if !changes.is_empty() {
            s.push_str("<table><thead><tr><th>offset</th><th>length</th><th>structure changed</th></tr></thead><tbody>");
            for c in changes.iter().take(MAX_TABLE_ROWS) {
                let _ = write!(
                    s,
                    "<tr><td class=\"off\">{}</td><td>{}</td><td>{}</td></tr>",
                    hex(c["offset"].as_u64().unwrap_or(0)),
                    c["length"].as_u64().unwrap_or(0),
                    esc(c["structure"].as_str().unwrap_or(""))
                );
            }
            s.push_str("</tbody></table>\n");
            if changes.len() > MAX_TABLE_ROWS {
                let _ = write!(
                    s,
                    "<p class=\"muted\">{} more ranges not listed</p>",
                    changes.len() - MAX_TABLE_ROWS
                );
            }
        }
    }
}
