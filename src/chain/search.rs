//! Where discovery may look: the allowed roots, opened once per run and indexed by file
//! name, and the opening of a candidate below a root with no symlink followed.

use crate::io::FileReader;
use rustix::fd::OwnedFd;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Directory entries indexed per root, and how deep the index descends.
const MAX_SCAN_ENTRIES: usize = 100_000;
const MAX_SCAN_DEPTH: usize = 8;

/// Where discovery may look, and the roots it opened and indexed so far: one `Search`
/// serves a whole run (every child of a batch, every level of a chain), so each root is
/// opened and listed once.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub dirs: Vec<PathBuf>,
    roots: Arc<Mutex<Vec<Arc<Root>>>>,
}

/// An allowed root: its canonical path, the directory opened, and its file-name index,
/// built on the first name search.
#[derive(Debug)]
pub struct Root {
    pub(super) path: PathBuf,
    fd: OwnedFd,
    index: OnceLock<Index>,
}

/// Regular files below a root by lower-cased file name (as on Windows, ASCII only), in
/// breadth-first order of sorted directories; `bound` says where the listing stopped.
#[derive(Debug, Default)]
pub(super) struct Index {
    pub(super) names: HashMap<Vec<u8>, Vec<PathBuf>>,
    pub(super) bound: Option<String>,
}

impl Search {
    pub fn new(dirs: Vec<PathBuf>) -> Search {
        Search {
            dirs,
            roots: Arc::default(),
        }
    }

    /// The opened root for directory `dir` (shared with earlier calls for the same place).
    fn root(&self, dir: &Path) -> Option<Arc<Root>> {
        let path = dir.canonicalize().ok()?;
        let mut roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = roots.iter().find(|r| r.path == path) {
            return Some(r.clone());
        }
        let fd = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let r = Arc::new(Root {
            path,
            fd,
            index: OnceLock::new(),
        });
        roots.push(r.clone());
        Some(r)
    }

    /// The roots discovery may read below for `child`: its directory and the search dirs.
    pub(super) fn roots(&self, child: &Path) -> Vec<Arc<Root>> {
        let mut out: Vec<Arc<Root>> = Vec::new();
        for d in std::iter::once(dir_of(child)).chain(self.dirs.iter().map(PathBuf::as_path)) {
            if let Some(r) = self
                .root(d)
                .filter(|r| !out.iter().any(|o| o.path == r.path))
            {
                out.push(r);
            }
        }
        out
    }
}

impl Root {
    pub(super) fn index(&self) -> &Index {
        self.index.get_or_init(|| build_index(self))
    }
}

/// The directory holding `file` (`.` for a bare file name).
pub(super) fn dir_of(file: &Path) -> &Path {
    file.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Lists `root` breadth first (sorted by name), bounded in depth and entries; directories
/// are opened below the root like candidates, so no symlinked directory is entered.
fn build_index(root: &Root) -> Index {
    let mut index = Index::default();
    let mut queue = std::collections::VecDeque::from([(PathBuf::new(), 0usize)]);
    let mut seen = 0usize;
    while let Some((rel, depth)) = queue.pop_front() {
        let Ok(fd) = open_beneath(&root.fd, &rel, OFlags::DIRECTORY, true) else {
            continue;
        };
        let Ok(dir) = rustix::fs::Dir::read_from(&fd) else {
            continue;
        };
        let mut entries: Vec<(Vec<u8>, FileType)> = dir
            .filter_map(Result::ok)
            .map(|e| (e.file_name().to_bytes().to_vec(), e.file_type()))
            .filter(|(n, _)| n != b"." && n != b"..")
            .take(MAX_SCAN_ENTRIES - seen)
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        seen += entries.len();
        for (name, mut ft) in entries {
            if ft == FileType::Unknown {
                ft =
                    rustix::fs::statat(&fd, name.as_slice(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                        .map_or(FileType::Unknown, |st| FileType::from_raw_mode(st.st_mode));
            }
            let path = rel.join(OsStr::from_bytes(&name));
            match ft {
                FileType::RegularFile => index
                    .names
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .push(path),
                FileType::Directory if depth < MAX_SCAN_DEPTH => {
                    queue.push_back((path, depth + 1));
                }
                FileType::Directory if index.bound.is_none() => {
                    index.bound = Some(format!(
                        "the search of {} stops {MAX_SCAN_DEPTH} directories deep",
                        root.path.display()
                    ));
                }
                _ => {}
            }
        }
        if seen >= MAX_SCAN_ENTRIES {
            index.bound = Some(format!(
                "the search of {} stopped after {MAX_SCAN_ENTRIES} directory entries",
                root.path.display()
            ));
            break;
        }
    }
    index
}

/// Opens `rel` (plain names only: no `..`, no root) below the directory `root` read-only,
/// following no symlink on the way or at the end. `dir`: open a directory.
fn open_beneath(
    root: &OwnedFd,
    rel: &Path,
    kind: OFlags,
    openat2: bool,
) -> std::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY | kind;
    // A FIFO named like a parent must not block the open (it is refused after fstat).
    let flags = if kind.is_empty() {
        flags | OFlags::NONBLOCK
    } else {
        flags
    };
    let names: Vec<&OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(std::io::Error::from(Errno::XDEV)),
        })
        .collect::<Result<_, _>>()?;
    let path = if names.is_empty() {
        Path::new(".")
    } else {
        rel
    };
    if openat2 {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match open_noatime(
            |f| rustix::fs::openat2(root, path, f, Mode::empty(), resolve),
            flags,
        ) {
            Err(Errno::NOSYS) => {} // a kernel before 5.6: walk instead
            done => return done.map_err(Into::into),
        }
    }
    // One component at a time from the root, none of them a symlink.
    let Some((last, parents)) = names.split_last() else {
        return Ok(rustix::fs::openat(root, ".", flags, Mode::empty())?);
    };
    let mut cur: Option<OwnedFd> = None;
    for n in parents {
        let at = cur.as_ref().unwrap_or(root);
        let dir_flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::DIRECTORY;
        cur = Some(rustix::fs::openat(at, *n, dir_flags, Mode::empty())?);
    }
    let at = cur.as_ref().unwrap_or(root);
    Ok(open_noatime(
        |f| rustix::fs::openat(at, *last, f, Mode::empty()),
        flags,
    )?)
}

/// `open` with O_NOATIME where allowed (reading the evidence keeps its access time).
fn open_noatime(
    open: impl Fn(OFlags) -> rustix::io::Result<OwnedFd>,
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    match open(flags | OFlags::NOATIME) {
        Err(Errno::PERM) => open(flags),
        r => r,
    }
}

/// `dir` joined with `rel` (`/` separated), `.` and `..` resolved by name: `dir` is
/// canonical, so this is where the kernel would resolve it. `None` above `/`.
pub(super) fn lexical_join(dir: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if !out.pop() {
                    return None;
                }
            }
            p => out.push(p),
        }
    }
    Some(out)
}

/// (device, inode): the identity of a file in a chain.
pub(super) type FileId = (u64, u64);

/// Opens the candidate `rel` below `root`: a regular file, or nothing.
pub(super) fn open_candidate(root: &Root, rel: &Path) -> Option<(FileReader, FileId)> {
    let fd = open_beneath(&root.fd, rel, OFlags::empty(), true).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return None;
    }
    let file = FileReader::from_file(std::fs::File::from(fd)).ok()?;
    Some((file, (st.st_dev, st.st_ino)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// root/{a/file, link -> a/file, dirlink -> a, b/ -> ../outside}
    fn tree(name: &str) -> (PathBuf, OwnedFd) {
        let d =
            std::env::temp_dir().join(format!("vhdx-check-beneath-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let root = d.join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(d.join("outside")).unwrap();
        std::fs::write(root.join("a/file"), b"x").unwrap();
        std::fs::write(d.join("outside/file"), b"x").unwrap();
        std::os::unix::fs::symlink("a/file", root.join("link")).unwrap();
        std::os::unix::fs::symlink("a", root.join("dirlink")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("b")).unwrap();
        let fd =
            rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        (d, fd)
    }

    #[test]
    fn open_beneath_follows_no_symlink_with_openat2_and_with_the_walk() {
        for openat2 in [true, false] {
            let (d, root) = tree(if openat2 { "openat2" } else { "walk" });
            let open = |p: &str| open_beneath(&root, Path::new(p), OFlags::empty(), openat2);
            assert!(open("a/file").is_ok(), "openat2={openat2}");
            for refused in [
                "link",
                "dirlink/file",
                "b/file",
                "../outside/file",
                "/etc/passwd",
            ] {
                assert!(
                    open(refused).is_err(),
                    "{refused} opened, openat2={openat2}"
                );
            }
            let _ = std::fs::remove_dir_all(&d);
        }
    }

    #[test]
    fn relative_paths_resolve_by_name_from_the_canonical_directory() {
        let d = Path::new("/r/sub");
        assert_eq!(
            lexical_join(d, "../p.vhdx"),
            Some(PathBuf::from("/r/p.vhdx"))
        );
        assert_eq!(
            lexical_join(d, "./x/./p.vhdx"),
            Some(PathBuf::from("/r/sub/x/p.vhdx"))
        );
        assert_eq!(lexical_join(d, "../../../p"), None);
    }
}
