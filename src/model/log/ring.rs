//! The ring read in ring order, and the sweep that finds every entry in it (holes
//! skipped, each byte read about once).

use super::*;

/// The ring, read in ring order: a read past the end continues at its start.
pub(super) struct Ring<'a> {
    pub(super) src: &'a dyn ReadAt,
    pub(super) offset: u64,
    pub(super) len: u64,
}

/// The piece of the ring the sweep has just read: entries that lie inside it are checked
/// from it, so a ring is read about once however many entries it holds.
pub(super) struct Window<'b> {
    pub(super) pos: u64,
    pub(super) bytes: &'b [u8],
}

impl Ring<'_> {
    pub(super) fn read(&self, pos: u64, win: Option<&Window>, buf: &mut [u8]) {
        let mut done = 0usize;
        self.chunks(pos, buf.len() as u64, win, &mut Vec::new(), |_, b| {
            buf[done..done + b.len()].copy_from_slice(b);
            done += b.len();
        });
    }

    /// Calls `f(offset from pos, bytes)` for `[pos, pos + len)` in ring order: from `win`
    /// when it holds the whole range, else read into `buf` in pieces of at most
    /// [`io::CHUNK`] split at the ring end (multiples of 4 KiB when `pos` and `len` are).
    pub(super) fn chunks(
        &self,
        pos: u64,
        len: u64,
        win: Option<&Window>,
        buf: &mut Vec<u8>,
        mut f: impl FnMut(u64, &[u8]),
    ) {
        let pos = pos % self.len;
        if let Some(w) = win
            && pos >= w.pos
            && pos + len <= w.pos + w.bytes.len() as u64
        {
            let from = (pos - w.pos) as usize;
            return f(0, &w.bytes[from..from + len as usize]);
        }
        let mut at = 0u64;
        let mut p = pos;
        while at < len {
            let n = (self.len - p).min(len - at).min(io::CHUNK as u64) as usize;
            buf.resize(n.max(buf.len()), 0);
            io::read_padded(self.src, self.offset + p, &mut buf[..n]);
            f(at, &buf[..n]);
            at += n as u64;
            p = (p + n as u64) % self.len;
        }
    }
}

/// Read size of the sweep. Small on purpose: the buffer is faulted in once and stays in
/// cache while entries are checksummed from it (log.vhdx of the benchmark, 512 entries of
/// 8 KiB: 1 MiB pieces cost 0.7 ms more per check than 64 KiB ones).
pub(super) const WINDOW: usize = 64 * 1024;

/// Every entry of the ring: each 4 KiB position starting with "loge", checked, in ring
/// order. The ring is swept once in windows (holes skipped); an entry inside the window
/// is checked from it, and an entry up to a window long that runs past the window's end
/// starts the next window instead, so such entries are read once. Longer entries are
/// streamed on their own.
pub(super) fn sweep(
    ring: &Ring,
    guid: Option<Guid>,
    budget: &mut u64,
    bound: &mut Vec<String>,
    described: &mut Described,
) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut named = Vec::new();
    let mut buf = vec![0u8; WINDOW];
    let mut scratch = Vec::new();
    let mut pos = 0u64;
    // Ring offset where the data run being swept ends (a hole or the ring end).
    let mut data_end = 0u64;
    while pos < ring.len {
        if pos >= data_end {
            let Some(data) = ring.src.data_from(ring.offset + pos) else {
                break;
            };
            // Round down to the 4 KiB position holding the first data byte.
            let data = (data - ring.offset) / SECTOR * SECTOR;
            if data >= ring.len {
                break;
            }
            pos = pos.max(data);
            data_end = ring
                .src
                .hole_from(ring.offset + pos)
                .saturating_sub(ring.offset);
            data_end = data_end.clamp(pos + SECTOR, ring.len);
        }
        let n = ((ring.len - pos) as usize).min(WINDOW);
        io::read_padded(ring.src, ring.offset + pos, &mut buf[..n]);
        let win = Window {
            pos,
            bytes: &buf[..n],
        };
        let mut next = pos + n as u64;
        for (i, sector) in win.bytes.chunks(SECTOR as usize).enumerate() {
            if !sector.starts_with(fmt::ENTRY_SIGNATURE) {
                continue;
            }
            let p = pos + i as u64 * SECTOR;
            let len = fmt::parse_header(sector).entry_length as u64;
            if p > pos && p + len > next && len <= WINDOW as u64 && len <= *budget {
                // Read again as the start of the next window; the bytes read twice are
                // fewer than the entry checksums, so the budget bounds them too.
                next = p;
                break;
            }
            if out.len() == MAX_ENTRIES {
                bound.push(format!(
                    "more than {MAX_ENTRIES} entry signatures in the ring: entries from ring offset {p:#x} on were not examined"
                ));
                return out;
            }
            let e = check_entry(ring, &win, &mut scratch, &mut named, p, guid, budget);
            // A stale ring's checksummed entries are listed with their targets (LOG-001).
            if guid.is_none()
                && e.computed_checksum == Some(e.header.checksum)
                && described.len() < DESCRIBED
            {
                described.push((out.len(), named.as_slice().into()));
            }
            out.push(e);
        }
        pos = next;
    }
    out
}
