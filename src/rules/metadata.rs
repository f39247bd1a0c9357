//! META: the metadata region, its table and the known items (CATALOGUE 2.7).

use super::sink::Sink;
use super::{Pass, Scope, hex, id};
use crate::findings::Loc;
use crate::format::metadata::{self, KnownItem, MAX_ENTRIES, MAX_USER_ENTRIES, TABLE_SIZE};
use crate::format::{KIB, MIB};
use crate::model::{Item, Metadata, Model};
use std::collections::HashMap;

pub const PASSES: &[Pass] = &[
    Pass {
        ids: &[
            id::META_001,
            id::META_002,
            id::META_003,
            id::META_004,
            id::META_005,
            id::META_036,
        ],
        scope: Scope::Views,
        run: table,
    },
    Pass {
        ids: &[
            id::META_006,
            id::META_007,
            id::META_008,
            id::META_009,
            id::META_010,
            id::META_011,
            id::META_012,
            id::META_013,
            id::META_014,
            id::META_015,
            id::META_016,
            id::META_017,
            id::META_018,
            id::META_019,
            id::META_020,
            id::META_021,
            id::META_022,
            id::META_026,
            id::META_027,
            id::META_038,
        ],
        scope: Scope::Views,
        run: entries,
    },
    Pass {
        ids: &[
            id::META_023,
            id::META_024,
            id::META_025,
            id::META_028,
            id::META_029,
            id::META_030,
            id::META_031,
            id::META_032,
            id::META_033,
            id::META_034,
            id::META_035,
        ],
        scope: Scope::Views,
        run: values,
    },
    Pass {
        ids: &[id::META_037],
        scope: Scope::Views,
        run: free_space,
    },
];

fn entry_loc(md: &Metadata, i: usize) -> Loc {
    Loc::at(
        md.region.file_offset + metadata::entry_offset(i) as u64,
        metadata::ENTRY_SIZE as u64,
    )
}

/// " (what it is)" for an item another implementation defines, else nothing.
fn vendor_note(g: &crate::format::guid::Guid) -> String {
    metadata::vendor_item_name(g).map_or(String::new(), |n| format!(" ({n})"))
}

fn entry_name(i: usize) -> String {
    format!("metadata.entry[{i}]")
}

fn item_label(it: &Item) -> String {
    match it.known {
        Some(k) => k.name().to_string(),
        None => format!("item {}", it.entry.item_id),
    }
}

fn table(m: &Model, s: &mut Sink) {
    let Some(md) = &m.metadata else { return };
    let base = md.region.file_offset;
    if (md.region.length as u64) < 64 * KIB {
        s.emit(id::META_001, Loc::at(base, md.region.length as u64), || {
            (
                "metadata".into(),
                format!(
                    "metadata region Length {} cannot hold the 64 KiB table: the disk's size, block size and sector sizes cannot be read, so readers refuse the image",
                    hex(md.region.length as u64)
                ),
            )
        });
    }
    let t = &md.table;
    if !md.signature_ok {
        s.emit(id::META_002, Loc::at(base, 8), || {
            (
                "metadata.signature".into(),
                format!(
                    "metadata table signature is {} instead of \"metadata\"; its entries were not read{}: readers refuse the image, and without the disk's parameters the BAT is not checked",
                    crate::format::display::preview(&t.signature),
                    md.table_slot.truncation_note()
                ),
            )
        });
        return;
    }
    if t.reserved != 0 {
        s.emit(id::META_003, Loc::at(base + 8, 2), || {
            (
                "metadata.reserved".into(),
                format!(
                    "Reserved field is {:#x} (must be 0); readers ignore it",
                    t.reserved
                ),
            )
        });
    }
    if t.entry_count as usize > MAX_ENTRIES {
        s.emit(id::META_004, Loc::at(base + 10, 2), || {
            (
                "metadata.entry_count".into(),
                format!(
                    "EntryCount {} exceeds 2047; only 2047 entries were read: QEMU and other readers that enforce the limit refuse the image",
                    t.entry_count
                ),
            )
        });
    }
    if t.reserved2_nonzero {
        s.emit(id::META_005, Loc::at(base + 12, 20), || {
            (
                "metadata.reserved2".into(),
                "Reserved2 bytes 12..31 are not zero; readers ignore them".into(),
            )
        });
    }
    let used = metadata::entry_offset(t.entries.len());
    if let Some(first) = md.table_slot.first_nonzero(used, TABLE_SIZE) {
        s.emit(
            id::META_036,
            Loc::at(base + first as u64, (TABLE_SIZE - first) as u64),
            || {
                (
                    "metadata.unused".into(),
                    format!(
                        "table space after entry {} holds data at {}, which readers ignore: {}",
                        t.entries.len(),
                        hex(base + first as u64),
                        crate::format::display::preview(&md.table_slot.get(first, TABLE_SIZE))
                    ),
                )
            },
        );
    }
}

fn entries(m: &Model, s: &mut Sink) {
    let Some(md) = &m.metadata else { return };
    if !md.signature_ok {
        return;
    }
    let region_len = md.region.length as u64;
    let mut pairs: HashMap<(crate::format::guid::Guid, bool), usize> = HashMap::new();
    let mut user_count = 0usize;
    for it in &md.items {
        let e = &it.entry;
        let i = it.index;
        let loc = entry_loc(md, i);
        let label = item_label(it);
        if e.length > 0 && e.offset < metadata::MIN_ITEM_OFFSET {
            s.emit(id::META_006, loc, || {
                (
                    entry_name(i),
                    format!(
                        "{label} at region offset {} overlaps the 64 KiB table: its value is read from the table's own bytes",
                        hex(e.offset as u64)
                    ),
                )
            });
        }
        if e.length == 0 && e.offset != 0 {
            s.emit(id::META_007, loc, || {
                (
                    entry_name(i),
                    format!(
                        "{label} has Length 0 but Offset {} (must be 0): the entry contradicts itself, and readers that go by Length see an empty item",
                        hex(e.offset as u64)
                    ),
                )
            });
        }
        if e.length > metadata::MAX_ITEM_LENGTH {
            s.emit(id::META_008, loc, || {
                (
                    entry_name(i),
                    format!(
                        "{label} Length {} exceeds 1 MiB; readers may refuse the file",
                        hex(e.length as u64)
                    ),
                )
            });
        }
        if e.end() > region_len {
            s.emit(id::META_009, loc, || {
                (
                    entry_name(i),
                    format!(
                        "{label} [{}, {}) extends past the metadata region length {}: its value is read from bytes after the region, or is missing",
                        hex(e.offset as u64),
                        hex(e.end()),
                        hex(region_len)
                    ),
                )
            });
        }
        if let Some(&first) = pairs.get(&(e.item_id, e.is_user())) {
            s.emit(id::META_011, loc, || {
                (
                    entry_name(i),
                    format!(
                        "{label} (IsUser={}) duplicates entry[{first}]: readers may take either value{}",
                        e.is_user() as u8,
                        if it.known.is_some() {
                            ", and QEMU refuses the file"
                        } else {
                            ""
                        }
                    ),
                )
            });
        } else {
            pairs.insert((e.item_id, e.is_user()), i);
        }
        if e.is_user() {
            user_count += 1;
        }
        if e.flags & metadata::FLAGS_RESERVED != 0 {
            s.emit(id::META_013, loc, || {
                (
                    entry_name(i),
                    format!(
                        "{label} flags {:#x} have reserved bits set; readers ignore them",
                        e.flags
                    ),
                )
            });
        }
        if e.reserved2 != 0 {
            s.emit(id::META_014, loc, || {
                (
                    entry_name(i),
                    format!(
                        "{label} Reserved2 is {:#x} (must be 0); readers ignore it",
                        e.reserved2
                    ),
                )
            });
        }
        match it.known {
            None if e.is_required() && !e.is_user() => s.emit(id::META_015, loc, || {
                (
                    entry_name(i),
                    format!(
                        "unknown required system item {}{}: a conforming reader must refuse the file, as QEMU and Hyper-V do",
                        e.item_id,
                        vendor_note(&e.item_id)
                    ),
                )
            }),
            None if e.is_required() => s.emit(id::META_016, loc, || {
                (
                    entry_name(i),
                    format!(
                        "unknown required user item {}{}: a conforming reader must refuse the file, as QEMU does",
                        e.item_id,
                        vendor_note(&e.item_id)
                    ),
                )
            }),
            None => s.emit(
                id::META_017,
                Loc::at(md.region.file_offset + e.offset as u64, e.length as u64),
                || {
                    (
                        entry_name(i),
                        format!(
                            "unknown optional {} item {}{} at region offset {} length {}, which readers ignore (it is not part of the virtual disk): {}",
                            if e.is_user() { "user" } else { "system" },
                            e.item_id,
                            vendor_note(&e.item_id),
                            hex(e.offset as u64),
                            e.length,
                            // An empty item has no bytes to show.
                            if e.length == 0 {
                                "(empty)".to_string()
                            } else {
                                m.preview(md.region.file_offset.saturating_add(e.offset as u64))
                            }
                        ),
                    )
                },
            ),
            Some(k) if e.is_user() => s.emit(id::META_018, loc, || {
                (
                    entry_name(i),
                    format!(
                        "{} item id is marked IsUser: it is not the system item, so conforming readers do not use its value (QEMU, which ignores IsUser, does)",
                        k.name()
                    ),
                )
            }),
            Some(k) => {
                let (vd, req) = k.expected_flags();
                if e.is_virtual_disk() != vd || e.is_required() != req {
                    s.emit(id::META_019, loc, || {
                        (
                            entry_name(i),
                            format!(
                                "{} has IsVirtualDisk={} IsRequired={} (expected {} and {}): readers that go by the item's GUID (QEMU) still use it, one that trusts the flags may not",
                                k.name(),
                                e.is_virtual_disk() as u8,
                                e.is_required() as u8,
                                vd as u8,
                                req as u8
                            ),
                        )
                    });
                }
            }
        }
    }
    if user_count > MAX_USER_ENTRIES {
        s.emit(
            id::META_012,
            Loc::at(md.region.file_offset, TABLE_SIZE as u64),
            || {
                (
                    "metadata".into(),
                    format!(
                    "{user_count} entries have IsUser set (at most 1024 allowed): the table is invalid and readers may refuse it"
                ),
                )
            },
        );
    }
    overlaps(md, s);
    known_items(m, md, s);
}

/// META-010 by sorting: O(n log n) plus one step per overlapping pair.
fn overlaps(md: &Metadata, s: &mut Sink) {
    let mut v: Vec<&Item> = md.items.iter().filter(|it| it.entry.length > 0).collect();
    v.sort_by_key(|it| (it.entry.offset, it.index));
    for (a_pos, a) in v.iter().enumerate() {
        for b in &v[a_pos + 1..] {
            if b.entry.offset as u64 >= a.entry.end() {
                break;
            }
            s.emit(id::META_010, entry_loc(md, b.index), || {
                (
                    entry_name(b.index),
                    format!(
                        "{} [{}, {}) overlaps {} (entry[{}]) [{}, {}): at least one of them does not hold the value its writer meant",
                        item_label(b),
                        hex(b.entry.offset as u64),
                        hex(b.entry.end()),
                        item_label(a),
                        a.index,
                        hex(a.entry.offset as u64),
                        hex(a.entry.end())
                    ),
                )
            });
        }
    }
}

fn known_items(m: &Model, md: &Metadata, s: &mut Sink) {
    let table_loc = Loc::at(md.region.file_offset, TABLE_SIZE as u64);
    let missing: Vec<&str> = KnownItem::ALL
        .iter()
        .filter(|k| k.always_required() && md.known(**k).is_none())
        .map(|k| k.name())
        .collect();
    if !missing.is_empty() {
        s.emit(id::META_020, table_loc, || {
            (
                "metadata".into(),
                format!(
                    "required items missing: {}; readers, QEMU among them, cannot interpret the disk and refuse it",
                    missing.join(", ")
                ),
            )
        });
    }
    for k in KnownItem::ALL {
        let Some(it) = md.known(k) else { continue };
        let e = &it.entry;
        let loc = entry_loc(md, it.index);
        if e.length < k.size() {
            s.emit(id::META_021, loc, || {
                (
                    entry_name(it.index),
                    format!(
                        "{} Length {} is less than its size {}: its value cannot be read",
                        k.name(),
                        e.length,
                        k.size()
                    ),
                )
            });
        } else if k.fixed_size() && e.length > k.size() {
            s.emit(id::META_022, loc, || {
                (
                    entry_name(it.index),
                    format!(
                        "{} Length {} is more than its size {}: most readers read only the defined bytes, VirtualBox refuses the file",
                        k.name(),
                        e.length,
                        k.size()
                    ),
                )
            });
            // META-038: bytes beyond the defined size, read only when the item lies in the region.
            let Some(start) = it.file_offset.and_then(|o| o.checked_add(k.size() as u64)) else {
                continue;
            };
            if e.end() <= md.region.length as u64
                && e.length <= metadata::MAX_ITEM_LENGTH
                && let Some(at) = m.first_nonzero(start, (e.length - k.size()) as u64)
            {
                s.emit(
                    id::META_038,
                    Loc::at(start, (e.length - k.size()) as u64),
                    || {
                        (
                            format!("metadata.item[{}]", k.name()),
                            format!(
                                "{} holds data beyond its {} defined bytes at {}, which readers ignore: {}",
                                k.name(),
                                k.size(),
                                hex(at),
                                m.preview(at)
                            ),
                        )
                    },
                );
            }
        }
    }
    let has_parent = m.params.has_parent();
    let locator = md.known(KnownItem::ParentLocator);
    if has_parent == Some(true) && locator.is_none() {
        s.emit(id::META_026, table_loc, || {
            (
                "metadata".into(),
                "HasParent is set (differencing disk) but there is no Parent Locator item: readers cannot find the parent, so the virtual disk cannot be read".into(),
            )
        });
    }
    if has_parent == Some(false)
        && let Some(it) = locator
    {
        s.emit(id::META_027, entry_loc(md, it.index), || {
            (
                entry_name(it.index),
                "a Parent Locator item exists but HasParent is clear: readers ignore it; it may still name a former parent (see the PLOC findings)".into(),
            )
        });
    }
}

/// File offset of a known item's value, for value findings.
pub(crate) fn value_loc(m: &Model, k: KnownItem) -> Loc {
    m.metadata
        .as_ref()
        .and_then(|md| md.known(k))
        .and_then(|it| it.file_offset)
        .map_or(Loc::NONE, |o| Loc::at(o, k.size() as u64))
}

fn values(m: &Model, s: &mut Sink) {
    let p = &m.params;
    let st = |k: KnownItem| format!("metadata.item[{}]", k.name());
    if let Some(bs) = p.block_size
        && (!bs.is_power_of_two() || (bs as u64) < MIB || bs as u64 > 256 * MIB)
    {
        s.emit(id::META_023, value_loc(m, KnownItem::FileParameters), || {
            (
                st(KnownItem::FileParameters),
                format!(
                    "BlockSize {} is not a power of two between 1 MiB and 256 MiB: the BAT's layout is undefined, so readers refuse the image and the BAT is not checked",
                    hex(bs as u64)
                ),
            )
        });
    }
    if let Some(f) = p.file_parameter_flags {
        if f & metadata::FP_RESERVED != 0 {
            s.emit(id::META_024, value_loc(m, KnownItem::FileParameters), || {
                (
                    st(KnownItem::FileParameters),
                    format!(
                        "File Parameters flags {f:#x} have reserved bits set; readers ignore them"
                    ),
                )
            });
        }
        if f & 3 == 3 {
            s.emit(id::META_025, value_loc(m, KnownItem::FileParameters), || {
                (st(KnownItem::FileParameters), "HasParent and LeaveBlockAllocated are both set; LeaveBlockAllocated is ignored".into())
            });
        }
    }
    let lss_ok = p.logical_sector_size.filter(|l| *l == 512 || *l == 4096);
    if let Some(vds) = p.virtual_disk_size {
        let loc = value_loc(m, KnownItem::VirtualDiskSize);
        let item = st(KnownItem::VirtualDiskSize);
        if let Some(lss) = lss_ok
            && vds % lss as u64 != 0
        {
            s.emit(id::META_028, loc, || {
                (
                    item.clone(),
                    format!(
                        "VirtualDiskSize {vds} is not a multiple of the logical sector size {lss}: readers may refuse the image or cut off the last partial sector"
                    ),
                )
            });
        }
        if vds > 64 << 40 {
            s.emit(id::META_029, loc, || {
                (
                    item.clone(),
                    format!(
                        "VirtualDiskSize {vds} exceeds 64 TiB: readers refuse the image, and the BAT is not checked"
                    ),
                )
            });
        }
        if vds == 0 {
            s.emit(id::META_030, loc, || {
                (
                    item.clone(),
                    "VirtualDiskSize is 0: the disk holds no data, so readers that open it find nothing to read".into(),
                )
            });
        }
        if let Some(bs) = p.block_size
            && bs != 0
            && vds % bs as u64 != 0
        {
            s.emit(id::META_031, loc, || {
                (item.clone(), format!("VirtualDiskSize {vds} is not a multiple of BlockSize {bs}: the last block extends beyond the disk, and its bytes past the disk's end are not part of the disk (legal)"))
            });
        }
    }
    if p.virtual_disk_id.is_some_and(|g| g.is_zero()) {
        s.emit(id::META_032, value_loc(m, KnownItem::VirtualDiskId), || {
            (
                st(KnownItem::VirtualDiskId),
                "VirtualDiskId is the all-zero GUID: the writer set none, so tools cannot tell this disk from others by it".into(),
            )
        });
    }
    if let Some(l) = p.logical_sector_size
        && l != 512
        && l != 4096
    {
        s.emit(
            id::META_033,
            value_loc(m, KnownItem::LogicalSectorSize),
            || {
                (
                    st(KnownItem::LogicalSectorSize),
                    format!(
                        "LogicalSectorSize {l} is neither 512 nor 4096: readers refuse the image, and the BAT is not checked"
                    ),
                )
            },
        );
    }
    if let Some(ps) = p.physical_sector_size
        && ps != 512
        && ps != 4096
    {
        s.emit(
            id::META_034,
            value_loc(m, KnownItem::PhysicalSectorSize),
            || {
                (
                    st(KnownItem::PhysicalSectorSize),
                    format!(
                        "PhysicalSectorSize {ps} is neither 512 nor 4096; readers may refuse the image"
                    ),
                )
            },
        );
    }
    if p.logical_sector_size == Some(4096) && p.physical_sector_size == Some(512) {
        s.emit(id::META_035, value_loc(m, KnownItem::PhysicalSectorSize), || {
            (st(KnownItem::PhysicalSectorSize), "logical sectors of 4096 bytes on physical sectors of 512 bytes (legal but rare): a hint at the tool that made the image".into())
        });
    }
}

/// META-037: bytes of the region outside the table and every item.
fn free_space(m: &Model, s: &mut Sink) {
    let Some(md) = &m.metadata else { return };
    if !md.signature_ok {
        return;
    }
    let region_len =
        (md.region.length as u64).min(m.file_size.saturating_sub(md.region.file_offset));
    let mut used: Vec<(u64, u64)> = vec![(0, TABLE_SIZE as u64)];
    used.extend(
        md.items
            .iter()
            .filter(|it| it.entry.length > 0)
            .map(|it| (it.entry.offset as u64, it.entry.end())),
    );
    for (start, end) in super::gaps(used, region_len) {
        let file_start = md.region.file_offset + start;
        if let Some(at) = m.first_nonzero(file_start, end - start) {
            s.emit(id::META_037, Loc::at(at, md.region.file_offset + end - at), || {
                (
                    "metadata.free_space".into(),
                    format!(
                        "metadata region bytes outside the table and items hold data at {} (region offset {}), which readers ignore (not part of the virtual disk): {}",
                        hex(at),
                        hex(at - md.region.file_offset),
                        m.preview(at)
                    ),
                )
            });
        }
    }
}
