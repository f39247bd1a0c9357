//! Differencing chains: finding a child's parent file from its locator, and checking a
//! child with its parents. Discovery only reads directories and opens files read-only,
//! and never leaves the allowed roots (the child's directory tree and the search dirs):
//! every candidate is opened once, below an opened root directory, with no symlink
//! followed (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, else a walk one component at a
//! time with O_NOFOLLOW), and the file checked is the one opened, never a name reopened.

mod search;

use search::{FileId, dir_of, lexical_join, open_candidate};
pub use search::{Root, Search};

use crate::check::{CheckOptions, ImageReport, check_member};
use crate::format::parent::{KEY_ABSOLUTE_WIN32_PATH, KEY_RELATIVE_PATH, KEY_VOLUME_PATH};
use crate::io::FileReader;
use crate::model::{ChainBreak, DiskType, Model, ParentLink};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Parents followed at most (a longer chain is almost certainly a loop or a trap).
pub const MAX_DEPTH: usize = 64;

/// One file of a chain: where it is and how it was found.
#[derive(Clone)]
pub struct Member {
    pub path: PathBuf,
    /// The locator key that led to it; `None` for the child and for `--parent` files.
    pub found_via: Option<&'static str>,
    /// The file as discovery opened and validated it: it is checked through this handle.
    /// `None`: named by the user, opened by name when checked.
    pub file: Option<Arc<FileReader>>,
    /// Why the chain ends at this member although it is differencing (CHAIN-006..008).
    pub broken: Option<ChainBreak>,
    /// The chain of this child is to be resolved when it is checked ([`Member::deferred`]).
    pub deferred: Option<Arc<Deferred>>,
}

/// How to resolve a child's chain later: the arguments of [`resolve`].
#[derive(Debug)]
pub struct Deferred {
    pub explicit: Vec<PathBuf>,
    pub find: bool,
    pub search: Search,
}

impl Member {
    /// A file named by the user (the child, a `--parent`).
    pub fn named(path: &Path) -> Member {
        Member {
            path: path.to_path_buf(),
            found_via: None,
            file: None,
            broken: None,
            deferred: None,
        }
    }

    /// A child whose chain [`check_chain`] resolves when it comes to check it, so a batch
    /// holds the files discovery opened for the chains being checked only (not one
    /// descriptor per parent of every image of the run).
    pub fn deferred(child: &Path, explicit: &[PathBuf], find: bool, search: &Search) -> Member {
        Member {
            deferred: Some(Arc::new(Deferred {
                explicit: explicit.to_vec(),
                find,
                search: search.clone(),
            })),
            ..Member::named(child)
        }
    }
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("path", &self.path)
            .field("found_via", &self.found_via)
            .field("opened", &self.file.is_some())
            .field("broken", &self.broken)
            .field("deferred", &self.deferred.is_some())
            .finish()
    }
}

/// What discovery made of one child's locator.
pub enum Discovery {
    /// The parent, opened and validated: a regular file below an allowed root.
    Found {
        path: PathBuf,
        key: &'static str,
        file: FileReader,
        id: FileId,
    },
    /// Every file the locator leads to is already in the chain.
    Loop { path: PathBuf, key: &'static str },
    /// Nothing found: what was looked for, and where.
    Missing(String),
}

/// Finds the parent of the differencing disk `child` from its locator pairs, in the
/// specification's order: relative_path (resolved from the child's directory), then
/// volume_path, then absolute_win32_path. Volume and absolute paths name Windows
/// locations, so they are matched by file name in each root's index. `chain`: the files
/// already in the chain (a candidate among them is a loop, not a parent).
pub fn discover(
    child: &Path,
    pairs: &[(usize, String, String)],
    roots: &[Arc<Root>],
    chain: &[FileId],
) -> Discovery {
    let value = |k: &str| {
        pairs
            .iter()
            .find(|(_, key, _)| key == k)
            .map(|(_, _, v)| v.as_str())
    };
    let mut looked = Vec::new();
    let mut looped = None;
    let take = |root: &Root, rel: &Path, key: &'static str, looped: &mut Option<_>| {
        let (file, id) = open_candidate(root, rel)?;
        let path = root.path.join(rel);
        if chain.contains(&id) {
            looped.get_or_insert((path, key));
            return None;
        }
        Some(Discovery::Found {
            path,
            key,
            file,
            id,
        })
    };
    if let Some(rel) = value(KEY_RELATIVE_PATH) {
        let target = dir_of(child)
            .canonicalize()
            .ok()
            .and_then(|d| lexical_join(&d, &rel.replace('\\', "/")));
        looked.push(match &target {
            Some(t) => format!("{KEY_RELATIVE_PATH} \"{rel}\" (= {})", t.display()),
            None => format!("{KEY_RELATIVE_PATH} \"{rel}\""),
        });
        for root in roots {
            let Some(inner) = target
                .as_ref()
                .and_then(|t| t.strip_prefix(&root.path).ok())
            else {
                continue;
            };
            if let Some(found) = take(root, inner, KEY_RELATIVE_PATH, &mut looped) {
                return found;
            }
        }
    }
    let mut bounds = Vec::new();
    for key in [KEY_VOLUME_PATH, KEY_ABSOLUTE_WIN32_PATH] {
        let Some(v) = value(key) else { continue };
        let Some(name) = v.rsplit(['\\', '/']).next().filter(|n| !n.is_empty()) else {
            looked.push(format!("{key} \"{v}\" (no file name)"));
            continue;
        };
        looked.push(format!("{key} \"{v}\" (by file name \"{name}\")"));
        for root in roots {
            let index = root.index();
            if let Some(b) = &index.bound {
                if !bounds.contains(b) {
                    bounds.push(b.clone());
                }
            }
            let hits = index
                .names
                .get(name.as_bytes().to_ascii_lowercase().as_slice());
            for rel in hits.into_iter().flatten() {
                if let Some(found) = take(root, rel, key, &mut looped) {
                    return found;
                }
            }
        }
    }
    if let Some((path, key)) = looped {
        return Discovery::Loop { path, key };
    }
    let where_ = roots
        .iter()
        .map(|r| r.path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (mut text, way_on) = if looked.is_empty() {
        (
            format!(
                "parent not found: the parent locator names no {KEY_RELATIVE_PATH}, {KEY_VOLUME_PATH} or {KEY_ABSOLUTE_WIN32_PATH}"
            ),
            "give the parent with --parent",
        )
    } else {
        (
            format!(
                "parent not found: looked for {} below {where_} (no symlink followed)",
                looked.join(", ")
            ),
            "give the parent with --parent, or a --search-dir that holds it",
        )
    };
    for b in bounds {
        text.push_str(&format!("; {b}"));
    }
    text.push_str(&format!(
        "; the virtual disk cannot be read without it: {way_on}"
    ));
    Discovery::Missing(text)
}

/// The chain starting at `child`: the explicit parents when given (nearest first), then,
/// with `find`, parents discovered one by one from each locator. A differencing member
/// whose parent is not in the chain carries why ([`Member::broken`]).
pub fn resolve(child: &Path, explicit: &[PathBuf], find: bool, search: &Search) -> Vec<Member> {
    let id_of = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).ok().map(|md| (md.dev(), md.ino()))
    };
    let mut chain = vec![Member::named(child)];
    let mut ids: Vec<FileId> = id_of(child).into_iter().collect();
    // A `--parent` naming a file already in the chain (the same device and inode, as
    // discovery compares) is a loop: the chain is cut before it, and the member whose
    // parent it would be carries the loop (CHAIN-007) if it is differencing.
    let mut repeated = None;
    for p in explicit {
        let id = id_of(p);
        if let Some(id) = id {
            if ids.contains(&id) {
                repeated = Some(p);
                break;
            }
            ids.push(id);
        }
        chain.push(Member::named(p));
    }
    // Every member is looked up inside the first child's tree (and the search dirs), not
    // only below the directory of the member whose locator is read.
    let roots = if find {
        search.roots(child)
    } else {
        Vec::new()
    };
    loop {
        let depth = chain.len();
        let Some(last) = chain.last_mut() else { break };
        // A named file is only read here (it is opened again when checked); a discovered
        // one through the handle discovery validated.
        let facts = |m: Model| (m.disk_type, m.locator_pairs());
        let (disk_type, pairs) = match &last.file {
            Some(f) => facts(Model::build(f.as_ref())),
            None => match FileReader::open(&last.path) {
                Ok(f) => facts(Model::build(&f)),
                Err(_) => break, // reported as unreadable when checked
            },
        };
        if disk_type != Some(DiskType::Differencing) {
            break;
        }
        if let Some(p) = repeated.take() {
            last.broken = Some(ChainBreak::Loop(format!(
                "its parent is given as --parent {}, a file already in the chain: the chain is a loop, so no base disk is reached and the virtual disk cannot be read; name the real parent with --parent",
                p.display()
            )));
            break;
        }
        if !find {
            last.broken = Some(ChainBreak::Missing(format!(
                "parent not given: {} is differencing and the --parent list ends here, so its virtual disk cannot be read (name its parent with --parent, or use --find-parents)",
                last.path.display()
            )));
            break;
        }
        if depth > MAX_DEPTH {
            last.broken = Some(ChainBreak::Depth(format!(
                "the chain is cut at {MAX_DEPTH} parents: this disk's parent is not followed, so the parents beyond are not checked and the virtual disk cannot be read whole; check them separately, naming this disk's parent as the image"
            )));
            break;
        }
        match discover(&last.path, &pairs, &roots, &ids) {
            Discovery::Found {
                path,
                key,
                file,
                id,
            } => {
                ids.push(id);
                chain.push(Member {
                    path,
                    found_via: Some(key),
                    file: Some(Arc::new(file)),
                    broken: None,
                    deferred: None,
                });
            }
            Discovery::Loop { path, key } => {
                last.broken = Some(ChainBreak::Loop(format!(
                    "the parent locator's {key} leads to {}, already in the chain: the chain is a loop, so no base disk is reached and the virtual disk cannot be read; name the real parent with --parent",
                    path.display()
                )));
                break;
            }
            Discovery::Missing(text) => {
                last.broken = Some(ChainBreak::Missing(text));
                break;
            }
        }
    }
    chain
}

/// Why the `--parent` list is longer than the chain, if it is: a member named before the
/// last `--parent` is not a differencing disk, so it has no parent and the files named
/// after it are not part of its chain. A usage error (the user named files that cannot
/// be read as this disk's ancestors); members that cannot be read are judged when checked.
pub fn extra_parents(child: &Path, explicit: &[PathBuf]) -> Option<String> {
    // A file that is no image (a FIFO, a directory, unreadable) is refused as such first.
    if explicit.iter().any(|p| FileReader::open(p).is_err()) {
        return None;
    }
    let named = std::iter::once(child).chain(explicit.iter().map(PathBuf::as_path));
    for (m, next) in named.zip(explicit) {
        let f = FileReader::open(m).ok()?;
        match Model::build(&f).disk_type {
            Some(DiskType::Differencing) => {}
            Some(_) => {
                return Some(format!(
                    "--parent {}: {} is not a differencing disk, so it has no parent; the --parent list is longer than its chain (remove --parent {} and those after it)",
                    crate::report::path_line(next),
                    crate::report::path_line(m),
                    crate::report::path_line(next)
                ));
            }
            None => return None,
        }
    }
    None
}

/// The rule and message a chain break is reported as (CHAIN-006..008; `info` shows them).
pub fn break_finding(b: &ChainBreak) -> (&'static str, &str) {
    match b {
        ChainBreak::Missing(t) => ("CHAIN-006", t),
        ChainBreak::Loop(t) => ("CHAIN-007", t),
        ChainBreak::Depth(t) => ("CHAIN-008", t),
    }
}

/// What runs after the rules on each member, with its report and models (see
/// [`crate::check::check_staged`]); an error replaces the member's report.
/// What it returns (`X`) travels with the member's outcome ([`Checked::extra`]).
pub type Stage<'s, X = ()> =
    dyn Fn(&Model, Option<&Model>, &mut ImageReport) -> Result<X, String> + Sync + 's;

/// One checked member of a chain: the member as resolved, its file as it was read (`file`
/// is the handle the check read, so later reads — the chain digest — see the same file),
/// and its report or why there is none.
pub struct Checked<X = ()> {
    pub member: Member,
    pub result: Result<ImageReport, String>,
    /// What the stage returned, with the report (`None` without one).
    pub extra: Option<X>,
}

/// Checks every member of a chain; each child is judged against its parent (CHAIN rules),
/// whose identity is read after its own log replay. Results are in chain order: the child
/// first. A [`Member::deferred`] child's chain is resolved first.
pub fn check_chain<X>(chain: &[Member], opts: &CheckOptions, stage: &Stage<X>) -> Vec<Checked<X>> {
    let resolved;
    let chain = match chain {
        [m] if m.deferred.is_some() => {
            let d = m.deferred.as_deref();
            resolved = d.map_or_else(Vec::new, |d| {
                resolve(&m.path, &d.explicit, d.find, &d.search)
            });
            &resolved[..]
        }
        _ => chain,
    };
    // From the root down: each member's model, built once for its own check, also gives
    // the link its child is judged against.
    let mut out = Vec::with_capacity(chain.len());
    let mut link: Option<ParentLink> = None;
    for m in chain.iter().rev() {
        let name = m.path.display().to_string();
        // A member that cannot be read leaves its child without a link.
        let parent = link.take();
        let opened = match &m.file {
            Some(f) => Ok(f.clone()),
            None => FileReader::open(&m.path).map(Arc::new),
        };
        let mut member = m.clone();
        member.file = opened.as_ref().ok().cloned();
        let report = opened
            .map_err(|e| format!("cannot read {name}: {e}"))
            .and_then(|r| {
                let (report, (staged, me)) = check_member(
                    r.as_ref(),
                    parent,
                    m.broken.clone(),
                    opts,
                    |raw, replayed, rep| {
                        let me = ParentLink::of(name.clone(), replayed.unwrap_or(raw), m.found_via);
                        (stage(raw, replayed, rep), me)
                    },
                )
                // A read error or a change voids the report, and the link with it.
                .map_err(|e| format!("{name}: {e}"))?;
                link = Some(me);
                staged
                    .map(|x| (report, x))
                    .map_err(|e| format!("{name}: {e}"))
            });
        let (result, extra) = match report {
            Ok((r, x)) => (Ok(r), Some(x)),
            Err(e) => (Err(e), None),
        };
        out.push(Checked {
            member,
            result,
            extra,
        });
    }
    out.reverse();
    out
}
