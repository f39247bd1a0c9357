//! The subcommands: each parses nothing, runs, writes its output and returns the exit code.

use super::args::{ChainArgs, Cli, Format, ViewArg};
use super::{EXIT_ACCEPT, EXIT_INTERRUPTED, EXIT_REJECT, EXIT_TOOL, Shape, print, write_doc};
use crate::batch::{self, Found, Job, Task};
use crate::chain::Member;
use crate::io::FileReader;
use crate::model::Model;
use crate::output::{Output, say, say_raw};
use crate::policy::FailOn;
use crate::report::{self, Status};
use crate::rules::catalogue::catalogue;
use clap::CommandFactory;
use std::io::IsTerminal;
use std::path::Path;

/// The manual pages: the command's, or one subcommand's, or all of them into a directory.
pub(super) fn cmd_manpage(command: Option<&str>, dir: Option<&Path>) -> i32 {
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

pub(super) fn cmd_check(
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
            let c = o.checked(fail_on);
            renderer.image(&mut out, &c)?;
            match c.outcome {
                Status::Error(e) => {
                    if show_progress {
                        say_raw("\r\x1b[2K");
                    }
                    say(e);
                    code = EXIT_TOOL;
                }
                Status::Report(_) if c.rejected && code == EXIT_ACCEPT => code = EXIT_REJECT,
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

pub(super) fn cmd_info(format: Format, chain: &ChainArgs, image: &Path, out: Output) -> i32 {
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

pub(super) fn cmd_replay(image: &std::path::Path, out: &std::path::Path) -> i32 {
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

pub(super) fn cmd_export(
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

pub(super) fn cmd_map(
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

pub(super) fn cmd_rules(format: Format) -> i32 {
    let rules: Vec<_> = catalogue().rules().collect();
    match format {
        Format::Json => print(&(report::json::rules_document() + "\n")),
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

pub(super) fn cmd_explain(id: &str) -> i32 {
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
