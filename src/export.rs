//! `vhdx-check export` and `vhdx-check map`: the virtual disk of an image or chain
//! ([`crate::model::virtual_disk`]) written as a raw image, or listed as its allocation
//! map. The sources are only read; OUT is a new file, written unnamed in its directory
//! (O_TMPFILE), synced, and linked into place without replacing anything
//! ([`crate::newfile`]).

use crate::chain::Member;
use crate::check::CheckOptions;
use crate::findings::Severity;
use crate::hash::{self, Piece, Progress};
use crate::io::{self, FileReader, ReadAt};
use crate::model::virtual_disk::{self, Extent, State, ViewChoice, VirtualDisk};
use crate::report::path_line;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub bytes: u64,
    pub sha256: String,
    /// Findings of the chain's members, for the note on stderr ("the image has 3 errors").
    pub findings: Vec<String>,
}

/// Why an export or a map stopped: a reason (exit 2), or SIGINT (exit 130).
#[derive(Debug)]
pub enum Failure {
    Refused(String),
    Interrupted,
}

impl From<String> for Failure {
    fn from(s: String) -> Failure {
        Failure::Refused(s)
    }
}

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    if hash::interrupted() {
        Failure::Interrupted
    } else {
        Failure::Refused(format!("{what}: {e}"))
    }
}

/// Opens every member read-only (a discovered parent through the handle discovery
/// validated, never by its name again).
pub(crate) fn open(chain: &[Member]) -> Result<Vec<Arc<FileReader>>, String> {
    (chain.iter())
        .map(|m| match &m.file {
            Some(f) => Ok(f.clone()),
            None => FileReader::open(&m.path)
                .map(Arc::new)
                .map_err(|e| format!("cannot read {}: {e}", path_line(&m.path))),
        })
        .collect()
}

/// Whether everything read from the members can be trusted: no read failed and no file
/// changed since its watch began ("evidence changed during the check (...)").
pub(crate) fn verify(chain: &[Member], watches: &[io::Watch]) -> Result<(), Failure> {
    for (m, w) in chain.iter().zip(watches) {
        w.verify()
            .map_err(|e| Failure::Refused(format!("{}: {e}", path_line(&m.path))))?;
    }
    Ok(())
}

/// Calls `f` with the virtual disk of `chain` in `view` (every member read through a
/// [`io::Watch`]), or the reason it cannot be read; what `f` did stands only if nothing
/// read changed or failed.
fn with_chain<R>(
    chain: &[Member],
    view: ViewChoice,
    f: impl FnOnce(&VirtualDisk) -> Result<R, Failure>,
) -> Result<R, Failure> {
    let files = open(chain)?;
    let watches: Vec<io::Watch> = files.iter().map(|f| io::Watch::new(f.as_ref())).collect();
    let srcs: Vec<&dyn ReadAt> = watches.iter().map(|w| w as &dyn ReadAt).collect();
    let r = virtual_disk::with_disk(&srcs, view, |vd| {
        let vd = vd.map_err(|why| format!("{}: {why}", path_line(&chain[0].path)))?;
        f(vd)
    });
    verify(chain, &watches)?;
    r
}

/// The counts of errors and warnings of every member that has any, as a note.
fn findings(chain: &[Member]) -> Vec<String> {
    let reports = crate::chain::check_chain(chain, &CheckOptions::default(), &|_, _, _| Ok(()));
    let mut out = Vec::new();
    for c in reports {
        let path = path_line(&c.member.path);
        let Ok(r) = c.result else { continue };
        let (e, w) = (r.count(Severity::Error), r.count(Severity::Warning));
        let mut parts = Vec::new();
        if e > 0 {
            parts.push(format!("{e} error{}", if e == 1 { "" } else { "s" }));
        }
        if w > 0 {
            parts.push(format!("{w} warning{}", if w == 1 { "" } else { "s" }));
        }
        if !parts.is_empty() {
            out.push(format!("{path} has {}", parts.join(" and ")));
        }
    }
    out
}

/// Writes the virtual disk of `chain` (the image, then its parents) as a raw image to the
/// new file `out`, or to stdout when `out` is `-`.
/// `ignore_linkage`: read a chain whose linkage check fails (CHAIN-001) anyway.
pub fn export(
    chain: &[Member],
    view: ViewChoice,
    ignore_linkage: bool,
    out: &Path,
) -> Result<Exported, Failure> {
    let to_stdout = out.as_os_str() == "-";
    if !to_stdout && out.symlink_metadata().is_ok() {
        return Err(format!("{} exists: refusing to overwrite it", path_line(out)).into());
    }
    let files = open(chain)?;
    if to_stdout {
        refuse_stdout_onto(chain)?;
    }
    let watches: Vec<io::Watch> = files.iter().map(|f| io::Watch::new(f.as_ref())).collect();
    let srcs: Vec<&dyn ReadAt> = watches.iter().map(|w| w as &dyn ReadAt).collect();
    let what = path_line(&chain[0].path);
    // OUT gets its name only if every byte read can be trusted.
    let trusted = || verify(chain, &watches);
    let (bytes, sha256) = virtual_disk::with_disk(&srcs, view, |vd| {
        let vd = vd.map_err(|why| format!("cannot export {what}: {why}"))?;
        if let Some(why) = vd.unreadable() {
            return Err(Failure::Refused(format!(
                "cannot export {what}: {}",
                chain_end(chain, vd).unwrap_or(why)
            )));
        }
        if let Some(why) = vd.linkage().filter(|_| !ignore_linkage) {
            return Err(Failure::Refused(format!(
                "cannot export {what}: {why}; --ignore-linkage reads it anyway"
            )));
        }
        if to_stdout {
            write_stream(vd, &what, &mut std::io::stdout().lock())
        } else {
            write_file(vd, &what, out, &trusted)
        }
    })?;
    // On stdout the bytes are gone: the exit code and stderr say they cannot be trusted.
    trusted()?;
    Ok(Exported {
        bytes,
        sha256,
        findings: findings(chain),
    })
}

/// Why the chain ends at a differencing disk, as resolving it found (CHAIN-006..008:
/// the parent not found, a loop, the depth bound), when it does.
pub(crate) fn chain_end(chain: &[Member], vd: &VirtualDisk) -> Option<String> {
    if vd.complete() {
        return None;
    }
    let m = chain.get(vd.members().checked_sub(1)?)?;
    let (rule, message) = crate::chain::break_finding(m.broken.as_ref()?);
    Some(format!("{}: {message} ({rule})", path_line(&m.path)))
}

/// Refuses to stream onto one of the sources (`export IMAGE - >> IMAGE`).
fn refuse_stdout_onto(chain: &[Member]) -> Result<(), String> {
    let Ok(st) = rustix::fs::fstat(std::io::stdout()) else {
        return Ok(());
    };
    for m in chain {
        if let Ok(md) = m.path.metadata() {
            if md.dev() == st.st_dev && md.ino() == st.st_ino {
                return Err(format!(
                    "stdout is {}, a source: refusing to write it",
                    path_line(&m.path)
                ));
            }
        }
    }
    Ok(())
}

enum Msg {
    Data(Vec<u8>),
    Zeros(u64),
}

/// Runs `f` with a feed whose pieces are hashed in order on a thread of its own, so the
/// SHA-256 (the larger cost) overlaps the reads and writes; returns `f`'s result and the
/// digest. At most four pieces are in flight (16 MiB).
fn with_hasher<R>(f: impl FnOnce(&mut dyn FnMut(&Piece)) -> R) -> (R, Result<String, String>) {
    use std::sync::mpsc;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Msg>(2);
        let (back, spare) = mpsc::channel::<Vec<u8>>();
        let hasher = crate::threads::spawn_beside(s, move || {
            let mut h = Sha256::new();
            for m in rx {
                match m {
                    Msg::Data(v) => {
                        h.update(&v);
                        let _ = back.send(v);
                    }
                    Msg::Zeros(n) => hash::hash_zeros(&mut h, n),
                }
            }
            hash::hex(&h.finalize())
        });
        let r = {
            let mut feed = |p: &Piece| {
                let m = match p {
                    Piece::Data(b) => {
                        let mut v = spare.try_recv().unwrap_or_default();
                        v.clear();
                        v.extend_from_slice(b);
                        Msg::Data(v)
                    }
                    Piece::Zeros(n) => Msg::Zeros(*n),
                };
                let _ = tx.send(m);
            };
            f(&mut feed)
        };
        drop(tx);
        let digest = hasher
            .join()
            .map_err(|_| "the hashing thread failed".to_string());
        (r, digest)
    })
}

/// Every byte to `w` (zeros included); returns (bytes, SHA-256).
fn write_stream(vd: &VirtualDisk, what: &str, w: &mut dyn Write) -> Result<(u64, String), Failure> {
    let mut progress = Progress::new("exporting", what, vd.size(), true);
    let mut buf = Vec::new();
    static ZEROS: [u8; 1 << 20] = [0; 1 << 20];
    let (written, digest) = with_hasher(|feed| {
        hash::walk_bytes(vd, &mut buf, &mut |d| progress.tick(d), &mut |_, p| {
            feed(&p);
            match p {
                Piece::Data(b) => w.write_all(b),
                Piece::Zeros(mut n) => {
                    while n > 0 {
                        let k = n.min(ZEROS.len() as u64) as usize;
                        w.write_all(&ZEROS[..k])?;
                        n -= k as u64;
                    }
                    Ok(())
                }
            }
        })
        .and_then(|()| w.flush())
    });
    written.map_err(|e| io_failure("cannot export", e))?;
    Ok((vd.size(), digest?))
}

/// Granularity of the zero test of written data: all-zero pieces become holes.
const ZERO_GRAIN: usize = 64 << 10;

/// Writes `vd` to the new file `out` (holes where the guest reads zeros) through
/// [`crate::newfile::write_new`]: an unnamed file, synced, linked to `out` only if every
/// byte read can be trusted and `out` did not appear meanwhile; a process killed
/// part-way leaves nothing.
fn write_file(
    vd: &VirtualDisk,
    what: &str,
    out: &Path,
    trusted: &dyn Fn() -> Result<(), Failure>,
) -> Result<(u64, String), Failure> {
    let mut progress = Progress::new("exporting", what, vd.size(), true);
    let mut buf = Vec::new();
    // Why `fill` stopped when it was not a write error (the digest, a changed source).
    let mut stopped: Option<Failure> = None;
    let mut digest = String::new();
    let written = crate::newfile::write_new(out, |f| {
        let (written, d) = with_hasher(|feed| {
            hash::walk_bytes(vd, &mut buf, &mut |d| progress.tick(d), &mut |at, p| {
                feed(&p);
                match p {
                    Piece::Data(b) => write_nonzero(f, at, b),
                    Piece::Zeros(_) => Ok(()),
                }
            })
            .and_then(|()| f.set_len(vd.size()))
        });
        written?;
        let failed = |why: Failure, stopped: &mut Option<Failure>| {
            *stopped = Some(why);
            std::io::Error::other("stopped")
        };
        digest = d.map_err(|e| failed(Failure::Refused(e), &mut stopped))?;
        trusted().map_err(|why| failed(why, &mut stopped))
    });
    if let Some(why) = stopped {
        return Err(why);
    }
    if hash::interrupted() {
        return Err(Failure::Interrupted);
    }
    written?;
    progress.finish();
    Ok((vd.size(), digest))
}

/// Writes the non-zero [`ZERO_GRAIN`] pieces of `b` at `at` (runs of them in one write).
fn write_nonzero(f: &File, at: u64, b: &[u8]) -> std::io::Result<()> {
    let mut run: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        let end = (i + ZERO_GRAIN).min(b.len());
        let zero = io::nonzero_byte(&b[i..end]).is_none();
        match (zero, run) {
            (false, None) => run = Some(i),
            (true, Some(s)) => {
                f.write_all_at(&b[s..i], at + s as u64)?;
                run = None;
            }
            _ => {}
        }
        i = end;
    }
    if let Some(s) = run {
        f.write_all_at(&b[s..], at + s as u64)?;
    }
    Ok(())
}

/// Output of `map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFormat {
    Text,
    Json,
}

fn opt(v: Option<u64>) -> String {
    v.map_or("null".into(), |v| v.to_string())
}

/// Streams the allocation map of `chain` to `w`: one line (text) or one JSON object per
/// extent, written as the walk produces them.
pub fn map(
    chain: &[Member],
    view: ViewChoice,
    ignore_linkage: bool,
    format: MapFormat,
    w: &mut dyn Write,
) -> Result<(), Failure> {
    // Text: one line per path (controls and invalid UTF-8 escaped); JSON: the path as a
    // string, and its raw bytes in hex beside it where it is not UTF-8 (as `check` does).
    let names: Vec<String> = chain.iter().map(|m| path_line(&m.path)).collect();
    let json_path = |i: usize, key: &str, v: &mut serde_json::Map<String, serde_json::Value>| {
        let p = &chain[i].path;
        v.insert(key.into(), crate::report::path_str(p).into());
        if p.to_str().is_none() {
            let hex = hash::hex(&crate::report::path_bytes(p));
            v.insert(format!("{key}_bytes"), hex.into());
        }
    };
    with_chain(chain, view, |vd| {
        let fail = |e: std::io::Error| io_failure("cannot map", e);
        // Listed extents are read exactly or not at all (a `parent` extent says its bytes
        // are unknown; a block past the end of a file would be listed as data).
        if let Some(why) = vd.past_eof() {
            return Err(Failure::Refused(format!("cannot map {}: {why}", names[0])));
        }
        if let Some(why) = vd.linkage().filter(|_| !ignore_linkage) {
            return Err(Failure::Refused(format!(
                "cannot map {}: {why}; --ignore-linkage maps it anyway",
                names[0]
            )));
        }
        // A first pass that only walks (the BAT and the sector bitmaps: a 64 TiB disk in
        // a fraction of a second), so a structure that cannot be read is refused before
        // anything is printed; the second pass prints.
        for e in vd.extents() {
            if hash::interrupted() {
                return Err(Failure::Interrupted);
            }
            e.map_err(|e| io_failure(&format!("cannot map {}", names[0]), e))?;
        }
        let source = |e: &Extent| e.member.and_then(|m| names.get(m));
        match format {
            MapFormat::Json => {
                let members: Vec<serde_json::Value> = (0..vd.members())
                    .map(|i| {
                        let g = vd.geometry(i);
                        let mut v = serde_json::Map::new();
                        json_path(i, "path", &mut v);
                        v.insert("block_size".into(), g.map(|g| g.block_size).into());
                        v.insert("differencing".into(), g.map(|g| g.differencing).into());
                        serde_json::Value::Object(v)
                    })
                    .collect();
                let mut image = serde_json::Map::new();
                json_path(0, "image", &mut image);
                let image = serde_json::Value::Object(image).to_string();
                let view = match view {
                    ViewChoice::Raw => "raw",
                    ViewChoice::Replayed => "replayed",
                };
                write!(
                    w,
                    "{{\"schema\": {}, \"tool\": {}, {}, \"view\": \"{view}\", \"virtual_size\": {}, \"logical_sector_size\": {}, \"chain\": {}, \"extents\": [",
                    crate::report::json::SCHEMA,
                    crate::report::json::tool(),
                    &image[1..image.len() - 1],
                    vd.size(),
                    vd.logical_sector_size(),
                    serde_json::Value::from(members),
                )
                .map_err(fail)?;
                let mut first = true;
                for e in vd.extents() {
                    let e = e.map_err(fail)?;
                    if hash::interrupted() {
                        return Err(Failure::Interrupted);
                    }
                    let src = match e.member.filter(|&m| m < chain.len()) {
                        Some(m) => {
                            let mut v = serde_json::Map::new();
                            json_path(m, "source", &mut v);
                            let v = serde_json::Value::Object(v).to_string();
                            v[1..v.len() - 1].to_string()
                        }
                        None => "\"source\": null".to_string(),
                    };
                    write!(
                        w,
                        "{}\n  {{\"offset\": {}, \"length\": {}, \"state\": \"{}\", {src}, \"file_offset\": {}}}",
                        if first { "" } else { "," },
                        e.offset,
                        e.length,
                        e.state.name(),
                        opt(e.file_offset)
                    )
                    .map_err(fail)?;
                    first = false;
                }
                writeln!(w, "\n]}}").map_err(fail)?;
            }
            MapFormat::Text => {
                writeln!(
                    w,
                    "{}: virtual disk {} bytes ({}), logical sector {} bytes",
                    names[0],
                    vd.size(),
                    hash::human(vd.size()),
                    vd.logical_sector_size()
                )
                .map_err(fail)?;
                writeln!(
                    w,
                    "{:>18} {:>18}  {:<11} {:>18}  source",
                    "offset", "length", "state", "file_offset"
                )
                .map_err(fail)?;
                for e in vd.extents() {
                    let e = e.map_err(fail)?;
                    if hash::interrupted() {
                        return Err(Failure::Interrupted);
                    }
                    let fo = e.file_offset.map_or("-".into(), |o| format!("{o:#x}"));
                    let src = match e.state {
                        State::Parent => "(parent not given)",
                        _ => source(&e).map_or("-", |s| s.as_str()),
                    };
                    writeln!(
                        w,
                        "{:>#18x} {:>#18x}  {:<11} {fo:>18}  {src}",
                        e.offset,
                        e.length,
                        e.state.name()
                    )
                    .map_err(fail)?;
                }
            }
        }
        w.flush().map_err(fail)
    })
}
