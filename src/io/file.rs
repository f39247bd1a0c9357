use super::{ReadAt, Stamp};
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::Path;

/// What an input is, from `fstat`: only regular files and block devices hold images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    BlockDevice,
}

/// A file opened read-only; reads are positioned (`pread`), so the handle has no cursor
/// and can be shared between threads.
pub struct FileReader {
    file: File,
    kind: Kind,
    /// The size when opened: reads stop there.
    len: u64,
}

impl FileReader {
    /// Opens an image (see [`open_input`]): a regular file or a block device; anything
    /// else is refused with an `InvalidInput` error naming its type.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Self::from_file(open_input(path)?)
    }

    /// An image from a file the caller opened (without blocking, e.g. by [`open_input`]):
    /// refused unless `fstat` says it is a regular file or a block device.
    pub fn from_file(file: File) -> std::io::Result<Self> {
        let meta = file.metadata()?;
        let kind = kind_of(&meta)?;
        let len = stamp_of(&file, kind, &meta)?.len;
        Ok(Self { file, kind, len })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
}

/// The type of a non-image, as the refusal names it.
pub fn type_name(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Regular file or block device; anything else is an `InvalidInput` error whose text is
/// "<type>, not an image file".
pub fn kind_of(meta: &Metadata) -> std::io::Result<Kind> {
    let ft = meta.file_type();
    if ft.is_file() {
        Ok(Kind::Regular)
    } else if ft.is_block_device() {
        Ok(Kind::BlockDevice)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}, not an image file", type_name(ft)),
        ))
    }
}

/// Size and times now. The size of a block device comes from the device (`lseek` to the
/// end; `st_size` is 0); its node's times say nothing about its contents, so only the
/// size is compared.
fn stamp_of(file: &File, kind: Kind, meta: &Metadata) -> std::io::Result<Stamp> {
    Ok(match kind {
        Kind::Regular => Stamp {
            len: meta.len(),
            modified: Some((meta.mtime(), meta.mtime_nsec())),
            changed: Some((meta.ctime(), meta.ctime_nsec())),
        },
        // lseek moves the shared file position, which no read uses (pread).
        Kind::BlockDevice => Stamp {
            len: rustix::fs::seek(file, rustix::fs::SeekFrom::End(0))?,
            modified: None,
            changed: None,
        },
    })
}

/// Opens an image for reading without ever blocking and without opening what is not a
/// regular file or a block device (the refusal, `InvalidInput`, says "<type>, not an
/// image file"). First an `O_PATH` handle (opens nothing: no FIFO waits for a writer, no
/// device driver runs — a tape would rewind, a watchdog arm), whose `fstat` decides;
/// then the path is opened for reading with `O_NONBLOCK` (a FIFO swapped in meanwhile
/// cannot hang us) and must be the same file (device and inode), and `O_NONBLOCK` is
/// cleared again. Only `read` is set: the evidence can never be written through us.
pub fn open_input(path: &Path) -> std::io::Result<File> {
    open_with(path, |m| kind_of(m).map(|_| ()))
}

/// [`open_input`] for a regular file only (a policy file, ...): anything else is refused
/// as "<type>, not a <what>".
pub fn open_regular(path: &Path, what: &str) -> std::io::Result<File> {
    open_with(path, |m| {
        let ft = m.file_type();
        if ft.is_file() {
            return Ok(());
        }
        let name = if ft.is_block_device() {
            "a block device"
        } else {
            type_name(ft)
        };
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{name}, not a {what}"),
        ))
    })
}

fn open_with(
    path: &Path,
    accept: impl Fn(&Metadata) -> std::io::Result<()>,
) -> std::io::Result<File> {
    #[cfg(target_os = "linux")]
    let first = {
        use std::os::unix::fs::OpenOptionsExt;
        let handle = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::PATH.bits() as i32)
            .open(path)?;
        let meta = handle.metadata()?;
        accept(&meta)?;
        Some((meta.dev(), meta.ino()))
    };
    #[cfg(not(target_os = "linux"))]
    let first: Option<(u64, u64)> = None;
    let file = open_read_only(path)?;
    let meta = file.metadata()?;
    accept(&meta)?;
    if first.is_some_and(|id| id != (meta.dev(), meta.ino())) {
        return Err(std::io::Error::other(
            "the file was replaced while opening it",
        ));
    }
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(file)
}

/// Opens `path` with only `read` set and `O_NONBLOCK`. On Linux also with O_NOATIME where
/// that is allowed (the caller owns the file or has CAP_FOWNER), so reading the evidence
/// leaves its access time as it was.
fn open_read_only(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    #[cfg(target_os = "linux")]
    {
        let noatime = rustix::fs::OFlags::NOATIME.bits() as i32;
        match (std::fs::OpenOptions::new().read(true))
            .custom_flags(noatime | nonblock)
            .open(path)
        {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {}
            opened => return opened,
        }
    }
    (std::fs::OpenOptions::new().read(true))
        .custom_flags(nonblock)
        .open(path)
}

impl ReadAt for FileReader {
    fn len(&self) -> u64 {
        self.len
    }
    fn data_from(&self, offset: u64) -> Option<u64> {
        if offset >= self.len {
            return None;
        }
        // lseek(SEEK_DATA) moves the shared file position, which no read uses (pread).
        // A block device answers as a file without holes (Linux: fixed_size_llseek).
        match rustix::fs::seek(&self.file, rustix::fs::SeekFrom::Data(offset)) {
            Ok(pos) => (pos < self.len).then_some(pos),
            Err(rustix::io::Errno::NXIO) => None,
            Err(_) => Some(offset), // no hole support here: assume data
        }
    }

    fn hole_from(&self, offset: u64) -> u64 {
        rustix::fs::seek(&self.file, rustix::fs::SeekFrom::Hole(offset))
            .map_or(self.len, |p| p.min(self.len))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf
            .len()
            .min((self.len - offset).min(usize::MAX as u64) as usize);
        self.file.read_at(&mut buf[..n], offset)
    }

    fn stamp(&self) -> std::io::Result<Stamp> {
        stamp_of(&self.file, self.kind, &self.file.metadata()?)
    }
}
