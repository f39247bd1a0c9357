//! Differencing chains: finding a child's parent file from its locator, and checking a
//! child with its parents. Discovery only reads directories and opens files read-only,
//! and never leaves the child's directory tree unless the user names a search directory.

use crate::check::{CheckOptions, ImageReport, check_staged};
use crate::format::parent::{KEY_ABSOLUTE_WIN32_PATH, KEY_RELATIVE_PATH, KEY_VOLUME_PATH};
use crate::io::FileReader;
use crate::model::{DiskType, Model, ParentLink};
use std::path::{Path, PathBuf};

/// Parents followed at most (a longer chain is almost certainly a loop or a trap).
pub const MAX_DEPTH: usize = 64;
/// Directory entries looked at per name search, and how deep it descends.
const MAX_SCAN_ENTRIES: usize = 100_000;
const MAX_SCAN_DEPTH: usize = 8;

/// One file of a chain: where it is and how it was found.
#[derive(Debug, Clone)]
pub struct Member {
    pub path: PathBuf,
    /// The locator key that led to it; `None` for the child and for `--parent` files.
    pub found_via: Option<&'static str>,
}

/// Where discovery may look.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub dirs: Vec<PathBuf>,
}

impl Search {
    /// Canonical roots discovery may read below: the child's directory and the search dirs.
    fn roots(&self, child: &Path) -> Vec<PathBuf> {
        std::iter::once(dir_of(child).to_path_buf())
            .chain(self.dirs.iter().cloned())
            .filter_map(|d| d.canonicalize().ok())
            .collect()
    }
}

/// The directory holding `file` (`.` for a bare file name).
fn dir_of(file: &Path) -> &Path {
    file.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Finds the parent of `child` from its locator pairs, in the specification's order:
/// relative_path, then volume_path, then absolute_win32_path. Volume and absolute paths
/// name Windows locations, so they are matched by file name below the allowed roots.
pub fn discover(
    child: &Path,
    pairs: &[(usize, String, String)],
    search: &Search,
) -> Option<(PathBuf, &'static str)> {
    let roots = search.roots(child);
    let inside = |p: &Path| {
        p.canonicalize()
            .ok()
            .filter(|c| c.is_file() && roots.iter().any(|r| c.starts_with(r)))
    };
    let value = |k: &str| {
        pairs
            .iter()
            .find(|(_, key, _)| key == k)
            .map(|(_, _, v)| v.as_str())
    };
    if let Some(rel) = value(KEY_RELATIVE_PATH) {
        let dir = child.parent().unwrap_or(Path::new("."));
        let candidate = dir.join(rel.replace('\\', "/"));
        if let Some(found) = inside(&candidate) {
            return Some((found, KEY_RELATIVE_PATH));
        }
    }
    for key in [KEY_VOLUME_PATH, KEY_ABSOLUTE_WIN32_PATH] {
        let Some(name) = value(key)
            .and_then(|v| v.rsplit(['\\', '/']).next())
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let child_canon = child.canonicalize().ok();
        for root in &roots {
            if let Some(found) = find_name(root, name).filter(|f| Some(f) != child_canon.as_ref()) {
                return Some((found, key));
            }
        }
    }
    None
}

/// Breadth-first search for a file called `name` (case-insensitive, as on Windows) below
/// `root`, bounded in depth and entries; symlinked directories are not followed.
fn find_name(root: &Path, name: &str) -> Option<PathBuf> {
    let mut queue = std::collections::VecDeque::from([(root.to_path_buf(), 0usize)]);
    let mut seen = 0usize;
    while let Some((dir, depth)) = queue.pop_front() {
        let Ok(list) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = list
            .filter_map(Result::ok)
            .take(MAX_SCAN_ENTRIES - seen)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        seen += entries.len();
        for e in entries {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_file() && e.file_name().to_string_lossy().eq_ignore_ascii_case(name) {
                return e.path().canonicalize().ok();
            }
            if ft.is_dir() && depth < MAX_SCAN_DEPTH {
                queue.push_back((e.path(), depth + 1));
            }
        }
        if seen >= MAX_SCAN_ENTRIES {
            return None;
        }
    }
    None
}

/// The chain starting at `child`: the explicit parents when given (nearest first),
/// otherwise, with `find`, parents discovered one by one from each locator.
pub fn resolve(child: &Path, explicit: &[PathBuf], find: bool, search: &Search) -> Vec<Member> {
    let mut chain = vec![Member {
        path: child.to_path_buf(),
        found_via: None,
    }];
    chain.extend(explicit.iter().map(|p| Member {
        path: p.clone(),
        found_via: None,
    }));
    if !explicit.is_empty() || !find {
        return chain;
    }
    // Every member is looked up inside the first child's tree (and the search dirs), not
    // only below the directory of the member whose locator is read.
    let search = Search {
        dirs: (search.dirs.iter().cloned())
            .chain(std::iter::once(dir_of(child).to_path_buf()))
            .collect(),
    };
    let search = &search;
    let mut seen = vec![child.canonicalize().unwrap_or_else(|_| child.to_path_buf())];
    while chain.len() <= MAX_DEPTH {
        let last = &chain[chain.len() - 1].path;
        let Ok(f) = FileReader::open(last) else { break };
        let m = Model::build(&f);
        if m.disk_type != Some(DiskType::Differencing) {
            break;
        }
        let Some((found, key)) = discover(last, &m.locator_pairs(), search) else {
            break;
        };
        if seen.contains(&found) {
            break; // a loop: the locator points back into the chain
        }
        seen.push(found.clone());
        chain.push(Member {
            path: found,
            found_via: Some(key),
        });
    }
    chain
}

/// What runs after the rules on each member, with its report and models (see
/// [`crate::check::check_staged`]); an error replaces the member's report.
pub type Stage<'s> =
    dyn Fn(&Model, Option<&Model>, &mut ImageReport) -> Result<(), String> + Sync + 's;

/// Checks every member of a chain; each child is judged against its parent (CHAIN rules),
/// whose identity is read after its own log replay. Results are in chain order: the child
/// first.
pub fn check_chain(
    chain: &[Member],
    opts: &CheckOptions,
    stage: &Stage,
) -> Vec<(String, Result<ImageReport, String>)> {
    // From the root down: each member's model, built once for its own check, also gives
    // the link its child is judged against.
    let mut out = Vec::with_capacity(chain.len());
    let mut link: Option<ParentLink> = None;
    for m in chain.iter().rev() {
        let name = m.path.display().to_string();
        // A member that cannot be read leaves its child without a link.
        let parent = link.take();
        let report = FileReader::open(&m.path)
            .map_err(|e| format!("cannot read {name}: {e}"))
            .and_then(|r| {
                let (report, (staged, me)) =
                    check_staged(&r, parent, opts, |raw, replayed, rep| {
                        let me = ParentLink::of(name.clone(), replayed.unwrap_or(raw), m.found_via);
                        (stage(raw, replayed, rep), me)
                    })
                    // A read error or a change voids the report, and the link with it.
                    .map_err(|e| format!("{name}: {e}"))?;
                link = Some(me);
                staged.map(|()| report).map_err(|e| format!("{name}: {e}"))
            });
        out.push((name, report));
    }
    out.reverse();
    out
}
