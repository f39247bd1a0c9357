//! What the page needs from an image beyond its report ([`Parts`]), computed from the
//! models the check judged: the info document, the file map, hex previews, the
//! virtual-disk map and the chain.

use super::file_map::{FileMap, file_map};
use super::virtual_disk::{VirtualMap, virtual_map};
use super::{MAX_PREVIEWS, PREVIEW_BYTES, PREVIEW_SEARCH};
use crate::check::ImageReport;
use crate::findings::{Finding, View};
use crate::model::Model;
use crate::model::virtual_disk::VirtualDisk;
use crate::report::HIDDEN_DATA_RULES;
use serde_json::Value;
use std::collections::BTreeMap;

/// A member of the chain the image was checked in, as the chain resolver found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainMember {
    pub path: String,
    /// The locator key that found it; `None` for the child and for `--parent` files.
    pub found_via: Option<&'static str>,
    /// Why the chain ends here although the member is differencing: rule and message
    /// (CHAIN-006..008).
    pub broken: Option<(&'static str, String)>,
}

/// What the page shows of one image beyond its report, computed where the check's models
/// exist (the batch worker) and owned, so the evidence is never read again by name after
/// the verdict: the page shows the file the verdict is about. Bounded in size whatever
/// the image.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    /// The `info` document ([`crate::report::info::collect`]) of the RAW model.
    pub info: Option<Value>,
    pub map: Option<FileMap>,
    /// Hex previews by finding index.
    pub previews: BTreeMap<usize, HexPreview>,
    /// The virtual-disk map, or why there is none.
    pub virtual_disk: Option<Result<VirtualMap, String>>,
    /// The chain the image was checked in (empty: checked alone), child first.
    pub chain: Vec<ChainMember>,
    /// This image's place in `chain`.
    pub chain_index: usize,
}

impl Parts {
    /// The info document, the file map and the hex previews of `raw` (the RAW model of
    /// the image `report` is of), and the virtual-disk map of `replayed`/`raw` when the
    /// disk is not differencing (a differencing disk's goes through its parents:
    /// [`Parts::virtual_disk`] is filled by the chain's caller).
    pub fn collect(raw: &Model, replayed: Option<&Model>, report: &ImageReport) -> Parts {
        let differencing = raw.disk_type == Some(crate::model::DiskType::Differencing);
        // As a guest reads it: the REPLAYED model when the log is pending.
        let virtual_disk = if differencing {
            Err(NOT_THROUGH_PARENTS.to_string())
        } else {
            VirtualDisk::new(&[(replayed.unwrap_or(raw), raw.src.len())])
                .map(|vd| virtual_map(&vd, &["this file".to_string()]))
        };
        Parts {
            info: Some(crate::report::info::collect(raw)),
            map: Some(file_map(raw)),
            previews: previews(raw, &report.findings),
            virtual_disk: Some(virtual_disk),
            chain: Vec::new(),
            chain_index: 0,
        }
    }
}

/// The virtual-disk map of a differencing disk whose parents were not resolved.
pub const NOT_THROUGH_PARENTS: &str = "a differencing disk: unwritten sectors are read from its parent; check it with --find-parents (or --parent) for its map through the chain, or run `vhdx-check map --find-parents`";

/// Bytes of the file shown under a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexPreview {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// Bytes at the first non-zero byte of each hidden-data finding's range (bounded count,
/// bounded search), and at the offset of findings with a short range of their own.
fn previews(m: &Model, findings: &[Finding]) -> BTreeMap<usize, HexPreview> {
    let mut out = BTreeMap::new();
    for (i, f) in findings.iter().enumerate() {
        if out.len() >= MAX_PREVIEWS {
            break;
        }
        if f.view != View::Raw || !HIDDEN_DATA_RULES.contains(&f.rule) {
            continue;
        }
        let (Some(off), Some(len)) = (f.offset, f.length) else {
            continue;
        };
        let Some(at) = crate::io::first_nonzero(m.src, off, len.min(PREVIEW_SEARCH)) else {
            continue;
        };
        let n = (off.saturating_add(len).saturating_sub(at)).min(PREVIEW_BYTES as u64) as usize;
        let (bytes, got) = crate::io::read_vec(m.src, at, n);
        if got > 0 {
            out.insert(
                i,
                HexPreview {
                    offset: at,
                    bytes: bytes[..got.min(bytes.len())].to_vec(),
                },
            );
        }
    }
    out
}
