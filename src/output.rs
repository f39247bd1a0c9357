//! Where a report goes: standard output, or `--output FILE` replaced atomically. Every
//! write is checked (a report that cannot be written is a tool failure, exit 2), and
//! messages on stderr never fail the run (a full or closed stderr is ignored).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// One line `vhdx-check: MSG` on stderr, control characters escaped; a stderr that
/// cannot be written (full, closed) is ignored rather than a panic.
pub fn say(msg: &str) {
    let line = format!(
        "vhdx-check: {}\n",
        crate::report::escape_controls(msg.trim_end_matches('\n'))
    );
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// Raw bytes to stderr (the progress line), errors ignored.
pub fn say_raw(s: &str) {
    let _ = io::stderr().lock().write_all(s.as_bytes());
}

/// The report's destination. Standard output: a reader that went away (EPIPE: `| head`)
/// is not a failure; what follows is dropped. A file: written to a new temporary file
/// beside it, flushed and synced, then renamed over it by [`Output::finish`], so a reader
/// of FILE sees the old report or the whole new one, never a truncated one; on any
/// failure (or a run that stops early) the temporary file is removed and FILE is left
/// as it was.
pub struct Output {
    inner: Inner,
    reader_gone: bool,
}

enum Inner {
    Stdout(BufWriter<io::Stdout>),
    File(Temp),
}

struct Temp {
    file: Option<BufWriter<File>>,
    temp: PathBuf,
    target: PathBuf,
}

impl Drop for Temp {
    fn drop(&mut self) {
        // Still here: not renamed (an error, or the run stopped): leave no trace.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Whether `--output FILE` may be replaced by a rename: it does not exist, or it is a
/// regular file. A device node (`/dev/full`, `/dev/null`), a FIFO a reader waits on, a
/// symbolic link (`/dev/stdout`) or a directory is refused: renaming over it would replace
/// the node itself — as root, a system device.
fn replaceable(target: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it exists and is {}, not a regular file; refusing to replace it (write to a new or regular file)",
                crate::io::type_name(m.file_type())
            ),
        )),
    }
}

impl Output {
    pub fn stdout() -> Output {
        Output {
            inner: Inner::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())),
            reader_gone: false,
        }
    }

    /// A new temporary file in FILE's directory (unique name, created exclusively).
    pub fn file(target: &Path) -> Result<Output, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let fail = |e: io::Error| format!("cannot write the report to {}: {e}", target.display());
        replaceable(target).map_err(fail)?;
        let name = target
            .file_name()
            .ok_or_else(|| fail(io::Error::other("not a file name")))?;
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        loop {
            let mut temp_name = std::ffi::OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(
                ".{}-{}.tmp",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let temp = dir.join(temp_name);
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(f) => {
                    return Ok(Output {
                        inner: Inner::File(Temp {
                            file: Some(BufWriter::with_capacity(1 << 16, f)),
                            temp,
                            target: target.to_path_buf(),
                        }),
                        reader_gone: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(fail(e)),
            }
        }
    }

    /// Where the report goes, for messages.
    pub fn name(&self) -> String {
        match &self.inner {
            Inner::Stdout(_) => "standard output".into(),
            Inner::File(t) => t.target.display().to_string(),
        }
    }

    /// The message for a failed write.
    /// Stops without writing what is still buffered (an interrupted run): standard
    /// output keeps what was already written; a file's temporary copy is removed.
    pub fn abandon(self) {
        match self.inner {
            // into_parts hands back the buffer without writing it.
            Inner::Stdout(w) => drop(w.into_parts()),
            Inner::File(t) => drop(t),
        }
    }

    pub fn failure(&self, e: &io::Error) -> String {
        format!("cannot write the report to {}: {e}", self.name())
    }

    /// Flushes, and for a file syncs and renames it over FILE. Returns the reason on
    /// failure (the temporary file is then removed).
    pub fn finish(mut self) -> Result<(), String> {
        let r = self.flush();
        let r = r.and_then(|()| match &mut self.inner {
            Inner::Stdout(_) => Ok(()),
            Inner::File(t) => {
                let Some(w) = t.file.as_mut() else {
                    return Ok(());
                };
                w.flush()?;
                w.get_ref().sync_all()?;
                // Again just before: what FILE is may have changed while the run lasted.
                replaceable(&t.target)?;
                std::fs::rename(&t.temp, &t.target)?;
                t.file = None;
                // The rename itself durable; a directory that cannot be synced is no
                // reason to fail a report already in place.
                if let Some(dir) = t.target.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(())
            }
        });
        r.map_err(|e| self.failure(&e))
    }

    fn gone(&mut self, r: io::Result<()>) -> io::Result<()> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe && self.is_stdout() => {
                self.reader_gone = true;
                Ok(())
            }
            r => r,
        }
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self.inner, Inner::Stdout(_))
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.reader_gone {
            return Ok(buf.len());
        }
        let r = match &mut self.inner {
            Inner::Stdout(w) => w.write_all(buf),
            Inner::File(t) => match t.file.as_mut() {
                Some(w) => w.write_all(buf),
                None => Err(io::Error::other("report already finished")),
            },
        };
        self.gone(r).map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.reader_gone {
            return Ok(());
        }
        let r = match &mut self.inner {
            Inner::Stdout(w) => w.flush(),
            Inner::File(t) => t.file.as_mut().map_or(Ok(()), |w| w.flush()),
        };
        self.gone(r)
    }
}
