//! The REPLAYED view (CATALOGUE 0.4, 3.5): the file with the active log sequence applied in
//! memory. The plan is an interval map of the final contents replay gives each written
//! range (later writes supersede earlier ones); the view reads through it and never holds
//! data sectors, only where they are in the file, so its memory is a few words per
//! descriptor.

use super::log::{Applied, Change, Log, MAX_DESCRIPTORS, Mode};
use crate::format::log::{self as fmt, Descriptor, SECTOR};
use crate::io::{self, ReadAt};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
enum Fill {
    Zero,
    /// A data sector: the 4 KiB write starting at `target` is LeadingBytes ‖ file bytes
    /// `sector + 8 .. sector + 4092` ‖ TrailingBytes.
    Sector {
        target: u64,
        sector: u64,
        leading: [u8; 8],
        trailing: [u8; 4],
    },
}

#[derive(Debug, Clone, Copy)]
struct Patch {
    end: u64,
    fill: Fill,
}

/// What replay writes, as non-overlapping ranges, and the size of the replayed file.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    patches: BTreeMap<u64, Patch>,
    pub size: u64,
}

impl Plan {
    /// Applies a write of `[start, end)` after every earlier one.
    fn write(&mut self, start: u64, end: u64, fill: Fill) {
        if start >= end {
            return;
        }
        let hit: Vec<(u64, Patch)> = (self.patches.range(..end).rev())
            .take_while(|(_, p)| p.end > start)
            .map(|(&s, &p)| (s, p))
            .collect();
        for (s, p) in hit {
            self.patches.remove(&s);
            if s < start {
                self.patches.insert(s, Patch { end: start, ..p });
            }
            if p.end > end {
                self.patches.insert(end, p);
            }
        }
        self.patches.insert(start, Patch { end, fill });
    }

    /// The patch covering `pos`, and the start of the next patch after `pos`.
    fn at(&self, pos: u64) -> (Option<(u64, Patch)>, Option<u64>) {
        let cover = (self.patches.range(..=pos).next_back())
            .filter(|(_, p)| p.end > pos)
            .map(|(&s, &p)| (s, p));
        let next = self
            .patches
            .range(pos.saturating_add(1)..)
            .next()
            .map(|(&s, _)| s);
        (cover, next)
    }

    /// Written ranges in file order: `(start, end, is_zero)`.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64, bool)> + '_ {
        (self.patches.iter()).map(|(&s, p)| (s, p.end, matches!(p.fill, Fill::Zero)))
    }
}

/// The file as replay would leave it.
pub struct ReplayedView<'a> {
    base: &'a dyn ReadAt,
    plan: &'a Plan,
}

impl<'a> ReplayedView<'a> {
    pub fn new(base: &'a dyn ReadAt, plan: &'a Plan) -> ReplayedView<'a> {
        ReplayedView { base, plan }
    }
}

impl ReadAt for ReplayedView<'_> {
    fn len(&self) -> u64 {
        self.plan.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.plan.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.plan.size - offset) as usize;
        let mut done = 0usize;
        while done < n {
            let pos = offset + done as u64;
            let (cover, next) = self.plan.at(pos);
            let seg_end = match cover {
                Some((_, p)) => p.end,
                None => next.unwrap_or(u64::MAX),
            };
            let len = (seg_end - pos).min((n - done) as u64) as usize;
            let out = &mut buf[done..done + len];
            match cover.map(|(_, p)| p.fill) {
                None => {
                    io::read_padded(self.base, pos, out);
                }
                Some(Fill::Zero) => out.fill(0),
                Some(Fill::Sector {
                    target,
                    sector,
                    leading,
                    trailing,
                }) => {
                    let mut raw = [0u8; SECTOR as usize];
                    io::read_padded(self.base, sector, &mut raw);
                    let full = fmt::reconstruct(&leading, &raw, &trailing);
                    let k = (pos - target) as usize;
                    out.copy_from_slice(&full[k..k + len]);
                }
            }
            done += len;
        }
        Ok(n)
    }

    fn data_from(&self, mut offset: u64) -> Option<u64> {
        while offset < self.plan.size {
            match self.plan.at(offset) {
                (Some((_, p)), _) if matches!(p.fill, Fill::Zero) => offset = p.end,
                (Some(_), _) => return Some(offset),
                (None, next) => {
                    let base = self.base.data_from(offset);
                    match (base, next) {
                        (Some(b), Some(n)) if b < n => return Some(b),
                        (Some(b), None) => return (b < self.plan.size).then_some(b),
                        (_, Some(n)) => offset = n,
                        (None, None) => return None,
                    }
                }
            }
        }
        None
    }

    fn hole_from(&self, mut offset: u64) -> u64 {
        while offset < self.plan.size {
            match self.plan.at(offset) {
                (Some((_, p)), _) if matches!(p.fill, Fill::Zero) => return offset,
                (Some((_, p)), _) => offset = p.end,
                (None, next) => {
                    let hole = if offset < self.base.len() {
                        self.base.hole_from(offset)
                    } else {
                        offset
                    };
                    match next {
                        Some(n) if hole >= n => offset = n,
                        _ => return hole.min(self.plan.size),
                    }
                }
            }
        }
        self.plan.size
    }
}

/// Builds the plan of the strict active sequence, the descriptors it applies and the byte
/// ranges it changes (CATALOGUE 3.5).
pub(super) fn plan(src: &dyn ReadAt, log: &mut Log) {
    let Some(scan) = log.scan(Mode::Strict) else {
        return;
    };
    if scan.replayed.is_empty() {
        return;
    }
    let replayed = scan.replayed.clone();
    let mut applied: Vec<Applied> = Vec::new();
    for &ei in &replayed {
        let left = MAX_DESCRIPTORS - applied.len();
        let e = &log.entries[ei];
        if e.descriptors as usize > left {
            log.bound.push(format!(
                "the active sequence holds more than {MAX_DESCRIPTORS} descriptors: the REPLAYED view applies the first {MAX_DESCRIPTORS}"
            ));
        }
        // The j-th data descriptor's sector is sector D + j of the entry.
        let d = fmt::descriptor_sectors(e.header.descriptor_count);
        let mut data_index = 0u64;
        for (i, (slot, descriptor)) in log
            .descriptors(src, ei, left as u32)
            .into_iter()
            .enumerate()
        {
            let sector = descriptor.is_data().then(|| {
                let at = log.file_offset(e.pos + (d + data_index) * SECTOR);
                data_index += 1;
                at
            });
            applied.push(Applied {
                entry: ei,
                index: i as u32,
                descriptor,
                sector,
                slot,
            });
        }
        if e.descriptors as usize > left {
            break;
        }
    }
    let last = replayed
        .last()
        .map(|&h| log.entries[h].header.last_file_offset);
    let plan = overlay(src, &applied, last);
    log.changes = changes(src, &plan);
    log.replayed_size = plan.size;
    log.applied = applied;
    log.plan = Some(plan);
}

/// The plan of `applied` in order; the size grows to `last_file_offset` too.
pub(super) fn overlay(
    src: &dyn ReadAt,
    applied: &[Applied],
    last_file_offset: Option<u64>,
) -> Plan {
    let mut plan = Plan::default();
    let mut size = src.len();
    for a in applied {
        let (start, end, fill) = match (a.descriptor, a.sector) {
            (
                Descriptor::Data {
                    file_offset,
                    leading_bytes,
                    trailing_bytes,
                    ..
                },
                Some(sector),
            ) => (
                file_offset,
                file_offset.saturating_add(SECTOR),
                Fill::Sector {
                    target: file_offset,
                    sector,
                    leading: leading_bytes,
                    trailing: trailing_bytes,
                },
            ),
            (
                Descriptor::Zero {
                    file_offset,
                    zero_length,
                    ..
                },
                _,
            ) => (
                file_offset,
                file_offset.saturating_add(zero_length),
                Fill::Zero,
            ),
            _ => continue,
        };
        size = size.max(end);
        plan.write(start, end, fill);
    }
    if let Some(l) = last_file_offset {
        size = size.max(l);
    }
    plan.size = size;
    plan
}

/// Bytes of the two views compared at most before they are taken to differ.
const COMPARE_BOUND: u64 = 1 << 30;

/// Whether the file as replayed by plan `a` and by plan `b` (`None`: not replayed) holds
/// different bytes anywhere either writes. Sizes are not compared: past the end a file
/// reads as zeros.
pub(super) fn views_differ(src: &dyn ReadAt, a: Option<&Plan>, b: Option<&Plan>) -> bool {
    let empty = Plan::default();
    let (pa, pb) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
    let size = |p: &Plan| {
        if p.patches.is_empty() {
            src.len()
        } else {
            p.size.max(src.len())
        }
    };
    let (mut pa2, mut pb2) = (pa.clone(), pb.clone());
    pa2.size = size(pa);
    pb2.size = size(pb);
    let (va, vb) = (ReplayedView::new(src, &pa2), ReplayedView::new(src, &pb2));
    let mut ranges: Vec<(u64, u64)> = pa
        .ranges()
        .chain(pb.ranges())
        .map(|(s, e, _)| (s, e))
        .collect();
    ranges.sort_unstable();
    let (mut x, mut y) = (vec![0u8; io::CHUNK], vec![0u8; io::CHUNK]);
    let mut budget = COMPARE_BOUND;
    let mut done = 0u64;
    for (start, end) in ranges {
        let mut pos = start.max(done);
        while pos < end {
            let Some(d) = [va.data_from(pos), vb.data_from(pos)]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            pos = pos.max(d);
            if pos >= end {
                break;
            }
            let n = ((end - pos) as usize).min(io::CHUNK);
            let Some(left) = budget.checked_sub(n as u64) else {
                return true;
            };
            budget = left;
            io::read_padded(&va, pos, &mut x[..n]);
            io::read_padded(&vb, pos, &mut y[..n]);
            if x[..n] != y[..n] {
                return true;
            }
            pos += n as u64;
        }
        done = done.max(end);
    }
    false
}

/// Byte ranges where the replayed view differs from the file: per written range, from its
/// first to its last changed byte, merged when adjacent. Bytes past the end of the file
/// count as changed when replay writes non-zero there.
fn changes(src: &dyn ReadAt, plan: &Plan) -> Vec<Change> {
    let view = ReplayedView::new(src, plan);
    let mut out: Vec<Change> = Vec::new();
    let mut raw = vec![0u8; io::CHUNK];
    let mut new = vec![0u8; io::CHUNK];
    for (start, end, _) in plan.ranges() {
        let mut span: Option<(u64, u64)> = None;
        let mut pos = start;
        while pos < end {
            // Skip what is zero in both views (holes of sparse files, zero fills).
            let Some(d) = [view.data_from(pos), src.data_from(pos)]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            pos = pos.max(d);
            if pos >= end {
                break;
            }
            let n = ((end - pos) as usize).min(io::CHUNK);
            io::read_padded(src, pos, &mut raw[..n]);
            io::read_padded(&view, pos, &mut new[..n]);
            let first = (0..n).find(|&i| raw[i] != new[i]);
            if let Some(first) = first {
                let last = (first..n)
                    .rev()
                    .find(|&i| raw[i] != new[i])
                    .unwrap_or(first);
                let (a, b) = (pos + first as u64, pos + last as u64 + 1);
                span = Some(span.map_or((a, b), |(s0, _)| (s0, b)));
            }
            pos += n as u64;
        }
        if let Some((a, b)) = span {
            match out.last_mut() {
                Some(c) if c.offset + c.length == a => c.length += b - a,
                _ => out.push(Change {
                    offset: a,
                    length: b - a,
                }),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_writes_supersede_earlier_ones() {
        let mut p = Plan::default();
        p.write(0, 100, Fill::Zero);
        p.write(40, 60, Fill::Zero);
        p.write(90, 120, Fill::Zero);
        let r: Vec<_> = p.ranges().map(|(s, e, _)| (s, e)).collect();
        assert_eq!(r, vec![(0, 40), (40, 60), (60, 90), (90, 120)]);
    }

    #[test]
    fn view_reads_patches_over_the_base() {
        let base = vec![0xAAu8; 16384];
        let src = io::MemReader(&base);
        let mut p = Plan::default();
        p.write(4096, 8192, Fill::Zero);
        p.write(5000, 5100, Fill::Zero);
        p.size = 20000;
        let v = ReplayedView::new(&src, &p);
        let mut buf = vec![1u8; 20000];
        assert_eq!(v.read_at(0, &mut buf).unwrap(), 20000);
        assert!(buf[..4096].iter().all(|&b| b == 0xAA));
        assert!(buf[4096..8192].iter().all(|&b| b == 0));
        assert!(buf[8192..16384].iter().all(|&b| b == 0xAA));
        assert!(buf[16384..].iter().all(|&b| b == 0));
        assert_eq!(v.data_from(4096), Some(8192));
        assert_eq!(v.hole_from(0), 4096);
        assert_eq!(
            changes(&src, &p),
            vec![Change {
                offset: 4096,
                length: 4096
            }]
        );
    }
}
