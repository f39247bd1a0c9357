//! Command line: parse arguments, run, render, choose the exit code (DESIGN.md).
//! Exit codes: 0 every image accepted, 1 at least one rejected, 2 the tool could not do
//! its job (unreadable file, bad usage, bad policy file) with a one-line reason on stderr.

use crate::batch::{self, Job};
use crate::chain::Member;
use crate::check::CheckOptions;
use crate::io::FileReader;
use crate::model::Model;
use crate::policy::Policy;
use crate::report::{self, Checked, FailOn};
use crate::rules::catalogue::catalogue;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

pub const EXIT_ACCEPT: i32 = 0;
pub const EXIT_REJECT: i32 = 1;
pub const EXIT_TOOL: i32 = 2;
/// SIGINT stopped the run (128 + SIGINT); nothing was printed on stdout.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Parser)]
#[command(
    name = "vhdx-check",
    version,
    about = "Forensic validator for Microsoft VHDX (MS-VHDX) images"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
enum HashArg {
    Sha256,
}

#[derive(Clone, Copy, ValueEnum)]
enum ViewArg {
    Raw,
    Replayed,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOnArg {
    Error,
    Warning,
    Info,
    Never,
}

/// Differencing chains: parents named by the user or found from the locator.
#[derive(clap::Args)]
struct ChainArgs {
    /// Parent of the image (repeat for grandparents, nearest first); needs one IMAGE.
    #[arg(long = "parent", value_name = "FILE")]
    parents: Vec<PathBuf>,
    /// Find parents through each differencing image's locator (relative_path first),
    /// below the image's directory and any --search-dir.
    #[arg(long)]
    find_parents: bool,
    /// A further directory tree --find-parents may look in.
    #[arg(long = "search-dir", value_name = "DIR")]
    search_dirs: Vec<PathBuf>,
}

impl ChainArgs {
    fn active(&self) -> bool {
        !self.parents.is_empty() || self.find_parents
    }

    fn resolve(&self, image: &std::path::Path) -> Vec<crate::chain::Member> {
        let search = crate::chain::Search {
            dirs: self.search_dirs.clone(),
        };
        crate::chain::resolve(image, &self.parents, self.find_parents, &search)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Check images against every rule; exit 0 accepted, 1 rejected, 2 tool failure.
    /// A directory stands for every *.vhdx and *.avhdx file below it.
    Check {
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
        /// Acceptance policy (TOML): fail level, severity overrides, waivers, requirements.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Reject an image with a finding at or above this severity (default: the
        /// policy's fail_on, else error).
        #[arg(long, value_enum)]
        fail_on: Option<FailOnArg>,
        /// Findings shown per rule and image; further instances are counted.
        #[arg(long, default_value_t = 100)]
        max_per_rule: u64,
        /// Digest the image file and the virtual disk as a guest reads it.
        #[arg(long, value_enum, value_name = "ALGORITHM")]
        hash: Option<HashArg>,
        #[command(flatten)]
        chain: ChainArgs,
        /// Image files, and directories searched for *.vhdx / *.avhdx files.
        #[arg(required = true, value_name = "IMAGE|DIR")]
        images: Vec<PathBuf>,
    },
    /// Print everything parsed from an image (headers, regions, metadata, BAT counts,
    /// parent locator, and the resolved chain with --parent / --find-parents).
    Info {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        chain: ChainArgs,
        image: PathBuf,
    },
    /// Write IMAGE with its pending log replayed to the new file OUT (IMAGE is only read;
    /// OUT must not exist). Exit 0 written, 2 nothing to replay or cannot write.
    Replay { image: PathBuf, out: PathBuf },
    /// Write the virtual disk (through its parents for a differencing IMAGE) as a raw
    /// image to the new file OUT, or to stdout with `-`; its SHA-256 goes to stderr.
    /// Exit 0 written, 2 unreadable image or OUT exists / cannot be written, 130 SIGINT.
    Export {
        #[command(flatten)]
        chain: ChainArgs,
        /// replayed: as a guest reads it (a pending log applied); raw: ignoring the log.
        #[arg(long, value_enum, default_value = "replayed")]
        view: ViewArg,
        image: PathBuf,
        out: PathBuf,
    },
    /// The allocation map: run-length extents over the virtual disk (data, partial, zero,
    /// unallocated, parent) with the chain member and file offset each is read from.
    Map {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long, value_enum, default_value = "replayed")]
        view: ViewArg,
        image: PathBuf,
    },
    /// List the rule catalogue.
    Rules {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Explain one rule by id (e.g. BAT-013).
    Explain { id: String },
}

/// Runs the command line and returns the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_TOOL
            } else {
                EXIT_ACCEPT
            };
            let _ = e.print();
            return code;
        }
    };
    match cli.cmd {
        Cmd::Check {
            format,
            policy,
            fail_on,
            max_per_rule,
            hash,
            chain,
            images,
        } => {
            let policy = match policy.as_deref().map(Policy::load).transpose() {
                Ok(p) => p.unwrap_or_default(),
                Err(e) => {
                    eprintln!("vhdx-check: {e}");
                    return EXIT_TOOL;
                }
            };
            // The command line wins over the policy file.
            let fail_on = fail_on
                .map(|f| match f {
                    FailOnArg::Error => FailOn::Error,
                    FailOnArg::Warning => FailOn::Warning,
                    FailOnArg::Info => FailOn::Info,
                    FailOnArg::Never => FailOn::Never,
                })
                .or(policy.fail_on)
                .unwrap_or(FailOn::Error);
            let images = match batch::expand(&images) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("vhdx-check: {e}");
                    return EXIT_TOOL;
                }
            };
            if !chain.parents.is_empty() && images.len() != 1 {
                eprintln!("vhdx-check: --parent needs exactly one IMAGE (the child)");
                return EXIT_TOOL;
            }
            if hash.is_some() {
                crate::hash::catch_interrupt();
            }
            let job = Job {
                opts: CheckOptions { max_per_rule },
                policy: &policy,
                hash: hash.is_some(),
            };
            cmd_check(format, fail_on, &job, &chain, &images)
        }
        Cmd::Info {
            format,
            chain,
            image,
        } => cmd_info(format, &chain, &image),
        Cmd::Replay { image, out } => cmd_replay(&image, &out),
        Cmd::Export {
            chain,
            view,
            image,
            out,
        } => cmd_export(&chain, view, &image, &out),
        Cmd::Map {
            format,
            chain,
            view,
            image,
        } => cmd_map(format, &chain, view, &image),
        Cmd::Rules { format } => cmd_rules(format),
        Cmd::Explain { id } => cmd_explain(&id),
    }
}

fn print(s: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not a failure of the check.
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
    EXIT_ACCEPT
}

fn cmd_check(
    format: CheckFormat,
    fail_on: FailOn,
    job: &Job,
    chain: &ChainArgs,
    images: &[PathBuf],
) -> i32 {
    // With chain options each image brings its parents: every file is checked and named.
    let chains: Vec<Vec<Member>> = images
        .iter()
        .map(|p| {
            if chain.active() {
                chain.resolve(p)
            } else {
                vec![Member {
                    path: p.clone(),
                    found_via: None,
                }]
            }
        })
        .collect();
    let show_progress = chains.len() > 1 && std::io::stderr().is_terminal();
    let progress = |done: usize, total: usize| {
        if show_progress {
            eprint!("\r\x1b[2Kvhdx-check: {done}/{total} checked");
        }
    };
    let results = batch::run(&chains, job, &progress);
    if show_progress {
        eprint!("\r\x1b[2K");
    }
    if crate::hash::interrupted() {
        return EXIT_INTERRUPTED;
    }
    let checked: Vec<Checked> = results
        .iter()
        .map(|(path, r)| Checked {
            path,
            outcome: r.as_ref().map_err(String::as_str),
            rejected: r.as_ref().is_ok_and(|r| fail_on.rejects(r)),
        })
        .collect();
    print(&match format {
        CheckFormat::Text => report::text::render(&checked),
        CheckFormat::Json => report::json::render(&checked),
        CheckFormat::Sarif => report::sarif::render(&checked),
    });
    let mut code = EXIT_ACCEPT;
    for c in &checked {
        match c.outcome {
            Err(e) => {
                eprintln!("vhdx-check: {e}");
                code = EXIT_TOOL;
            }
            Ok(_) if c.rejected && code == EXIT_ACCEPT => code = EXIT_REJECT,
            Ok(_) => {}
        }
    }
    code
}

fn cmd_info(format: Format, chain: &ChainArgs, image: &std::path::Path) -> i32 {
    let f = match FileReader::open(image) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vhdx-check: cannot read {}: {e}", image.display());
            return EXIT_TOOL;
        }
    };
    let model = Model::build(&f);
    let mut v = report::info::collect(&model);
    if chain.active() {
        let members: Vec<serde_json::Value> = chain
            .resolve(image)
            .iter()
            .map(|m| serde_json::json!({"path": m.path.display().to_string(), "found_via": m.found_via}))
            .collect();
        v["chain"] = serde_json::Value::Array(members);
    }
    match format {
        Format::Json => print(&(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n")),
        Format::Text => print(&report::info::to_text(&v)),
    }
}

fn cmd_replay(image: &std::path::Path, out: &std::path::Path) -> i32 {
    match crate::replay::replay(image, out) {
        Ok(r) => {
            for w in &r.warnings {
                eprintln!("vhdx-check: warning: {w}");
            }
            print(&format!(
                "replayed {} log entries (head SequenceNumber {}, {} descriptors): {} byte range(s), {} bytes changed; wrote {} ({} bytes, LogGuid cleared)\n",
                r.entries,
                r.head_sequence,
                r.descriptors,
                r.changed_ranges,
                r.changed_bytes,
                out.display(),
                r.size
            ))
        }
        Err(e) => {
            eprintln!("vhdx-check: {e}");
            EXIT_TOOL
        }
    }
}

fn view_choice(v: ViewArg) -> crate::model::virtual_disk::ViewChoice {
    use crate::model::virtual_disk::ViewChoice;
    match v {
        ViewArg::Raw => ViewChoice::Raw,
        ViewArg::Replayed => ViewChoice::Replayed,
    }
}

fn export_failure(f: crate::export::Failure) -> i32 {
    match f {
        crate::export::Failure::Refused(why) => {
            eprintln!("vhdx-check: {why}");
            EXIT_TOOL
        }
        crate::export::Failure::Interrupted => {
            eprintln!("vhdx-check: interrupted");
            EXIT_INTERRUPTED
        }
    }
}

fn cmd_export(
    chain: &ChainArgs,
    view: ViewArg,
    image: &std::path::Path,
    out: &std::path::Path,
) -> i32 {
    crate::hash::catch_interrupt();
    let members = chain.resolve(image);
    match crate::export::export(&members, view_choice(view), out) {
        Ok(x) => {
            let target = if out.as_os_str() == "-" {
                "stdout".to_string()
            } else {
                out.display().to_string()
            };
            eprintln!(
                "vhdx-check: wrote {target}: {} bytes, sha256 {}",
                x.bytes, x.sha256
            );
            if !x.findings.is_empty() {
                eprintln!(
                    "vhdx-check: exported; {} (vhdx-check check for details)",
                    x.findings.join(", ")
                );
            }
            EXIT_ACCEPT
        }
        Err(f) => export_failure(f),
    }
}

fn cmd_map(format: Format, chain: &ChainArgs, view: ViewArg, image: &std::path::Path) -> i32 {
    crate::hash::catch_interrupt();
    let members = chain.resolve(image);
    let format = match format {
        Format::Text => crate::export::MapFormat::Text,
        Format::Json => crate::export::MapFormat::Json,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match crate::export::map(&members, view_choice(view), format, &mut out) {
        Ok(()) => EXIT_ACCEPT,
        Err(f) => export_failure(f),
    }
}

fn cmd_rules(format: Format) -> i32 {
    let rules: Vec<_> = catalogue().rules().collect();
    match format {
        Format::Json => {
            let doc = serde_json::json!({"schema": report::json::SCHEMA, "tool": report::json::tool(), "rules": rules});
            print(&(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"))
        }
        Format::Text => {
            let mut s = String::new();
            for r in rules {
                let status = if r.deferred.is_some() {
                    " (not yet checked)"
                } else {
                    ""
                };
                s.push_str(&format!(
                    "{:<11} {:<7} {:<18} {}{status}\n",
                    r.id,
                    r.severity.as_str(),
                    r.spec,
                    r.title
                ));
            }
            print(&s)
        }
    }
}

fn cmd_explain(id: &str) -> i32 {
    let Some(r) = catalogue().get(&id.to_ascii_uppercase()) else {
        eprintln!("vhdx-check: unknown rule id {id:?} (see `vhdx-check rules`)");
        return EXIT_TOOL;
    };
    let mut text = format!(
        "{}  [{}]  {}\napplies to: {}\nviolation:  {}\nwhy:        {}\n",
        r.id, r.severity, r.spec, r.applies_to, r.title, r.rationale
    );
    if let Some(d) = &r.deferred {
        text.push_str(&format!("status:     not yet checked: {d}\n"));
    }
    print(&text)
}
