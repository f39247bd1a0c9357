//! Command line: parse arguments, run, render, choose the exit code (DESIGN.md).
//! Exit codes: 0 every image accepted, 1 at least one rejected, 2 the tool could not do
//! its job (unreadable file, bad usage, bad policy file, a report that cannot be written)
//! with a one-line reason on stderr.

use crate::batch::{self, Found, Job, Task};
use crate::chain::Member;
use crate::check::CheckOptions;
use crate::io::FileReader;
use crate::model::Model;
use crate::output::{Output, say, say_raw};
use crate::policy::{FailOn, Policy};
use crate::report::{self, Checked, Render, Status};
use crate::rules::catalogue::catalogue;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

pub const EXIT_ACCEPT: i32 = 0;
pub const EXIT_REJECT: i32 = 1;
pub const EXIT_TOOL: i32 = 2;
/// SIGINT stopped the run (128 + SIGINT); nothing was printed on stdout.
pub const EXIT_INTERRUPTED: i32 = 130;

/// The highest `--max-per-rule`: what one image's report keeps in memory is the shown
/// findings (at most this many per rule) plus counts.
pub const MAX_PER_RULE_LIMIT: u64 = 100_000;

#[derive(Parser)]
#[command(
    name = "vhdx-check",
    version = env!("VHDX_CHECK_VERSION"),
    about = "Forensic validator for Microsoft VHDX (MS-VHDX) images"
)]
struct Cli {
    /// Colour the verdict and severity words of text reports: auto (a terminal, unless
    /// NO_COLOR is set; CLICOLOR_FORCE forces it), always, never. Never with --output,
    /// never in JSON or SARIF.
    #[arg(
        long,
        value_enum,
        global = true,
        default_value = "auto",
        value_name = "WHEN"
    )]
    color: ColorArg,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

impl ColorArg {
    /// Whether text written to standard output is coloured. `NO_COLOR` (any non-empty
    /// value) turns `auto` off, then `CLICOLOR_FORCE` (non-empty, not `0`) turns it on.
    fn enabled(self, to_file: bool) -> bool {
        let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        match self {
            _ if to_file => false,
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto if set("NO_COLOR") => false,
            ColorArg::Auto
                if set("CLICOLOR_FORCE")
                    && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0") =>
            {
                true
            }
            ColorArg::Auto => std::io::stdout().is_terminal(),
        }
    }
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
    /// One self-contained HTML page (an evidence report); a batch gives one page with an
    /// index.
    Html,
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

    /// Where discovery looks; one per run, so every root is listed once.
    fn search(&self) -> crate::chain::Search {
        crate::chain::Search::new(self.search_dirs.clone())
    }

    /// The usage error of a `--parent` list longer than the chain of its one image.
    fn extra(&self, images: &[Found]) -> Option<String> {
        match images {
            [Found::Image(p)] if !self.parents.is_empty() => {
                crate::chain::extra_parents(p, &self.parents)
            }
            _ => None,
        }
    }

    fn resolve(
        &self,
        image: &std::path::Path,
        search: &crate::chain::Search,
    ) -> Vec<crate::chain::Member> {
        crate::chain::resolve(image, &self.parents, self.find_parents, search)
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
        /// Findings shown per rule and image (at most 100000); further instances are counted.
        #[arg(long, default_value_t = 100,
              value_parser = clap::value_parser!(u64).range(0..=MAX_PER_RULE_LIMIT))]
        max_per_rule: u64,
        /// Digest the image file and the virtual disk as a guest reads it.
        #[arg(long, value_enum, value_name = "ALGORITHM")]
        hash: Option<HashArg>,
        #[command(flatten)]
        chain: ChainArgs,
        /// Write the report to FILE (replaced only once the whole report is written)
        /// instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// -q: the verdict line of each image only (text). -qq: no report at all, for any
        /// format (the exit code says it; errors are still one line each on stderr).
        #[arg(long, short = 'q', action = clap::ArgAction::Count)]
        quiet: u8,
        /// After the report, per-rule counts over the run (text and json).
        #[arg(long)]
        statistics: bool,
        /// SARIF: include info findings as results (level note); by default they are left
        /// out, so an accepted image raises no alert.
        #[arg(long)]
        sarif_info: bool,
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
        /// Write to FILE (replaced only once complete) instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
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
        /// Read a chain whose parent is not the one the child names (CHAIN-001: its
        /// DataWriteGuid matches neither parent_linkage); refused by default, as Hyper-V does.
        #[arg(long)]
        ignore_linkage: bool,
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
        /// Map a chain whose parent is not the one the child names (CHAIN-001); refused by
        /// default.
        #[arg(long)]
        ignore_linkage: bool,
        image: PathBuf,
    },
    /// List the rule catalogue.
    Rules {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Explain one rule by id (e.g. BAT-013).
    Explain { id: String },
    /// Print a shell completion script (e.g. `vhdx-check completions bash >
    /// /etc/bash_completion.d/vhdx-check`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff: `vhdx-check manpage > vhdx-check.1; man ./vhdx-check.1`),
    /// or a subcommand's (`vhdx-check manpage check` is vhdx-check-check(1)).
    Manpage {
        /// The subcommand whose page to print.
        #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
        command: Option<String>,
        /// Write every page (vhdx-check.1, vhdx-check-check.1, ...) into the existing
        /// directory DIR instead, replacing pages of those names.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// What `check` writes, from --format, -q and --statistics.
struct Shape {
    format: CheckFormat,
    quiet: u8,
    statistics: bool,
    sarif_info: bool,
    color: bool,
}

impl Shape {
    /// The usage errors among the combinations.
    fn refuse(&self, to_file: bool) -> Option<&'static str> {
        match (self.format, self.quiet) {
            (_, q) if q > 2 => Some("-q is given at most twice (-qq: no report)"),
            (CheckFormat::Json | CheckFormat::Sarif | CheckFormat::Html, 1) => {
                Some("-q is for text reports; -qq writes no report in any format")
            }
            (_, 2) if to_file => Some("-qq writes no report; it cannot go with --output"),
            (CheckFormat::Sarif | CheckFormat::Html, _) if self.statistics => {
                Some("--statistics is for text and json reports")
            }
            (CheckFormat::Text | CheckFormat::Json | CheckFormat::Html, _) if self.sarif_info => {
                Some("--sarif-info is for --format sarif")
            }
            _ => None,
        }
    }

    /// The renderer; `title`: what was checked (the HTML page's title).
    fn renderer(&self, title: &str) -> Box<dyn Render> {
        let statistics = self.statistics.then(report::Statistics::default);
        match self.format {
            _ if self.quiet >= 2 => Box::new(report::Silent),
            CheckFormat::Text => Box::new(report::text::Text {
                color: self.color,
                quiet: self.quiet == 1,
                statistics,
            }),
            CheckFormat::Json if self.statistics => Box::new(report::json::Json::with_statistics()),
            CheckFormat::Json => Box::new(report::json::Json::default()),
            CheckFormat::Sarif => {
                let mut sarif = report::sarif::Sarif::default();
                sarif.info = self.sarif_info;
                Box::new(sarif)
            }
            CheckFormat::Html => Box::new(report::html::Html::new(title)),
        }
    }
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
            if e.use_stderr() {
                // A usage error is one line (exit 2, as every tool failure): clap's first
                // line without its "error: " prefix, and where to look.
                let text = e.render().to_string();
                let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
                let first = lines.next().unwrap_or("bad usage");
                let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
                // The detail clap puts on the next lines: the missing arguments, the
                // possible values.
                for more in lines.take_while(|l| !l.starts_with("Usage:")) {
                    if line.ends_with(':') || more.starts_with('[') {
                        line = format!("{line} {more}");
                    }
                }
                say(&format!("{line} (see vhdx-check --help)"));
                return code;
            }
            // --help and --version go to stdout: a write failure there is exit 2 too
            // (a reader that went away is not).
            if let Err(w) = e.print() {
                if !e.use_stderr() && w.kind() != std::io::ErrorKind::BrokenPipe {
                    say(&format!("cannot write to standard output: {w}"));
                    return EXIT_TOOL;
                }
            }
            return code;
        }
    };
    let color = cli.color;
    match cli.cmd {
        Cmd::Check {
            format,
            policy,
            fail_on,
            max_per_rule,
            hash,
            chain,
            output,
            quiet,
            statistics,
            sarif_info,
            images,
        } => {
            let shape = Shape {
                format,
                quiet,
                statistics,
                sarif_info,
                color: color.enabled(output.is_some()),
            };
            if let Some(why) = shape.refuse(output.is_some()) {
                say(why);
                return EXIT_TOOL;
            }
            let policy = match policy.as_deref().map(Policy::load).transpose() {
                Ok(p) => p.unwrap_or_default(),
                Err(e) => {
                    say(&e.to_string());
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
                    say(&e);
                    return EXIT_TOOL;
                }
            };
            if !chain.parents.is_empty()
                && (images.len() != 1 || !matches!(images[0], Found::Image(_)))
            {
                say("--parent needs exactly one IMAGE (the child)");
                return EXIT_TOOL;
            }
            if let Some(why) = chain.extra(&images) {
                say(&why);
                return EXIT_TOOL;
            }
            let inputs = (images.iter())
                .filter_map(|f| match f {
                    Found::Image(p) => Some(p.as_path()),
                    _ => None,
                })
                .chain(chain.parents.iter().map(PathBuf::as_path));
            let out = match open_output(output.as_deref(), inputs) {
                Ok(o) => o,
                Err(e) => {
                    say(&e);
                    return EXIT_TOOL;
                }
            };
            if hash.is_some() {
                crate::hash::catch_interrupt();
            }
            let job = Job {
                opts: CheckOptions { max_per_rule },
                policy: &policy,
                hash: hash.is_some(),
                html: matches!(shape.format, CheckFormat::Html) && shape.quiet < 2,
            };
            cmd_check(&shape, fail_on, &job, &chain, &images, out)
        }
        Cmd::Info {
            format,
            chain,
            output,
            image,
        } => match chain.extra(&[Found::Image(image.clone())]).map_or_else(
            || open_output(output.as_deref(), std::iter::once(image.as_path())),
            Err,
        ) {
            Ok(out) => cmd_info(format, &chain, &image, out),
            Err(e) => {
                say(&e);
                EXIT_TOOL
            }
        },
        Cmd::Replay { image, out } => cmd_replay(&image, &out),
        Cmd::Export {
            chain,
            view,
            ignore_linkage,
            image,
            out,
        } => match chain.extra(&[Found::Image(image.clone())]) {
            Some(why) => {
                say(&why);
                EXIT_TOOL
            }
            None => cmd_export(&chain, view, ignore_linkage, &image, &out),
        },
        Cmd::Map {
            format,
            chain,
            view,
            ignore_linkage,
            image,
        } => match chain.extra(&[Found::Image(image.clone())]) {
            Some(why) => {
                say(&why);
                EXIT_TOOL
            }
            None => cmd_map(format, &chain, view, ignore_linkage, &image),
        },
        Cmd::Rules { format } => cmd_rules(format),
        Cmd::Explain { id } => cmd_explain(&id),
        Cmd::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "vhdx-check", &mut script);
            print(&String::from_utf8_lossy(&script))
        }
        Cmd::Manpage { command, dir } => cmd_manpage(command.as_deref(), dir.as_deref()),
    }
}

/// The manual pages: the command's, or one subcommand's, or all of them into a directory.
fn cmd_manpage(command: Option<&str>, dir: Option<&Path>) -> i32 {
    // `help` is a subcommand of the program, not a page of its own.
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let man = |cmd: clap::Command| {
        clap_mangen::Man::new(cmd).source(format!("vhdx-check {}", env!("VHDX_CHECK_VERSION")))
    };
    if let Some(dir) = dir {
        let pages = std::iter::once(cli.clone()).chain(cli.get_subcommands().cloned());
        for page in pages {
            if let Err(e) = man(page).generate_to(dir) {
                say(&format!(
                    "cannot write the manual pages to {}: {e}",
                    dir.display()
                ));
                return EXIT_TOOL;
            }
        }
        return EXIT_ACCEPT;
    }
    let page = match command {
        None => cli,
        Some(name) => match cli.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                say(&format!("no subcommand {name:?} (see `vhdx-check --help`)"));
                return EXIT_TOOL;
            }
        },
    };
    let mut roff = Vec::new();
    match man(page).render(&mut roff) {
        Ok(()) => print(&String::from_utf8_lossy(&roff)),
        Err(e) => {
            say(&format!("cannot render the manual page: {e}"));
            EXIT_TOOL
        }
    }
}

/// Writes a whole document to standard output: exit 0, or 2 with one line on stderr when
/// it cannot be written (a reader that went away is not a failure).
fn print(s: &str) -> i32 {
    write_doc(Output::stdout(), s)
}

fn write_doc(mut out: Output, s: &str) -> i32 {
    if let Err(e) = out.write_all(s.as_bytes()) {
        say(&out.failure(&e));
        return EXIT_TOOL;
    }
    match out.finish() {
        Ok(()) => EXIT_ACCEPT,
        Err(e) => {
            say(&e);
            EXIT_TOOL
        }
    }
}

/// Standard output, or `--output FILE` (never one of the files read: the rename would
/// replace the evidence).
fn open_output<'a>(
    file: Option<&Path>,
    inputs: impl Iterator<Item = &'a Path>,
) -> Result<Output, String> {
    let Some(file) = file else {
        return Ok(Output::stdout());
    };
    if let Ok(target) = std::fs::metadata(file) {
        for p in inputs {
            if std::fs::metadata(p).is_ok_and(|m| same_file(&m, &target)) {
                return Err(format!(
                    "--output {} is an image being read; refusing to replace it",
                    file.display()
                ));
            }
        }
    }
    Output::file(file)
}

fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

fn cmd_check(
    shape: &Shape,
    fail_on: FailOn,
    job: &Job,
    chain: &ChainArgs,
    images: &[Found],
    mut out: Output,
) -> i32 {
    // With chain options each image brings its parents: every file is checked and named.
    let search = chain.search();
    let tasks: Vec<Task> = images
        .iter()
        .map(|f| match f {
            // Resolved on the worker that checks it (see Member::deferred).
            Found::Image(p) if chain.active() => Task::Chain(vec![Member::deferred(
                p,
                &chain.parents,
                chain.find_parents,
                &search,
            )]),
            Found::Image(p) => Task::Chain(vec![Member::named(p)]),
            Found::Unreadable(p, why) => Task::Unreadable(p.clone(), why.clone()),
            Found::Skipped(p, why) => Task::Skipped(p.clone(), why.clone()),
        })
        .collect();
    let show_progress = tasks.len() > 1 && shape.quiet == 0 && std::io::stderr().is_terminal();
    let progress = |done: usize, total: usize| {
        if show_progress {
            say_raw(&format!("\r\x1b[2Kvhdx-check: {done}/{total} checked"));
        }
    };
    let title = match images {
        [one] => format!("vhdx-check report: {}", report::path_str(one.path())),
        _ => format!("vhdx-check report: {} entries", images.len()),
    };
    let mut renderer = shape.renderer(&title);
    let mut code = EXIT_ACCEPT;
    // The document starts with the first report, so a run interrupted (SIGINT) while
    // hashing its first image prints nothing at all.
    let mut begun = false;
    let written = batch::run(&tasks, job, &progress, |o| {
        if crate::hash::interrupted() {
            return Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
        }
        if !begun {
            renderer.begin(&mut out)?;
            begun = true;
        }
        {
            let (outcome, rejected) = match &o.status {
                batch::Status::Checked(r) => (Status::Report(r), fail_on.rejects(r)),
                batch::Status::Error(e) => (Status::Error(e), false),
                batch::Status::Skipped(why) => (Status::Skipped(why), false),
            };
            let c = Checked {
                path: &o.path,
                outcome,
                rejected,
                parts: o.html.as_deref(),
            };
            renderer.image(&mut out, &c)?;
            match c.outcome {
                Status::Error(e) => {
                    if show_progress {
                        say_raw("\r\x1b[2K");
                    }
                    say(e);
                    code = EXIT_TOOL;
                }
                Status::Report(_) if rejected && code == EXIT_ACCEPT => code = EXIT_REJECT,
                _ => {}
            }
            Ok::<(), std::io::Error>(())
        }
    })
    .and_then(|()| match begun {
        true => renderer.end(&mut out),
        false => renderer
            .begin(&mut out)
            .and_then(|()| renderer.end(&mut out)),
    });
    if show_progress {
        say_raw("\r\x1b[2K");
    }
    if crate::hash::interrupted() {
        // On standard output the reports already complete stay and the document is closed
        // after them (a valid prefix of the run; nothing at all when the first image was
        // still being hashed); --output's temporary file is removed: no file.
        if out.is_stdout() && begun {
            let _ = renderer.end(&mut out).map(|()| out.finish());
        } else {
            out.abandon();
        }
        say("interrupted: the reports of images not finished are left out (exit 130)");
        return EXIT_INTERRUPTED;
    }
    let finished = match written {
        Ok(()) => out.finish(),
        Err(e) => Err(out.failure(&e)),
    };
    if let Err(e) = finished {
        say(&e);
        return EXIT_TOOL;
    }
    code
}

fn cmd_info(format: Format, chain: &ChainArgs, image: &Path, out: Output) -> i32 {
    let f = match FileReader::open(image) {
        Ok(f) => f,
        Err(e) => {
            say(&format!("cannot read {}: {e}", image.display()));
            return EXIT_TOOL;
        }
    };
    let watch = crate::io::Watch::new(&f);
    let model = Model::build(&watch);
    let mut v = report::info::collect(&model);
    // What was read is shown only when all of it could be read and nothing changed.
    if let Err(e) = watch.verify() {
        say(&format!("{}: {e}", image.display()));
        return EXIT_TOOL;
    }
    if chain.active() {
        let members: Vec<serde_json::Value> = chain
            .resolve(image, &chain.search())
            .iter()
            .map(|m| {
                let mut j = serde_json::json!({"path": report::path_str(&m.path), "found_via": m.found_via});
                if let Some((rule, message)) = m.broken.as_ref().map(crate::chain::break_finding) {
                    j["broken"] = serde_json::json!({"rule": rule, "message": message});
                }
                j
            })
            .collect();
        v["chain"] = serde_json::Value::Array(members);
    }
    match format {
        Format::Json => {
            let doc = report::info::envelope(image, v);
            write_doc(
                out,
                &(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"),
            )
        }
        Format::Text => write_doc(out, &report::info::to_text(&v)),
    }
}

fn cmd_replay(image: &std::path::Path, out: &std::path::Path) -> i32 {
    match crate::replay::replay(image, out) {
        Ok(r) => {
            for w in &r.warnings {
                say(&format!("warning: {w}"));
            }
            print(&format!(
                "replayed {} log entries (head SequenceNumber {}, {} descriptors): {} byte range(s), {} bytes changed; wrote {} ({} bytes, LogGuid cleared)\n",
                r.entries,
                r.head_sequence,
                r.descriptors,
                r.changed_ranges,
                r.changed_bytes,
                report::path_line(out),
                r.size
            ))
        }
        Err(e) => {
            say(&e.to_string());
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
            say(&why);
            EXIT_TOOL
        }
        crate::export::Failure::Interrupted => {
            say("interrupted");
            EXIT_INTERRUPTED
        }
    }
}

fn cmd_export(
    chain: &ChainArgs,
    view: ViewArg,
    ignore_linkage: bool,
    image: &std::path::Path,
    out: &std::path::Path,
) -> i32 {
    crate::hash::catch_interrupt();
    let members = chain.resolve(image, &chain.search());
    match crate::export::export(&members, view_choice(view), ignore_linkage, out) {
        Ok(x) => {
            let target = if out.as_os_str() == "-" {
                "stdout".to_string()
            } else {
                report::path_line(out)
            };
            say(&format!(
                "wrote {target}: {} bytes, sha256 {}",
                x.bytes, x.sha256
            ));
            if !x.findings.is_empty() {
                say(&format!(
                    "exported; {} (vhdx-check check for details)",
                    x.findings.join(", ")
                ));
            }
            EXIT_ACCEPT
        }
        Err(f) => export_failure(f),
    }
}

fn cmd_map(
    format: Format,
    chain: &ChainArgs,
    view: ViewArg,
    ignore_linkage: bool,
    image: &std::path::Path,
) -> i32 {
    crate::hash::catch_interrupt();
    let members = chain.resolve(image, &chain.search());
    let format = match format {
        Format::Text => crate::export::MapFormat::Text,
        Format::Json => crate::export::MapFormat::Json,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match crate::export::map(
        &members,
        view_choice(view),
        ignore_linkage,
        format,
        &mut out,
    ) {
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
        say(&format!("unknown rule id {id:?} (see `vhdx-check rules`)"));
        return EXIT_TOOL;
    };
    let mut text = format!(
        "{}  {}\nseverity:   {}\nspec:       {}\napplies to: {}\n",
        r.id, r.title, r.severity, r.spec, r.applies_to
    );
    if let Some(d) = &r.deferred {
        text.push_str(&format!("status:     not yet checked: {d}\n"));
    }
    text.push_str(&format!(
        "\nWhat it means:\n  {}\n\nWhat to do:\n  {}\n\nRule page: {} (in the source tree), {}\n",
        r.rationale,
        r.advice(),
        r.doc_path(),
        r.doc_url()
    ));
    print(&text)
}
