//! How bytes read from the image are shown in messages and serialised structures: below
//! every layer that shows them (parsers' serde attributes, model, rules, renderers).

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
    let s = super::utf16le_lossy(&b[..b.len().min(64)]);
    format!("{:?}", s.trim_end_matches('\0'))
}
