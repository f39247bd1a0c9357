//! CHAIN: a differencing disk against its parent (CATALOGUE 2.9), when the parent was
//! supplied (`--parent`) or found (`--find-parents`).

use super::metadata::value_loc;
use super::sink::Sink;
use super::{Pass, Scope, id};
use crate::findings::Loc;
use crate::format::metadata::KnownItem;
use crate::format::parent;
use crate::model::{ChainBreak, Model};

pub const PASSES: &[Pass] = &[Pass {
    ids: &[
        id::CHAIN_001,
        id::CHAIN_002,
        id::CHAIN_003,
        id::CHAIN_004,
        id::CHAIN_005,
        id::CHAIN_006,
        id::CHAIN_007,
        id::CHAIN_008,
    ],
    scope: Scope::Views,
    run,
}];

fn run(m: &Model, s: &mut Sink) {
    let locator = m.parent_locator.as_ref().map_or(Loc::NONE, |li| {
        Loc::at(li.file_offset, li.bytes.len() as u64)
    });
    if let Some(b) = &m.chain_break {
        let (id, what) = match b {
            ChainBreak::Missing(t) => (id::CHAIN_006, t),
            ChainBreak::Loop(t) => (id::CHAIN_007, t),
            ChainBreak::Depth(t) => (id::CHAIN_008, t),
        };
        s.emit(id, locator, || ("chain".into(), what.clone()));
    }
    let Some(p) = &m.parent else { return };
    if let Some(dwg) = p.data_write_guid
        && let Err(names) = m.linkage_matches(dwg)
    {
        s.emit(id::CHAIN_001, locator, || {
            (
                "chain".into(),
                format!(
                    "parent {} has DataWriteGuid {dwg}, but {names}: the parent changed after the child was made, or it is the wrong file, and reading the child through it gives corrupt data",
                    p.path
                ),
            )
        });
    }
    let (child, par) = (&m.params, p);
    if let (Some(a), Some(b)) = (child.logical_sector_size, par.logical_sector_size)
        && a != b
    {
        s.emit(
            id::CHAIN_002,
            value_loc(m, KnownItem::LogicalSectorSize),
            || {
                (
                    "chain".into(),
                    format!(
                        "logical sector size {a} differs from the parent's {b} ({}): readers refuse the chain; check that this is the right parent",
                        p.path
                    ),
                )
            },
        );
    }
    if let (Some(a), Some(b)) = (child.virtual_disk_size, par.virtual_disk_size)
        && a != b
    {
        s.emit(
            id::CHAIN_003,
            value_loc(m, KnownItem::VirtualDiskSize),
            || {
                (
                    "chain".into(),
                    format!(
                        "virtual disk size {a} differs from the parent's {b} ({}): {}; check that this is the right parent, or whether the child was resized",
                        p.path,
                        if a > b {
                            format!("reads of the child past byte {b} that it does not hold itself are undefined (zeros or an error, depending on the reader)")
                        } else {
                            format!("the parent's bytes past byte {a} are not part of the child's disk")
                        }
                    ),
                )
            },
        );
    }
    if let (Some(a), Some(b)) = (child.virtual_disk_id, par.virtual_disk_id)
        && a == b
    {
        s.emit(id::CHAIN_004, value_loc(m, KnownItem::VirtualDiskId), || {
            (
                "chain".into(),
                format!("child and parent share VirtualDiskId {a} (expected for VHDX children): it confirms the pair"),
            )
        });
    }
    if let Some(key) = p.found_via
        && key != parent::KEY_RELATIVE_PATH
    {
        s.emit(id::CHAIN_005, locator, || {
            (
                "chain".into(),
                format!(
                    "parent {} was found through {key}, not relative_path: the chain has moved, and the locator's paths record where it was before",
                    p.path
                ),
            )
        });
    }
}
