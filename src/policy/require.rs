//! Requirement checks of a policy (`[require]`): one check per POLICY id, each over the
//! model like a rule pass. A requirement whose value cannot be read fails closed
//! (POLICY-009), so a damaged image never passes a gate by hiding the value.

use super::Requirements;
use crate::findings::{Loc, RuleId, id};
use crate::format::guid;
use crate::format::metadata::{self, KnownItem};
use crate::format::region;
use crate::model::Model;
use crate::rules::sink::Sink;
use crate::rules::{hex, value_loc};

/// One requirement: the POLICY ids it may report (its own and POLICY-009) and its check.
pub struct Check {
    pub ids: &'static [RuleId],
    pub run: fn(&Model, &Requirements, &mut Sink),
}

/// Every requirement check, in evaluation order.
pub const CHECKS: &[Check] = &[
    Check {
        ids: &[id::POLICY_001, UNKNOWN],
        run: disk_type,
    },
    Check {
        ids: &[id::POLICY_002, UNKNOWN],
        run: virtual_size,
    },
    Check {
        ids: &[id::POLICY_003, UNKNOWN],
        run: block_size,
    },
    Check {
        ids: &[id::POLICY_004, UNKNOWN],
        run: logical_sector_size,
    },
    Check {
        ids: &[id::POLICY_005, UNKNOWN],
        run: parent,
    },
    Check {
        ids: &[id::POLICY_006, UNKNOWN],
        run: pending_log,
    },
    Check {
        ids: &[id::POLICY_007, UNKNOWN],
        run: unknown_regions,
    },
    Check {
        ids: &[id::POLICY_008, UNKNOWN],
        run: unknown_items,
    },
];

/// Every POLICY id some check emits (each once).
pub fn implemented_ids() -> impl Iterator<Item = &'static str> {
    let mut ids: Vec<_> = (CHECKS.iter())
        .flat_map(|c| c.ids.iter().map(|i| i.as_str()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
}

/// Shared by every check: the requirement's value could not be read.
const UNKNOWN: RuleId = id::POLICY_009;

pub fn run(m: &Model, req: &Requirements, s: &mut Sink) {
    for c in CHECKS {
        s.begin_pass(c.ids);
        (c.run)(m, req, s);
    }
}

/// POLICY-009: `key` cannot be evaluated because `what` could not be read.
fn cannot_evaluate(s: &mut Sink, key: &str, what: &str) {
    s.emit(UNKNOWN, Loc::NONE, || {
        (
            "policy".into(),
            format!(
                "requirement {key} cannot be evaluated: {what} could not be read, so it counts as not met (the gate fails closed); the structural findings say why"
            ),
        )
    });
}

/// `len` bytes at `at` inside a known item's value (a field of File Parameters).
fn field_loc(m: &Model, k: KnownItem, at: u64, len: u64) -> Loc {
    match value_loc(m, k).offset {
        Some(o) => Loc::at(o + at, len),
        None => Loc::NONE,
    }
}

fn item_name(k: KnownItem) -> String {
    format!("metadata.item[{}]", k.name())
}

fn disk_type(m: &Model, req: &Requirements, s: &mut Sink) {
    let Some(allowed) = &req.disk_types else {
        return;
    };
    let Some(t) = m.disk_type else {
        return cannot_evaluate(s, "disk_types", "the File Parameters item");
    };
    if !allowed.contains(&t) {
        s.emit(
            id::POLICY_001,
            value_loc(m, KnownItem::FileParameters),
            || {
                let names: Vec<_> = allowed.iter().map(|t| t.name()).collect();
                (
                    item_name(KnownItem::FileParameters),
                    format!(
                        "disk type is {}; the policy allows {}: convert it to an allowed type or change require.disk_types",
                        t.name(),
                        names.join(", ")
                    ),
                )
            },
        );
    }
}

fn virtual_size(m: &Model, req: &Requirements, s: &mut Sink) {
    let Some(max) = req.max_virtual_size else {
        return;
    };
    let Some(vds) = m.params.virtual_disk_size else {
        return cannot_evaluate(s, "max_virtual_size", "the Virtual Disk Size item");
    };
    if vds > max {
        s.emit(
            id::POLICY_002,
            value_loc(m, KnownItem::VirtualDiskSize),
            || {
                (
                    item_name(KnownItem::VirtualDiskSize),
                    format!(
                        "VirtualDiskSize {vds} bytes is above the policy maximum of {max} bytes: shrink the disk or raise require.max_virtual_size"
                    ),
                )
            },
        );
    }
}

fn block_size(m: &Model, req: &Requirements, s: &mut Sink) {
    let Some(allowed) = &req.block_sizes else {
        return;
    };
    let Some(bs) = m.params.block_size else {
        return cannot_evaluate(s, "block_sizes", "the File Parameters item");
    };
    if !allowed.contains(&(bs as u64)) {
        // BlockSize is the first field of File Parameters.
        let loc = field_loc(m, KnownItem::FileParameters, 0, 4);
        s.emit(id::POLICY_003, loc, || {
            (
                item_name(KnownItem::FileParameters),
                format!(
                    "BlockSize is {} ({bs} bytes); the policy allows {}: convert it with an allowed block size or add this one to require.block_sizes",
                    hex(bs as u64),
                    list(allowed)
                ),
            )
        });
    }
}

fn logical_sector_size(m: &Model, req: &Requirements, s: &mut Sink) {
    let Some(allowed) = &req.logical_sector_sizes else {
        return;
    };
    let Some(lss) = m.params.logical_sector_size else {
        return cannot_evaluate(s, "logical_sector_sizes", "the Logical Sector Size item");
    };
    if !allowed.contains(&lss) {
        s.emit(
            id::POLICY_004,
            value_loc(m, KnownItem::LogicalSectorSize),
            || {
                (
                    item_name(KnownItem::LogicalSectorSize),
                    format!(
                        "LogicalSectorSize is {lss}; the policy allows {}: recreate it with an allowed sector size or change require.logical_sector_sizes",
                        list(allowed)
                    ),
                )
            },
        );
    }
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// A parent is HasParent set, or a parent locator item present (which a reader might
/// follow even with the flag clear).
fn parent(m: &Model, req: &Requirements, s: &mut Sink) {
    if req.allow_parent {
        return;
    }
    let Some(has_parent) = m.params.has_parent() else {
        return cannot_evaluate(s, "allow_parent", "the File Parameters item");
    };
    if has_parent {
        // The flags are the second field of File Parameters.
        let loc = field_loc(m, KnownItem::FileParameters, 4, 4);
        s.emit(id::POLICY_005, loc, || {
            (
                item_name(KnownItem::FileParameters),
                "HasParent is set: a differencing disk, which the policy forbids: its contents depend on a parent the gate does not see; merge it into a standalone image or set require.allow_parent".into(),
            )
        });
    } else if let Some(li) = &m.parent_locator {
        s.emit(
            id::POLICY_005,
            Loc::at(li.file_offset, li.bytes.len() as u64),
            || {
                (
                    item_name(KnownItem::ParentLocator),
                    "a Parent Locator item is present (HasParent is clear); the policy forbids parents: a reader that follows it depends on a file the gate does not see; convert the image or set require.allow_parent".into(),
                )
            },
        );
    }
}

fn pending_log(m: &Model, req: &Requirements, s: &mut Sink) {
    if req.allow_pending_log {
        return;
    }
    let Some(i) = m.header_choice.index() else {
        return cannot_evaluate(s, "allow_pending_log", "a valid header");
    };
    let h = &m.headers[i].header;
    if h.log_guid.is_zero() {
        return;
    }
    // A set LogGuid whose sequence is already applied changes nothing (LOG-004): accepted.
    let (why, way_on) = match m.log() {
        Some(log) if log.plan.is_some() && !log.dirty() => return,
        Some(log) if log.plan.is_some() => (
            "replay would change the file (LOG-003)",
            "check the replayed copy `vhdx-check replay` writes instead",
        ),
        Some(_) => (
            "the log holds no valid sequence (LOG-002)",
            "nothing can be replayed to clear it",
        ),
        None => (
            "the header locates no usable log",
            "nothing can be replayed to clear it",
        ),
    };
    // LogGuid is at byte 48 of the header (MS-VHDX 2.2.2).
    let at = m.headers[i].slot.offset + 48;
    s.emit(id::POLICY_006, Loc::at(at, 16), || {
        (
            format!("header[{}].log_guid", i + 1),
            format!(
                "the current header's LogGuid is {}: the log is pending replay ({why}), which the policy forbids: {way_on}, or set require.allow_pending_log to accept it",
                h.log_guid
            ),
        )
    });
}

fn unknown_regions(m: &Model, req: &Requirements, s: &mut Sink) {
    if req.allow_unknown_regions {
        return;
    }
    let Some(t) = m.region_choice else {
        return cannot_evaluate(s, "allow_unknown_regions", "a valid region table");
    };
    let base = m.region_tables[t].slot.offset;
    for (i, e) in m.regions().iter().enumerate() {
        if e.guid == guid::REGION_BAT || e.guid == guid::REGION_METADATA {
            continue;
        }
        let at = base + region::entry_offset(i) as u64;
        s.emit(id::POLICY_007, Loc::at(at, region::ENTRY_SIZE as u64), || {
            (
                format!("region_table[{}].entry[{i}]", t + 1),
                format!(
                    "region {} ({} bytes at {}) is not a BAT or metadata region; the policy forbids other regions: it may carry data no reader of the disk sees; convert the image or set require.allow_unknown_regions",
                    e.guid,
                    e.length,
                    hex(e.file_offset)
                ),
            )
        });
    }
}

fn unknown_items(m: &Model, req: &Requirements, s: &mut Sink) {
    if req.allow_unknown_metadata_items {
        return;
    }
    let Some(md) = m.metadata.as_ref().filter(|md| md.signature_ok) else {
        return cannot_evaluate(s, "allow_unknown_metadata_items", "the metadata table");
    };
    for it in md.items.iter().filter(|it| it.known.is_none()) {
        let at = md.region.file_offset + metadata::entry_offset(it.index) as u64;
        s.emit(
            id::POLICY_008,
            Loc::at(at, metadata::ENTRY_SIZE as u64),
            || {
                let kind = if it.entry.is_user() { "user" } else { "unknown system" };
                (
                    format!("metadata.entry[{}]", it.index),
                    format!(
                        "{kind} metadata item {} ({} bytes at item offset {}); the policy forbids items the specification does not define: it may carry data no reader of the disk sees; convert the image or set require.allow_unknown_metadata_items",
                        it.entry.item_id,
                        it.entry.length,
                        hex(it.entry.offset as u64)
                    ),
                )
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::catalogue::catalogue;
    use std::collections::BTreeSet;

    #[test]
    fn every_catalogue_rule_has_a_check_and_every_check_a_rule() {
        // Both lists meet here: the rule passes below, the POLICY requirement checks.
        let implemented: BTreeSet<&str> = crate::engine::implemented_ids()
            .chain(super::implemented_ids())
            .collect();
        let catalogued: BTreeSet<&str> = catalogue()
            .rules()
            .filter(|r| r.deferred.is_none())
            .map(|r| r.id)
            .collect();
        let unchecked: Vec<_> = catalogued.difference(&implemented).collect();
        let undocumented: Vec<_> = implemented.difference(&catalogued).collect();
        assert!(
            unchecked.is_empty(),
            "rules in rules/*.toml without a check: {unchecked:?}"
        );
        assert!(
            undocumented.is_empty(),
            "checks without a rule entry: {undocumented:?}"
        );
        assert!(
            catalogue().rules().count() >= 121,
            "the six families hold 121 catalogue rules"
        );
    }
}
