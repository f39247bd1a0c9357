//! The command line as clap parses it: the subcommands, their options and value enums.

use super::MAX_PER_RULE_LIMIT;
use crate::batch::Found;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "vhdx-check",
    version = env!("VHDX_CHECK_VERSION"),
    about = "Forensic validator for Microsoft VHDX (MS-VHDX) images"
)]
pub(super) struct Cli {
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
    pub(super) color: ColorArg,
    #[command(subcommand)]
    pub(super) cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ColorArg {
    Auto,
    Always,
    Never,
}

impl ColorArg {
    /// Whether text written to standard output is coloured. `NO_COLOR` (any non-empty
    /// value) turns `auto` off, then `CLICOLOR_FORCE` (non-empty, not `0`) turns it on.
    pub(super) fn enabled(self, to_file: bool) -> bool {
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
pub(super) enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum CheckFormat {
    Text,
    Json,
    Sarif,
    /// One self-contained HTML page (an evidence report); a batch gives one page with an
    /// index.
    Html,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum HashArg {
    Sha256,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum ViewArg {
    Raw,
    Replayed,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum FailOnArg {
    Error,
    Warning,
    Info,
    Never,
}

/// Differencing chains: parents named by the user or found from the locator.
#[derive(clap::Args)]
pub(super) struct ChainArgs {
    /// Parent of the image (repeat for grandparents, nearest first); needs one IMAGE.
    #[arg(long = "parent", value_name = "FILE")]
    pub(super) parents: Vec<PathBuf>,
    /// Find parents through each differencing image's locator (relative_path first),
    /// below the image's directory and any --search-dir.
    #[arg(long)]
    pub(super) find_parents: bool,
    /// A further directory tree --find-parents may look in.
    #[arg(long = "search-dir", value_name = "DIR")]
    pub(super) search_dirs: Vec<PathBuf>,
}

impl ChainArgs {
    pub(super) fn active(&self) -> bool {
        !self.parents.is_empty() || self.find_parents
    }

    /// Where discovery looks; one per run, so every root is listed once.
    pub(super) fn search(&self) -> crate::chain::Search {
        crate::chain::Search::new(self.search_dirs.clone())
    }

    /// The usage error of a `--parent` list longer than the chain of its one image.
    pub(super) fn extra(&self, images: &[Found]) -> Option<String> {
        match images {
            [Found::Image(p)] if !self.parents.is_empty() => {
                crate::chain::extra_parents(p, &self.parents)
            }
            _ => None,
        }
    }

    pub(super) fn resolve(
        &self,
        image: &std::path::Path,
        search: &crate::chain::Search,
    ) -> Vec<crate::chain::Member> {
        crate::chain::resolve(image, &self.parents, self.find_parents, search)
    }
}

#[derive(Subcommand)]
pub(super) enum Cmd {
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
