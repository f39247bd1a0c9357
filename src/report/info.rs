//! `info`: everything parsed, as a forensic dump (JSON, or the same tree as text).

use crate::format::bat::{self, Geometry};
use crate::format::guid::Guid;
use crate::model::{DiskType, Model, Params};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;

#[derive(Serialize)]
struct Info<'a> {
    file_size: u64,
    signature: String,
    creator: &'a str,
    headers: Vec<HeaderInfo<'a>>,
    current_header: String,
    region_tables: Vec<RegionTableInfo>,
    region_table_used: Option<usize>,
    metadata: Option<MetadataInfo>,
    parameters: &'a Params,
    disk_type: Option<DiskType>,
    geometry: Option<Geometry>,
    bat: Option<BatInfo>,
    parent_locator: Option<LocatorInfo>,
    log: Option<LogInfo>,
}

/// Entries and descriptors listed at most (the counts are always complete).
const MAX_LISTED_ENTRIES: usize = 1024;
const MAX_LISTED_DESCRIPTORS: u32 = 64;

#[derive(Serialize)]
struct LogInfo {
    offset: u64,
    length: u64,
    log_guid: Guid,
    state: String,
    entry_count: usize,
    entries: Vec<EntryInfo>,
    sequences: Vec<ScanInfo>,
    replay: Option<ReplayInfo>,
    bounds: Vec<String>,
}

#[derive(Serialize)]
struct EntryInfo {
    ring_offset: u64,
    file_offset: u64,
    sequence_number: u64,
    log_guid: Guid,
    entry_length: u32,
    tail: u32,
    descriptor_count: u32,
    data_descriptors: u32,
    flushed_file_offset: u64,
    last_file_offset: u64,
    checksum_ok: bool,
    valid_strict: bool,
    valid_lenient: bool,
    /// Ids of the entry predicates it fails.
    fails: Vec<&'static str>,
    replayed: bool,
    descriptors: Vec<DescriptorInfo>,
}

#[derive(Serialize)]
struct DescriptorInfo {
    index: usize,
    slot_offset: u64,
    #[serde(flatten)]
    descriptor: crate::format::log::Descriptor,
}

#[derive(Serialize)]
struct ScanInfo {
    mode: &'static str,
    /// Valid sequences: ring offsets of their entries, in order.
    sequences: Vec<Vec<u64>>,
    active_head_sequence: Option<u64>,
    /// Ring offsets of the entries replay applies, in order.
    replayed: Vec<u64>,
}

#[derive(Serialize)]
struct ReplayInfo {
    dirty: bool,
    size_before: u64,
    size_after: u64,
    descriptors_applied: usize,
    changes: Vec<ChangeInfo>,
}

#[derive(Serialize)]
struct ChangeInfo {
    offset: u64,
    length: u64,
    structure: String,
}

fn log_info(m: &Model) -> Option<LogInfo> {
    use crate::model::log::Mode;
    let log = m.log()?;
    let strict = log.scan(Mode::Strict);
    let replayed: std::collections::BTreeSet<usize> = strict
        .map(|s| s.replayed.iter().copied().collect())
        .unwrap_or_default();
    let state = if log.log_guid.is_zero() {
        "empty: LogGuid is zero (entries are history, nothing is replayed)".to_string()
    } else if log.plan.is_none() {
        "corrupt: LogGuid is set but no valid sequence (LOG-002)".to_string()
    } else if log.dirty() {
        "replay pending (LOG-003)".to_string()
    } else {
        "already applied (LOG-004)".to_string()
    };
    let entries = (log.entries.iter().enumerate().take(MAX_LISTED_ENTRIES))
        .map(|(i, e)| EntryInfo {
            ring_offset: e.pos,
            file_offset: log.file_offset(e.pos),
            sequence_number: e.seq(),
            log_guid: e.header.log_guid,
            entry_length: e.header.entry_length,
            tail: e.header.tail,
            descriptor_count: e.header.descriptor_count,
            data_descriptors: e.data_descriptors,
            flushed_file_offset: e.header.flushed_file_offset,
            last_file_offset: e.header.last_file_offset,
            checksum_ok: e.computed_checksum == Some(e.header.checksum),
            valid_strict: e.valid(Mode::Strict),
            valid_lenient: e.valid(Mode::Lenient),
            fails: e.fails.iter().map(|p| p.id().as_str()).collect(),
            replayed: replayed.contains(&i),
            descriptors: log
                .descriptors(m.src, i, MAX_LISTED_DESCRIPTORS)
                .into_iter()
                .enumerate()
                .map(|(index, (slot_offset, descriptor))| DescriptorInfo {
                    index,
                    slot_offset,
                    descriptor,
                })
                .collect(),
        })
        .collect();
    let sequences = (log.scans.iter())
        .map(|s| ScanInfo {
            mode: s.mode.name(),
            sequences: (s.runs.iter())
                .map(|r| r.entries.iter().map(|&i| log.entries[i].pos).collect())
                .collect(),
            active_head_sequence: s.active_run().map(|r| log.entries[r.head()].seq()),
            replayed: s.replayed.iter().map(|&i| log.entries[i].pos).collect(),
        })
        .collect();
    let names = crate::model::names::Namer::new(m);
    let replay = log.plan.as_ref().map(|_| ReplayInfo {
        dirty: log.dirty(),
        size_before: m.file_size,
        size_after: log.replayed_size,
        descriptors_applied: log.applied.len(),
        changes: (log.changes.iter())
            .map(|c| ChangeInfo {
                offset: c.offset,
                length: c.length,
                structure: names.range(c.offset, c.offset + c.length),
            })
            .collect(),
    });
    Some(LogInfo {
        offset: log.offset,
        length: log.length,
        log_guid: log.log_guid,
        state,
        entry_count: log.entries.len(),
        entries,
        sequences,
        replay,
        bounds: log.bound.clone(),
    })
}

#[derive(Serialize)]
struct LocatorInfo {
    offset: u64,
    locator_type: Option<Guid>,
    key_value_count: Option<u16>,
    entries: Vec<KeyValue>,
}

#[derive(Serialize)]
struct KeyValue {
    entry: usize,
    key: String,
    value: String,
}

#[derive(Serialize)]
struct HeaderInfo<'a> {
    copy: usize,
    offset: u64,
    valid: bool,
    signature_ok: bool,
    checksum_ok: bool,
    computed_checksum: String,
    #[serde(flatten)]
    header: &'a crate::format::header::Header,
}

#[derive(Serialize)]
struct RegionTableInfo {
    copy: usize,
    offset: u64,
    valid: bool,
    entry_count: u32,
    entries: Vec<RegionInfo>,
}

#[derive(Serialize)]
struct RegionInfo {
    kind: &'static str,
    guid: Guid,
    file_offset: u64,
    length: u32,
    required: u32,
}

#[derive(Serialize)]
struct MetadataInfo {
    offset: u64,
    length: u32,
    signature_ok: bool,
    entry_count: u16,
    items: Vec<ItemInfo>,
}

#[derive(Serialize)]
struct ItemInfo {
    name: String,
    item_id: Guid,
    offset: u32,
    length: u32,
    is_user: bool,
    is_virtual_disk: bool,
    is_required: bool,
}

#[derive(Serialize)]
struct BatInfo {
    offset: u64,
    region_entries: u64,
    entries_used: Option<u64>,
    payload_states: serde_json::Map<String, Value>,
    sector_bitmap_states: serde_json::Map<String, Value>,
}

fn bat_info(m: &Model) -> Option<BatInfo> {
    let view = m.bat?;
    let mut payload = [0u64; 8];
    let mut sb = [0u64; 8];
    let limit = m.geometry.map_or(view.readable_entries, |g| {
        g.total_entries.min(view.readable_entries)
    });
    m.for_each_bat_chunk(|first, entries| {
        for (k, e) in entries.iter().enumerate() {
            let i = first + k as u64;
            if i >= limit {
                return false;
            }
            match m.geometry {
                Some(g) if g.is_sector_bitmap_index(i) => sb[e.state() as usize] += 1,
                _ => payload[e.state() as usize] += 1,
            }
        }
        true
    });
    let named = |counts: [u64; 8], name: fn(u8) -> &'static str| {
        (0u8..8)
            .filter(|&s| counts[s as usize] > 0)
            .map(|s| {
                (
                    format!("{} ({s})", name(s)),
                    Value::from(counts[s as usize]),
                )
            })
            .collect()
    };
    Some(BatInfo {
        offset: view.offset,
        region_entries: view.region_entries,
        entries_used: m.geometry.map(|g| g.total_entries),
        payload_states: named(payload, bat::payload_state_name),
        sector_bitmap_states: named(sb, bat::sb_state_name),
    })
}

pub fn collect(m: &Model) -> Value {
    let info = Info {
        file_size: m.file_size,
        signature: crate::format::display::preview(&m.identifier.signature),
        creator: &m.identifier.creator,
        headers: m
            .headers
            .iter()
            .enumerate()
            .map(|(i, c)| HeaderInfo {
                copy: i + 1,
                offset: c.slot.offset,
                valid: c.valid(),
                signature_ok: c.signature_ok,
                checksum_ok: c.checksum_ok,
                computed_checksum: format!("{:#010x}", c.computed_checksum),
                header: &c.header,
            })
            .collect(),
        current_header: m.header_choice.describe(),
        region_tables: m
            .region_tables
            .iter()
            .enumerate()
            .map(|(i, c)| RegionTableInfo {
                copy: i + 1,
                offset: c.slot.offset,
                valid: c.valid(),
                entry_count: c.table.entry_count,
                entries: c
                    .table
                    .entries
                    .iter()
                    .map(|e| RegionInfo {
                        kind: Model::region_name(&e.guid),
                        guid: e.guid,
                        file_offset: e.file_offset,
                        length: e.length,
                        required: e.required,
                    })
                    .collect(),
            })
            .collect(),
        region_table_used: m.region_choice.map(|i| i + 1),
        metadata: m.metadata.as_ref().map(|md| MetadataInfo {
            offset: md.region.file_offset,
            length: md.region.length,
            signature_ok: md.signature_ok,
            entry_count: md.table.entry_count,
            items: md
                .items
                .iter()
                .map(|it| ItemInfo {
                    name: it.known.map_or("unknown".into(), |k| k.name().into()),
                    item_id: it.entry.item_id,
                    offset: it.entry.offset,
                    length: it.entry.length,
                    is_user: it.entry.is_user(),
                    is_virtual_disk: it.entry.is_virtual_disk(),
                    is_required: it.entry.is_required(),
                })
                .collect(),
        }),
        parameters: &m.params,
        disk_type: m.disk_type,
        geometry: m.geometry,
        bat: bat_info(m),
        parent_locator: m.parent_locator.as_ref().map(|li| LocatorInfo {
            offset: li.file_offset,
            locator_type: li.locator.as_ref().map(|l| l.locator_type),
            key_value_count: li.locator.as_ref().map(|l| l.key_value_count),
            entries: m
                .locator_pairs()
                .into_iter()
                .map(|(entry, key, value)| KeyValue { entry, key, value })
                .collect(),
        }),
        log: log_info(m),
    };
    serde_json::to_value(info).unwrap_or(Value::Null)
}

/// The `info --format json` document: `schema`, `tool` and `path` (with `path_bytes`
/// when the path is not UTF-8) as in `check`'s, then everything collected.
pub fn envelope(image: &std::path::Path, info: Value) -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert("schema".into(), Value::from(super::json::SCHEMA));
    doc.insert("tool".into(), super::json::tool());
    doc.insert("path".into(), Value::from(super::path_str(image)));
    if image.to_str().is_none() {
        let hex = crate::hash::hex(&super::path_bytes(image));
        doc.insert("path_bytes".into(), Value::from(hex));
    }
    if let Value::Object(rest) = info {
        doc.extend(rest);
    }
    Value::Object(doc)
}

/// Renders a JSON tree as indented `key: value` lines.
pub fn to_text(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    out
}

fn write_value(out: &mut String, v: &Value, depth: usize) {
    let pad = "  ".repeat(depth);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Array(a) if !a.is_empty() && a.iter().all(is_scalar) => {
                        let items: Vec<String> = a.iter().map(scalar).collect();
                        let _ = writeln!(out, "{pad}{k}: [{}]", items.join(", "));
                    }
                    Value::Object(_) | Value::Array(_) if !is_empty(v) => {
                        let _ = writeln!(out, "{pad}{k}:");
                        write_value(out, v, depth + 1);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}{k}: {}", scalar(v));
                    }
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                match v {
                    Value::Array(a) if a.iter().all(is_scalar) => {
                        let items: Vec<String> = a.iter().map(scalar).collect();
                        let _ = writeln!(out, "{pad}- [{}]", items.join(", "));
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}-");
                        write_value(out, v, depth + 1);
                    }
                }
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}{}", scalar(v));
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        // Strings from the image (creator, locator keys and values): one line each.
        Value::String(s) => super::escape_controls(s).into_owned(),
        Value::Number(n) => match n.as_u64() {
            Some(u) if u >= 4096 => format!("{u} ({u:#x})"),
            _ => n.to_string(),
        },
        Value::Null => "-".into(),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}
