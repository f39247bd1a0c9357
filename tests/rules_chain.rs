//! Per-rule tests of the CHAIN family (a child against its parent, CATALOGUE 2.9) on the
//! differencing baselines of `rules_parent`: each fires at the child's locator item or
//! header field it is about.

use crate::builder::*;
use crate::rules_metadata::{listing, one, report, with};
use crate::rules_parent::*;
use vhdx_check::check::check_with_parent;
use vhdx_check::model::{Model, ParentLink};
use vhdx_check::{CheckOptions, ImageReport, Severity};

// ---- chain (CHAIN-001..005) -----------------------------------------------------------

/// A parent of `shape` with 1 MiB blocks and seed 7 unless `shape` sets another one (the
/// child uses seed 1: the two have different DataWriteGuids and VirtualDiskIds).
fn parent_of(shape: ImageBuilder) -> Built {
    shape.block_size(BS).build()
}

/// A dynamic 64 MiB parent.
fn parent() -> Built {
    parent_of(ImageBuilder::dynamic(64 * MIB).seed(7))
}

/// The baseline child linked to `parent` (parent_linkage = its DataWriteGuid).
fn child_of(parent: &Built) -> Built {
    child()
        .parent_linkage(parent.layout.data_write_guid)
        .build()
}

/// Checks `child` with `parent` as its parent, found through `via`.
fn against(child: &Built, parent: &Built, via: Option<&'static str>) -> ImageReport {
    let link = ParentLink::of("parent.vhdx".into(), &Model::build(parent), via);
    check_with_parent(child, Some(link), &CheckOptions::default())
}

/// Asserts that `id` is silent in `clean` and fires once in `bad`, at `offset`.
#[track_caller]
fn chain_fires(clean: &ImageReport, bad: &ImageReport, id: &str, offset: Option<u64>) {
    assert!(
        !clean.has(id),
        "{id} fires on the clean chain:{}",
        listing(clean)
    );
    assert_eq!(one(bad, id).offset, offset, "{}", listing(bad));
}

#[test]
fn chain_baseline_is_clean() {
    let p = parent();
    let c = child_of(&p);
    let r = against(&c, &p, None);
    let chain: Vec<&str> = r
        .findings
        .iter()
        .map(|f| f.rule)
        .filter(|id| id.starts_with("CHAIN-"))
        .collect();
    assert!(chain.is_empty(), "{}", listing(&r));
    assert_eq!(r.worst(), Some(Severity::Info), "{}", listing(&r));
    // Without a parent no CHAIN rule runs at all, even for a wrong linkage.
    let r = report(&child().build());
    assert!(!r.ids().iter().any(|id| id.starts_with("CHAIN-")));
}

#[test]
fn chain_001_linkage_does_not_match_parent() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, None);
    // Another parent (the parent rewritten, or the wrong file).
    let other = parent_of(ImageBuilder::dynamic(64 * MIB).seed(8));
    let r = against(&c, &other, None);
    chain_fires(&clean, &r, "CHAIN-001", Some(loc(&c)));
    assert_eq!(one(&r, "CHAIN-001").severity, Severity::Error);
    // The parent's current header counts: the child matches header 1's DataWriteGuid only.
    let stale = with(&p, |b| {
        b.edit_header(2, |h| h[hdr::DATA_WRITE_GUID] ^= 0xFF)
    });
    let r = against(&c, &stale, None);
    chain_fires(&clean, &r, "CHAIN-001", Some(loc(&c)));
}

#[test]
fn chain_001_parent_linkage2_matches() {
    let p = parent();
    let linkage = guid_braced(&p.layout.data_write_guid);
    let c = child()
        .parent_locator(&[
            ("parent_linkage", LINKAGE),
            ("parent_linkage2", &linkage),
            ("relative_path", REL),
        ])
        .build();
    let r = against(&c, &p, None);
    assert!(!r.has("CHAIN-001"), "{}", listing(&r));
    // And uppercase text names the same GUID.
    let c = child()
        .parent_locator(&[
            ("parent_linkage", &linkage.to_uppercase()),
            ("relative_path", REL),
        ])
        .build();
    let r = against(&c, &p, None);
    assert!(!r.has("CHAIN-001"), "{}", listing(&r));
}

#[test]
fn chain_002_logical_sector_size_differs() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, None);
    let p4k = parent_of(ImageBuilder::dynamic(64 * MIB).seed(7).logical_sector(4096));
    let c4k = child().parent_linkage(p4k.layout.data_write_guid).build();
    let r = against(&c4k, &p4k, None);
    // At the child's Logical Sector Size item.
    let at = c4k.layout.item(&ITEM_LOGICAL_SECTOR_SIZE).data_offset;
    chain_fires(&clean, &r, "CHAIN-002", Some(at));
    assert_eq!(one(&r, "CHAIN-002").severity, Severity::Error);
    assert!(!r.has("CHAIN-001"), "{}", listing(&r));
}

#[test]
fn chain_003_virtual_size_differs() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, None);
    let big = parent_of(ImageBuilder::dynamic(128 * MIB).seed(7));
    let big_child = child_of(&big);
    let r = against(&big_child, &big, None);
    let at = big_child.layout.item(&ITEM_VIRTUAL_DISK_SIZE).data_offset;
    chain_fires(&clean, &r, "CHAIN-003", Some(at));
    assert_eq!(one(&r, "CHAIN-003").severity, Severity::Warning);
    // The child is the smaller: only the parent's tail is outside the child's disk.
    let m = &one(&r, "CHAIN-003").message;
    let tail = format!(
        "the parent's bytes past byte {} are not part of the child's disk",
        64 * MIB
    );
    assert!(m.contains(&tail), "{m}");
}

#[test]
fn chain_004_same_virtual_disk_id() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, None);
    let same = with(&c, |b| {
        b.metadata_item_mut(&ITEM_VIRTUAL_DISK_ID, |d| {
            d.copy_from_slice(&p.layout.virtual_disk_id)
        })
    });
    let r = against(&same, &p, None);
    let at = same.layout.item(&ITEM_VIRTUAL_DISK_ID).data_offset;
    chain_fires(&clean, &r, "CHAIN-004", Some(at));
    assert_eq!(one(&r, "CHAIN-004").severity, Severity::Info);
}

#[test]
fn chain_005_found_through_lower_priority_key() {
    let p = parent();
    let c = child_of(&p);
    let clean = against(&c, &p, Some("relative_path"));
    assert!(!against(&c, &p, None).has("CHAIN-005"));
    for via in ["volume_path", "absolute_win32_path"] {
        let r = against(&c, &p, Some(via));
        chain_fires(&clean, &r, "CHAIN-005", Some(loc(&c)));
        assert!(
            one(&r, "CHAIN-005").message.contains(via),
            "{}",
            listing(&r)
        );
    }
}
