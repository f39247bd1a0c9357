//! Many images in one run: directories expand to the images below them, every image is
//! checked on a pool of threads (one per core), and results come back in input order.
//! Each image goes through the whole pipeline: rules, then the policy, then digests.

use crate::chain::{Member, check_chain};
use crate::check::{CheckOptions, ImageReport};
use crate::model::Model;
use crate::policy::Policy;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// File name extensions of VHDX images (a differencing child is often `.avhdx`).
const EXTENSIONS: &[&str] = &["vhdx", "avhdx"];

/// What is done to every image.
pub struct Job<'a> {
    pub opts: CheckOptions,
    pub policy: &'a Policy,
    pub hash: bool,
}

/// The outcome for one file: its name and its report, or why it could not be checked.
pub type Outcome = (String, Result<ImageReport, String>);

/// Replaces each directory in `inputs` by the images below it (recursively, sorted by
/// path; symlinked directories are not followed). Other paths stay as given, so a missing
/// file is reported by the check as unreadable. A directory without images is an error.
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in inputs {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut found = Vec::new();
        let mut dirs = vec![p.clone()];
        while let Some(dir) = dirs.pop() {
            let list = std::fs::read_dir(&dir)
                .map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?;
            for entry in list {
                let entry =
                    entry.map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?;
                let path = entry.path();
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir {
                    dirs.push(path);
                } else if is_image_name(&path) && path.is_file() {
                    found.push(path);
                }
            }
        }
        if found.is_empty() {
            return Err(format!(
                "no *.vhdx or *.avhdx files under directory {}",
                p.display()
            ));
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Checks every chain (a child and its parents; one member without parents) on all
/// cores. `done(finished, total)` is called as each chain completes, from a worker thread.
/// The outcomes are in input order, each chain's members in chain order.
pub fn run(
    chains: &[Vec<Member>],
    job: &Job,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Outcome> {
    parallel_map(chains, |c| check_members(c, job), done)
        .into_iter()
        .flatten()
        .collect()
}

/// `f` over `items` on one thread per core; results in the order of `items`.
fn parallel_map<I: Sync, O: Send>(
    items: &[I],
    f: impl Fn(&I) -> O + Sync,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Vec<O> {
    // One item (the usual `check IMAGE`): no pool, no thread to start and wake.
    if let [item] = items {
        let out = f(item);
        done(1, 1);
        return vec![out];
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (f, next, finished) = (&f, &next, &finished);
            crate::threads::spawn_beside(s, move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let out = f(item);
                    done(finished.fetch_add(1, Ordering::Relaxed) + 1, items.len());
                    // The receiver outlives the scope, so the send cannot fail.
                    let _ = tx.send((i, out));
                }
            });
        }
    });
    drop(tx);
    let mut results: Vec<(usize, O)> = rx.into_iter().collect();
    results.sort_by_key(|&(i, _)| i);
    results.into_iter().map(|(_, o)| o).collect()
}

/// The whole pipeline for one chain: rules (the CHAIN rules with each member's parent),
/// then the policy and the digests on the same models. The policy judges the structures
/// as the image will be read: after a pending log replay (the REPLAYED model); the file
/// digest is of the file as stored (the RAW model's source).
fn check_members(chain: &[Member], job: &Job) -> Vec<Outcome> {
    let stage = |raw: &Model, replayed: Option<&Model>, report: &mut ImageReport| {
        if !job.policy.is_empty() {
            job.policy
                .judge(replayed.unwrap_or(raw), report, job.opts.max_per_rule);
        }
        if job.hash {
            let digests = crate::hash::digests(raw).map_err(|e| format!("cannot hash: {e}"))?;
            report.digests = Some(digests);
        }
        Ok(())
    };
    let mut out = check_chain(chain, &job.opts, &stage);
    if job.hash {
        chain_digests(chain, &mut out);
    }
    out
}

/// Each differencing member's virtual digest, read through the members after it.
fn chain_digests(chain: &[Member], out: &mut [Outcome]) {
    let paths: Vec<&Path> = chain.iter().map(|m| m.path.as_path()).collect();
    for (i, (_, outcome)) in out
        .iter_mut()
        .enumerate()
        .take(paths.len().saturating_sub(1))
    {
        let Ok(report) = outcome else { continue };
        let Some(d) = report.digests.as_mut().filter(|d| d.virtual_disk.is_none()) else {
            continue;
        };
        match crate::hash::chain_digest(&paths[i..]) {
            Ok(None) => {}
            Ok(Some(Ok(digest))) => (d.virtual_disk, d.virtual_unavailable) = (Some(digest), None),
            Ok(Some(Err(why))) => d.virtual_unavailable = Some(why),
            Err(e) => *outcome = Err(format!("{}: cannot hash: {e}", paths[i].display())),
        }
    }
}
