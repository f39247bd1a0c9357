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
    /// One self-contained HTML page (an evidence report), a batch with an index.
    Html,
}

#[derive(Clone, Copy, ValueEnum)]
enum HashArg {
    Sha256,
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
    let checked: Vec<Checked> = results
        .iter()
        .map(|(path, r)| Checked {
            path,
            outcome: r.as_ref().map_err(String::as_str),
            rejected: r.as_ref().is_ok_and(|r| fail_on.rejects(r)),
        })
        .collect();
    match format {
        CheckFormat::Text => print(&report::text::render(&checked)),
        CheckFormat::Json => print(&report::json::render(&checked)),
        CheckFormat::Sarif => print(&report::sarif::render(&checked)),
        CheckFormat::Html => html_report(&checked, &chains),
    };
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

/// `check --format html`: each checked file is read once more for its map and structures
/// (the check's models are gone by now), one image section at a time.
fn html_report(checked: &[Checked], chains: &[Vec<Member>]) -> i32 {
    use report::html::{ChainMember, Document, HtmlImage};
    let title = match checked {
        [one] => format!("vhdx-check report: {}", one.path),
        _ => format!("vhdx-check report: {} images", checked.len()),
    };
    let out = std::io::stdout().lock();
    // A closed pipe is not a failure of the check (as in `print`).
    let Ok(mut doc) = Document::begin(out, &title) else {
        return EXIT_ACCEPT;
    };
    for c in checked {
        let chain: Vec<ChainMember> = (chains.iter())
            .find(|ch| ch.len() > 1 && ch.iter().any(|m| m.path.display().to_string() == c.path))
            .map(|ch| {
                (ch.iter())
                    .map(|m| ChainMember {
                        path: m.path.display().to_string(),
                        found_via: m.found_via.map(String::from),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let file = FileReader::open(std::path::Path::new(c.path));
        let mut img = match (c.outcome, &file) {
            (Ok(r), Ok(f)) => HtmlImage::collect(c.path, r, c.rejected, &Model::build(f)),
            _ => HtmlImage::bare(c.path, c.outcome, c.rejected),
        };
        img.chain = chain;
        if doc.image(&img).is_err() {
            return EXIT_ACCEPT;
        }
    }
    let _ = doc.finish();
    EXIT_ACCEPT
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
