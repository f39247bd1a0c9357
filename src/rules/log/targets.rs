//! Where the active sequence's descriptors write (LOG-040..047), on the view replay
//! produces.

use super::*;

/// LOG-040..047: where the active sequence's descriptors write, judged on the view replay
/// produces (the REPLAYED model, or RAW when replay changes nothing).
pub(super) fn targets(m: &Model, s: &mut Sink) {
    let Some(log) = m.log() else { return };
    if log.applied.is_empty() {
        return;
    }
    let head_lfo = log.head().map(|h| h.header.last_file_offset);
    let (blocks, bitmaps) = allocated_blocks(m, log);
    let mut owned: Vec<(u64, u64)> = vec![(0x30000, 0x50000)];
    owned.extend(
        m.regions()
            .iter()
            .map(|r| (r.file_offset, r.end().unwrap_or(u64::MAX))),
    );
    owned.extend(bitmaps.iter().map(|o| (o.offset, o.end())));
    let owned = merge(owned);
    let fixed: [(RuleId, u64, u64, &str); 3] = [
        (id::LOG_040, 0, 64 * KIB, "the file identifier"),
        (id::LOG_041, 64 * KIB, 192 * KIB, "the header slots"),
        (
            id::LOG_042,
            log.offset,
            log.offset + log.length,
            "the log itself",
        ),
    ];
    for a in &log.applied {
        let Some((off, len)) = a.descriptor.target() else {
            continue;
        };
        let end = off.saturating_add(len);
        let path = format!(
            "log.entry[{:#x}].descriptor[{}]",
            log.entries[a.entry].pos, a.index
        );
        let loc = Loc::at(a.slot, 32);
        let range = format!("[{}, {})", hex(off), hex(end));
        if matches!(a.descriptor, Descriptor::Zero { zero_length: 0, .. }) {
            s.emit(id::LOG_046, loc, || {
                (
                    path.clone(),
                    format!("zero descriptor with ZeroLength 0 at {}", hex(off)),
                )
            });
            continue;
        }
        for &(id, a0, a1, what) in &fixed {
            if off < a1 && a0 < end {
                s.emit(id, loc, || {
                    (
                        path.clone(),
                        format!(
                            "replay writes {range}, which overlaps {what} [{}, {})",
                            hex(a0),
                            hex(a1)
                        ),
                    )
                });
            }
        }
        for b in blocks.iter().filter(|b| off < b.end() && b.offset < end) {
            s.emit(id::LOG_043, loc, || {
                (
                    path.clone(),
                    format!("replay writes {range} into {b}: the log must not carry payload data"),
                )
            });
        }
        if !covered(&owned, off, end) {
            s.emit(id::LOG_044, loc, || {
                (
                    path.clone(),
                    format!("replay writes {range}, outside every region table, region and sector bitmap block"),
                )
            });
        }
        if let Some(lfo) = head_lfo.filter(|&l| end > l) {
            s.emit(id::LOG_045, loc, || {
                (
                    path.clone(),
                    format!(
                        "replay writes {range}, past the head entry's LastFileOffset {}",
                        hex(lfo)
                    ),
                )
            });
        }
    }
    // LOG-047: descriptors of one entry that overlap (the later one wins).
    let mut i = 0;
    while i < log.applied.len() {
        let entry = log.applied[i].entry;
        let mut j = i;
        let mut ranges = Vec::new();
        while j < log.applied.len() && log.applied[j].entry == entry {
            if let Some((off, len)) = log.applied[j].descriptor.target()
                && len > 0
            {
                ranges.push((off, off.saturating_add(len), j));
            }
            j += 1;
        }
        ranges.sort_unstable();
        let mut reach: Option<(u64, usize)> = None;
        for &(a0, a1, k) in &ranges {
            if let Some((end, prev)) = reach
                && a0 < end
            {
                let (p, q) = (&log.applied[prev], &log.applied[k]);
                s.emit(id::LOG_047, Loc::at(q.slot, 32), || {
                    (
                        format!("log.entry[{:#x}].descriptor[{}]", log.entries[entry].pos, q.index),
                        format!(
                            "descriptors {} and {} of one entry write overlapping ranges (the later one wins in replay order)",
                            p.index.min(q.index),
                            p.index.max(q.index)
                        ),
                    )
                });
            }
            if reach.is_none_or(|(end, _)| a1 > end) {
                reach = Some((a1, k));
            }
        }
        i = j;
    }
}

/// Payload blocks (states 6/7) and sector bitmap blocks (state 6) any target touches.
pub(super) fn allocated_blocks(m: &Model, log: &Log) -> (Vec<Object>, Vec<Object>) {
    let targets = merge(
        (log.applied.iter())
            .filter_map(|a| a.descriptor.target())
            .map(|(o, l)| (o, o.saturating_add(l)))
            .collect(),
    );
    let (mut blocks, mut bitmaps) = (Vec::new(), Vec::new());
    m.for_each_bat_chunk(|first, entries| {
        for (k, &e) in entries.iter().enumerate() {
            if e.state() < bat::PAYLOAD_BLOCK_FULLY_PRESENT {
                continue;
            }
            let Some(o) = m.block_object(first + k as u64, e) else {
                continue;
            };
            match o.kind {
                ObjectKind::SectorBitmapBlock { .. } => bitmaps.push(o),
                ObjectKind::PayloadBlock { .. }
                    if blocks.len() < 1024 && touches(&targets, o.offset, o.end()) =>
                {
                    blocks.push(o);
                }
                _ => {}
            }
        }
        bitmaps.len() < 1 << 20
    });
    (blocks, bitmaps)
}

/// Sorted, merged ranges.
pub(super) fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(l) if a <= l.1 => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Whether merged `ranges` intersect `[a, b)`.
pub(super) fn touches(ranges: &[(u64, u64)], a: u64, b: u64) -> bool {
    let i = ranges.partition_point(|r| r.1 <= a);
    ranges.get(i).is_some_and(|r| r.0 < b)
}

/// Whether merged `ranges` cover all of `[a, b)`.
pub(super) fn covered(ranges: &[(u64, u64)], a: u64, b: u64) -> bool {
    let i = ranges.partition_point(|r| r.1 <= a);
    ranges.get(i).is_some_and(|r| r.0 <= a && r.1 >= b)
}
