use super::ReadAt;

/// A run of bytes placed at an offset of a sparse image.
#[derive(Debug, Clone)]
pub struct Extent {
    pub offset: u64,
    pub data: Vec<u8>,
}

/// An image described as extents over a zero background: how fuzz inputs and large
/// synthetic images stay small. Later extents win where extents overlap.
pub struct SparseReader {
    len: u64,
    extents: Vec<Extent>,
}

impl SparseReader {
    pub fn new(len: u64, extents: Vec<Extent>) -> Self {
        Self { len, extents }
    }
}

impl ReadAt for SparseReader {
    fn len(&self) -> u64 {
        self.len
    }
    fn data_from(&self, offset: u64) -> Option<u64> {
        self.extents
            .iter()
            .filter(|e| !e.data.is_empty() && e.offset.saturating_add(e.data.len() as u64) > offset)
            .map(|e| e.offset.max(offset))
            .min()
            .filter(|&p| p < self.len)
    }

    fn hole_from(&self, offset: u64) -> u64 {
        // End of the extents covering `offset`, followed through touching extents.
        let mut end = offset;
        loop {
            let next = self
                .extents
                .iter()
                .filter(|e| e.offset <= end && e.offset.saturating_add(e.data.len() as u64) > end)
                .map(|e| e.offset.saturating_add(e.data.len() as u64))
                .max();
            match next {
                Some(n) => end = n,
                None => return end.clamp(offset, self.len),
            }
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf
            .len()
            .min((self.len - offset).min(usize::MAX as u64) as usize);
        let out = &mut buf[..n];
        out.fill(0);
        let end = offset + n as u64;
        for e in &self.extents {
            let e_end = e.offset.saturating_add(e.data.len() as u64);
            let lo = e.offset.max(offset);
            let hi = e_end.min(end);
            if lo < hi {
                let src = &e.data[(lo - e.offset) as usize..(hi - e.offset) as usize];
                out[(lo - offset) as usize..(hi - offset) as usize].copy_from_slice(src);
            }
        }
        Ok(n)
    }
}
