//! Many images in one run: directories expand to the images below them, every image is
//! checked on a pool of threads (one per core), and results are handed on in input order
//! as they are done (streamed: memory does not grow with the number of images).
//! Each image goes through the whole pipeline: rules, then the policy, then digests.

use crate::chain::{Checked, Member, check_chain};
use crate::check::{CheckOptions, ImageReport};
use crate::io::{ReadAt, Watch};
use crate::model::Model;
use crate::model::virtual_disk::{ViewChoice, with_disk};
use crate::policy::{FailOn, Policy};
use crate::report;
use crate::report::html::{ChainMember, NOT_THROUGH_PARENTS, Parts, virtual_map};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

/// File name extensions of VHDX images (a differencing child is often `.avhdx`).
const EXTENSIONS: &[&str] = &["vhdx", "avhdx"];

/// What is done to every image.
pub struct Job<'a> {
    pub opts: CheckOptions,
    pub policy: &'a Policy,
    pub hash: bool,
    /// Compute what the HTML report shows beyond the report ([`Outcome::html`]).
    pub html: bool,
}

/// One entry of a run, in input order: an image (with its parents, when chains are
/// followed) to check, or a path the walk met and could not or would not check.
#[derive(Debug, Clone)]
pub enum Task {
    Chain(Vec<Member>),
    /// A directory (or entry) that could not be read: the reason. The run exits 2.
    Unreadable(PathBuf, String),
    /// An entry with an image name that is not a regular file (FIFO, socket, device,
    /// symbolic link met in a walk): the reason. It is never opened.
    Skipped(PathBuf, String),
}

/// What became of one file.
#[derive(Debug)]
pub enum Status {
    Checked(ImageReport),
    /// Could not be checked: the reason (a tool failure: exit 2).
    Error(String),
    /// Not checked, on purpose: the reason.
    Skipped(String),
}

/// The outcome for one file: its path (exactly as found: not always UTF-8) and status.
#[derive(Debug)]
pub struct Outcome {
    pub path: PathBuf,
    pub status: Status,
    /// With [`Job::html`], for a checked image: the page's parts, from the models the
    /// check judged (the file is not read again by name afterwards).
    pub html: Option<Box<Parts>>,
}

impl Outcome {
    /// What a renderer is given for this outcome; `rejected` by `fail_on` when checked.
    pub fn checked(&self, fail_on: FailOn) -> report::Checked<'_> {
        let (outcome, rejected) = match &self.status {
            Status::Checked(r) => (report::Status::Report(r), fail_on.rejects(r)),
            Status::Error(e) => (report::Status::Error(e), false),
            Status::Skipped(why) => (report::Status::Skipped(why), false),
        };
        report::Checked {
            path: &self.path,
            outcome,
            rejected,
            parts: self.html.as_deref(),
        }
    }
}

/// What a directory walk found, in input order.
#[derive(Debug, Clone)]
pub enum Found {
    Image(PathBuf),
    Unreadable(PathBuf, String),
    Skipped(PathBuf, String),
}

impl Found {
    pub fn path(&self) -> &Path {
        match self {
            Found::Image(p) | Found::Unreadable(p, _) | Found::Skipped(p, _) => p,
        }
    }
}

/// Replaces each directory in `inputs` by the entries below it (recursively, sorted by
/// path). Other paths stay as given (a symbolic link named on the command line is
/// followed: the user asked for it), so a missing file is reported by the check as
/// unreadable. The walk follows no symbolic link, to a file or a directory: one in a
/// checked tree could point anywhere, and its target's bytes would be quoted in the
/// report. A directory that cannot be read is an entry of its own (the other images are
/// still checked); an entry with an image name that is not a regular file (FIFO, socket,
/// device, symbolic link) is listed as skipped, without being opened. A directory with
/// no entries at all is an error.
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<Found>, String> {
    let mut out = Vec::new();
    for p in inputs {
        if !p.is_dir() {
            out.push(Found::Image(p.clone()));
            continue;
        }
        let mut found = Vec::new();
        let mut dirs = vec![p.clone()];
        while let Some(dir) = dirs.pop() {
            let list = match std::fs::read_dir(&dir) {
                Ok(l) => l,
                Err(e) => {
                    found.push(Found::Unreadable(
                        dir.clone(),
                        format!("cannot read directory {}: {e}", dir.display()),
                    ));
                    continue;
                }
            };
            for entry in list {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        found.push(Found::Unreadable(
                            dir.clone(),
                            format!("cannot read directory {}: {e}", dir.display()),
                        ));
                        break;
                    }
                };
                let path = entry.path();
                // The entry itself (lstat), never what a link points to.
                let kind = match entry.file_type() {
                    Ok(t) => t,
                    Err(e) if is_image_name(&path) => {
                        let why = format!("cannot read {}: {e}", path.display());
                        found.push(Found::Unreadable(path, why));
                        continue;
                    }
                    Err(_) => continue,
                };
                if kind.is_dir() {
                    dirs.push(path);
                } else if !is_image_name(&path) {
                } else if kind.is_file() {
                    found.push(Found::Image(path));
                } else {
                    let why = not_a_file(&path, kind);
                    found.push(Found::Skipped(path, why));
                }
            }
        }
        if found.is_empty() {
            return Err(format!(
                "no *.vhdx or *.avhdx files under directory {}",
                p.display()
            ));
        }
        found.sort_by(|a, b| a.path().cmp(b.path()));
        out.extend(found);
    }
    Ok(out)
}

/// Why an entry with an image name is not checked.
fn not_a_file(path: &Path, kind: std::fs::FileType) -> String {
    #[cfg(unix)]
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_symlink() {
        // stat only: the target is not opened.
        match std::fs::metadata(path) {
            Ok(_) => "a symbolic link (links are not followed in a directory walk)",
            // ELOOP: a link that leads back to itself.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                "a symbolic link that loops (links are not followed in a directory walk)"
            }
            Err(_) => "a dangling symbolic link (links are not followed in a directory walk)",
        }
    } else {
        #[cfg(unix)]
        {
            if kind.is_fifo() {
                "a FIFO (named pipe), not a regular file"
            } else if kind.is_socket() {
                "a socket, not a regular file"
            } else if kind.is_block_device() || kind.is_char_device() {
                "a device, not a regular file"
            } else {
                "not a regular file"
            }
        }
        #[cfg(not(unix))]
        {
            "not a regular file"
        }
    };
    what.to_string()
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Checks every task on all cores and hands each outcome to `emit` as soon as it and
/// every earlier one are done: input order, each chain's members in chain order.
/// `done(finished, total)` is called as each task completes, from a worker thread.
///
/// Memory does not grow with the number of tasks: at most `2 x threads` tasks are
/// started ahead of the first one not yet emitted (the reorder buffer), and a worker
/// waits for `emit` to catch up (back-pressure). When `emit` fails, no further task is
/// started and the error is returned (outcomes not yet emitted are dropped).
pub fn run<E>(
    tasks: &[Task],
    job: &Job,
    done: &(dyn Fn(usize, usize) + Sync),
    mut emit: impl FnMut(Outcome) -> Result<(), E>,
) -> Result<(), E> {
    stream(
        tasks,
        |t| check_task(t, job),
        done,
        |outcomes| {
            for o in outcomes {
                emit(o)?;
            }
            Ok(())
        },
    )
}

fn check_task(task: &Task, job: &Job) -> Vec<Outcome> {
    match task {
        Task::Chain(members) => (check_members(members, job).into_iter())
            .map(|c| Outcome {
                path: c.member.path,
                status: match c.result {
                    Ok(r) => Status::Checked(r),
                    Err(e) => Status::Error(e),
                },
                html: c.extra.flatten().map(Box::new),
            })
            .collect(),
        Task::Unreadable(p, why) => vec![Outcome {
            path: p.clone(),
            status: Status::Error(why.clone()),
            html: None,
        }],
        Task::Skipped(p, why) => vec![Outcome {
            path: p.clone(),
            status: Status::Skipped(why.clone()),
            html: None,
        }],
    }
}

/// Work handed out to the pool: the next item to start, how many were emitted, whether
/// to stop.
struct Gate {
    next: usize,
    emitted: usize,
    stop: bool,
}

/// `f` over `items` on one thread per core, `emit` called on the main thread with each
/// result in the order of `items` (see [`run`] for the bounds).
fn stream<I: Sync, O: Send, E>(
    items: &[I],
    f: impl Fn(&I) -> O + Sync,
    done: &(dyn Fn(usize, usize) + Sync),
    mut emit: impl FnMut(O) -> Result<(), E>,
) -> Result<(), E> {
    // One item (the usual `check IMAGE`): no pool, no thread to start and wake.
    if let [item] = items {
        let out = f(item);
        done(1, 1);
        return emit(out);
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    let window = threads.saturating_mul(2);
    let gate = Mutex::new(Gate {
        next: 0,
        emitted: 0,
        stop: false,
    });
    let wake = Condvar::new();
    let lock = || gate.lock().unwrap_or_else(|e| e.into_inner());
    let finished = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (f, finished, wake, lock) = (&f, &finished, &wake, &lock);
            crate::threads::spawn_beside(s, move || {
                loop {
                    let i = {
                        let mut g = lock();
                        while !g.stop && g.next >= g.emitted.saturating_add(window) {
                            g = wake.wait(g).unwrap_or_else(|e| e.into_inner());
                        }
                        if g.stop || g.next >= items.len() {
                            break;
                        }
                        g.next += 1;
                        g.next - 1
                    };
                    let Some(item) = items.get(i) else { break };
                    let out = f(item);
                    done(finished.fetch_add(1, Ordering::Relaxed) + 1, items.len());
                    if tx.send((i, out)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // At most `window` results wait here for an earlier one.
        let mut pending: BTreeMap<usize, O> = BTreeMap::new();
        let mut emitted = 0;
        let mut result = Ok(());
        for (i, out) in rx {
            pending.insert(i, out);
            while let Some(out) = pending.remove(&emitted) {
                result = emit(out);
                emitted += 1;
                let mut g = lock();
                g.emitted = emitted;
                g.stop = result.is_err();
                drop(g);
                wake.notify_all();
                if result.is_err() {
                    break;
                }
            }
            if result.is_err() {
                break;
            }
        }
        // Leaving the loop drops the receiver: a worker still checking stops at its send.
        result
    })
}
/// The whole pipeline for one chain: rules (the CHAIN rules with each member's parent),
/// then the policy and the digests on the same models. The policy judges the structures
/// as the image will be read: after a pending log replay (the REPLAYED model); the file
/// digest is of the file as stored (the RAW model's source).
/// With `job.html`, the HTML page's parts are computed here too, from the same models
/// and reads (inside the check's watch): what the page shows is what was judged.
fn check_members(chain: &[Member], job: &Job) -> Vec<Checked<Option<Parts>>> {
    let stage = |raw: &Model, replayed: Option<&Model>, report: &mut ImageReport| {
        if !job.policy.is_empty() {
            job.policy
                .judge(replayed.unwrap_or(raw), report, job.opts.max_per_rule);
        }
        if job.hash {
            let digests = crate::hash::digests(raw).map_err(|e| format!("cannot hash: {e}"))?;
            report.digests = Some(digests);
        }
        Ok(job.html.then(|| Parts::collect(raw, replayed, report)))
    };
    let mut out = check_chain(chain, &job.opts, &stage);
    if job.hash {
        chain_digests(&mut out);
    }
    if job.html {
        chain_parts(&mut out);
    }
    out
}

/// Extents walked and drawn for a differencing member through its parents, from the file
/// handles the check read ([`chain::Checked`]'s `member.file`), and the chain as resolved.
fn chain_parts(out: &mut [Checked<Option<Parts>>]) {
    let members: Vec<ChainMember> = (out.iter())
        .map(|c| ChainMember {
            path: crate::report::path_str(&c.member.path).into_owned(),
            found_via: c.member.found_via,
            broken: (c.member.broken.as_ref())
                .map(crate::chain::break_finding)
                .map(|(rule, why)| (rule, why.to_string())),
        })
        .collect();
    for i in 0..out.len() {
        let through_parents = i + 1 < out.len()
            && out[i].extra.as_ref().and_then(Option::as_ref).is_some_and(
                |p| matches!(&p.virtual_disk, Some(Err(why)) if why == NOT_THROUGH_PARENTS),
            );
        let map = through_parents.then(|| {
            let files: Option<Vec<_>> = out[i..].iter().map(|c| c.member.file.clone()).collect();
            let Some(files) = files else {
                return Err("a parent in the chain cannot be read".to_string());
            };
            // The same handles, watched: a file that changed since gives no map.
            let watches: Vec<Watch> = files.iter().map(|f| Watch::new(f.as_ref())).collect();
            let srcs: Vec<&dyn ReadAt> = watches.iter().map(|w| w as &dyn ReadAt).collect();
            let names = &members[i..];
            let names: Vec<String> = names.iter().map(|m| m.path.clone()).collect();
            let map = with_disk(&srcs, ViewChoice::Replayed, |vd| {
                vd.map(|vd| virtual_map(vd, &names))
            });
            for w in &watches {
                w.verify()
                    .map_err(|e| format!("the chain cannot be read: {e}"))?;
            }
            map
        });
        if let Some(Some(parts)) = out[i].extra.as_mut() {
            if members.len() > 1 || members.iter().any(|m| m.broken.is_some()) {
                parts.chain = members.clone();
                parts.chain_index = i;
            }
            if let Some(map) = map {
                parts.virtual_disk = Some(map);
            }
        }
    }
}

/// Each differencing member's virtual digest, read through the members after it — from
/// the same file handles the check read.
fn chain_digests<X>(out: &mut [Checked<X>]) {
    for i in 0..out.len().saturating_sub(1) {
        let wants = out[i].result.as_ref().ok().and_then(|r| r.digests.as_ref());
        if wants.is_none_or(|d| d.virtual_disk.is_some()) {
            continue;
        }
        let files: Option<Vec<_>> = out[i..].iter().map(|c| c.member.file.clone()).collect();
        let label = out[i].member.path.display().to_string();
        let digest = match &files {
            Some(files) => {
                // Read again after the check: a read error or a change voids the digest.
                let watches: Vec<crate::io::Watch> = files
                    .iter()
                    .map(|f| crate::io::Watch::new(f.as_ref()))
                    .collect();
                let srcs: Vec<&dyn ReadAt> = watches.iter().map(|w| w as &dyn ReadAt).collect();
                let d = crate::hash::chain_digest(&srcs, &label);
                match watches.iter().find_map(|w| w.verify().err()) {
                    Some(e) => Err(std::io::Error::other(e.to_string())),
                    None => d,
                }
            }
            // A parent that could not be opened: its own outcome says why.
            None => Ok(Some(
                Err("a parent in the chain cannot be read".to_string()),
            )),
        };
        let c = &mut out[i];
        let Ok(report) = c.result.as_mut() else {
            continue;
        };
        let Some(d) = report.digests.as_mut() else {
            continue;
        };
        match digest {
            Ok(None) => {}
            Ok(Some(Ok(digest))) => (d.virtual_disk, d.virtual_unavailable) = (Some(digest), None),
            Ok(Some(Err(why))) => d.virtual_unavailable = Some(why),
            Err(e) => c.result = Err(format!("{label}: cannot hash: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keeps_order_and_starts_at_most_a_window_ahead() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let window = threads.saturating_mul(2).max(2);
        let items: Vec<usize> = (0..200).collect();
        let started = AtomicUsize::new(0);
        let mut seen = Vec::new();
        let r: Result<(), ()> = stream(
            &items,
            |&i| {
                started.fetch_add(1, Ordering::SeqCst);
                // Late items finish first: the reorder buffer must hold them.
                if i % 7 == 0 {
                    std::thread::yield_now();
                }
                i
            },
            &|_, _| {},
            |i| {
                // Emitting item i: items 0..i are out, so at most i + window started.
                assert!(started.load(Ordering::SeqCst) <= i + window + 1);
                seen.push(i);
                Ok(())
            },
        );
        assert!(r.is_ok());
        assert_eq!(seen, items);
    }

    #[test]
    fn stream_stops_starting_work_when_emit_fails() {
        let items: Vec<usize> = (0..500).collect();
        let started = AtomicUsize::new(0);
        let r = stream(
            &items,
            |&i| {
                started.fetch_add(1, Ordering::SeqCst);
                i
            },
            &|_, _| {},
            |i| if i == 3 { Err(i) } else { Ok(()) },
        );
        assert_eq!(r, Err(3));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(started.load(Ordering::SeqCst) <= 4 + threads * 2 + threads);
    }
}
