use super::ReadAt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A file opened read-only; reads are positioned (`pread`), so the handle has no cursor
/// and can be shared between threads.
pub struct FileReader {
    file: File,
    len: u64,
}

impl FileReader {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Self::from_file(open_read_only(path)?)
    }

    /// A reader over a file the caller opened read-only (chain discovery opens parents
    /// below a root directory and checks the handle it validated).
    pub fn from_file(file: File) -> std::io::Result<Self> {
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        Ok(Self {
            file,
            len: meta.len(),
        })
    }
}

/// Opens `path` with only `read` set: the evidence can never be written through us. On
/// Linux also with O_NOATIME where that is allowed (the caller owns the file or has
/// CAP_FOWNER), so reading the evidence leaves its access time as it was.
fn open_read_only(path: &Path) -> std::io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let noatime = rustix::fs::OFlags::NOATIME.bits() as i32;
        match (std::fs::OpenOptions::new().read(true))
            .custom_flags(noatime)
            .open(path)
        {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {}
            opened => return opened,
        }
    }
    std::fs::OpenOptions::new().read(true).open(path)
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
}
