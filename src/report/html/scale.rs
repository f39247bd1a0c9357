//! How byte offsets map onto the bars of the page.

use super::{BINS, WIDTH};

/// How offsets map onto a bar of [`BINS`] bins: linearly, or, when objects reach far
/// past the end of the file, the file on the first 85 % of the width and the space past
/// its end on the rest (else a block at 4 GiB squeezes a 12 MiB file into one pixel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub file: u64,
    pub span: u64,
}

pub(super) const SPLIT_X: f64 = 850.0;
const SPLIT_BINS: usize = BINS * 85 / 100;

impl Scale {
    pub fn linear(span: u64) -> Scale {
        Scale { file: span, span }
    }

    /// Whether the bar is split at the end of the file.
    pub fn split(&self) -> bool {
        self.file > 0 && self.span / 5 * 4 > self.file
    }

    fn frac(off: u64, from: u64, to: u64) -> f64 {
        (off.saturating_sub(from)) as f64 / (to - from).max(1) as f64
    }

    pub fn x(&self, off: u64) -> f64 {
        let x = if !self.split() {
            Scale::frac(off, 0, self.span) * WIDTH
        } else if off <= self.file {
            Scale::frac(off, 0, self.file) * SPLIT_X
        } else {
            SPLIT_X + Scale::frac(off, self.file, self.span) * (WIDTH - SPLIT_X)
        };
        x.min(WIDTH)
    }

    fn part(off: u64, from: u64, to: u64, bins: usize) -> usize {
        ((off.saturating_sub(from)) as u128 * bins as u128 / (to - from).max(1) as u128) as usize
    }

    /// The bin holding byte `off`.
    pub fn bin(&self, off: u64) -> usize {
        let b = if !self.split() {
            Scale::part(off, 0, self.span, BINS)
        } else if off < self.file {
            Scale::part(off, 0, self.file, SPLIT_BINS)
        } else {
            SPLIT_BINS + Scale::part(off, self.file, self.span, BINS - SPLIT_BINS)
        };
        b.min(BINS - 1)
    }

    fn edge(from: u64, to: u64, k: usize, bins: usize) -> u64 {
        from + ((to - from) as u128 * k as u128 / bins as u128) as u64
    }

    /// The bytes of bin `b`.
    pub fn range(&self, b: usize) -> (u64, u64) {
        if !self.split() {
            let e = |k| Scale::edge(0, self.span, k, BINS);
            (e(b), e(b + 1))
        } else if b < SPLIT_BINS {
            let e = |k| Scale::edge(0, self.file, k, SPLIT_BINS);
            (e(b), e(b + 1))
        } else {
            let e = |k| Scale::edge(self.file, self.span, k - SPLIT_BINS, BINS - SPLIT_BINS);
            (e(b), e(b + 1))
        }
    }

    /// Adds `[off, off + len)` bin by bin: `f(bin, bytes in it)`.
    pub(super) fn spread(&self, off: u64, len: u64, mut f: impl FnMut(usize, u64)) {
        let end = off.saturating_add(len).min(self.span);
        if off >= end {
            return;
        }
        for b in self.bin(off)..=self.bin(end - 1) {
            let (from, to) = self.range(b);
            let n = to.min(end).saturating_sub(from.max(off));
            f(b, n);
        }
    }

    /// The offset at horizontal position `x` (for the axis).
    pub(super) fn at(&self, x: f64) -> u64 {
        let lerp =
            |from: u64, to: u64, t: f64| from + ((to - from) as f64 * t.clamp(0.0, 1.0)) as u64;
        if !self.split() {
            lerp(0, self.span, x / WIDTH)
        } else if x <= SPLIT_X {
            lerp(0, self.file, x / SPLIT_X)
        } else {
            lerp(self.file, self.span, (x - SPLIT_X) / (WIDTH - SPLIT_X))
        }
    }
}
