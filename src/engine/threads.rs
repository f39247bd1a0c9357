//! Helper threads that really run beside their parent. On the 2-CPU test VMs a new thread
//! starts on its parent's CPU (the guest scheduler packs threads onto few vCPUs) and either
//! preempts the parent until it ends or waits until the parent blocks, while the other CPU
//! idles: the log thread of a check had started on the main thread's CPU in 60 of 60 runs.
//! The parent yields once after spawning; a thread spawned here that finds itself on its
//! parent's CPU moves to another allowed one, then allows all of them again (the scheduler
//! leaves it where it is). `check` of log.vhdx (benches/), 250 interleaved runs: 3.4-3.8
//! ms without the yield, 2.5-2.9 ms with it.

use std::thread::{Scope, ScopedJoinHandle};

/// [`Scope::spawn`], with the new thread moved off the caller's CPU.
pub fn spawn_beside<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    f: impl FnOnce() -> T + Send + 'scope,
) -> ScopedJoinHandle<'scope, T> {
    let parent = cpu();
    let handle = scope.spawn(move || {
        leave(parent);
        f()
    });
    // A new thread queued behind its parent would not run, and so not move, until the
    // parent blocks: let it run now (a no-op when it already runs elsewhere).
    std::thread::yield_now();
    handle
}

#[cfg(target_os = "linux")]
fn cpu() -> Option<usize> {
    Some(rustix::thread::sched_getcpu())
}

#[cfg(not(target_os = "linux"))]
fn cpu() -> Option<usize> {
    None
}

/// Moves the calling thread off `cpu` if it runs there and another CPU is allowed.
#[cfg(target_os = "linux")]
fn leave(cpu: Option<usize>) {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
    // Past CpuSet::MAX_CPU (1024) the set cannot name the CPU: stay.
    let Some(cpu) = cpu.filter(|&c| c == sched_getcpu() && c < CpuSet::MAX_CPU) else {
        return;
    };
    let Ok(allowed) = sched_getaffinity(None) else {
        return;
    };
    let mut elsewhere = allowed;
    elsewhere.unset(cpu);
    // Failing changes nothing: the thread only runs where it would have.
    if elsewhere.count() > 0 && sched_setaffinity(None, &elsewhere).is_ok() {
        let _ = sched_setaffinity(None, &allowed);
    }
}

#[cfg(not(target_os = "linux"))]
fn leave(_: Option<usize>) {}

#[cfg(test)]
mod tests {
    #[test]
    fn spawned_work_runs_and_returns() {
        let v = std::thread::scope(|s| super::spawn_beside(s, || 6 * 7).join().unwrap());
        assert_eq!(v, 42);
    }
}
