//! One read of a large BAT for walks that run at the same time. The BAT and layout
//! passes each stream a large table, on two threads (`engine::run::run_all`); read separately, a
//! 512 MiB table was read twice, and the kernel's copies were half the CPU time of a
//! check. Here each chunk is read by the first walk that needs it (a walk that needs it
//! while it is being read waits for it) and kept for the others. A walk that gets
//! [`CAPACITY`] chunks ahead of another one still walking waits for it, so memory stays
//! bounded (at most `CAPACITY` chunks kept) and the walks stay close enough to share.
//! A walk that arrives late reads for itself what is gone; a walk that ends (or stops
//! early, or unwinds) is waited for no more; and a wait for a walk that does not move
//! ends after [`PATIENCE`], after which the waiting walk goes on alone: no walk can block
//! another for good (not even a walk started inside another's callback).

use crate::format::bat::BatEntry;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Chunks kept, and how far (in chunks) a walk may run ahead of another.
const CAPACITY: u64 = 32;
/// How long a walk waits for another that makes no progress before going on alone.
const PATIENCE: Duration = Duration::from_millis(50);

enum State {
    /// A walk is reading the chunk; others wait for it.
    Reading,
    Ready(Arc<Vec<BatEntry>>),
}

#[derive(Default)]
struct Shared {
    /// (first index, state) in the order they were read.
    chunks: Vec<(u64, State)>,
    /// The first index of the chunk each walk needs next; `None` once it ended.
    walks: Vec<Option<u64>>,
    /// Walks waiting on `changed`: without any, nobody is woken (a system call each).
    waiting: usize,
    /// A walk waiting for the others to catch up goes on when they reach this index:
    /// earlier steps wake nobody.
    wake_at: u64,
}

#[derive(Default)]
pub struct BatCache {
    shared: Mutex<Shared>,
    changed: Condvar,
}

impl BatCache {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A walk that panicked is propagated by its thread scope; the state stays usable.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Releases `sh` after a change and wakes the waiting walks, if any wait.
    fn changed(&self, mut sh: MutexGuard<'_, Shared>) {
        let wake = sh.waiting > 0;
        sh.wake_at = u64::MAX;
        drop(sh);
        if wake {
            self.changed.notify_all();
        }
    }

    /// Waits for a change, at most [`PATIENCE`]; true if none came in time.
    fn wait<'a>(&self, mut sh: MutexGuard<'a, Shared>) -> (MutexGuard<'a, Shared>, bool) {
        sh.waiting += 1;
        let (mut sh, w) =
            (self.changed.wait_timeout(sh, PATIENCE)).unwrap_or_else(|e| e.into_inner());
        sh.waiting -= 1;
        (sh, w.timed_out())
    }

    /// Starts a walk (it ends when the returned value is dropped).
    pub fn walk(&self) -> Walk<'_> {
        let mut sh = self.lock();
        sh.walks.push(Some(0));
        Walk {
            cache: self,
            id: sh.walks.len() - 1,
            alone: false,
        }
    }
}

pub struct Walk<'a> {
    cache: &'a BatCache,
    id: usize,
    /// Set when a wait ran out of patience: this walk waits for no other any more.
    alone: bool,
}

impl Walk<'_> {
    /// The entries of the chunk of `span` entries that starts at index `first` (walks go
    /// in increasing `first`): kept, or being read by another walk, or else filled by
    /// `read` (into a buffer recycled from a chunk no walk needs any more: `read` sets its
    /// length and overwrites every entry).
    pub fn get(
        &mut self,
        first: u64,
        span: u64,
        read: impl FnOnce(&mut Vec<BatEntry>),
    ) -> Arc<Vec<BatEntry>> {
        let c = self.cache;
        let mut sh = c.lock();
        sh.walks[self.id] = Some(first);
        if sh.waiting > 0 && first >= sh.wake_at {
            sh.wake_at = u64::MAX;
            c.changed.notify_all();
        }
        // Another walk still going at least `lag` chunks behind.
        let behind = |sh: &Shared, lag: u64| {
            (sh.walks.iter().enumerate()).any(|(w, pos)| {
                w != self.id && pos.is_some_and(|p| p.saturating_add(lag * span) <= first)
            })
        };
        loop {
            match sh.chunks.iter().find(|(f, _)| *f == first) {
                Some((_, State::Ready(chunk))) => return Arc::clone(chunk),
                // The walk reading it finishes without waiting for anything.
                Some((_, State::Reading)) => sh = c.wait(sh).0,
                None if !self.alone && behind(&sh, CAPACITY) => {
                    // Until the others are half as far behind: fewer wake-ups.
                    let half = CAPACITY / 2 * span;
                    while behind(&sh, CAPACITY / 2) {
                        let at = (first + 1).saturating_sub(half);
                        // The first to wait sets it; a stale value is not kept.
                        sh.wake_at = if sh.waiting == 0 {
                            at
                        } else {
                            sh.wake_at.min(at)
                        };
                        let (guard, timed_out) = c.wait(sh);
                        sh = guard;
                        if timed_out && behind(&sh, CAPACITY / 2) {
                            self.alone = true;
                            break;
                        }
                    }
                }
                None => break,
            }
        }
        // Room: the oldest chunk every walk still going has passed, or else the oldest.
        let mut spare = Vec::new();
        if sh.chunks.len() as u64 >= CAPACITY {
            let needed = |f: u64| sh.walks.iter().flatten().any(|&p| p <= f);
            let ready = |s: &State| matches!(s, State::Ready(_));
            let old = (sh.chunks.iter().position(|(f, s)| ready(s) && !needed(*f)))
                .or_else(|| sh.chunks.iter().position(|(_, s)| ready(s)));
            if let Some(old) = old
                && let (_, State::Ready(chunk)) = sh.chunks.remove(old)
            {
                spare = Arc::try_unwrap(chunk).unwrap_or_default();
            }
        }
        sh.chunks.push((first, State::Reading));
        drop(sh);
        // Should `read` unwind, the claim is withdrawn so that no walk waits for it.
        let claim = Claim { cache: c, first };
        read(&mut spare);
        let chunk = Arc::new(spare);
        std::mem::forget(claim);
        let mut sh = c.lock();
        if let Some(slot) = sh.chunks.iter_mut().find(|(f, _)| *f == first) {
            slot.1 = State::Ready(Arc::clone(&chunk));
        }
        c.changed(sh);
        chunk
    }
}

impl Drop for Walk<'_> {
    fn drop(&mut self) {
        let mut sh = self.cache.lock();
        sh.walks[self.id] = None;
        self.cache.changed(sh);
    }
}

/// A chunk being read; dropped only if the read unwinds.
struct Claim<'a> {
    cache: &'a BatCache,
    first: u64,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut sh = self.cache.lock();
        sh.chunks.retain(|(f, _)| *f != self.first);
        self.cache.changed(sh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn fill(first: u64) -> impl FnOnce(&mut Vec<BatEntry>) {
        move |v| {
            v.clear();
            v.extend((0..4).map(|k| BatEntry(first * 10 + k)))
        }
    }

    #[test]
    fn two_walks_read_each_chunk_once() {
        let cache = BatCache::default();
        let reads = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut w = cache.walk();
                    for first in (0..4000).step_by(4) {
                        let c = w.get(first, 4, |v| {
                            reads.fetch_add(1, Ordering::Relaxed);
                            fill(first)(v)
                        });
                        assert_eq!(c[3], BatEntry(first * 10 + 3));
                    }
                });
            }
        });
        // Each of the 1000 chunks once, unless a walk ran out of patience on a busy
        // machine (then it read for itself): the entries are right either way.
        assert!(reads.load(Ordering::Relaxed) >= 1000);
        assert!(cache.lock().chunks.len() as u64 <= CAPACITY);
    }

    #[test]
    fn walks_one_after_another_and_walks_that_stop() {
        let cache = BatCache::default();
        let reads = AtomicUsize::new(0);
        let walk = |n: u64| {
            let mut w = cache.walk();
            for first in 0..n {
                let c = w.get(first, 1, |v| {
                    reads.fetch_add(1, Ordering::Relaxed);
                    fill(first)(v)
                });
                assert_eq!(c[0], BatEntry(first * 10));
            }
        };
        walk(100);
        assert_eq!(reads.load(Ordering::Relaxed), 100);
        walk(3); // stops early: nobody waits for it
        walk(100); // chunks 0..100 - CAPACITY at least are gone: read again
        let reads = reads.load(Ordering::Relaxed);
        assert!((100 + 100 - CAPACITY as usize..=100 + 3 + 100).contains(&reads));
        assert!(cache.lock().chunks.len() as u64 <= CAPACITY);
        // A walk inside another's callback ends its wait by its patience, never hangs.
        let mut outer = cache.walk();
        outer.get(1000, 1, fill(1000));
        let mut inner = cache.walk();
        for first in 0..2 * CAPACITY {
            inner.get(first + 2000, 1, fill(first + 2000));
        }
    }

    #[test]
    fn a_read_that_panics_leaves_no_claim() {
        let cache = BatCache::default();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.walk().get(7, 1, |_| panic!("read failed"));
        }));
        assert!(r.is_err());
        assert!(cache.lock().chunks.is_empty());
        assert!(cache.lock().walks.iter().all(Option::is_none));
        assert_eq!(
            cache.walk().get(7, 1, |v| v.push(BatEntry(1)))[0],
            BatEntry(1)
        );
    }
}
