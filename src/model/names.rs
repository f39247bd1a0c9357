//! Names of the structures at a file offset, for messages and `info`: what replay changes,
//! what stale log entries wrote.

use super::{Model, Object, ObjectKind};
use crate::format::{KIB, bat};

/// Names structures by file offset (what replay changes, what stale entries wrote).
/// Sector bitmap blocks are found through the BAT, walked once and only if a name needs it.
pub struct Namer<'m, 'a> {
    m: &'m Model<'a>,
    bitmaps: std::cell::OnceCell<Vec<Object>>,
}

impl<'m, 'a> Namer<'m, 'a> {
    pub fn new(m: &'m Model<'a>) -> Self {
        Namer {
            m,
            bitmaps: std::cell::OnceCell::new(),
        }
    }

    /// Names the structures in `[a, b)`: the first and the last byte's, or a BAT entry range.
    pub fn range(&self, a: u64, b: u64) -> String {
        let (first, last) = (self.at(a), self.at(b.max(a.saturating_add(1)) - 1));
        if first == last {
            return first;
        }
        match (first.strip_prefix("bat["), last.strip_prefix("bat[")) {
            (Some(i), Some(j)) => format!("bat[{}..{}", i.trim_end_matches(']'), j),
            _ => format!("{first} .. {last}"),
        }
    }

    /// Names the structure holding file offset `off`.
    fn at(&self, off: u64) -> String {
        const REGION_TABLES: [u64; 2] = [0x30000, 0x40000];
        let m = self.m;
        let within = |start: u64, end: Option<u64>| (start..end.unwrap_or(u64::MAX)).contains(&off);
        if off < 64 * KIB {
            return "file identifier".into();
        }
        if off < 192 * KIB {
            return format!("header[{}]", if off < 128 * KIB { 1 } else { 2 });
        }
        for (i, &t) in REGION_TABLES.iter().enumerate() {
            if (t..t + 64 * KIB).contains(&off) {
                return format!("region_table[{}]", i + 1);
            }
        }
        if let Some(b) = m.bat_region.filter(|r| within(r.file_offset, r.end())) {
            let i = (off - b.file_offset) / bat::ENTRY_SIZE;
            return format!("bat[{i}]");
        }
        if let Some(md) = m
            .metadata
            .as_ref()
            .filter(|md| within(md.region.file_offset, md.region.end()))
        {
            for it in &md.items {
                if let Some(fo) = it.file_offset
                    && (fo..fo.saturating_add(it.entry.length as u64)).contains(&off)
                {
                    let name = it.known.map_or("unknown item", |k| k.name());
                    return format!("metadata.item[{}] ({name})", it.index);
                }
            }
            return if off < md.region.file_offset + 64 * KIB {
                "metadata.table".into()
            } else {
                "metadata region (no item)".into()
            };
        }
        if let Some(log) = m.log()
            && (log.offset..log.offset + log.length).contains(&off)
        {
            return "log".into();
        }
        if let Some(r) = m.regions().iter().find(|r| within(r.file_offset, r.end())) {
            return format!("region {}", r.guid);
        }
        let bitmaps = self.bitmaps.get_or_init(|| sector_bitmap_blocks(m));
        if let Some(o) = bitmaps.iter().find(|o| (o.offset..o.end()).contains(&off)) {
            if let ObjectKind::SectorBitmapBlock { bat_index } = o.kind {
                return format!("sector_bitmap bat[{bat_index}]");
            }
        }
        if off >= m.file_size {
            return "beyond EOF".into();
        }
        "unowned".into()
    }
}

/// Sector bitmap blocks in state 6 (at most 2^20: a 4 GiB BAT holds fewer).
fn sector_bitmap_blocks(m: &Model) -> Vec<Object> {
    let Some(g) = m.geometry else {
        return Vec::new();
    };
    let mut out = Vec::new();
    m.for_each_bat_chunk(|first, entries| {
        // The bitmap entry of chunk k is index k * (ratio + 1) + ratio.
        let ratio = g.chunk_ratio;
        let mut i = first / (ratio + 1) * (ratio + 1) + ratio;
        while i < first + entries.len() as u64 {
            let e = entries[(i - first) as usize];
            if let Some(o) = m.block_object_at(i, true, e) {
                out.push(o);
            }
            i += ratio + 1;
        }
        out.len() < 1 << 20
    });
    out
}
