//! Parent locator (MS-VHDX 2.6.2.6): a 20-byte header followed by 12-byte key/value
//! entries whose UTF-16LE keys and values live elsewhere in the same metadata item.

use super::guid::Guid;
use super::{u16_at, u32_at};
use serde::Serialize;

pub const HEADER_SIZE: usize = 20;
pub const ENTRY_SIZE: usize = 12;

#[derive(Debug, Clone, Serialize)]
pub struct ParentLocator {
    pub locator_type: Guid,
    pub reserved: u16,
    pub key_value_count: u16,
    /// The entries that fit inside the item (at most `key_value_count`).
    pub entries: Vec<KeyValueEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyValueEntry {
    pub key_offset: u32,
    pub value_offset: u32,
    pub key_length: u16,
    pub value_length: u16,
}

impl KeyValueEntry {
    /// `[start, end)` of the key within the item, as u64 (no overflow).
    pub fn key_range(&self) -> (u64, u64) {
        (
            self.key_offset as u64,
            self.key_offset as u64 + self.key_length as u64,
        )
    }
    pub fn value_range(&self) -> (u64, u64) {
        (
            self.value_offset as u64,
            self.value_offset as u64 + self.value_length as u64,
        )
    }
}

/// Byte offset of entry `i` inside the item.
pub fn entry_offset(i: usize) -> usize {
    HEADER_SIZE + ENTRY_SIZE * i
}

/// Parses the locator in `item` (the whole metadata item); `None` if it cannot hold the
/// header.
pub fn parse(item: &[u8]) -> Option<ParentLocator> {
    if item.len() < HEADER_SIZE {
        return None;
    }
    let key_value_count = u16_at(item, 18);
    let fit = (item.len() - HEADER_SIZE) / ENTRY_SIZE;
    let n = (key_value_count as usize).min(fit);
    let entries = (0..n)
        .map(|i| {
            let e = &item[entry_offset(i)..entry_offset(i) + ENTRY_SIZE];
            KeyValueEntry {
                key_offset: u32_at(e, 0),
                value_offset: u32_at(e, 4),
                key_length: u16_at(e, 8),
                value_length: u16_at(e, 10),
            }
        })
        .collect();
    Some(ParentLocator {
        locator_type: Guid::from_slice(&item[..16]),
        reserved: u16_at(item, 16),
        key_value_count,
        entries,
    })
}

/// The bytes of `[start, end)` of the item, if they lie inside it.
pub fn slice(item: &[u8], (start, end): (u64, u64)) -> Option<&[u8]> {
    if end > item.len() as u64 || start > end {
        return None;
    }
    Some(&item[start as usize..end as usize])
}

// The keys of the VHDX parent locator type (2.6.2.6.3).
pub const KEY_PARENT_LINKAGE: &str = "parent_linkage";
pub const KEY_PARENT_LINKAGE2: &str = "parent_linkage2";
pub const KEY_RELATIVE_PATH: &str = "relative_path";
pub const KEY_VOLUME_PATH: &str = "volume_path";
pub const KEY_ABSOLUTE_WIN32_PATH: &str = "absolute_win32_path";
pub const KNOWN_KEYS: [&str; 5] = [
    KEY_PARENT_LINKAGE,
    KEY_PARENT_LINKAGE2,
    KEY_RELATIVE_PATH,
    KEY_VOLUME_PATH,
    KEY_ABSOLUTE_WIN32_PATH,
];

/// Parses `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` (either case) into a GUID.
pub fn parse_braced_guid(s: &str) -> Option<Guid> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let parts: Vec<&str> = inner.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    if parts.len() != 5
        || parts
            .iter()
            .zip(lens)
            .any(|(p, l)| p.len() != l || !p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    let d1 = u32::from_str_radix(parts[0], 16).ok()?;
    let d2 = u16::from_str_radix(parts[1], 16).ok()?;
    let d3 = u16::from_str_radix(parts[2], 16).ok()?;
    let tail = format!("{}{}", parts[3], parts[4]);
    let mut d4 = [0u8; 8];
    for (i, b) in d4.iter_mut().enumerate() {
        *b = u8::from_str_radix(&tail[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(Guid::from_fields(d1, d2, d3, d4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braced_guid_round_trip() {
        let g = parse_braced_guid("{83ed0ec3-24c8-49a6-a959-5e4bf1288bfb}").unwrap();
        assert_eq!(g.to_string(), "83ED0EC3-24C8-49A6-A959-5E4BF1288BFB");
        assert!(parse_braced_guid("83ed0ec3-24c8-49a6-a959-5e4bf1288bfb").is_none());
        assert!(parse_braced_guid("{83ed0ec3-24c8-49a6-a959-5e4bf1288bfg}").is_none());
    }
}
