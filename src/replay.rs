//! `vhdx-check replay IMAGE OUT`: writes the REPLAYED view (the strict scan's active
//! sequence applied) to a new file, and marks the log empty there as a replaying writer
//! does: both headers get LogGuid = 0 and new SequenceNumbers. IMAGE is only ever read;
//! OUT must not exist. OUT appears only complete: it is written as an unnamed file in its
//! directory (O_TMPFILE) or, where the filesystem has none, as `.NAME.vhdx-check-tmp.PID`,
//! synced, and then given its name by a link or rename that fails if OUT appeared meanwhile.

use crate::format::header;
use crate::io::{self, FileReader, ReadAt};
use crate::model::Model;
use crate::model::log::Mode;
use crate::model::replay::ReplayedView;
use rustix::fs::{AtFlags, Mode as FileMode, OFlags, RenameFlags};
use rustix::io::Errno;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What a replay wrote.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub entries: usize,
    pub head_sequence: u64,
    pub descriptors: usize,
    pub changed_ranges: usize,
    pub changed_bytes: u64,
    pub size: u64,
    /// Things the user should know (a truncated file, an analysis bound).
    pub warnings: Vec<String>,
}

/// Replays `image` into the new file `out`. Errors are one-line reasons (exit 2).
pub fn replay(image: &Path, out: &Path) -> Result<Replayed, String> {
    let file =
        FileReader::open(image).map_err(|e| format!("cannot read {}: {e}", image.display()))?;
    // A read error or a change of IMAGE voids what was read: no copy is left.
    let src = io::Watch::new(&file);
    let model = Model::build(&src);
    let judged = replay_from(&src, &model, out);
    (src.verify()).map_err(|e| format!("{}: {e}", image.display()))?;
    judged
}

/// [`replay`] of an opened IMAGE; the copy is removed when a read of `src` failed.
fn replay_from(src: &io::Watch, model: &Model, out: &Path) -> Result<Replayed, String> {
    let Some(hi) = model.header_choice.index() else {
        return Err("nothing to replay: no valid header".into());
    };
    let Some(log) = model.log() else {
        return Err("nothing to replay: the current header locates no usable log".into());
    };
    if log.log_guid.is_zero() {
        return Err("nothing to replay: LogGuid is zero (the log is empty by definition)".into());
    }
    let (Some(plan), Some(scan)) = (log.plan.as_ref(), log.scan(Mode::Strict)) else {
        return Err("nothing to replay: the log holds no valid sequence (LOG-002)".into());
    };
    let head = log
        .head()
        .ok_or("nothing to replay: the log holds no valid sequence (LOG-002)")?;
    if let Some(why) = log.replay_impossible() {
        return Err(format!("{why} (LOG-072)"));
    }
    let mut warnings = log.bound.clone();
    if src.len() < head.header.flushed_file_offset {
        warnings.push(format!(
            "the file is shorter than the head entry's FlushedFileOffset ({:#x} < {:#x}, LOG-005): a conforming reader refuses it; the copy is hypothetical",
            src.len(),
            head.header.flushed_file_offset
        ));
    }
    let view = ReplayedView::new(src, plan);
    write_new(out, |file| {
        copy_data(&view, file)?;
        file.set_len(view.len())?;
        clear_log_guid(model, hi, file)?;
        // A read error or a change of IMAGE voids the copy before it gets its name.
        src.verify()
            .map_err(|e| std::io::Error::other(e.to_string()))
    })?;
    Ok(Replayed {
        entries: scan.replayed.len(),
        head_sequence: head.seq(),
        descriptors: log.applied.len(),
        changed_ranges: log.changes.len(),
        changed_bytes: log.changes.iter().map(|c| c.length).sum(),
        size: view.len(),
        warnings,
    })
}

/// Copies every data range of `view` (holes stay holes in the new file).
fn copy_data(view: &dyn ReadAt, out: &File) -> std::io::Result<()> {
    let mut buf = vec![0u8; io::CHUNK];
    let mut pos = 0u64;
    while let Some(d) = view.data_from(pos) {
        let end = view.hole_from(d).max(d + 1).min(view.len());
        let mut at = d;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            io::read_padded(view, at, &mut buf[..n]);
            if io::nonzero_byte(&buf[..n]).is_some() {
                out.write_all_at(&buf[..n], at)?;
            }
            at += n as u64;
        }
        pos = end;
    }
    Ok(())
}

/// Writes both header slots from the current header with LogGuid = 0: the other slot
/// gets SequenceNumber + 1, the current one + 2 (two successive header updates).
fn clear_log_guid(model: &Model, current: usize, out: &File) -> std::io::Result<()> {
    let slot = &model.headers[current].slot;
    let mut h = slot.get(0, header::SIZE).into_owned();
    let seq = model.headers[current].header.sequence_number;
    h[48..64].fill(0);
    for (i, bump) in [(1 - current, 1u64), (current, 2u64)] {
        h[8..16].copy_from_slice(&seq.wrapping_add(bump).to_le_bytes());
        h[4..8].fill(0);
        let crc = header::computed_checksum(&h);
        h[4..8].copy_from_slice(&crc.to_le_bytes());
        out.write_all_at(&h, header::OFFSETS[i])?;
    }
    Ok(())
}

/// Creates `out` with the contents `fill` writes, atomically: until `fill` and the sync
/// succeed, no file called `out` exists; on an error nothing is left behind. An existing
/// `out` is never replaced (also one that appears while `fill` runs).
fn write_new(out: &Path, fill: impl FnOnce(&File) -> std::io::Result<()>) -> Result<(), String> {
    write_new_with(out, fill, true)
}

/// [`write_new`]; `tmpfile: false` goes straight to the named temporary file (tests).
fn write_new_with(
    out: &Path,
    fill: impl FnOnce(&File) -> std::io::Result<()>,
    tmpfile: bool,
) -> Result<(), String> {
    let shown = out.display();
    let exists = || format!("{shown} exists: refusing to overwrite it");
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(exists());
    }
    let name = out
        .file_name()
        .ok_or_else(|| format!("cannot create {shown}: not a file name"))?;
    let dir_path = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = rustix::fs::open(
        dir_path,
        OFlags::DIRECTORY | OFlags::CLOEXEC,
        FileMode::empty(),
    )
    .map_err(|e| format!("cannot create {shown}: {}", std::io::Error::from(e)))?;
    let failed = |e: std::io::Error| match e.raw_os_error() {
        Some(c) if c == Errno::EXIST.raw_os_error() => exists(),
        _ => format!("cannot write {shown}: {e}"),
    };
    let unnamed = match tmpfile {
        true => rustix::fs::openat(
            &dir,
            ".",
            OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
            FileMode::from_raw_mode(0o644),
        ),
        false => Err(Errno::OPNOTSUPP),
    };
    match unnamed {
        Ok(fd) => {
            let file = File::from(fd);
            fill(&file).and_then(|()| file.sync_all()).map_err(failed)?;
            // The unnamed file gets its name only now; linkat fails if `out` exists.
            let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
            let linked = rustix::fs::linkat(&file, "", &dir, name, AtFlags::EMPTY_PATH).or_else(
                |e| match e {
                    Errno::EXIST => Err(e),
                    _ => rustix::fs::linkat(
                        rustix::fs::CWD,
                        proc_path.as_str(),
                        &dir,
                        name,
                        AtFlags::SYMLINK_FOLLOW,
                    ),
                },
            );
            linked.map_err(|e| failed(e.into()))?;
        }
        // No O_TMPFILE here (older kernel, filesystem without it): a named temporary file.
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOENT) => {
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".vhdx-check-tmp.{}", std::process::id()));
            let tmp = dir_path.join(&tmp_name);
            let written = (|| {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)?;
                fill(&file)?;
                file.sync_all()?;
                match rustix::fs::renameat_with(&dir, &tmp_name, &dir, name, RenameFlags::NOREPLACE)
                {
                    Ok(()) => Ok(()),
                    Err(Errno::INVAL | Errno::NOSYS) => {
                        // No renameat2 here: link fails if `out` exists, like NOREPLACE.
                        std::fs::hard_link(&tmp, out)?;
                        std::fs::remove_file(&tmp)
                    }
                    Err(e) => Err(e.into()),
                }
            })();
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(failed(e));
            }
        }
        Err(e) => return Err(failed(e.into())),
    }
    // The new name is durable once the directory is.
    let _ = rustix::fs::fsync(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "vhdx-check-write-new-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn listing(d: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    }

    /// Both ways of writing: O_TMPFILE, and the named temporary file.
    const WAYS: [bool; 2] = [true, false];

    #[test]
    fn a_failure_part_way_leaves_no_file() {
        for tmpfile in WAYS {
            let d = scratch(&format!("fail-{tmpfile}"));
            let out = d.join("out.vhdx");
            let r = write_new_with(
                &out,
                |f| {
                    f.write_all_at(&[1; 4096], 0)?;
                    // OUT must not be visible while it is being written.
                    assert!(!out.exists());
                    Err(std::io::Error::other("disk full"))
                },
                tmpfile,
            );
            assert!(r.unwrap_err().contains("disk full"));
            assert_eq!(listing(&d), Vec::<std::ffi::OsString>::new(), "{tmpfile}");
            let _ = std::fs::remove_dir_all(&d);
        }
    }

    #[test]
    fn an_output_that_appears_meanwhile_is_kept() {
        for tmpfile in WAYS {
            let d = scratch(&format!("race-{tmpfile}"));
            let out = d.join("out.vhdx");
            let r = write_new_with(
                &out,
                |f| {
                    std::fs::write(&out, "theirs")?;
                    f.write_all_at(b"ours", 0)
                },
                tmpfile,
            );
            assert!(r.unwrap_err().contains("exists"), "refused");
            assert_eq!(std::fs::read_to_string(&out).unwrap(), "theirs");
            assert_eq!(
                listing(&d),
                vec![std::ffi::OsString::from("out.vhdx")],
                "{tmpfile}"
            );
            let _ = std::fs::remove_dir_all(&d);
        }
    }

    #[test]
    fn a_complete_write_has_the_name() {
        for tmpfile in WAYS {
            let d = scratch(&format!("ok-{tmpfile}"));
            let out = d.join("out.vhdx");
            write_new_with(&out, |f| f.write_all_at(b"done", 0), tmpfile).unwrap();
            assert_eq!(std::fs::read_to_string(&out).unwrap(), "done");
            assert_eq!(
                listing(&d),
                vec![std::ffi::OsString::from("out.vhdx")],
                "{tmpfile}"
            );
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}
