//! LOG: the ring, its entries, the active sequence and what replay changes (CATALOGUE
//! 2.4, 3). The scan itself is in `model::log`; here its results are judged.
//!
//! Entry predicates are info (torn and stale entries are normal in a ring) unless the
//! entry belongs to the sequence a QEMU-like lenient reader would replay and fails a
//! predicate only the strict reading checks: then it is a warning.

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

/// Where a failed predicate is: the offending descriptor or data sector, else the entry.
fn predicate_loc(log: &Log, e: &Entry, p: Pred) -> Loc {
    let Some((i, _)) = e.slot_failure(p) else {
        return entry_loc(log, e);
    };
    let d = crate::format::log::descriptor_sectors(e.header.descriptor_count);
    let (pos, len) = match p {
        Pred::SectorSignature | Pred::SectorSequence => ((d + i as u64) * SECTOR, SECTOR),
        _ => (64 + 32 * i as u64, 32),
    };
    Loc::at(log.file_offset(e.pos + pos), len)
}

fn predicate_message(log: &Log, e: &Entry, p: Pred) -> (String, String) {
    let h = &e.header;
    let at = hex(log.file_offset(e.pos));
    let slot = |what: &str| match e.slot_failure(p) {
        Some((first, 1)) => format!("{what} {first}"),
        Some((first, n)) => format!("{what} {first} (and {} more)", n - 1),
        None => what.to_string(),
    };
    let path = match p {
        Pred::SectorSignature | Pred::SectorSequence => {
            format!(
                "{}.data_sector[{}]",
                entry_path(e),
                e.slot_failure(p).map_or(0, |x| x.0)
            )
        }
        _ if Pred::PER_SLOT.contains(&p) => {
            format!(
                "{}.descriptor[{}]",
                entry_path(e),
                e.slot_failure(p).map_or(0, |x| x.0)
            )
        }
        _ => entry_path(e),
    };
    let msg = match p {
        Pred::Length => format!(
            "entry at {at}: EntryLength {} is 0, not a multiple of 4 KiB or larger than the log ({})",
            hex(e.length()),
            hex(log.length)
        ),
        Pred::Checksum => format!(
            "entry at {at}: checksum {:#010x} stored, {:#010x} computed over EntryLength {} (torn or altered entry)",
            h.checksum,
            e.computed_checksum.unwrap_or(0),
            hex(e.length())
        ),
        Pred::SequenceZero => format!("entry at {at}: SequenceNumber is 0"),
        Pred::LogGuid => format!(
            "entry at {at}: LogGuid {} is not the header's {} (remnant of another session, SequenceNumber {})",
            h.log_guid,
            log.log_guid,
            e.seq()
        ),
        Pred::Tail => format!(
            "entry at {at}: Tail {} is not a multiple of 4 KiB or not inside the log ({})",
            hex(h.tail as u64),
            hex(log.length)
        ),
        Pred::Reserved => format!("entry at {at}: Reserved is {:#x} (must be 0)", h.reserved),
        Pred::FlushedAlign => format!(
            "entry at {at}: FlushedFileOffset {} is not a multiple of 1 MiB",
            hex(h.flushed_file_offset)
        ),
        Pred::LastAlign => format!(
            "entry at {at}: LastFileOffset {} is not a multiple of 1 MiB",
            hex(h.last_file_offset)
        ),
        Pred::BelowOneMib => format!(
            "entry at {at}: FlushedFileOffset {} / LastFileOffset {} below 1 MiB (no VHDX file is that small)",
            hex(h.flushed_file_offset),
            hex(h.last_file_offset)
        ),
        Pred::Capacity => format!(
            "entry at {at}: EntryLength {} cannot hold {} descriptor(s) ({} descriptor sectors) and {} data sector(s)",
            hex(e.length()),
            h.descriptor_count,
            crate::format::log::descriptor_sectors(h.descriptor_count),
            e.data_descriptors
        ),
        Pred::Padding => format!(
            "entry at {at}: EntryLength {} is longer than its {} descriptor sector(s) and {} data sector(s) need",
            hex(e.length()),
            crate::format::log::descriptor_sectors(h.descriptor_count),
            e.data_descriptors
        ),
        Pred::Wraps => format!(
            "entry at {at}: runs past the end of the log ring by {} bytes (QEMU reads it wrapped, DiscUtils rejects it)",
            hex(e.pos + e.length() - log.length)
        ),
        Pred::DescriptorSignature => format!(
            "entry at {at}: {} has neither \"zero\" nor \"desc\" signature",
            slot("descriptor")
        ),
        Pred::DescriptorSequence => format!(
            "entry at {at}: {} SequenceNumber differs from the entry's {}",
            slot("descriptor"),
            e.seq()
        ),
        Pred::DescriptorAlign => format!(
            "entry at {at}: {} FileOffset is not a multiple of 4 KiB",
            slot("descriptor")
        ),
        Pred::ZeroLengthAlign => format!(
            "entry at {at}: zero {} ZeroLength is not a multiple of 4 KiB",
            slot("descriptor")
        ),
        Pred::ZeroReserved => format!(
            "entry at {at}: zero {} Reserved is not 0",
            slot("descriptor")
        ),
        Pred::TargetOverflow => format!(
            "entry at {at}: {} FileOffset + length overflows",
            slot("descriptor")
        ),
        Pred::SectorSignature => format!(
            "entry at {at}: {} does not start with \"data\"",
            slot("data sector")
        ),
        Pred::SectorSequence => format!(
            "entry at {at}: {} SequenceHigh/SequenceLow do not match SequenceNumber {:#x}",
            slot("data sector"),
            e.seq()
        ),
        Pred::Slack => format!(
            "entry at {at}: unused descriptor slot {} not zero (slack after the last descriptor)",
            slot("slot")
        ),
        Pred::Unexamined => format!("entry at {at}: not examined (analysis bound)"),
    };
    (path, msg)
}

/// Sequence-level rules on the strict scan, the outcome rules and the comparison of the
/// three readings.
fn sequences(m: &Model, log: &Log, s: &mut Sink) {
    let Some(strict) = log.scan(Mode::Strict) else {
        return;
    };
    let ent = |i: usize| &log.entries[i];
    for &(prev, this) in &strict.sequence_breaks {
        let (p, e) = (ent(prev), ent(this));
        s.emit(id::LOG_060, entry_loc(log, e), || {
            (
                entry_path(e),
                format!(
                    "entry at {} has SequenceNumber {} after entry at {} with {}: the run ends there",
                    hex(log.file_offset(e.pos)),
                    e.seq(),
                    hex(log.file_offset(p.pos)),
                    p.seq()
                ),
            )
        });
    }
    for &h in &strict.invalid_heads {
        let e = ent(h);
        s.emit(id::LOG_061, entry_loc(log, e), || {
            (
                entry_path(e),
                format!(
                    "run ending at entry {} (SequenceNumber {}) is not a sequence: its Tail {} is not the start of an entry of the run",
                    hex(log.file_offset(e.pos)),
                    e.seq(),
                    hex(e.header.tail as u64)
                ),
            )
        });
    }
    if strict.runs.len() > 1 {
        let list: Vec<String> = (strict.runs.iter())
            .map(|r| {
                let h = ent(r.head());
                format!("head {} seq {}", hex(log.file_offset(h.pos)), h.seq())
            })
            .collect();
        s.emit(id::LOG_063, Loc::at(log.offset, log.length), || {
            (
                "log".into(),
                format!(
                    "{} valid sequences in the log ({}); the greatest head SequenceNumber is active",
                    strict.runs.len(),
                    list.join(", ")
                ),
            )
        });
        let mut seqs: Vec<(u64, usize)> = (strict.runs.iter())
            .map(|r| (ent(r.head()).seq(), r.head()))
            .collect();
        seqs.sort_unstable();
        // The tie matters only for the winner: "greater than" cannot choose between them.
        let top = seqs.last().map(|t| t.0);
        for w in (seqs.windows(2)).filter(|w| w[0].0 == w[1].0 && Some(w[0].0) == top) {
            let (a, b) = (ent(w[0].1), ent(w[1].1));
            s.emit(id::LOG_064, entry_loc(log, b), || {
                (
                    entry_path(b),
                    format!(
                        "sequences ending at {} and {} both have head SequenceNumber {}: the specification does not break the tie; the first found is used",
                        hex(log.file_offset(a.pos)),
                        hex(log.file_offset(b.pos)),
                        a.seq()
                    ),
                )
            });
        }
    }
    let Some(run) = strict.active_run() else {
        s.emit(id::LOG_002, Loc::at(log.offset, log.length), || {
            (
                "log".into(),
                format!(
                    "LogGuid {} is set but the log holds no valid sequence: the file is corrupt per MS-VHDX; {}",
                    log.log_guid,
                    qemu_does(log)
                ),
            )
        });
        compare_readings(log, s);
        return;
    };
    let head = ent(run.head());
    if strict.replayed.len() < run.entries.len() {
        let first = ent(run.entries[0]);
        s.emit(id::LOG_062, entry_loc(log, first), || {
            (
                entry_path(first),
                format!(
                    "the active run starts at {} but the head's Tail names {}: {} older entries are not replayed; {}",
                    hex(log.file_offset(first.pos)),
                    hex(log.file_offset(head.header.tail as u64)),
                    run.entries.len() - strict.replayed.len(),
                    qemu_does(log)
                ),
            )
        });
    }
    if let Some(after) = run.after {
        let h = &after.header;
        let next_is_valid = log.entry_at(after.pos).is_some_and(|i| {
            ent(i).valid(Mode::Strict) && ent(i).seq() == head.seq().wrapping_add(1)
        });
        if h.log_guid == log.log_guid
            && Some(h.sequence_number) == head.seq().checked_add(1)
            && !next_is_valid
        {
            s.emit(id::LOG_065, Loc::at(log.file_offset(after.pos), SECTOR), || {
                (
                    format!("log.entry[{:#x}]", after.pos),
                    format!(
                        "torn write: the position after the active head holds an entry header with the current LogGuid and SequenceNumber {} that is not a valid entry (metadata update interrupted)",
                        h.sequence_number
                    ),
                )
            });
        }
        let sig = &h.signature;
        if sig != ENTRY_SIGNATURE && sig != DATA_SIGNATURE && sig != &[0; 4] {
            s.emit(id::LOG_010, Loc::at(log.file_offset(after.pos), 4), || {
                (
                    format!("log.entry[{:#x}]", after.pos),
                    format!(
                        "after the active head, the next entry position holds signature {} instead of \"loge\"",
                        crate::format::display::preview(sig)
                    ),
                )
            });
        }
    }
    for w in strict.replayed.windows(2) {
        let (a, b) = (ent(w[0]), ent(w[1]));
        let (ah, bh) = (&a.header, &b.header);
        if bh.flushed_file_offset < ah.flushed_file_offset
            || bh.last_file_offset < ah.last_file_offset
        {
            s.emit(id::LOG_066, entry_loc(log, b), || {
                (
                    entry_path(b),
                    format!(
                        "FlushedFileOffset/LastFileOffset go from {}/{} to {}/{}: the file shrank during the sequence",
                        hex(ah.flushed_file_offset),
                        hex(ah.last_file_offset),
                        hex(bh.flushed_file_offset),
                        hex(bh.last_file_offset)
                    ),
                )
            });
        }
    }
    // Consecutive entries only: from the earlier entry's Tail, in ring order, the later
    // entry's Tail lies at or before the later entry itself. (The oldest entry's Tail may
    // name a position of the previous lap, so no single reference point serves the run.)
    let from =
        |origin: u64, x: u64| (x % log.length + log.length - origin % log.length) % log.length;
    for w in run.entries.windows(2) {
        let (a, b) = (ent(w[0]), ent(w[1]));
        let origin = a.header.tail as u64;
        if from(origin, b.header.tail as u64) > from(origin, b.pos) {
            s.emit(id::LOG_067, entry_loc(log, b), || {
                (
                    entry_path(b),
                    format!(
                        "Tail goes back from {} to {} along the sequence (a correct writer only advances it)",
                        hex(a.header.tail as u64),
                        hex(b.header.tail as u64)
                    ),
                )
            });
        }
    }
    outcome(m, log, head, s);
    compare_readings(log, s);
}

/// What QEMU 10 does with this log, in words.
fn qemu_does(log: &Log) -> String {
    log.qemu.as_ref().map_or_else(
        || "QEMU's reading unknown".into(),
        |q| q.describe(|p| log.file_offset(p)),
    )
}

/// LOG-003..006, LOG-072: what replaying the active sequence does to this file.
fn outcome(m: &Model, log: &Log, head: &Entry, s: &mut Sink) {
    let size = m.file_size;
    let hh = &head.header;
    if let Some(why) = log.replay_impossible() {
        s.emit(id::LOG_072, Loc::at(log.offset, log.length), || {
            (
                entry_path(head),
                format!(
                    "{why}; a conforming reader must replay before it reads, so it cannot open the image ({})",
                    qemu_does(log)
                ),
            )
        });
    }
    if size < hh.flushed_file_offset {
        s.emit(id::LOG_005, Loc::at(size, hh.flushed_file_offset - size), || {
            (
                entry_path(head),
                format!(
                    "file size {} is below the head entry's FlushedFileOffset {}: the file was truncated after the log was written; a conforming reader must refuse it (the REPLAYED view is hypothetical)",
                    hex(size),
                    hex(hh.flushed_file_offset)
                ),
            )
        });
    }
    if size < hh.last_file_offset {
        s.emit(id::LOG_006, Loc::at(size, hh.last_file_offset - size), || {
            (
                entry_path(head),
                format!(
                    "file size {} is below the head entry's LastFileOffset {}: replay extends the file; structures may lie past the current end",
                    hex(size),
                    hex(hh.last_file_offset)
                ),
            )
        });
    }
    if !log.dirty() {
        s.emit(id::LOG_004, Loc::at(log.offset, log.length), || {
            (
                "log".into(),
                format!(
                    "the active sequence ({} entries, head SequenceNumber {}) is already applied: every target holds the logged bytes",
                    log.scan(Mode::Strict).map_or(0, |sc| sc.replayed.len()),
                    head.seq()
                ),
            )
        });
        return;
    }
    let names = Namer::new(m);
    for c in &log.changes {
        s.emit(id::LOG_003, Loc::at(c.offset, c.length), || {
            let what = names.range(c.offset, c.offset + c.length);
            (
                what.clone(),
                format!(
                    "replay pending: it changes bytes in [{}, {}) ({what}); the RAW bytes are stale and the REPLAYED view is authoritative, so readers that ignore the log see a different disk; `vhdx-check replay` writes the replayed copy",
                    hex(c.offset),
                    hex(c.offset + c.length)
                ),
            )
        });
    }
    if log.replayed_size != size {
        s.emit(
            id::LOG_003,
            Loc::at(size, log.replayed_size.saturating_sub(size)),
            || {
                (
                    "file".into(),
                    format!(
                        "replay changes the file size from {} to {} (a reader replays before it reads; `vhdx-check replay` writes the replayed copy)",
                        hex(size),
                        hex(log.replayed_size)
                    ),
                )
            },
        );
    }
}

/// LOG-070: the readings against each other. The no-wrap reading is compared by the
/// sequence it picks (its head); QEMU's by what it leaves: it refuses the image, or the
/// file after its replay holds other bytes than after the strict one.
fn compare_readings(log: &Log, s: &mut Sink) {
    let pick = |mode: Mode| {
        log.scan(mode).and_then(|sc| {
            let head = sc.active_run()?.head();
            Some((head, *sc.replayed.first()?))
        })
    };
    let strict = pick(Mode::Strict).map(|p| p.0);
    let no_wrap = pick(Mode::NoWrap).map(|p| p.0) != strict;
    let qemu = match log.qemu.as_ref().map(|q| &q.outcome) {
        Some(Outcome::Refuses { .. }) => true,
        Some(Outcome::Opens | Outcome::Replays { .. }) => log.qemu_differs,
        Some(Outcome::Bounded) | None => false,
    };
    if !no_wrap && !qemu {
        return;
    }
    let say = |mode: Mode| match pick(mode) {
        None => format!("{}: no sequence", mode.name()),
        Some((head, first)) => format!(
            "{}: entries {}..{} (head SequenceNumber {})",
            mode.name(),
            hex(log.file_offset(log.entries[first].pos)),
            hex(log.file_offset(log.entries[head].pos)),
            log.entries[head].seq()
        ),
    };
    let mut all = vec![say(Mode::Strict), say(Mode::NoWrap)];
    all.push(format!(
        "{}{}",
        qemu_does(log),
        if log.qemu_differs {
            ", and the file it leaves differs from the strict replay's"
        } else {
            ""
        }
    ));
    s.emit(id::LOG_070, Loc::at(log.offset, log.length), || {
        (
            "log".into(),
            format!("readers disagree on what to replay: {}", all.join("; ")),
        )
    });
}

/// LOG-071: where the analysis stopped at a bound.
fn bound(log: &Log, s: &mut Sink) {
    let scans = log.scans.iter().filter(|sc| sc.bounded).map(|sc| match sc.mode {
        Mode::Lenient => {
            "QEMU's reading was not worked out: its scan reads more than 8 x LogLength in sectors, or its replay applies more than 262,144 descriptors".to_string()
        }
        _ => format!(
            "the {} scan met runs longer than the ring more often than the walk bound allows",
            sc.mode.name()
        ),
    });
    for why in log.bound.iter().cloned().chain(scans) {
        s.emit(id::LOG_071, Loc::at(log.offset, log.length), || {
            ("log".into(), format!("log analysis bounded: {why}"))
        });
    }
}

/// LOG-040..047: where the active sequence's descriptors write, judged on the view replay
/// produces (the REPLAYED model, or RAW when replay changes nothing).
fn targets(m: &Model, s: &mut Sink) {
    let Some(log) = m.log() else { return };
    if log.applied.is_empty() {
        return;
    }
    let head_lfo = log.head().map(|h| h.header.last_file_offset);
    let (blocks, bitmaps) = allocated_blocks(m, log);
    let mut owned: Vec<(u64, u64)> = vec![(0x30000, 0x50000)];
    owned.extend(
        m.regions()
            .iter()
            .map(|r| (r.file_offset, r.end().unwrap_or(u64::MAX))),
    );
    owned.extend(bitmaps.iter().map(|o| (o.offset, o.end())));
    let owned = merge(owned);
    let fixed: [(RuleId, u64, u64, &str); 3] = [
        (id::LOG_040, 0, 64 * KIB, "the file identifier"),
        (id::LOG_041, 64 * KIB, 192 * KIB, "the header slots"),
        (
            id::LOG_042,
            log.offset,
            log.offset + log.length,
            "the log itself",
        ),
    ];
    for a in &log.applied {
        let Some((off, len)) = a.descriptor.target() else {
            continue;
        };
        let end = off.saturating_add(len);
        let path = format!(
            "log.entry[{:#x}].descriptor[{}]",
            log.entries[a.entry].pos, a.index
        );
        let loc = Loc::at(a.slot, 32);
        let range = format!("[{}, {})", hex(off), hex(end));
        if matches!(a.descriptor, Descriptor::Zero { zero_length: 0, .. }) {
            s.emit(id::LOG_046, loc, || {
                (
                    path.clone(),
                    format!("zero descriptor with ZeroLength 0 at {}", hex(off)),
                )
            });
            continue;
        }
        for &(id, a0, a1, what) in &fixed {
            if off < a1 && a0 < end {
                s.emit(id, loc, || {
                    (
                        path.clone(),
                        format!(
                            "replay writes {range}, which overlaps {what} [{}, {})",
                            hex(a0),
                            hex(a1)
                        ),
                    )
                });
            }
        }
        for b in blocks.iter().filter(|b| off < b.end() && b.offset < end) {
            s.emit(id::LOG_043, loc, || {
                (
                    path.clone(),
                    format!("replay writes {range} into {b}: the log must not carry payload data"),
                )
            });
        }
        if !covered(&owned, off, end) {
            s.emit(id::LOG_044, loc, || {
                (
                    path.clone(),
                    format!("replay writes {range}, outside every region table, region and sector bitmap block"),
                )
            });
        }
        if let Some(lfo) = head_lfo.filter(|&l| end > l) {
            s.emit(id::LOG_045, loc, || {
                (
                    path.clone(),
                    format!(
                        "replay writes {range}, past the head entry's LastFileOffset {}",
                        hex(lfo)
                    ),
                )
            });
        }
    }
    // LOG-047: descriptors of one entry that overlap (the later one wins).
    let mut i = 0;
    while i < log.applied.len() {
        let entry = log.applied[i].entry;
        let mut j = i;
        let mut ranges = Vec::new();
        while j < log.applied.len() && log.applied[j].entry == entry {
            if let Some((off, len)) = log.applied[j].descriptor.target()
                && len > 0
            {
                ranges.push((off, off.saturating_add(len), j));
            }
            j += 1;
        }
        ranges.sort_unstable();
        let mut reach: Option<(u64, usize)> = None;
        for &(a0, a1, k) in &ranges {
            if let Some((end, prev)) = reach
                && a0 < end
            {
                let (p, q) = (&log.applied[prev], &log.applied[k]);
                s.emit(id::LOG_047, Loc::at(q.slot, 32), || {
                    (
                        format!("log.entry[{:#x}].descriptor[{}]", log.entries[entry].pos, q.index),
                        format!(
                            "descriptors {} and {} of one entry write overlapping ranges (the later one wins in replay order)",
                            p.index.min(q.index),
                            p.index.max(q.index)
                        ),
                    )
                });
            }
            if reach.is_none_or(|(end, _)| a1 > end) {
                reach = Some((a1, k));
            }
        }
        i = j;
    }
}

/// Payload blocks (states 6/7) and sector bitmap blocks (state 6) any target touches.
fn allocated_blocks(m: &Model, log: &Log) -> (Vec<Object>, Vec<Object>) {
    let targets = merge(
        (log.applied.iter())
            .filter_map(|a| a.descriptor.target())
            .map(|(o, l)| (o, o.saturating_add(l)))
            .collect(),
    );
    let (mut blocks, mut bitmaps) = (Vec::new(), Vec::new());
    m.for_each_bat_chunk(|first, entries| {
        for (k, &e) in entries.iter().enumerate() {
            if e.state() < bat::PAYLOAD_BLOCK_FULLY_PRESENT {
                continue;
            }
            let Some(o) = m.block_object(first + k as u64, e) else {
                continue;
            };
            match o.kind {
                ObjectKind::SectorBitmapBlock { .. } => bitmaps.push(o),
                ObjectKind::PayloadBlock { .. }
                    if blocks.len() < 1024 && touches(&targets, o.offset, o.end()) =>
                {
                    blocks.push(o);
                }
                _ => {}
            }
        }
        bitmaps.len() < 1 << 20
    });
    (blocks, bitmaps)
}

/// Sorted, merged ranges.
fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(l) if a <= l.1 => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Whether merged `ranges` intersect `[a, b)`.
fn touches(ranges: &[(u64, u64)], a: u64, b: u64) -> bool {
    let i = ranges.partition_point(|r| r.1 <= a);
    ranges.get(i).is_some_and(|r| r.0 < b)
}

/// Whether merged `ranges` cover all of `[a, b)`.
fn covered(ranges: &[(u64, u64)], a: u64, b: u64) -> bool {
    let i = ranges.partition_point(|r| r.1 <= a);
    ranges.get(i).is_some_and(|r| r.0 <= a && r.1 >= b)
}
