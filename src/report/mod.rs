//! Rendering: text for people, JSON (schema 1) and SARIF 2.1.0 for machines, and an HTML
//! evidence report for people who do not read JSON. Nothing here judges.

pub mod html;
pub mod info;
pub mod json;
pub mod sarif;
pub mod text;

use crate::check::ImageReport;
use crate::rules::finding::Severity;
use serde::Serializer;

/// Serializes a byte array as a printable string (signatures).
pub fn ser_bytes<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&preview(b))
}

/// Serializes bytes as lowercase hex (log descriptors' leading and trailing bytes).
pub fn ser_hex<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

/// A short printable preview of bytes: ASCII where printable, `\xNN` otherwise, at most
/// 16 bytes, quoted.
pub fn preview(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for &c in b.iter().take(16) {
        if (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\' {
            out.push(c as char);
        } else {
            out.push_str(&format!("\\x{c:02x}"));
        }
    }
    out.push('"');
    if b.len() > 16 {
        out.push('…');
    }
    out
}

/// A decoded string for a message: in double quotes, control characters escaped, the
/// rest (backslashes of Windows paths included) as is.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// A short preview of UTF-16LE bytes (lossy), at most 32 characters.
pub fn preview_utf16(b: &[u8]) -> String {
    let s = crate::format::utf16le_lossy(&b[..b.len().min(64)]);
    format!("{:?}", s.trim_end_matches('\0'))
}

/// Rules that sweep space no structure uses for data a responder may want to carve. Their
/// messages carry the first non-zero bytes; text output adds the byte range swept.
pub const HIDDEN_DATA_RULES: &[&str] = &[
    "FTI-006",
    "HDR-018",
    "RGN-021",
    "META-036",
    "META-037",
    "META-038",
    "PLOC-027",
    "BAT-016",
    "LAYOUT-004",
    "LAYOUT-005",
    "LAYOUT-006",
];

/// When an image is rejected (DESIGN: exit-code contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

impl FailOn {
    pub fn rejects(self, r: &ImageReport) -> bool {
        let threshold = match self {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
            FailOn::Info => Severity::Info,
            FailOn::Never => return false,
        };
        r.worst().is_some_and(|w| w >= threshold)
    }
}

/// One checked image as the renderers see it.
pub struct Checked<'a> {
    pub path: &'a str,
    pub outcome: Result<&'a ImageReport, &'a str>,
    pub rejected: bool,
}
