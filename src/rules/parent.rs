//! PLOC: the parent locator item (CATALOGUE 2.8): its header, key/value entries, the
//! UTF-16LE strings and the VHDX locator keys.

use super::sink::Sink;
use super::{Pass, Scope, hex, id};
use crate::findings::Loc;
use crate::format::display::quote;
use crate::format::guid;
use crate::format::parent::{self, KeyValueEntry, ParentLocator};
use crate::model::{LocatorItem, Model};
use std::collections::HashMap;

pub const PASSES: &[Pass] = &[
    Pass {
        ids: &[
            id::PLOC_001,
            id::PLOC_002,
            id::PLOC_003,
            id::PLOC_004,
            id::PLOC_005,
            id::PLOC_006,
            id::PLOC_007,
            id::PLOC_008,
            id::PLOC_009,
            id::PLOC_010,
            id::PLOC_011,
            id::PLOC_012,
            id::PLOC_026,
        ],
        scope: Scope::Views,
        run: structure,
    },
    Pass {
        ids: &[
            id::PLOC_013,
            id::PLOC_014,
            id::PLOC_015,
            id::PLOC_016,
            id::PLOC_017,
            id::PLOC_018,
            id::PLOC_019,
            id::PLOC_020,
            id::PLOC_021,
            id::PLOC_022,
            id::PLOC_023,
            id::PLOC_024,
            id::PLOC_025,
            id::PLOC_027,
        ],
        scope: Scope::Views,
        run: keys,
    },
];

fn entry_name(i: usize) -> String {
    format!("parent_locator.entry[{i}]")
}

fn entry_loc(li: &LocatorItem, i: usize) -> Loc {
    Loc::at(
        li.file_offset + parent::entry_offset(i) as u64,
        parent::ENTRY_SIZE as u64,
    )
}

/// The locator item, its parse, and its declared length (the entry's Length).
fn locator<'m>(m: &'m Model) -> Option<(&'m LocatorItem, u64)> {
    let li = m.parent_locator.as_ref()?;
    let md = m.metadata.as_ref()?;
    let it = md.known(crate::format::metadata::KnownItem::ParentLocator)?;
    Some((li, it.entry.length as u64))
}

/// End of the header and entry table: 20 + 12·KeyValueCount.
fn table_end(pl: &ParentLocator) -> u64 {
    (parent::HEADER_SIZE + parent::ENTRY_SIZE * pl.key_value_count as usize) as u64
}

fn structure(m: &Model, s: &mut Sink) {
    let Some((li, length)) = locator(m) else {
        return;
    };
    let base = li.file_offset;
    if length < parent::HEADER_SIZE as u64 {
        s.emit(id::PLOC_001, Loc::at(base, length), || {
            (
                "parent_locator".into(),
                format!("parent locator item Length {length} cannot hold its 20-byte header: the parent cannot be found, so the virtual disk cannot be read"),
            )
        });
    }
    let Some(pl) = &li.locator else { return };
    if pl.locator_type != guid::LOCATOR_TYPE_VHDX {
        s.emit(id::PLOC_002, Loc::at(base, 16), || {
            (
                "parent_locator.locator_type".into(),
                format!("LocatorType {} is not the VHDX locator type; its keys cannot be validated here, and a reader that does not know the type must refuse the disk", pl.locator_type),
            )
        });
    }
    if pl.reserved != 0 {
        s.emit(id::PLOC_003, Loc::at(base + 16, 2), || {
            (
                "parent_locator.reserved".into(),
                format!(
                    "Reserved is {:#x} (must be 0); readers ignore it",
                    pl.reserved
                ),
            )
        });
    }
    if pl.key_value_count == 0 {
        s.emit(id::PLOC_004, Loc::at(base + 18, 2), || {
            (
                "parent_locator.key_value_count".into(),
                "KeyValueCount is 0: the mandatory keys are absent, so the parent can be neither found nor verified and the virtual disk cannot be read".into(),
            )
        });
    }
    if table_end(pl) > length {
        s.emit(id::PLOC_005, Loc::at(base + 18, 2), || {
            (
                "parent_locator.key_value_count".into(),
                format!(
                    "{} entries need {} bytes but the item is {length} bytes; {} entries were read, the rest are cut off",
                    pl.key_value_count,
                    table_end(pl),
                    pl.entries.len()
                ),
            )
        });
    }
    let mut ranges: Vec<(u64, u64, usize, &str)> = Vec::new();
    for (i, e) in pl.entries.iter().enumerate() {
        entry(li, pl, length, i, e, s);
        for (r, what) in [(e.key_range(), "key"), (e.value_range(), "value")] {
            if r.1 > r.0 {
                ranges.push((r.0, r.1, i, what));
            }
        }
    }
    ranges.sort_unstable();
    for (n, a) in ranges.iter().enumerate() {
        for b in ranges[n + 1..].iter().take_while(|b| b.0 < a.1) {
            s.emit(id::PLOC_009, Loc::at(base + b.0, b.1 - b.0), || {
                (
                    entry_name(b.2),
                    format!(
                        "{} of entry[{}] [{}, {}) overlaps {} of entry[{}]: at least one of them does not hold the text its writer meant",
                        b.3,
                        b.2,
                        hex(b.0),
                        hex(b.1),
                        a.3,
                        a.2
                    ),
                )
            });
        }
    }
    slack(li, pl, &ranges, s);
}

fn entry(
    li: &LocatorItem,
    pl: &ParentLocator,
    length: u64,
    i: usize,
    e: &KeyValueEntry,
    s: &mut Sink,
) {
    let base = li.file_offset;
    let loc = entry_loc(li, i);
    if e.key_offset == 0 || e.value_offset == 0 || e.key_length == 0 || e.value_length == 0 {
        s.emit(id::PLOC_006, loc, || {
            (
                entry_name(i),
                format!(
                    "entry has KeyOffset {} ValueOffset {} KeyLength {} ValueLength {} (all must be non-zero): the entry is invalid and names nothing a reader can rely on",
                    e.key_offset, e.value_offset, e.key_length, e.value_length
                ),
            )
        });
    }
    for (r, what) in [(e.key_range(), "key"), (e.value_range(), "value")] {
        if r.1 > length {
            s.emit(id::PLOC_007, loc, || {
                (
                    entry_name(i),
                    format!(
                        "{what} [{}, {}) extends past the item's {length} bytes, so it cannot be read whole",
                        hex(r.0),
                        hex(r.1)
                    ),
                )
            });
        }
        if r.0 < table_end(pl) && r.1 > r.0 {
            s.emit(id::PLOC_008, Loc::at(base + r.0, r.1 - r.0), || {
                (
                    entry_name(i),
                    format!(
                        "{what} at item offset {} lies inside the header and entry table: its text is read from those structures' bytes",
                        hex(r.0)
                    ),
                )
            });
        }
    }
    if e.key_length % 2 != 0 || e.value_length % 2 != 0 {
        s.emit(id::PLOC_010, loc, || {
            (
                entry_name(i),
                format!(
                    "KeyLength {} / ValueLength {}: not whole UTF-16 code units, so the last character is cut",
                    e.key_length, e.value_length
                ),
            )
        });
    }
    for (r, what) in [(e.key_range(), "key"), (e.value_range(), "value")] {
        let Some(bytes) = parent::slice(&li.bytes, r).filter(|b| !b.is_empty() && b.len() % 2 == 0)
        else {
            continue;
        };
        let at = Loc::at(base + r.0, r.1 - r.0);
        if crate::format::utf16le(bytes).is_none() {
            s.emit(id::PLOC_011, at, || {
                (
                    entry_name(i),
                    format!("{what} is not well-formed UTF-16LE (unpaired surrogate): readers may not match the key, or may open a different path"),
                )
            });
        }
        if bytes.chunks_exact(2).any(|c| c == [0, 0]) {
            s.emit(id::PLOC_012, at, || {
                (
                    entry_name(i),
                    format!(
                        "{what} {} contains a NUL code unit: a reader that stops there sees a shorter text and may look for a different parent",
                        crate::format::display::preview_utf16(bytes)
                    ),
                )
            });
        }
    }
}

/// PLOC-026: bytes of the item outside the header, entry table, keys and values.
fn slack(li: &LocatorItem, pl: &ParentLocator, ranges: &[(u64, u64, usize, &str)], s: &mut Sink) {
    let mut used: Vec<(u64, u64)> = vec![(0, table_end(pl))];
    used.extend(ranges.iter().map(|r| (r.0, r.1)));
    for (a, b) in super::gaps(used, li.bytes.len() as u64) {
        let gap = &li.bytes[a as usize..b as usize];
        if let Some(j) = gap.iter().position(|&x| x != 0) {
            let at = a + j as u64;
            s.emit(id::PLOC_026, Loc::at(li.file_offset + at, b - at), || {
                (
                    "parent_locator.slack".into(),
                    format!(
                        "locator bytes outside the header, entries, keys and values hold data at item offset {}, which readers ignore: {} {}",
                        hex(at),
                        crate::format::display::preview(&gap[j..]),
                        crate::format::display::preview_utf16(&gap[j & !1..])
                    ),
                )
            });
        }
    }
}

/// A decoded key/value pair with its entry.
struct Pair<'a> {
    index: usize,
    key: String,
    value: String,
    entry: &'a KeyValueEntry,
}

fn keys(m: &Model, s: &mut Sink) {
    let Some((li, _)) = locator(m) else { return };
    let Some(pl) = &li.locator else { return };
    let pairs: Vec<Pair> = m
        .locator_pairs()
        .into_iter()
        .map(|(index, key, value)| Pair {
            index,
            key,
            value,
            entry: &pl.entries[index],
        })
        .collect();
    let value_loc = |p: &Pair| {
        Loc::at(
            li.file_offset + p.entry.value_offset as u64,
            p.entry.value_length as u64,
        )
    };
    let mut exact: HashMap<&str, usize> = HashMap::new();
    let mut folded: HashMap<String, (usize, &str)> = HashMap::new();
    for p in &pairs {
        if let Some(&first) = exact.get(p.key.as_str()) {
            s.emit(id::PLOC_013, entry_loc(li, p.index), || {
                (
                    entry_name(p.index),
                    format!(
                        "key {} repeats entry[{first}]: readers may use either value and open different parents",
                        quote(&p.key)
                    ),
                )
            });
        } else {
            exact.insert(&p.key, p.index);
            let lower = p.key.to_lowercase();
            if let Some(&(first, other)) = folded.get(&lower) {
                s.emit(id::PLOC_014, entry_loc(li, p.index), || {
                    (
                        entry_name(p.index),
                        format!(
                            "key {} equals key {} of entry[{first}] ignoring case: a reader that ignores case may use either value",
                            quote(&p.key),
                            quote(other)
                        ),
                    )
                });
            } else {
                folded.insert(lower, (p.index, &p.key));
            }
        }
    }
    // Key-specific rules apply to the VHDX locator type only (PLOC-002 says otherwise).
    if pl.locator_type != guid::LOCATOR_TYPE_VHDX {
        return;
    }
    let get = |k: &str| pairs.iter().find(|p| p.key == k);
    let table = Loc::at(li.file_offset, table_end(pl));
    if get(parent::KEY_PARENT_LINKAGE).is_none() {
        s.emit(id::PLOC_015, table, || {
            (
                "parent_locator".into(),
                "the mandatory parent_linkage key is missing: readers cannot verify that the file they find is the right parent".into(),
            )
        });
    }
    for key in [parent::KEY_PARENT_LINKAGE, parent::KEY_PARENT_LINKAGE2] {
        let Some(p) = get(key) else { continue };
        match parent::parse_braced_guid(&p.value) {
            None => s.emit(id::PLOC_016, value_loc(p), || {
                (entry_name(p.index), format!("{key} value {} is not a braced GUID {{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}}: readers cannot compare it with the parent's DataWriteGuid", quote(&p.value)))
            }),
            Some(_) if p.value.chars().any(|c| c.is_ascii_uppercase()) => s.emit(id::PLOC_017, value_loc(p), || {
                (entry_name(p.index), format!("{key} value {} uses uppercase hex digits (lowercase is specified): harmless, readers compare the GUID's value", p.value))
            }),
            Some(_) => {}
        }
    }
    if let Some(p) = get(parent::KEY_PARENT_LINKAGE2) {
        let linkage2 = parent::parse_braced_guid(&p.value);
        let zero = linkage2.is_some_and(|g| g.is_zero());
        s.emit(id::PLOC_018, value_loc(p), || {
            let what = if linkage2.is_none() {
                "is not a braced GUID (PLOC-016), so it matches no parent"
            } else if zero {
                "is the zero GUID: no alternative parent identity (Windows writes it so on a fresh checkpoint)"
            } else {
                "names an alternative parent DataWriteGuid: a parent whose DataWriteGuid equals it also matches (kept so that the link survives a merge)"
            };
            (
                entry_name(p.index),
                format!("parent_linkage2 {} {what}", p.value),
            )
        });
    }
    let paths = [
        parent::KEY_RELATIVE_PATH,
        parent::KEY_VOLUME_PATH,
        parent::KEY_ABSOLUTE_WIN32_PATH,
    ];
    if paths.iter().all(|k| get(k).is_none()) {
        s.emit(id::PLOC_019, table, || {
            (
                "parent_locator".into(),
                "none of relative_path, volume_path, absolute_win32_path is present: readers cannot find the parent file; give it with --parent".into(),
            )
        });
    }
    if let Some(p) = get(parent::KEY_VOLUME_PATH)
        && !is_volume_path(&p.value)
    {
        s.emit(id::PLOC_020, value_loc(p), || {
            (
                entry_name(p.index),
                format!(
                    "volume_path {} is not of the form \\\\?\\Volume{{GUID}}\\...: Windows cannot find the parent through it (the other paths may still lead to it)",
                    quote(&p.value)
                ),
            )
        });
    }
    if let Some(p) = get(parent::KEY_ABSOLUTE_WIN32_PATH)
        && !p.value.starts_with(r"\\?\")
    {
        s.emit(id::PLOC_021, value_loc(p), || {
            let what = if is_absolute(&p.value) {
                "is a plain absolute path, not the \\\\?\\ form the specification shows as its example (Hyper-V writes plain drive-letter paths; Windows, libvhdi and dissect read them)"
            } else {
                "is neither a \\\\?\\ path nor a plain absolute path: a reader cannot locate the parent through it"
            };
            (
                entry_name(p.index),
                format!("absolute_win32_path {} {what}", quote(&p.value)),
            )
        });
    }
    if let Some(p) = get(parent::KEY_RELATIVE_PATH)
        && (is_absolute(&p.value) || p.value.contains('/'))
    {
        s.emit(id::PLOC_022, value_loc(p), || {
            (
                entry_name(p.index),
                format!(
                    "relative_path {} is absolute or uses '/' separators: it resolves elsewhere or not at all; resolve it by hand from the child's directory",
                    quote(&p.value)
                ),
            )
        });
    }
    for p in &pairs {
        if !parent::KNOWN_KEYS.contains(&p.key.as_str()) {
            s.emit(id::PLOC_023, entry_loc(li, p.index), || {
                (
                    entry_name(p.index),
                    format!(
                        "unknown key {} = {}: readers ignore it; it may tell about the parent or the writer",
                        quote(&p.key),
                        quote(&p.value)
                    ),
                )
            });
        }
        if p.key.chars().any(|c| c.is_uppercase()) {
            s.emit(id::PLOC_024, entry_loc(li, p.index), || {
                (entry_name(p.index), {
                    let lower = p.key.to_lowercase();
                    let known = if parent::KNOWN_KEYS.contains(&lower.as_str()) {
                        format!(": readers match keys exactly, so it is not read as {lower}")
                    } else {
                        ": readers match keys exactly (harmless for a key they do not know)".into()
                    };
                    format!("key {} is not all lowercase{known}", quote(&p.key))
                })
            });
        }
    }
    let named: Vec<(&str, String)> = paths
        .iter()
        .filter_map(|k| get(k).map(|p| (*k, file_name(&p.value).to_lowercase())))
        .collect();
    if named.windows(2).any(|w| w[0].1 != w[1].1) {
        s.emit(id::PLOC_025, table, || {
            let list: Vec<String> = named
                .iter()
                .map(|(k, n)| format!("{k} -> {}", quote(n)))
                .collect();
            (
                "parent_locator".into(),
                format!(
                    "the path keys name different files: {}; readers may open different parents depending on the path they try first (parent_linkage decides which is right)",
                    list.join(", ")
                ),
            )
        });
    }
    for p in pairs.iter().filter(|p| paths.contains(&p.key.as_str())) {
        s.emit(id::PLOC_027, value_loc(p), || {
            (
                entry_name(p.index),
                format!("{} = {}{}", p.key, quote(&p.value), attribution(&p.value)),
            )
        });
    }
}

/// `\\?\Volume{GUID}\...`
fn is_volume_path(v: &str) -> bool {
    let Some(rest) = v.strip_prefix(r"\\?\Volume") else {
        return false;
    };
    let Some(close) = rest.find('}') else {
        return false;
    };
    parent::parse_braced_guid(&rest[..=close]).is_some() && rest[close + 1..].starts_with('\\')
}

fn is_absolute(v: &str) -> bool {
    let b = v.as_bytes();
    v.starts_with('\\') || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// The last component of a Windows path.
fn file_name(v: &str) -> &str {
    v.rsplit(['\\', '/']).next().unwrap_or(v)
}

/// What a path tells about where the parent lived: drive, volume, host share, user profile.
fn attribution(v: &str) -> String {
    let mut parts = Vec::new();
    let p = v.strip_prefix(r"\\?\").unwrap_or(v);
    if let Some(unc) = p.strip_prefix(r"UNC\").or_else(|| p.strip_prefix(r"\\")) {
        if let Some(host) = unc.split('\\').next().filter(|h| !h.is_empty()) {
            parts.push(format!("host {host}"));
        }
    } else if p.len() >= 2 && p.as_bytes()[1] == b':' {
        parts.push(format!("drive {}", &p[..2]));
    } else if let Some(rest) = p.strip_prefix("Volume")
        && let Some(close) = rest.find('}')
    {
        parts.push(format!("volume {}", &rest[..=close]));
    }
    let comps: Vec<&str> = p.split('\\').collect();
    if let Some(i) = comps.iter().position(|c| c.eq_ignore_ascii_case("Users"))
        && let Some(user) = comps.get(i + 1)
    {
        parts.push(format!("user profile {user}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}
