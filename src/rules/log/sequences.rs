//! Sequence-level rules on the strict scan, and the three readings against each other
//! (LOG-060..071).

use super::*;

/// Sequence-level rules on the strict scan, the outcome rules and the comparison of the
/// three readings.
pub(super) fn sequences(m: &Model, log: &Log, s: &mut Sink) {
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
pub(super) fn qemu_does(log: &Log) -> String {
    log.qemu.as_ref().map_or_else(
        || "QEMU's reading unknown".into(),
        |q| q.describe(|p| log.file_offset(p)),
    )
}

/// LOG-070: the readings against each other. The no-wrap reading is compared by the
/// sequence it picks (its head); QEMU's by what it leaves: it refuses the image, or the
/// file after its replay holds other bytes than after the strict one.
pub(super) fn compare_readings(log: &Log, s: &mut Sink) {
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
pub(super) fn bound(log: &Log, s: &mut Sink) {
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
