//! For programs that embed the checker (the Python bindings in python/): the document of
//! `check --format json` for one image or chain, the rule catalogue, and the virtual disk
//! as an owned, thread-safe reader with `export`'s refusals and positioned reads.
//!
//! The virtual disk ([`VirtualDisk`]) borrows the models it is read through, so an owned
//! [`Disk`] keeps them on a thread of its own, inside [`virtual_disk::with_disk`], and
//! serves reads from a few worker threads there: each read is positioned (`pread`
//! semantics), walks only the BAT entries of its range, and is an error — never zeros —
//! when a file cannot be read or changed since the disk was opened.

use crate::batch::{self, Job, Task};
use crate::chain::{Member, Search};
use crate::check::CheckOptions;
use crate::cli::MAX_PER_RULE_LIMIT;
use crate::io::{ReadAt, Stamp, Watch};
use crate::model::virtual_disk::{self, Extent, ViewChoice, VirtualDisk};
use crate::policy::{FailOn, Policy};
use crate::report::{self, Render};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};

/// What one `check` run gives: the JSON document, exactly as `check --format json` writes
/// it, and the reasons of the entries that could not be checked (the CLI prints each on
/// stderr and exits 2; the document holds them as `"verdict": "error"`).
#[derive(Debug, Clone)]
pub struct CheckDocument {
    pub json: String,
    pub errors: Vec<String>,
}

/// `check --format json [--policy FILE] [--max-per-rule N] [--parent P]... [--find-parents]
/// IMAGE`. `Err`: what the CLI refuses before checking (exit 2): a bad policy file, a
/// `max_per_rule` out of range, more parents than the chain has.
pub fn check_json(
    image: &Path,
    parents: &[PathBuf],
    find_parents: bool,
    policy: Option<&Path>,
    max_per_rule: u64,
) -> Result<CheckDocument, String> {
    if !parents.is_empty() {
        if let Some(why) = crate::chain::extra_parents(image, parents) {
            return Err(why);
        }
    }
    // With chain options each image brings its parents, resolved on the worker.
    let member = if parents.is_empty() && !find_parents {
        Member::named(image)
    } else {
        Member::deferred(image, parents, find_parents, &Search::default())
    };
    check_members(vec![member], policy, max_per_rule)
}

/// [`check_json`] of a chain already resolved (the members a [`Disk`] reads).
pub fn check_members(
    chain: Vec<Member>,
    policy: Option<&Path>,
    max_per_rule: u64,
) -> Result<CheckDocument, String> {
    if max_per_rule > MAX_PER_RULE_LIMIT {
        return Err(format!(
            "max_per_rule is at most {MAX_PER_RULE_LIMIT}, not {max_per_rule}"
        ));
    }
    let policy = match policy.map(Policy::load).transpose() {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => return Err(e.to_string()),
    };
    let fail_on = policy.fail_on.unwrap_or(FailOn::Error);
    let job = Job {
        opts: CheckOptions { max_per_rule },
        policy: &policy,
        hash: false,
        html: false,
    };
    let mut renderer = report::json::Json::default();
    let mut out: Vec<u8> = Vec::new();
    let mut errors = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = renderer.begin(&mut out);
    let _ = batch::run(&[Task::Chain(chain)], &job, &|_, _| {}, |o| {
        if let batch::Status::Error(e) = &o.status {
            errors.push(e.clone());
        }
        let c = o.checked(fail_on);
        renderer.image(&mut out, &c)
    });
    let _ = renderer.end(&mut out);
    Ok(CheckDocument {
        json: String::from_utf8_lossy(&out).into_owned(),
        errors,
    })
}

/// The document of `rules --format json`.
pub fn rules_json() -> String {
    report::json::rules_document()
}

/// Bytes one worker reads per request: large sequential reads, bounded memory.
const PIECE: usize = crate::hash::PIECE;

enum Request {
    Read {
        offset: u64,
        len: usize,
        reply: mpsc::SyncSender<std::io::Result<Vec<u8>>>,
    },
    Extents {
        from: u64,
        max: usize,
        reply: mpsc::SyncSender<std::io::Result<Vec<Extent>>>,
    },
}

/// The virtual disk of an image or chain, owned (see the module comment). Dropping it
/// stops its threads.
pub struct Disk {
    chain: Vec<Member>,
    size: u64,
    logical_sector_size: u64,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    host: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("chain", &self.chain)
            .field("size", &self.size)
            .finish()
    }
}

impl Disk {
    /// Opens the virtual disk of `image` through `parents` (nearest first) and, with
    /// `find_parents`, the parents its locators name — as `export` reads it, with the same
    /// refusals (`Err`: the reason `export` prints, "cannot read" for "cannot export").
    pub fn open(
        image: &Path,
        parents: &[PathBuf],
        find_parents: bool,
        view: ViewChoice,
    ) -> Result<Disk, String> {
        if !parents.is_empty() {
            if let Some(why) = crate::chain::extra_parents(image, parents) {
                return Err(why);
            }
        }
        let chain = crate::chain::resolve(image, parents, find_parents, &Search::default());
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (tx, rx) = mpsc::channel();
        let members = chain.clone();
        let host = std::thread::Builder::new()
            .name("vhdx-check disk".into())
            .spawn(move || host(&members, view, &ready_tx, rx))
            .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        let ready = ready_rx.recv();
        let (size, logical_sector_size) = match ready {
            Ok(Ok(geometry)) => geometry,
            Ok(Err(why)) => {
                let _ = host.join();
                return Err(why);
            }
            Err(_) => {
                let _ = host.join();
                return Err("the reader thread stopped".into());
            }
        };
        Ok(Disk {
            chain,
            size,
            logical_sector_size,
            requests: Mutex::new(Some(tx)),
            host: Mutex::new(Some(host)),
        })
    }

    /// VirtualDiskSize.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn logical_sector_size(&self) -> u64 {
        self.logical_sector_size
    }

    /// The chain read: the image first, then its parents (paths as given or found).
    pub fn members(&self) -> &[Member] {
        &self.chain
    }

    fn send(&self, r: Request) -> std::io::Result<()> {
        let closed = || std::io::Error::other("the virtual disk is closed");
        let tx = self.requests.lock().map_err(|_| closed())?.clone();
        tx.ok_or_else(closed)?.send(r).map_err(|_| closed())
    }

    /// Fills `buf` with the virtual bytes at `offset` (`offset + buf.len()` at most the
    /// size): every byte exactly, or an error. Thread-safe; large reads are split into
    /// pieces read by the workers at once.
    pub fn read_into(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "a read of {} bytes at {offset} ends past the end of the disk ({} bytes)",
                        buf.len(),
                        self.size
                    ),
                )
            })?;
        debug_assert!(end <= self.size);
        // Up to WORKERS pieces in flight, received in order.
        let mut pending = std::collections::VecDeque::new();
        let mut asked = 0usize;
        let mut filled = 0usize;
        while filled < buf.len() {
            while asked < buf.len() && pending.len() < WORKERS {
                let len = (buf.len() - asked).min(PIECE);
                let (reply, answer) = mpsc::sync_channel(1);
                self.send(Request::Read {
                    offset: offset + asked as u64,
                    len,
                    reply,
                })?;
                pending.push_back((len, answer));
                asked += len;
            }
            let Some((len, answer)) = pending.pop_front() else {
                break;
            };
            let data = answer
                .recv()
                .map_err(|_| std::io::Error::other("the reader thread stopped"))??;
            buf[filled..filled + len].copy_from_slice(&data);
            filled += len;
        }
        Ok(())
    }

    /// Up to `max` extents of the allocation map from `from` (an offset where an extent
    /// begins: 0, or the end of the last one given), as `map` lists them.
    pub fn extents(&self, from: u64, max: usize) -> std::io::Result<Vec<Extent>> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Request::Extents { from, max, reply })?;
        answer
            .recv()
            .map_err(|_| std::io::Error::other("the reader thread stopped"))?
    }

    /// Stops the threads (a read after this is an error).
    pub fn close(&self) {
        if let Ok(mut tx) = self.requests.lock() {
            tx.take();
        }
        let host = self.host.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = host {
            let _ = h.join();
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.close();
    }
}

/// Worker threads serving one disk's reads, at most: one per core.
const WORKERS: usize = 4;

fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, WORKERS))
}

/// The disk's own thread: opens the chain, builds the virtual disk, says whether it can
/// be read, then serves requests until the [`Disk`] is dropped.
fn host(
    chain: &[Member],
    view: ViewChoice,
    ready: &mpsc::SyncSender<Result<(u64, u64), String>>,
    requests: mpsc::Receiver<Request>,
) {
    let what = report::path_line(&chain[0].path);
    let files = match crate::export::open(chain) {
        Ok(f) => f,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let watches: Vec<Watch> = files.iter().map(|f| Watch::new(f.as_ref())).collect();
    let srcs: Vec<&dyn ReadAt> = watches.iter().map(|w| w as &dyn ReadAt).collect();
    virtual_disk::with_disk(&srcs, view, |vd| {
        let opened = vd
            .map_err(|why| format!("cannot read {what}: {why}"))
            .and_then(|vd| {
                if let Some(why) = vd.unreadable() {
                    let why = crate::export::chain_end(chain, vd).unwrap_or(why);
                    return Err(format!("cannot read {what}: {why}"));
                }
                if let Some(why) = vd.linkage() {
                    return Err(format!("cannot read {what}: {why}"));
                }
                // The structures were read exactly and nothing changed meanwhile.
                crate::export::verify(chain, &watches).map_err(|f| match f {
                    crate::export::Failure::Refused(why) => why,
                    crate::export::Failure::Interrupted => "interrupted".into(),
                })?;
                let stamps = (watches.iter().zip(chain))
                    .map(|(w, m)| {
                        w.stamp().map_err(|e| {
                            format!(
                                "{}: cannot stat the evidence: {e}",
                                report::path_line(&m.path)
                            )
                        })
                    })
                    .collect::<Result<Vec<Stamp>, String>>()?;
                Ok((vd, stamps))
            });
        let (vd, stamps) = match opened {
            Ok(o) => o,
            Err(why) => {
                let _ = ready.send(Err(why));
                return;
            }
        };
        let _ = ready.send(Ok((vd.size(), vd.logical_sector_size())));
        let served = Served {
            vd,
            chain,
            what: &what,
            watches: &watches,
            stamps: &stamps,
        };
        let requests = Mutex::new(requests);
        std::thread::scope(|s| {
            for _ in 0..workers() {
                s.spawn(|| {
                    loop {
                        // One worker waits on the queue at a time; the lock is released
                        // before the request is served.
                        let next = match requests.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(r) => served.serve(r),
                            Err(_) => return,
                        }
                    }
                });
            }
        });
    });
}

/// What the workers of one disk share.
struct Served<'s, 'a> {
    vd: &'s VirtualDisk<'a>,
    chain: &'s [Member],
    what: &'s str,
    watches: &'s [Watch<'s>],
    stamps: &'s [Stamp],
}

impl Served<'_, '_> {
    fn serve(&self, r: Request) {
        match r {
            Request::Read { offset, len, reply } => {
                let mut buf = vec![0u8; len];
                let r = self.read(offset, &mut buf).map(|()| buf);
                let _ = reply.send(r);
            }
            Request::Extents { from, max, reply } => {
                let r = (self.vd.extents_in(from, self.vd.size()))
                    .take(max)
                    .collect::<std::io::Result<Vec<Extent>>>()
                    .and_then(|x| self.unchanged().map(|()| x));
                let _ = reply.send(r);
            }
        }
    }

    /// `buf.len()` virtual bytes at `offset`, through the extents of that range only.
    fn read(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let failed = |e: std::io::Error| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot read {} at virtual offset {offset:#x}: {e}",
                    self.what
                ),
            )
        };
        let end = offset.saturating_add(buf.len() as u64);
        for e in self.vd.extents_in(offset, end) {
            let e = e.map_err(failed)?;
            let at = (e.offset - offset) as usize;
            let out = buf
                .get_mut(at..at + e.length as usize)
                .ok_or_else(|| std::io::Error::other("an extent outside the range read"))?;
            self.vd.read_extent(&e, 0, out).map_err(failed)?;
        }
        self.unchanged()
    }

    /// Whether every member is as it was when the disk was opened (size and times).
    fn unchanged(&self) -> std::io::Result<()> {
        for ((w, m), was) in self.watches.iter().zip(self.chain).zip(self.stamps) {
            let now = w.stamp()?;
            if now != *was {
                return Err(std::io::Error::other(format!(
                    "{}: evidence changed since the disk was opened (its size or times differ)",
                    report::path_line(&m.path)
                )));
            }
        }
        Ok(())
    }
}
