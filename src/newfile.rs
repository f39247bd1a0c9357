//! A new file that appears only complete: written as an unnamed file in its directory
//! (O_TMPFILE) or, where the filesystem has none, as `.NAME.vhdx-check-tmp.PID`, synced,
//! and then given its name by a link or rename that fails if the name appeared meanwhile.
//! A process killed part-way (SIGKILL, SIGTERM) leaves no file behind on O_TMPFILE.
//! Used by `replay` and `export`.

use crate::report::path_line;
use rustix::fs::{AtFlags, Mode as FileMode, OFlags, RenameFlags};
use rustix::io::Errno;
use std::fs::File;
use std::path::Path;

/// Creates `out` with the contents `fill` writes, atomically: until `fill` and the sync
/// succeed, no file called `out` exists; on an error nothing is left behind. An existing
/// `out` is never replaced (also one that appears while `fill` runs).
pub fn write_new(
    out: &Path,
    fill: impl FnOnce(&File) -> std::io::Result<()>,
) -> Result<(), String> {
    write_new_with(out, fill, true)
}

/// [`write_new`]; `tmpfile: false` goes straight to the named temporary file (tests).
fn write_new_with(
    out: &Path,
    fill: impl FnOnce(&File) -> std::io::Result<()>,
    tmpfile: bool,
) -> Result<(), String> {
    let shown = path_line(out);
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
    use std::os::unix::fs::FileExt;

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
