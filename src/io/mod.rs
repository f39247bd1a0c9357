//! Read-only, bounded access to an image. Everything above this layer sees bytes through
//! [`ReadAt`]; nothing here can write, and a short read is reported, never a panic.

mod file;
mod mem;
mod sparse;

pub use file::{FileReader, Kind, open_input, open_regular, type_name};
pub use mem::MemReader;
pub use sparse::{Extent, SparseReader};

/// Positioned, read-only access to a byte source of known length.
pub trait ReadAt: Sync {
    /// Length of the source in bytes.
    fn len(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (fewer only at end of source).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first offset at or after `offset` that may hold non-zero bytes; `None` when only
    /// zeros (holes) remain. Sources without hole information return `offset` itself.
    fn data_from(&self, offset: u64) -> Option<u64> {
        (offset < self.len()).then_some(offset)
    }

    /// The first offset at or after `offset` (which holds data) where a hole begins, or the
    /// length. Sweeps of sparse files skip from there with [`ReadAt::data_from`].
    fn hole_from(&self, offset: u64) -> u64 {
        let _ = offset;
        self.len()
    }

    /// Size and times of the source now ([`Watch`] compares them before and after a
    /// check). Sources that cannot change (memory) give their length and no times.
    fn stamp(&self) -> std::io::Result<Stamp> {
        Ok(Stamp {
            len: self.len(),
            modified: None,
            changed: None,
        })
    }
}

/// Size and times (seconds, nanoseconds) of a source, to tell whether it changed while it
/// was read. Times are `None` where they say nothing (memory, block devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub modified: Option<(i64, i64)>,
    pub changed: Option<(i64, i64)>,
}

/// Why what was read from a source cannot be trusted: a report built on it is void (the
/// CLI: exit 2, one line).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The first read that failed (not an end of file: an I/O error).
    #[error("read error at offset {offset} ({offset:#x}): {error}")]
    Read { offset: u64, error: std::io::Error },
    #[error("evidence changed during the check ({0})")]
    Changed(String),
    #[error("cannot stat the evidence after reading it: {0}")]
    Stat(std::io::Error),
}

/// A source as the engine reads it: the rules keep their zero-padding semantics
/// ([`read_padded`]), while the first read error is kept here, and [`Watch::verify`] after
/// the last read says whether anything read may be trusted: no read failed, and size and
/// times are what they were when the watch began.
pub struct Watch<'a> {
    src: &'a dyn ReadAt,
    start: Result<Stamp, String>,
    failed: std::sync::OnceLock<(u64, std::io::Error)>,
}

impl<'a> Watch<'a> {
    pub fn new(src: &'a dyn ReadAt) -> Self {
        Watch {
            src,
            start: src.stamp().map_err(|e| e.to_string()),
            failed: std::sync::OnceLock::new(),
        }
    }

    /// `Ok` when every read succeeded (or met the end) and the source is unchanged.
    pub fn verify(&self) -> Result<(), SourceError> {
        if let Some((offset, e)) = self.failed.get() {
            return Err(SourceError::Read {
                offset: *offset,
                error: copy_error(e),
            });
        }
        let start =
            (self.start.clone()).map_err(|e| SourceError::Stat(std::io::Error::other(e)))?;
        let end = self.src.stamp().map_err(SourceError::Stat)?;
        let len = self.src.len();
        let what = if end.len != start.len {
            format!(
                "size {} bytes at the start, {} at the end",
                start.len, end.len
            )
        } else if len != start.len {
            format!("size {len} bytes when opened, {} at the start", start.len)
        } else if end.modified != start.modified {
            "its modification time changed".to_string()
        } else if end.changed != start.changed {
            "its status change time changed".to_string()
        } else {
            return Ok(());
        };
        Err(SourceError::Changed(what))
    }
}

/// `io::Error` is not `Clone`: the OS error number survives, else kind and text.
fn copy_error(e: &std::io::Error) -> std::io::Error {
    e.raw_os_error().map_or_else(
        || std::io::Error::new(e.kind(), e.to_string()),
        std::io::Error::from_raw_os_error,
    )
}

impl ReadAt for Watch<'_> {
    fn len(&self) -> u64 {
        self.src.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.src.read_at(offset, buf);
        if let Err(e) = &r
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            let _ = self.failed.set((offset, copy_error(e)));
        }
        r
    }
    fn data_from(&self, offset: u64) -> Option<u64> {
        self.src.data_from(offset)
    }
    fn hole_from(&self, offset: u64) -> u64 {
        self.src.hole_from(offset)
    }
    fn stamp(&self) -> std::io::Result<Stamp> {
        self.src.stamp()
    }
}

/// Fills `buf` from `offset`, zero-filling whatever lies past the end of the source or
/// cannot be read. Returns the number of bytes that really came from the source, so the
/// caller can report a truncated structure. A read error is not an end of file: the
/// engine reads through a [`Watch`], which keeps it and voids the report.
pub fn read_padded(src: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let Some(pos) = offset.checked_add(done as u64) else {
            break;
        };
        match src.read_at(pos, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    buf[done..].fill(0);
    done
}

/// Reads up to `buf.len()` bytes at `offset`; returns how many exist before the end of
/// the source. Unlike [`read_padded`], a read error is an error: for readers whose output
/// must be exact (digests, the virtual disk).
pub fn read_full(src: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let pos = offset
            .checked_add(done as u64)
            .ok_or_else(|| std::io::Error::other("offset overflow"))?;
        match src.read_at(pos, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads `len` bytes at `offset` into a new buffer (zero-padded past the end).
/// Callers only pass lengths bounded by the specification (at most a few MiB).
pub fn read_vec(src: &dyn ReadAt, offset: u64, len: usize) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; len];
    let got = read_padded(src, offset, &mut buf);
    (buf, got)
}

/// Bytes tested at once by [`nonzero_byte`] and [`nonzero_end`].
const BLOCK: usize = 32;

/// Whether a block is all zeros: the fold compiles to vector instructions, where
/// `iter().position` and `iter().all` go byte by byte.
fn zero_block(block: &[u8]) -> bool {
    block.iter().fold(0u8, |acc, &x| acc | x) == 0
}

/// Index of the first non-zero byte of `b`: [`BLOCK`] bytes at a time, then the byte.
pub fn nonzero_byte(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    for block in b.chunks_exact(BLOCK) {
        if !zero_block(block) {
            break;
        }
        at += BLOCK;
    }
    b[at..].iter().position(|&x| x != 0).map(|i| at + i)
}

/// One past the index of the last non-zero byte of `b` (0 when all are zero), [`BLOCK`]
/// bytes at a time from the end.
pub fn nonzero_end(b: &[u8]) -> usize {
    let mut end = b.len();
    for block in b.rchunks_exact(BLOCK) {
        if !zero_block(block) {
            break;
        }
        end -= BLOCK;
    }
    b[..end].iter().rposition(|&x| x != 0).map_or(0, |i| i + 1)
}

/// Size of the buffer used when streaming large ranges (digests).
pub const CHUNK: usize = 1 << 20;

/// Read size of BAT walks. Small on purpose: a walk allocates its buffers afresh, and on
/// a small image faulting in 1 MiB buffers cost more than reading the table (1.3 ms of
/// a 4 ms check); below glibc's mmap threshold (128 KiB) they come from the heap. Large
/// tables too take less CPU in 64 KiB pieces, which stay in cache, than in 1 MiB ones
/// (64 TiB dynamic image: 0.22 s against 0.27 s), despite 16 times more system calls.
pub const BAT_CHUNK: usize = 64 * 1024;

/// Read size of zero sweeps: most ranges hold data early, so small reads stop sooner.
const SWEEP: usize = 64 * 1024;

/// Bytes a sweep reads before asking where data is (see [`first_nonzero_in`]).
const PROBE: usize = 512;

/// Returns the offset of the first non-zero byte in `[offset, offset + len)` clipped to
/// the source, streaming in bounded chunks and skipping holes of sparse files (a 1 TiB
/// sparse file of zeros costs a few system calls, not a terabyte of reads).
pub fn first_nonzero(src: &dyn ReadAt, offset: u64, len: u64) -> Option<u64> {
    first_nonzero_in(src, &mut Holes::default(), offset, len)
}

/// The last hole a sweep found: `[from, to)` holds no data (`to` = the length: none to
/// the end). BAT-020 sweeps every FULLY_PRESENT block in file order; on a sparse image of
/// zero blocks one `SEEK_DATA` then answers millions of sweeps. The evidence does not
/// change while it is checked, so the answer stays true.
#[derive(Debug, Default, Clone, Copy)]
pub struct Holes {
    from: u64,
    to: u64,
}

impl Holes {
    /// Whether the remembered hole covers `offset`.
    fn covers(&self, offset: u64) -> bool {
        self.from <= offset && offset < self.to
    }

    /// [`ReadAt::data_from`], answered from the remembered hole when it covers `offset`.
    pub fn data_from(&mut self, src: &dyn ReadAt, offset: u64) -> Option<u64> {
        if self.covers(offset) {
            return (self.to < src.len()).then_some(self.to);
        }
        let data = src.data_from(offset);
        // Sources without hole information answer `offset` itself: an empty hole.
        (self.from, self.to) = (offset, data.unwrap_or(src.len()).max(offset));
        data
    }
}

/// [`first_nonzero`] for a caller that sweeps many ranges and keeps `holes` between them.
pub fn first_nonzero_in(src: &dyn ReadAt, holes: &mut Holes, offset: u64, len: u64) -> Option<u64> {
    let end = offset.saturating_add(len).min(src.len());
    // A range with data usually has some in its first sector: one small read answers it
    // without asking the file system where data is (BAT-020 over many allocated blocks
    // cost two lseeks and a read per block); otherwise it cost one read more. Not where a
    // known hole starts the range: on a sparse image of zero blocks the sweeps then cost
    // no read at all.
    if offset < end && !holes.covers(offset) {
        let mut probe = [0u8; PROBE];
        let n = (end - offset).min(PROBE as u64) as usize;
        let got = read_padded(src, offset, &mut probe[..n]);
        if let Some(i) = nonzero_byte(&probe[..got]) {
            return Some(offset + i as u64);
        }
    }
    let mut pos = offset;
    // Allocated at the first data: a range that is one hole costs no buffer.
    let mut buf = Vec::new();
    while pos < end {
        pos = holes.data_from(src, pos)?.max(pos);
        if pos >= end {
            return None;
        }
        buf.resize(SWEEP, 0);
        let run_end = src.hole_from(pos).clamp(pos + 1, end.max(pos + 1)).min(end);
        while pos < run_end {
            let n = ((run_end - pos).min(SWEEP as u64)) as usize;
            let got = read_padded(src, pos, &mut buf[..n]);
            if let Some(i) = nonzero_byte(&buf[..got]) {
                return Some(pos + i as u64);
            }
            if got < n {
                return None;
            }
            pos += n as u64;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::nonzero_byte;

    #[test]
    fn nonzero_end_is_one_past_the_last_non_zero_byte() {
        assert_eq!(super::nonzero_end(&[]), 0);
        for len in [1, 31, 32, 33, 64, 100] {
            let mut b = vec![0u8; len];
            assert_eq!(super::nonzero_end(&b), 0, "zeros of {len}");
            for at in 0..len {
                b[at] = 0x80;
                assert_eq!(super::nonzero_end(&b), at + 1, "len {len}, last at {at}");
            }
        }
    }

    #[test]
    fn nonzero_byte_finds_the_first_non_zero_byte_anywhere() {
        assert_eq!(nonzero_byte(&[]), None);
        for len in [1, 31, 32, 33, 64, 100] {
            let mut b = vec![0u8; len];
            assert_eq!(nonzero_byte(&b), None, "zeros of {len}");
            for at in (0..len).rev() {
                b[at] = 0x80;
                assert_eq!(nonzero_byte(&b), Some(at), "len {len}, first at {at}");
            }
        }
    }
}
