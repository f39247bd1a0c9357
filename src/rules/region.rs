//! RGN: the two region tables and the working table's entries (CATALOGUE 2.3).

use super::sink::Sink;
use super::{Pass, RuleId, Scope, hex, id};
use crate::findings::Loc;
use crate::findings::Severity;
use crate::format::region::{self, ENTRY_SIZE, MAX_ENTRIES, SIZE};
use crate::format::{MIB, guid};
use crate::model::Model;
use std::collections::HashMap;

pub const PASSES: &[Pass] = &[
    Pass {
        ids: &[
            id::RGN_001,
            id::RGN_002,
            id::RGN_007,
            id::RGN_008,
            id::RGN_021,
        ],
        scope: Scope::Views,
        run: each_copy,
    },
    Pass {
        ids: &[id::RGN_003, id::RGN_004, id::RGN_005, id::RGN_006],
        scope: Scope::Views,
        run: pair,
    },
    Pass {
        ids: &[
            id::RGN_009,
            id::RGN_010,
            id::RGN_011,
            id::RGN_012,
            id::RGN_013,
            id::RGN_014,
            id::RGN_015,
            id::RGN_016,
            id::RGN_017,
            id::RGN_018,
            id::RGN_019,
            id::RGN_020,
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

/// What an invalid region table copy `i` leaves readers with: the other copy, or nothing.
fn fallback(m: &Model, i: usize) -> String {
    let other = 1 - i;
    match (m.region_tables[other].valid(), other) {
        (true, 0) => "the image still opens from region table 1".into(),
        (true, _) => "readers that fall back find the BAT and metadata through region table 2 (QEMU reads only table 1 and fails)".into(),
        (false, _) => format!(
            "region table {} is invalid too, so no reader can locate the BAT or metadata",
            other + 1
        ),
    }
}

fn each_copy(m: &Model, s: &mut Sink) {
    for (i, c) in m.region_tables.iter().enumerate() {
        let off = c.slot.offset;
        let t = &c.table;
        let (cap, note) = (cap(m, i), unused_note(m, i));
        let in_use = m.region_choice == Some(i);
        if !c.signature_ok {
            s.emit(id::RGN_001, Loc::at(off, 4), || {
                (
                    format!("{}.signature", table_name(i)),
                    format!(
                        "region table {} signature is {} instead of \"regi\"; this copy is invalid{}; {}",
                        i + 1,
                        crate::format::display::preview(&t.signature),
                        c.slot.truncation_note(),
                        fallback(m, i)
                    ),
                )
            });
        }
        if !c.checksum_ok {
            s.emit(id::RGN_002, Loc::at(off, SIZE as u64), || {
                let short = region::entry_offset((t.entry_count as usize).min(MAX_ENTRIES));
                let short_match = crate::format::crc::crc32c_with_zeroed_field(&c.slot.get(0, short), 4) == t.checksum;
                (
                    format!("{}.checksum", table_name(i)),
                    format!(
                        "region table {} checksum {:#010x} does not match CRC-32C {:#010x} over its 64 KiB{}; this copy is invalid; {}",
                        i + 1,
                        t.checksum,
                        c.computed_checksum,
                        if short_match { " (it matches only header + entries: a non-conforming writer)" } else { "" },
                        fallback(m, i)
                    ),
                )
            });
        }
        if !c.valid() {
            continue;
        }
        if t.entry_count as usize > MAX_ENTRIES {
            s.emit_at_most(id::RGN_007, cap, Loc::at(off + 8, 4), || {
                (
                    format!("{}.entry_count", table_name(i)),
                    format!(
                        "EntryCount {} exceeds 2047; only 2047 entries were read{}",
                        t.entry_count,
                        if in_use {
                            ": QEMU and other readers that enforce the limit refuse the table, so the image does not open in them"
                        } else {
                            note
                        }
                    ),
                )
            });
        }
        if t.reserved != 0 {
            s.emit_at_most(id::RGN_008, cap, Loc::at(off + 12, 4), || {
                (
                    format!("{}.reserved", table_name(i)),
                    format!(
                        "Reserved field is {:#x} (must be 0); readers ignore it{note}",
                        t.reserved
                    ),
                )
            });
        }
        let used = region::entry_offset(t.entries.len());
        if let Some(first) = c.slot.first_nonzero(used, SIZE) {
            let stale = stale_entries(&c.slot.get(used, SIZE));
            s.emit(
                id::RGN_021,
                Loc::at(off + first as u64, (SIZE - first) as u64),
                || {
                    (
                        format!("{}.unused", table_name(i)),
                        format!(
                            "unused table space after entry {} holds data at {}{}, which readers ignore: {}",
                            t.entries.len(),
                            hex(off + first as u64),
                            stale,
                            crate::format::display::preview(&c.slot.get(first, SIZE))
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
        (false, false) => s.emit(id::RGN_003, both, || {
            (
                "region_tables".into(),
                "neither region table copy is valid: BAT and metadata cannot be located, so no reader can open the image and the BAT and metadata are not checked".into(),
            )
        }),
        (false, true) => s.emit(id::RGN_004, Loc::at(region::OFFSETS[0], SIZE as u64), || {
            (
                "region_table[1]".into(),
                "region table 1 is invalid; copy 2 is used (QEMU reads only copy 1 and would fail): readers that fall back to copy 2 open the image, QEMU refuses it".into(),
            )
        }),
        (true, false) => s.emit(id::RGN_005, Loc::at(region::OFFSETS[1], SIZE as u64), || {
            (
                "region_table[2]".into(),
                "region table 2 is invalid while copy 1 is valid (libvhdi refuses such files): other readers open the image from copy 1, but one more damaged copy would leave no valid one".into(),
            )
        }),
        (true, true) => {
            if !a.slot.same_bytes(&b.slot) {
                let diff = describe_difference(&a.table, &b.table);
                let what = if same_locations(&a.table, &b.table) {
                    "both copies locate the BAT and metadata at the same place, so readers see the same disk"
                } else {
                    "a reader that uses copy 2 finds the BAT or metadata elsewhere and may read a different disk"
                };
                s.emit(id::RGN_006, both, || {
                    (
                        "region_tables".into(),
                        format!(
                            "both region table copies are valid but differ: {diff}; copy 1 is used (as QEMU does): {what}"
                        ),
                    )
                });
            }
        }
    }
}

/// Whether both tables put the BAT and the metadata region at the same offset and length.
fn same_locations(a: &region::RegionTable, b: &region::RegionTable) -> bool {
    let at = |t: &region::RegionTable, g: guid::Guid| {
        (t.entries.iter())
            .find(|e| e.guid == g)
            .map(|e| (e.file_offset, e.length))
    };
    [guid::REGION_BAT, guid::REGION_METADATA]
        .into_iter()
        .all(|g| at(a, g) == at(b, g))
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

/// A finding on region table copy `ti` at most at `cap`. `describe` gives the structure,
/// the fault and what follows from it for readers of the copy in use; on the other copy
/// `note` (only redundancy is lost) takes the place of that consequence.
fn emit_copy(
    s: &mut Sink,
    id: RuleId,
    (cap, note): (Severity, &'static str),
    loc: Loc,
    describe: impl FnOnce() -> (String, String, &'static str),
) {
    s.emit_at_most(id, cap, loc, || {
        let (structure, fault, follows) = describe();
        if note.is_empty() {
            (structure, format!("{fault}: {follows}"))
        } else {
            (structure, fault + note)
        }
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
            emit_copy(s, id::RGN_009, (cap, note), Loc::at(eoff, 16), || {
                (
                    st(),
                    format!("region GUID {} also used by entry[{first}]", e.guid),
                    if known {
                        "QEMU refuses the file, other readers may take either entry and locate the region differently"
                    } else {
                        "readers may take either entry"
                    },
                )
            });
        } else {
            seen.insert(e.guid, i);
        }
        if e.file_offset % MIB != 0 {
            emit_copy(s, id::RGN_010, (cap, note), Loc::at(eoff + 16, 8), || {
                (
                    st(),
                    format!(
                        "{kind} region FileOffset {} is not 1 MiB aligned",
                        hex(e.file_offset)
                    ),
                    "readers may refuse the file",
                )
            });
        }
        if e.file_offset < MIB {
            emit_copy(s, id::RGN_011, (cap, note), Loc::at(eoff + 16, 8), || {
                (
                    st(),
                    format!(
                        "{kind} region FileOffset {} lies inside the 1 MiB header section",
                        hex(e.file_offset)
                    ),
                    "a reader would take header section bytes for the region",
                )
            });
        }
        if e.length as u64 % MIB != 0 {
            emit_copy(s, id::RGN_012, (cap, note), Loc::at(eoff + 24, 4), || {
                (
                    st(),
                    format!(
                        "{kind} region Length {} is not a multiple of 1 MiB",
                        hex(e.length as u64)
                    ),
                    "readers may refuse the file",
                )
            });
        }
        if e.length == 0 {
            emit_copy(s, id::RGN_013, (cap, note), Loc::at(eoff + 24, 4), || {
                (
                    st(),
                    format!("{kind} region has Length 0"),
                    match kind {
                        "BAT" => "no BAT entry can be read, so no block of the disk can be located",
                        "Metadata" => {
                            "the metadata table cannot be read, so the disk's size and block size are unknown"
                        }
                        _ => "the region holds nothing",
                    },
                )
            });
        }
        match e.end() {
            Some(end) if end <= m.file_size => {}
            end => emit_copy(
                s,
                id::RGN_014,
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
                        if e.file_offset < m.file_size {
                            "part of the region is missing (the file is truncated or the entry is wrong) and cannot be read"
                        } else {
                            "the whole region lies past the end (the file is truncated or the entry is wrong) and cannot be read"
                        },
                    )
                },
            ),
        }
        if e.required & !1 != 0 {
            emit_copy(s, id::RGN_015, (cap, note), Loc::at(eoff + 28, 4), || {
                (
                    st(),
                    format!("Required field {:#x} has reserved bits set", e.required),
                    "readers ignore them",
                )
            });
        }
        let required = e.required & 1 != 0;
        if !known && required {
            emit_copy(s, id::RGN_016, (cap, note), Loc::at(eoff, 32), || {
                (
                    st(),
                    format!(
                        "unknown region {} at {} is marked Required",
                        e.guid,
                        hex(e.file_offset)
                    ),
                    "a conforming reader must refuse the file, so Hyper-V and QEMU do not open it",
                )
            });
        }
        if !known && !required {
            emit_copy(
                s,
                id::RGN_017,
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
                        "readers ignore it; its bytes are not part of the virtual disk and may hold other data",
                    )
                },
            );
        }
        if known && e.required != 1 {
            emit_copy(s, id::RGN_020, (cap, note), Loc::at(eoff + 28, 4), || {
                (
                    st(),
                    format!(
                        "{kind} region entry has Required = {} (the specification lists it as required)",
                        e.required
                    ),
                    "readers know the region and open the file anyway (qemu-img writes Required = 0)",
                )
            });
        }
    }
    let table = Loc::at(base, SIZE as u64);
    let has = |g: guid::Guid| entries.iter().any(|e| e.guid == g);
    if !has(guid::REGION_BAT) {
        emit_copy(s, id::RGN_018, (cap, note), table, || {
            (
                table_name(ti),
                "the region table has no BAT region entry".into(),
                "no reader can locate the disk's blocks, so readers refuse the image; the BAT is not checked",
            )
        });
    }
    if !has(guid::REGION_METADATA) {
        emit_copy(s, id::RGN_019, (cap, note), table, || {
            (
                table_name(ti),
                "the region table has no Metadata region entry".into(),
                "readers cannot learn the disk's size or block size and refuse the image",
            )
        });
    }
}
