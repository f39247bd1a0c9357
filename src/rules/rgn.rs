//! RGN: the two region tables and the working table's entries (CATALOGUE 2.3).

use super::sink::{Loc, Sink};
use super::{Pass, Scope, hex};
use crate::format::region::{self, ENTRY_SIZE, MAX_ENTRIES, SIZE};
use crate::format::{MIB, guid};
use crate::model::Model;
use crate::rules::finding::Severity;
use std::collections::HashMap;

pub const PASSES: &[Pass] = &[
    Pass {
        name: "each region table copy",
        ids: &["RGN-001", "RGN-002", "RGN-007", "RGN-008", "RGN-021"],
        scope: Scope::Views,
        run: each_copy,
    },
    Pass {
        name: "region table pair",
        ids: &["RGN-003", "RGN-004", "RGN-005", "RGN-006"],
        scope: Scope::Views,
        run: pair,
    },
    Pass {
        name: "region entries",
        ids: &[
            "RGN-009", "RGN-010", "RGN-011", "RGN-012", "RGN-013", "RGN-014", "RGN-015", "RGN-016",
            "RGN-017", "RGN-018", "RGN-019", "RGN-020",
        ],
        scope: Scope::Views,
        run: entries,
    },
];

fn table_name(i: usize) -> String {
    format!("region_table[{}]", i + 1)
}

/// The highest severity a fault of region table copy `i` gets: the copy in use keeps the
/// catalogue's; a fault of the other copy (only redundancy is lost, as with a bad header
/// copy) is at most a warning. When copy 1 is invalid, copy 2 is the one in use.
fn cap(m: &Model, i: usize) -> Severity {
    if m.region_choice == Some(i) {
        Severity::Error
    } else {
        Severity::Warning
    }
}

/// What a finding on copy `i` adds when that copy is not the one in use.
fn unused_note(m: &Model, i: usize) -> &'static str {
    if m.region_choice == Some(i) {
        ""
    } else {
        " (this copy is not the one in use: redundancy is lost)"
    }
}

fn each_copy(m: &Model, s: &mut Sink) {
    for (i, c) in m.region_tables.iter().enumerate() {
        let off = c.slot.offset;
        let t = &c.table;
        let (cap, note) = (cap(m, i), unused_note(m, i));
        if !c.signature_ok {
            s.emit("RGN-001", Loc::at(off, 4), || {
                (
                    format!("{}.signature", table_name(i)),
                    format!(
                        "region table {} signature is {} instead of \"regi\"; this copy is invalid{}",
                        i + 1,
                        crate::report::preview(&t.signature),
                        c.slot.truncation_note()
                    ),
                )
            });
        }
        if !c.checksum_ok {
            s.emit("RGN-002", Loc::at(off, SIZE as u64), || {
                let short = region::entry_offset((t.entry_count as usize).min(MAX_ENTRIES));
                let short_match = crate::format::crc::crc32c_with_zeroed_field(&c.slot.get(0, short), 4) == t.checksum;
                (
                    format!("{}.checksum", table_name(i)),
                    format!(
                        "region table {} checksum {:#010x} does not match CRC-32C {:#010x} over its 64 KiB{}; this copy is invalid",
                        i + 1,
                        t.checksum,
                        c.computed_checksum,
                        if short_match { " (it matches only header + entries: a non-conforming writer)" } else { "" }
                    ),
                )
            });
        }
        if !c.valid() {
            continue;
        }
        if t.entry_count as usize > MAX_ENTRIES {
            s.emit_at_most("RGN-007", cap, Loc::at(off + 8, 4), || {
                (
                    format!("{}.entry_count", table_name(i)),
                    format!(
                        "EntryCount {} exceeds 2047; only 2047 entries were read{note}",
                        t.entry_count
                    ),
                )
            });
        }
        if t.reserved != 0 {
            s.emit_at_most("RGN-008", cap, Loc::at(off + 12, 4), || {
                (
                    format!("{}.reserved", table_name(i)),
                    format!("Reserved field is {:#x} (must be 0){note}", t.reserved),
                )
            });
        }
        let used = region::entry_offset(t.entries.len());
        if let Some(first) = c.slot.first_nonzero(used, SIZE) {
            let stale = stale_entries(&c.slot.get(used, SIZE));
            s.emit(
                "RGN-021",
                Loc::at(off + first as u64, (SIZE - first) as u64),
                || {
                    (
                        format!("{}.unused", table_name(i)),
                        format!(
                            "unused table space after entry {} holds data at {}{}: {}",
                            t.entries.len(),
                            hex(off + first as u64),
                            stale,
                            crate::report::preview(&c.slot.get(first, SIZE))
                        ),
                    )
                },
            );
        }
    }
}

/// Decodes plausible stale 32-byte entries (known GUIDs) in unused table space.
fn stale_entries(rest: &[u8]) -> String {
    let found: Vec<String> = rest
        .chunks_exact(ENTRY_SIZE)
        .map(region::parse_entry)
        .filter(|e| e.guid == guid::REGION_BAT || e.guid == guid::REGION_METADATA)
        .map(|e| {
            format!(
                "{} region at {} length {}",
                Model::region_name(&e.guid),
                hex(e.file_offset),
                hex(e.length as u64)
            )
        })
        .take(4)
        .collect();
    if found.is_empty() {
        String::new()
    } else {
        format!(" (stale entries: {})", found.join("; "))
    }
}

fn pair(m: &Model, s: &mut Sink) {
    let [a, b] = &m.region_tables;
    let both = Loc::at(region::OFFSETS[0], 2 * SIZE as u64);
    match (a.valid(), b.valid()) {
        (false, false) => s.emit("RGN-003", both, || {
            (
                "region_tables".into(),
                "neither region table copy is valid: BAT and metadata cannot be located".into(),
            )
        }),
        (false, true) => s.emit("RGN-004", Loc::at(region::OFFSETS[0], SIZE as u64), || {
            (
                "region_table[1]".into(),
                "region table 1 is invalid; copy 2 is used (QEMU reads only copy 1 and would fail)"
                    .into(),
            )
        }),
        (true, false) => s.emit("RGN-005", Loc::at(region::OFFSETS[1], SIZE as u64), || {
            (
                "region_table[2]".into(),
                "region table 2 is invalid while copy 1 is valid (libvhdi refuses such files)"
                    .into(),
            )
        }),
        (true, true) => {
            if !a.slot.same_bytes(&b.slot) {
                let diff = describe_difference(&a.table, &b.table);
                s.emit("RGN-006", both, || {
                    (
                        "region_tables".into(),
                        format!(
                            "both region table copies are valid but differ: {diff}; copy 1 is used"
                        ),
                    )
                });
            }
        }
    }
}

fn describe_difference(a: &region::RegionTable, b: &region::RegionTable) -> String {
    let mut parts = Vec::new();
    if a.entry_count != b.entry_count {
        parts.push(format!("EntryCount {} vs {}", a.entry_count, b.entry_count));
    }
    for i in 0..a.entries.len().max(b.entries.len()) {
        let (x, y) = (a.entries.get(i), b.entries.get(i));
        if x != y {
            let show = |e: Option<&region::RegionEntry>| {
                e.map_or("absent".to_string(), |e| {
                    format!(
                        "{} {}+{}",
                        Model::region_name(&e.guid),
                        hex(e.file_offset),
                        hex(e.length as u64)
                    )
                })
            };
            parts.push(format!("entry[{i}] {} vs {}", show(x), show(y)));
        }
        if parts.len() >= 4 {
            break;
        }
    }
    if parts.is_empty() {
        parts.push("only unused bytes differ".into());
    }
    parts.join(", ")
}

fn entries(m: &Model, s: &mut Sink) {
    let Some(used) = m.region_choice else { return };
    for (ti, c) in m.region_tables.iter().enumerate() {
        // An invalid copy's entries mean nothing (RGN-001/002 say so); a copy identical to
        // the one in use has the same faults, reported once on the copy in use.
        if !c.valid() || (ti != used && c.slot.same_bytes(&m.region_tables[used].slot)) {
            continue;
        }
        copy_entries(m, s, ti);
    }
}

/// A finding on region table copy `ti` at most at `cap`, its message followed by `note`.
fn emit_copy(
    s: &mut Sink,
    id: &'static str,
    (cap, note): (Severity, &'static str),
    loc: Loc,
    describe: impl FnOnce() -> (String, String),
) {
    s.emit_at_most(id, cap, loc, || {
        let (structure, message) = describe();
        (structure, message + note)
    });
}

/// RGN-009..020 on the entries of valid copy `ti`.
fn copy_entries(m: &Model, s: &mut Sink, ti: usize) {
    let base = region::OFFSETS[ti];
    let entries = &m.region_tables[ti].table.entries;
    let (cap, note) = (cap(m, ti), unused_note(m, ti));
    let mut seen: HashMap<guid::Guid, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let eoff = base + region::entry_offset(i) as u64;
        let st = || format!("{}.entry[{i}]", table_name(ti));
        let kind = Model::region_name(&e.guid);
        let known = kind != "unknown";
        if let Some(&first) = seen.get(&e.guid) {
            emit_copy(s, "RGN-009", (cap, note), Loc::at(eoff, 16), || {
                (
                    st(),
                    format!("region GUID {} also used by entry[{first}]", e.guid),
                )
            });
        } else {
            seen.insert(e.guid, i);
        }
        if e.file_offset % MIB != 0 {
            emit_copy(s, "RGN-010", (cap, note), Loc::at(eoff + 16, 8), || {
                (
                    st(),
                    format!(
                        "{kind} region FileOffset {} is not 1 MiB aligned",
                        hex(e.file_offset)
                    ),
                )
            });
        }
        if e.file_offset < MIB {
            emit_copy(s, "RGN-011", (cap, note), Loc::at(eoff + 16, 8), || {
                (
                    st(),
                    format!(
                        "{kind} region FileOffset {} lies inside the 1 MiB header section",
                        hex(e.file_offset)
                    ),
                )
            });
        }
        if e.length as u64 % MIB != 0 {
            emit_copy(s, "RGN-012", (cap, note), Loc::at(eoff + 24, 4), || {
                (
                    st(),
                    format!(
                        "{kind} region Length {} is not a multiple of 1 MiB",
                        hex(e.length as u64)
                    ),
                )
            });
        }
        if e.length == 0 {
            emit_copy(s, "RGN-013", (cap, note), Loc::at(eoff + 24, 4), || {
                (st(), format!("{kind} region has Length 0"))
            });
        }
        match e.end() {
            Some(end) if end <= m.file_size => {}
            end => emit_copy(
                s,
                "RGN-014",
                (cap, note),
                Loc::at(e.file_offset, e.length as u64),
                || {
                    (
                        st(),
                        format!(
                            "{kind} region [{}, {}) extends past the end of the file ({})",
                            hex(e.file_offset),
                            end.map_or("overflow".into(), hex),
                            hex(m.file_size)
                        ),
                    )
                },
            ),
        }
        if e.required & !1 != 0 {
            emit_copy(s, "RGN-015", (cap, note), Loc::at(eoff + 28, 4), || {
                (
                    st(),
                    format!("Required field {:#x} has reserved bits set", e.required),
                )
            });
        }
        let required = e.required & 1 != 0;
        if !known && required {
            emit_copy(s, "RGN-016", (cap, note), Loc::at(eoff, 32), || {
                (
                    st(),
                    format!(
                        "unknown region {} at {} is marked Required: a conforming reader must refuse the file",
                        e.guid,
                        hex(e.file_offset)
                    ),
                )
            });
        }
        if !known && !required {
            emit_copy(
                s,
                "RGN-017",
                (cap, note),
                Loc::at(e.file_offset, e.length as u64),
                || {
                    (
                        st(),
                        format!(
                            "unknown optional region {} at {} length {}",
                            e.guid,
                            hex(e.file_offset),
                            hex(e.length as u64)
                        ),
                    )
                },
            );
        }
        if known && e.required != 1 {
            emit_copy(s, "RGN-020", (cap, note), Loc::at(eoff + 28, 4), || {
                (
                    st(),
                    format!(
                        "{kind} region entry has Required = {} (the specification lists it as required)",
                        e.required
                    ),
                )
            });
        }
    }
    let table = Loc::at(base, SIZE as u64);
    let has = |g: guid::Guid| entries.iter().any(|e| e.guid == g);
    if !has(guid::REGION_BAT) {
        emit_copy(s, "RGN-018", (cap, note), table, || {
            (
                table_name(ti),
                "the region table has no BAT region entry".into(),
            )
        });
    }
    if !has(guid::REGION_METADATA) {
        emit_copy(s, "RGN-019", (cap, note), table, || {
            (
                table_name(ti),
                "the region table has no Metadata region entry".into(),
            )
        });
    }
}
