//! Command line: parse arguments, run, render, choose the exit code (DESIGN.md).
//! Exit codes: 0 every image accepted, 1 at least one rejected, 2 the tool could not do
//! its job (unreadable file, bad usage, bad policy file, a report that cannot be written)
//! with a one-line reason on stderr.

mod args;
mod commands;

use crate::batch::{self, Found, Job};
use crate::check::CheckOptions;
use crate::output::{Output, say};
use crate::policy::{FailOn, Policy};
use crate::report::{self, Render};
use args::{CheckFormat, Cli, Cmd, FailOnArg};
use clap::{CommandFactory, Parser};
use commands::{
    cmd_check, cmd_explain, cmd_export, cmd_info, cmd_manpage, cmd_map, cmd_replay, cmd_rules,
};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const EXIT_ACCEPT: i32 = 0;
pub const EXIT_REJECT: i32 = 1;
pub const EXIT_TOOL: i32 = 2;
/// SIGINT stopped the run (128 + SIGINT); nothing was printed on stdout.
pub const EXIT_INTERRUPTED: i32 = 130;

/// The highest `--max-per-rule`: what one image's report keeps in memory is the shown
/// findings (at most this many per rule) plus counts.
pub const MAX_PER_RULE_LIMIT: u64 = 100_000;

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
