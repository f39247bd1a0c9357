//! A plain bitset over 1 MiB units of the file, with word-at-a-time range operations so
//! that marking a 256 MiB block costs a handful of word writes.

pub struct Bits {
    words: Vec<u64>,
    len: u64,
}

impl Bits {
    /// `len` bits; callers size it by the real file length in MiB units, never by an
    /// untrusted field.
    pub fn new(len: u64) -> Bits {
        Bits {
            words: vec![0; len.div_ceil(64) as usize],
            len,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: u64) -> bool {
        i < self.len && self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// The words covering `[start, end)` clipped to len, each with the mask of its bits.
    fn words_in(&self, start: u64, end: u64) -> impl Iterator<Item = (usize, u64)> + use<> {
        let end = end.min(self.len);
        let first = start / 64;
        let last = end.div_ceil(64);
        (first..last.max(first)).filter_map(move |w| {
            let lo = start.max(w * 64) - w * 64;
            let hi = end.min((w + 1) * 64).saturating_sub(w * 64);
            (lo < hi).then(|| {
                let mask = if hi - lo == 64 {
                    u64::MAX
                } else {
                    ((1u64 << (hi - lo)) - 1) << lo
                };
                (w as usize, mask)
            })
        })
    }

    /// Any bit set in `[start, end)`?
    pub fn any(&self, start: u64, end: u64) -> bool {
        self.words_in(start, end)
            .any(|(w, m)| self.words[w] & m != 0)
    }

    pub fn set_range(&mut self, start: u64, end: u64) {
        for (w, m) in self.words_in(start, end) {
            self.words[w] |= m;
        }
    }

    /// Iterates maximal runs of clear bits in `[0, len)` as `(start, end)`.
    pub fn clear_runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut i = 0u64;
        std::iter::from_fn(move || {
            while i < self.len && self.get(i) {
                i += 1;
            }
            if i >= self.len {
                return None;
            }
            let start = i;
            while i < self.len && !self.get(i) {
                i += 1;
            }
            Some((start, i))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let mut b = Bits::new(200);
        b.set_range(10, 140);
        assert!(b.get(10) && b.get(139) && !b.get(140) && !b.get(9));
        assert!(b.any(0, 11) && !b.any(0, 10) && !b.any(140, 500));
        assert_eq!(
            b.clear_runs().collect::<Vec<_>>(),
            vec![(0, 10), (140, 200)]
        );
    }
}
