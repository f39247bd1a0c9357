//! The byte encoding of a sparse image, shared by the `image_sparse` target, its seeds
//! (made by `tools/vhdx2sparse.py`) and the replay test.
//!
//! ```text
//! [0..8)   file length, u64 LE (missing bytes read as 0), capped at MAX_LEN (256 MiB)
//! then records until the input ends:
//!   tag    u8         bit 0 clear: literal, set: fill (other bits ignored)
//!   offset u64 LE     file offset of the extent (any value; extents past EOF are clipped)
//!   n      u32 LE     extent length
//!   literal: n bytes follow (fewer if the input ends)
//!   fill:    1 byte follows, repeated n times (total fill bytes capped at MAX_FILL)
//! ```
//! Extents lie over a zero background; later ones win where they overlap. A record
//! whose header is incomplete ends the list.

use arbitrary::{Arbitrary, Unstructured};
use std::fmt;
use vhdx_check::io::{Extent, SparseReader};

/// File length cap: 256 MiB. The engine's sweeps (free space, data after the last
/// object, region slack) read the file linearly, and instrumented that costs about 5 ns a
/// byte: a 1 TiB length made every mutated seed a timeout. Structure offsets are not capped.
pub const MAX_LEN: u64 = 1 << 28;
/// Materialized fill bytes per input (keeps a 3 MiB payload write in 14 input bytes
/// without letting one input allocate gigabytes).
pub const MAX_FILL: usize = 16 << 20;

const TAG_FILL: u8 = 1;

#[derive(Clone, Default)]
pub struct SparseImage {
    pub len: u64,
    pub extents: Vec<Extent>,
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

impl SparseImage {
    pub fn decode(b: &[u8]) -> SparseImage {
        let len = le_u64(&b[..b.len().min(8)]).min(MAX_LEN);
        let mut extents = Vec::new();
        let mut rest = b.get(8..).unwrap_or(&[]);
        let mut fill_budget = MAX_FILL;
        while rest.len() >= 13 {
            let tag = rest[0];
            let offset = le_u64(&rest[1..9]);
            let n = u32::from_le_bytes([rest[9], rest[10], rest[11], rest[12]]) as usize;
            rest = &rest[13..];
            if tag & TAG_FILL != 0 {
                let Some((&byte, tail)) = rest.split_first() else {
                    break;
                };
                rest = tail;
                let n = n.min(fill_budget);
                fill_budget -= n;
                extents.push(Extent {
                    offset,
                    data: vec![byte; n],
                });
            } else {
                let n = n.min(rest.len());
                extents.push(Extent {
                    offset,
                    data: rest[..n].to_vec(),
                });
                rest = &rest[n..];
            }
        }
        SparseImage { len, extents }
    }

    /// Encodes with literal records only (the decoder's inverse, up to the caps).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.len.to_le_bytes().to_vec();
        for e in &self.extents {
            out.push(0);
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&e.data);
        }
        out
    }

    pub fn reader(&self) -> SparseReader {
        SparseReader::new(self.len, self.extents.clone())
    }
}

/// Short on purpose: cargo-fuzz prints this for a crashing input.
impl fmt::Debug for SparseImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SparseImage {{ len: {:#x}, extents: {} [",
            self.len,
            self.extents.len()
        )?;
        for (i, e) in self.extents.iter().take(16).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{:#x}+{:#x}", e.offset, e.data.len())?;
        }
        if self.extents.len() > 16 {
            f.write_str(", ...")?;
        }
        f.write_str("] }")
    }
}

impl<'a> Arbitrary<'a> for SparseImage {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let b = u.bytes(u.len())?;
        Ok(SparseImage::decode(b))
    }
    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(SparseImage::decode(u.take_rest()))
    }
}
