//! Evidence digests (`--hash sha256`): of the image file as stored, and of the virtual
//! disk as a guest reads it (the bytes `qemu-img convert -O raw` would write). Both are
//! streamed in 1 MiB pieces, so memory stays bounded even for a 64 TiB disk.
//!
//! Virtual view: as [`crate::model::virtual_disk`] reads it (each block state read as the
//! guest reads it, a differencing disk through its parents when they are given). A digest
//! is exact or absent: a disk with blocks past the end of its file, or a differencing disk
//! without its parents, has none, and says why.

pub use crate::findings::Digests;
use crate::io::{self, ReadAt};
use crate::model::Model;
use crate::model::virtual_disk::{self, ViewChoice, VirtualDisk};
use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Computes both digests (in parallel: each is bound by hashing speed). A read error is
/// returned, never hashed as zeros: a digest of evidence must be exact.
pub fn digests(model: &Model) -> std::io::Result<Digests> {
    let (file, virt) = std::thread::scope(|s| {
        let file = crate::threads::spawn_beside(s, || file_digest(model.src));
        let virt = virtual_digest(model);
        (file.join(), virt)
    });
    let file = file.map_err(|_| std::io::Error::other("file digest thread failed"))??;
    let (virtual_disk, virtual_unavailable) = match virt? {
        Ok(d) => (Some(d), None),
        Err(why) => (None, Some(why)),
    };
    Ok(Digests {
        algorithm: "sha256",
        file,
        virtual_disk,
        virtual_unavailable,
    })
}

/// Lowercase hex of a digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn file_digest(src: &dyn ReadAt) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; io::CHUNK];
    let len = src.len();
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(io::CHUNK as u64) as usize;
        let got = io::read_full(src, pos, &mut buf[..n])?;
        if got < n {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the file ended at {} while hashing", pos + got as u64),
            ));
        }
        h.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(hex(&h.finalize()))
}

/// A piece of the virtual disk as [`walk_bytes`] hands it over.
pub enum Piece<'b> {
    /// Bytes read from a member's file.
    Data(&'b [u8]),
    /// This many zero bytes (nothing was read).
    Zeros(u64),
}

/// Bytes read at a time from a member's file (large sequential reads).
pub const PIECE: usize = 4 << 20;

static INTERRUPTED: std::sync::LazyLock<Arc<AtomicBool>> =
    std::sync::LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Makes SIGINT stop long work cleanly: the first one sets [`interrupted`], which the
/// walks over a virtual disk check between pieces (the command then exits 130 without
/// printing its result); a second one exits 130 at once.
pub fn catch_interrupt() {
    use signal_hook::consts::SIGINT;
    let flag = INTERRUPTED.clone();
    // Registered first, so it sees the flag as the previous signal left it.
    let _ = signal_hook::flag::register_conditional_shutdown(SIGINT, 130, flag.clone());
    let _ = signal_hook::flag::register(SIGINT, flag);
}

/// Whether SIGINT arrived (see [`catch_interrupt`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

fn interrupted_error() -> std::io::Error {
    std::io::Error::other("interrupted")
}

/// Streams the virtual disk in order: file bytes in pieces of at most [`PIECE`] bytes
/// (`buf` is the read buffer), zero runs as counts; `progress(done)` after each piece.
/// Stops with an error on a read error, a range no member holds, or SIGINT.
pub fn walk_bytes(
    vd: &VirtualDisk,
    buf: &mut Vec<u8>,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(u64, Piece) -> std::io::Result<()>,
) -> std::io::Result<()> {
    buf.resize(PIECE, 0);
    for e in vd.extents() {
        let e = e?;
        let mut done = 0u64;
        while done < e.length {
            if interrupted() {
                return Err(interrupted_error());
            }
            let n = (e.length - done).min(PIECE as u64);
            let at = e.offset + done;
            match (e.state.from_file(), e.member, e.file_offset) {
                // Holes of a sparse member read as zeros without a copy.
                (true, Some(m), Some(off)) if vd.is_hole(m, off + done, n) => {
                    f(at, Piece::Zeros(n))?
                }
                (true, ..) => {
                    let b = &mut buf[..n as usize];
                    vd.read_extent(&e, done, b)?;
                    f(at, Piece::Data(b))?
                }
                (false, ..) => {
                    if e.state == virtual_disk::State::Parent {
                        return Err(std::io::Error::other(
                            "a range is deferred to a parent that was not given",
                        ));
                    }
                    f(at, Piece::Zeros(n))?
                }
            }
            done += n;
            progress(at + n);
        }
    }
    Ok(())
}

/// Feeds `n` zero bytes to `h`.
pub fn hash_zeros(h: &mut Sha256, mut n: u64) {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        h.update(&ZEROS[..k]);
        n -= k as u64;
    }
}

/// Virtual disks above this size get a notice with an estimate before they are hashed.
pub const LARGE: u64 = 1 << 40;

/// SHA-256 throughput of this machine over zeros, in bytes per second (hashes 32 MiB).
pub fn hash_rate() -> f64 {
    let t = std::time::Instant::now();
    let mut h = Sha256::new();
    hash_zeros(&mut h, 32 << 20);
    let _ = h.finalize();
    (32u64 << 20) as f64 / t.elapsed().as_secs_f64().max(1e-6)
}

/// "64 TiB", "1.5 GiB": a size for people.
pub fn human(n: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s.div_ceil(60)),
        _ => format!("{:.1} h", secs / 3600.0),
    }
}

/// Progress on stderr for long walks: the notice for a large disk, and a line updated
/// about once a second while stderr is a terminal.
pub struct Progress {
    what: String,
    total: u64,
    tty: bool,
    start: std::time::Instant,
    last: std::time::Instant,
    shown: bool,
}

impl Progress {
    /// `verb` ("hashing", "exporting") the virtual disk of `what` of `total` bytes;
    /// `always` shows the line on a terminal whatever the size.
    pub fn new(verb: &str, what: &str, total: u64, always: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        if total > LARGE {
            let rate = hash_rate();
            stderr(&format!(
                "vhdx-check: {verb} the {} virtual disk of {what} ({total} bytes): about {} at {}/s; Ctrl-C stops\n",
                human(total),
                duration(total as f64 / rate),
                human(rate as u64)
            ));
        }
        let now = std::time::Instant::now();
        Progress {
            what: format!("{verb} {what}"),
            total,
            tty: tty && (always || total > LARGE),
            start: now,
            last: now,
            shown: false,
        }
    }

    pub fn tick(&mut self, done: u64) {
        if !self.tty || self.last.elapsed().as_millis() < 1000 {
            return;
        }
        self.last = std::time::Instant::now();
        let pct = done as f64 * 100.0 / self.total.max(1) as f64;
        let secs = self.start.elapsed().as_secs_f64();
        let left = if done > 0 {
            duration(secs * (self.total - done) as f64 / done as f64)
        } else {
            "?".into()
        };
        stderr(&format!(
            "\r\x1b[2Kvhdx-check: {}: {pct:.1}% of {} ({left} left)",
            self.what,
            human(self.total)
        ));
        self.shown = true;
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.shown {
            stderr("\r\x1b[2K");
            self.shown = false;
        }
    }
}

/// Writes to stderr; a stderr that cannot be written (full, closed) is ignored, never a
/// panic as with `eprint!`.
fn stderr(s: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// SHA-256 of the virtual disk `vd` (of `what`, for the progress line).
pub fn disk_digest(vd: &VirtualDisk, what: &str) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut progress = Progress::new("hashing", what, vd.size(), false);
    let mut buf = Vec::new();
    walk_bytes(vd, &mut buf, &mut |d| progress.tick(d), &mut |_, p| {
        match p {
            Piece::Data(b) => h.update(b),
            Piece::Zeros(n) => hash_zeros(&mut h, n),
        }
        Ok(())
    })?;
    Ok(hex(&h.finalize()))
}

/// The virtual digest, or why it cannot be computed from this file. With a pending log the
/// guest reads the disk after replay (as QEMU and Hyper-V do), so the replayed view is hashed.
fn virtual_digest(m: &Model) -> std::io::Result<Result<String, String>> {
    virtual_disk::with_models(&[m], ViewChoice::Replayed, |vd| match vd {
        Err(why) => Ok(Err(why)),
        Ok(vd) => match vd.unreadable() {
            Some(why) => Ok(Err(why)),
            None => exact_or_unavailable(disk_digest(vd, "the image")),
        },
    })
}

/// A structural fault met while reading (`InvalidData`) makes the digest unavailable with
/// its reason: the image is broken, which its findings say; any other error is a read
/// error of the evidence (a tool failure).
fn exact_or_unavailable(d: std::io::Result<String>) -> std::io::Result<Result<String, String>> {
    match d {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(Err(e.to_string())),
        d => d.map(Ok),
    }
}

/// The virtual digest of the differencing disk `chain[0]` read through its parents
/// `chain[1..]`, or why it is unavailable; `None` when `chain[0]` is not a differencing
/// disk (its own digest stands).
pub fn chain_digest(
    chain: &[&dyn ReadAt],
    label: &str,
) -> std::io::Result<Option<Result<String, String>>> {
    virtual_disk::with_disk(chain, ViewChoice::Replayed, |vd| {
        let vd = match vd {
            Err(why) => return Ok(Some(Err(why))),
            Ok(vd) => vd,
        };
        if !vd.geometry(0).is_some_and(|g| g.differencing) {
            return Ok(None);
        }
        // A parent the child does not name (CHAIN-001) is not its disk: no digest of it.
        match vd.unreadable().or_else(|| vd.linkage()) {
            Some(why) => Ok(Some(Err(why))),
            None => exact_or_unavailable(disk_digest(vd, label)).map(Some),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemReader;

    #[test]
    fn file_digest_of_known_input() {
        let src = MemReader(b"abc");
        assert_eq!(
            file_digest(&src).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn garbage_has_no_virtual_digest() {
        let bytes = vec![0x5a; 4096];
        let src = MemReader(&bytes);
        let d = digests(&Model::build(&src)).unwrap();
        assert!(d.virtual_disk.is_none() && d.virtual_unavailable.is_some());
        assert_eq!(d.file.len(), 64);
    }
}
