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

    /// Applies `f(word_index, mask)` over the words covering `[start, end)` clipped to len.
    fn for_words(&self, start: u64, end: u64, mut f: impl FnMut(usize, u64) -> bool) -> bool {
        let end = end.min(self.len);
        let mut i = start;
        while i < end {
            let w = i / 64;
            let lo = i % 64;
            let hi = ((w + 1) * 64).min(end) - w * 64; // exclusive, 1..=64
            let mask = if hi - lo == 64 {
                u64::MAX
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            if f(w as usize, mask) {
                return true;
            }
            i = (w + 1) * 64;
        }
        false
    }

    /// Any bit set in `[start, end)`?
    pub fn any(&self, start: u64, end: u64) -> bool {
        self.for_words(start, end, |w, m| self.words[w] & m != 0)
    }

    pub fn set_range(&mut self, start: u64, end: u64) {
        let mut hits = Vec::new();
        self.for_words(start, end, |w, m| {
            hits.push((w, m));
            false
        });
        for (w, m) in hits {
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
