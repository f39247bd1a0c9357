//! LOG: the ring, its entries, the active sequence and what replay changes (CATALOGUE
//! 2.4, 3). The scan itself is in `model::log`; here its results are judged.
//!
//! Entry predicates are info (torn and stale entries are normal in a ring) unless the
//! entry belongs to the sequence a QEMU-like lenient reader would replay and fails a
//! predicate only the strict reading checks: then it is a warning.

mod entries;
mod outcome;
mod sequences;
mod targets;

use entries::{predicate_loc, predicate_message};
use outcome::outcome;
use sequences::{bound, qemu_does, sequences};
use targets::targets;

use super::sink::Sink;
use super::{Pass, RuleId, Scope, hex, id};
use crate::findings::Loc;
use crate::findings::Severity;
use crate::format::log::{DATA_SIGNATURE, Descriptor, ENTRY_SIGNATURE, SECTOR};
use crate::format::{KIB, bat};
use crate::model::log::{Entry, Log, Mode, NAMED_TARGETS, Pred};
use crate::model::names::Namer;
use crate::model::qemu::Outcome;
use crate::model::{Model, Object, ObjectKind};
use std::collections::BTreeSet;

pub const PASSES: &[Pass] = &[
    Pass {
        ids: &[
            id::LOG_001,
            id::LOG_002,
            id::LOG_003,
            id::LOG_004,
            id::LOG_005,
            id::LOG_006,
            id::LOG_010,
            id::LOG_011,
            id::LOG_012,
            id::LOG_013,
            id::LOG_014,
            id::LOG_015,
            id::LOG_016,
            id::LOG_017,
            id::LOG_018,
            id::LOG_019,
            id::LOG_020,
            id::LOG_021,
            id::LOG_022,
            id::LOG_030,
            id::LOG_031,
            id::LOG_032,
            id::LOG_033,
            id::LOG_034,
            id::LOG_035,
            id::LOG_036,
            id::LOG_037,
            id::LOG_038,
            id::LOG_060,
            id::LOG_061,
            id::LOG_062,
            id::LOG_063,
            id::LOG_064,
            id::LOG_065,
            id::LOG_066,
            id::LOG_067,
            id::LOG_070,
            id::LOG_071,
            id::LOG_072,
        ],
        scope: Scope::Raw,
        run,
    },
    Pass {
        ids: &[
            id::LOG_040,
            id::LOG_041,
            id::LOG_042,
            id::LOG_043,
            id::LOG_044,
            id::LOG_045,
            id::LOG_046,
            id::LOG_047,
        ],
        scope: Scope::Replay,
        run: targets,
    },
];

fn entry_path(e: &Entry) -> String {
    format!("log.entry[{:#x}]", e.pos)
}

fn entry_loc(log: &Log, e: &Entry) -> Loc {
    Loc::at(log.file_offset(e.pos), e.length().clamp(SECTOR, log.length))
}

fn run(m: &Model, s: &mut Sink) {
    let Some(log) = m.log() else { return };
    if log.log_guid.is_zero() {
        stale_entries(m, log, s);
        return;
    }
    let lenient_replayed: BTreeSet<usize> = log
        .scan(Mode::Lenient)
        .map(|sc| sc.replayed.iter().copied().collect())
        .unwrap_or_default();
    let strict_only = {
        let strict = Mode::Strict.invalidating();
        let lenient = Mode::Lenient.invalidating();
        move |p: Pred| strict.has(p) && !lenient.has(p)
    };
    for (i, e) in log.entries.iter().enumerate() {
        for p in e.fails.iter().filter(|&p| p != Pred::Unexamined) {
            let sev = if lenient_replayed.contains(&i) && strict_only(p) {
                Severity::Warning
            } else {
                Severity::Info
            };
            let loc = predicate_loc(log, e, p);
            s.emit_as(p.id(), sev, loc, || predicate_message(log, e, p));
        }
    }
    sequences(m, log, s);
    bound(log, s);
}

/// LOG-001: LogGuid is zero, so nothing is replayed; checksummed entries are history of
/// metadata writes, so their targets are named.
fn stale_entries(m: &Model, log: &Log, s: &mut Sink) {
    let names = Namer::new(m);
    for (i, e) in log.entries.iter().enumerate() {
        if e.computed_checksum != Some(e.header.checksum) {
            continue;
        }
        s.emit(id::LOG_001, entry_loc(log, e), || {
            let targets: Vec<String> = (log.named_targets(m.src, i).into_iter())
                .map(|(off, len)| {
                    let end = off.saturating_add(len).max(off.saturating_add(1));
                    format!("{} bytes at {} ({})", len, hex(off), names.range(off, end))
                })
                .collect();
            let more = e.descriptors.saturating_sub(NAMED_TARGETS as u32);
            (
                entry_path(e),
                format!(
                    "stale log entry at {} (LogGuid is zero: not replayed): SequenceNumber {}, LogGuid {}, FlushedFileOffset {}, LastFileOffset {}; {} descriptor(s): {}{}",
                    hex(log.file_offset(e.pos)),
                    e.seq(),
                    e.header.log_guid,
                    hex(e.header.flushed_file_offset),
                    hex(e.header.last_file_offset),
                    e.descriptors,
                    targets.join(", "),
                    if more > 0 { format!(" and {more} more") } else { String::new() }
                ),
            )
        });
    }
    bound(log, s);
}
