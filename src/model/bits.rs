//! A plain bitset over 1 MiB units of the file, with word-at-a-time range operations so
//! that marking a 256 MiB block costs a handful of word writes.

/// Units a grid over the file holds at most: 128 TiB, twice the largest virtual disk, so
/// every real image fits. A longer file (a sparse file claiming petabytes, or a REPLAYED
/// view whose size an attacker set through LastFileOffset) is judged on its first 128 TiB
/// by the grids; what lies beyond is handled like objects past the end of the file.
pub const GRID_UNITS_MAX: u64 = 1 << 27;

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

    /// A bit per MiB of a file of `size` bytes, at most [`GRID_UNITS_MAX`].
    pub fn for_file(size: u64) -> Bits {
        Bits::new(size.div_ceil(crate::format::MIB).min(GRID_UNITS_MAX))
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

    /// Calls `f(word, mask)` for each word covering `[start, end)` clipped to `len`, with
    /// the mask of its bits in the range; stops when `f` returns true and says so. A plain
    /// loop: the layout walk calls this several times per block of a 64 Mi-block BAT.
    fn words_in(len: u64, start: u64, end: u64, mut f: impl FnMut(usize, u64) -> bool) -> bool {
        let end = end.min(len);
        if start >= end {
            return false;
        }
        let (first, last) = (start / 64, (end - 1) / 64);
        for w in first..=last {
            let lo = if w == first { start % 64 } else { 0 };
            let hi = if w == last { (end - 1) % 64 + 1 } else { 64 };
            // 1 <= hi - lo <= 64, so the shift is at most 63.
            let mask = (u64::MAX >> (64 - (hi - lo))) << lo;
            if f(w as usize, mask) {
                return true;
            }
        }
        false
    }

    /// Any bit set in `[start, end)`?
    pub fn any(&self, start: u64, end: u64) -> bool {
        Self::words_in(self.len, start, end, |w, m| self.words[w] & m != 0)
    }

    pub fn set_range(&mut self, start: u64, end: u64) {
        let words = &mut self.words;
        Self::words_in(self.len, start, end, |w, m| {
            words[w] |= m;
            false
        });
    }

    /// Bits set in either (lengths must match; the shorter one's length is used).
    pub fn union(&self, other: &Bits) -> Bits {
        Bits {
            words: self
                .words
                .iter()
                .zip(&other.words)
                .map(|(a, b)| a | b)
                .collect(),
            len: self.len.min(other.len),
        }
    }

    /// Iterates maximal runs of clear bits in `[0, len)` as `(start, end)`. Whole words
    /// are skipped at once: a 64 TiB file has 64 Mi units.
    pub fn clear_runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut i = 0u64;
        std::iter::from_fn(move || {
            i = self.next_with(i, true);
            if i >= self.len {
                return None;
            }
            let start = i;
            i = self.next_with(i, false);
            Some((start, i))
        })
    }

    /// The first index at or after `i` whose bit is clear (`set == true`: skipping set
    /// bits) or set (`set == false`), or `len`.
    fn next_with(&self, mut i: u64, set: bool) -> u64 {
        while i < self.len {
            let w = self.words[(i / 64) as usize];
            // Bits still to skip are ones in `skip`; the rest of the word from bit i.
            let skip = if set { w } else { !w };
            let rest = skip >> (i % 64);
            if rest == u64::MAX >> (i % 64) {
                i = (i / 64 + 1) * 64; // the rest of this word is all skipped
                continue;
            }
            return (i + u64::from((!rest).trailing_zeros())).min(self.len);
        }
        self.len
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
        assert!(b.any(63, 64) && b.any(64, 65) && b.any(127, 129) && !b.any(5, 5));
        let mut c = Bits::new(128);
        c.set_range(0, 128);
        assert!(c.get(0) && c.get(63) && c.get(64) && c.get(127));
        c.set_range(130, 140); // past len: nothing
        assert_eq!(c.clear_runs().count(), 0);
        let mut d = Bits::new(300);
        d.set_range(0, 64);
        d.set_range(70, 200);
        d.set_range(299, 300);
        assert_eq!(
            d.clear_runs().collect::<Vec<_>>(),
            vec![(64, 70), (200, 299)]
        );
        let e = Bits::new(130);
        assert_eq!(e.clear_runs().collect::<Vec<_>>(), vec![(0, 130)]);
        let u = b.union(&Bits::new(200));
        assert_eq!(
            u.clear_runs().collect::<Vec<_>>(),
            b.clear_runs().collect::<Vec<_>>()
        );
        assert_eq!(
            b.clear_runs().collect::<Vec<_>>(),
            vec![(0, 10), (140, 200)]
        );
    }
}
