//! Evidence digests (`--hash sha256`): of the image file as stored, and of the virtual
//! disk as a guest reads it (the bytes `qemu-img convert -O raw` would write). Both are
//! streamed in 1 MiB pieces, so memory stays bounded even for a 64 TiB disk.
//!
//! Virtual view: payload block k covers virtual bytes [k·BlockSize, (k+1)·BlockSize)
//! clipped at VirtualDiskSize; a block in state PAYLOAD_BLOCK_FULLY_PRESENT is read from
//! the file (bytes past the end of the file as zeros, which BAT-014 reports), every other
//! state reads as zeros. A differencing disk reads through its parent, so its virtual
//! digest is reported as unavailable.

use crate::format::bat::{BatEntry, Geometry, PAYLOAD_BLOCK_FULLY_PRESENT};
use crate::io::{self, ReadAt};
use crate::model::{DiskType, Model};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digests {
    pub algorithm: &'static str,
    /// Digest of the image file, byte for byte.
    pub file: String,
    /// Digest of the virtual disk contents, when they can be known from this file alone.
    pub virtual_disk: Option<String>,
    /// Why `virtual_disk` is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_unavailable: Option<String>,
}

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

/// Reads `buf.len()` bytes at `offset`; returns how many exist before the end of the
/// source. Unlike `io::read_padded`, a read error is an error.
fn read_exact_or_eof(src: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
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

fn file_digest(src: &dyn ReadAt) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; io::CHUNK];
    let len = src.len();
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(io::CHUNK as u64) as usize;
        let got = read_exact_or_eof(src, pos, &mut buf[..n])?;
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

/// Feeds the hasher: zeros and file ranges, each in bounded pieces.
struct Feeder<'a> {
    src: &'a dyn ReadAt,
    hasher: Sha256,
    buf: Vec<u8>,
    zeros: Vec<u8>,
}

impl Feeder<'_> {
    fn zeros(&mut self, mut len: u64) {
        while len > 0 {
            let n = len.min(io::CHUNK as u64) as usize;
            self.hasher.update(&self.zeros[..n]);
            len -= n as u64;
        }
    }

    fn file(&mut self, offset: u64, len: u64) -> std::io::Result<()> {
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(io::CHUNK as u64) as usize;
            let buf = &mut self.buf[..n];
            let Some(at) = offset.checked_add(done) else {
                self.zeros(len - done);
                return Ok(());
            };
            let got = read_exact_or_eof(self.src, at, buf)?;
            buf[got..].fill(0);
            self.hasher.update(&*buf);
            done += n as u64;
        }
        Ok(())
    }
}

/// The virtual digest, or why it cannot be computed from this file. With a pending log the
/// guest reads the disk after replay (as QEMU and Hyper-V do), so the replayed view is hashed.
fn virtual_digest(m: &Model) -> std::io::Result<Result<String, String>> {
    if let Some(plan) = m
        .active_log()
        .filter(|l| l.dirty())
        .and_then(|l| l.plan.as_ref())
    {
        let view = crate::model::replay::ReplayedView::new(m.src, plan);
        return guest_digest(&Model::build(&view));
    }
    guest_digest(m)
}

fn guest_digest(m: &Model) -> std::io::Result<Result<String, String>> {
    let why = match (m.disk_type, m.geometry, m.bat) {
        (Some(DiskType::Differencing), ..) => {
            "a differencing disk: unwritten sectors are read from its parent"
        }
        (_, Some(g), Some(_)) => return blocks_digest(m, g).map(Ok),
        (_, _, None) => "there is no usable BAT region (see the region findings)",
        _ => "the disk type or geometry could not be read (see the metadata findings)",
    };
    Ok(Err(why.to_string()))
}

/// Hashes payload blocks in virtual order, streaming the BAT.
fn blocks_digest(m: &Model, g: Geometry) -> std::io::Result<String> {
    let mut f = Feeder {
        src: m.src,
        hasher: Sha256::new(),
        buf: vec![0u8; io::CHUNK],
        zeros: vec![0u8; io::CHUNK],
    };
    // Next payload block to hash; blocks whose entry lies past the readable BAT are zeros.
    let mut next = 0u64;
    let mut failed = None;
    m.for_each_bat_chunk(|first, entries| {
        for (i, &e) in (first..).zip(entries) {
            if g.is_sector_bitmap_index(i) {
                continue;
            }
            let k = g.block_of_index(i);
            if k >= g.payload_blocks {
                return false;
            }
            let start = k * g.block_size;
            let len = g.block_size.min(g.virtual_disk_size - start);
            if let Err(err) = block(&mut f, e, len) {
                failed = Some(err);
                return false;
            }
            next = k + 1;
        }
        true
    });
    if let Some(e) = failed {
        return Err(e);
    }
    f.zeros(g.virtual_disk_size - (next * g.block_size).min(g.virtual_disk_size));
    Ok(hex(&f.hasher.finalize()))
}

fn block(f: &mut Feeder, e: BatEntry, len: u64) -> std::io::Result<()> {
    if e.state() == PAYLOAD_BLOCK_FULLY_PRESENT {
        f.file(e.file_offset(), len)
    } else {
        f.zeros(len);
        Ok(())
    }
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
