//! The specification's scan for the active sequence in its three readings (strict,
//! QEMU-like lenient, DiscUtils-like no-wrap) and what each found.

use super::*;

/// How a reader decides which entries are valid (CATALOGUE 3.6, A8, A9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every MUST-level predicate, entries may wrap, the head's Tail must be in the run.
    Strict,
    /// QEMU 10 as it is (`model::qemu`): the run it replays, or none when it finds none
    /// or refuses the image. [`Entry::valid`] in this mode is the core predicates only.
    Lenient,
    /// DiscUtils: core predicates, an entry may not pass the ring end, tail test.
    NoWrap,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Strict, Mode::Lenient, Mode::NoWrap];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Lenient => "lenient (QEMU)",
            Mode::NoWrap => "no-wrap (DiscUtils)",
        }
    }

    /// Predicates that make an entry invalid in this reading.
    pub fn invalidating(self) -> Preds {
        match self {
            Mode::Strict => {
                let mut all = Preds::of(&Pred::ALL);
                all.0 &= !(Pred::Slack.bit() | Pred::Wraps.bit());
                all
            }
            Mode::Lenient => Preds::of(&Pred::CORE),
            Mode::NoWrap => {
                let mut s = Preds::of(&Pred::CORE);
                s.add(Pred::Wraps);
                s
            }
        }
    }

    pub(super) fn tail_test(self) -> bool {
        self != Mode::Lenient
    }
}

/// A run of valid entries laid end to end with consecutive sequence numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Indexes into [`Log::entries`], in sequence order.
    pub entries: Vec<usize>,
    /// The header bytes right after the head, where the next entry would go.
    pub after: Option<AfterHead>,
}

/// The would-be entry header right after a run's head (torn writes, LOG-010, LOG-065).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AfterHead {
    /// Ring offset.
    pub pos: u64,
    pub header: EntryHeader,
}

impl Run {
    pub fn head(&self) -> usize {
        self.entries[self.entries.len() - 1]
    }
}

/// What one reading of the scan found.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub mode: Mode,
    /// Valid runs, in the order the scan found them.
    pub runs: Vec<Run>,
    /// Heads of non-empty runs that failed the tail test (LOG-061).
    pub invalid_heads: Vec<usize>,
    /// Valid entries that ended a run because their SequenceNumber was not the previous
    /// one + 1: (previous entry, this entry) (LOG-060).
    pub sequence_breaks: Vec<(usize, usize)>,
    /// The active sequence's run, if any: the greatest head SequenceNumber, first found on
    /// a tie.
    pub active: Option<usize>,
    /// The entries replay applies, in order: from the Tail entry (whole run in Lenient).
    pub replayed: Vec<usize>,
    /// Runs longer than the ring exhausted the walk bound (LOG-071).
    pub bounded: bool,
}

impl Scan {
    pub fn active_run(&self) -> Option<&Run> {
        self.active.map(|i| &self.runs[i])
    }
}

/// The lenient reading is QEMU's: the run its replay walks, when the entries it starts
/// at are known to the sweep. Its writes are tied to those entries.
pub(super) fn qemu_scan(log: &Log, reading: &mut crate::model::qemu::Reading) -> Scan {
    let mut out = Scan {
        mode: Mode::Lenient,
        runs: Vec::new(),
        invalid_heads: Vec::new(),
        sequence_breaks: Vec::new(),
        active: None,
        replayed: Vec::new(),
        bounded: matches!(reading.outcome, crate::model::qemu::Outcome::Bounded),
    };
    if let crate::model::qemu::Outcome::Replays { entries, .. } = &reading.outcome {
        let known: Vec<usize> = entries.iter().filter_map(|&p| log.entry_at(p)).collect();
        if !known.is_empty() {
            out.runs.push(Run {
                entries: known.clone(),
                after: None,
            });
            out.active = Some(0);
            out.replayed = known;
        }
    }
    out
}

/// Where a run from some entry ends, as remembered for the entries on its way.
#[derive(Clone, Copy)]
pub(super) struct Walk {
    pub(super) head: usize,
    /// The head's Tail names this entry or one after it.
    pub(super) contains_tail: bool,
    /// Bytes from this entry's start to the head's end.
    pub(super) bytes: u64,
}

/// The specification's scan for the active sequence (CATALOGUE 3.3) in one reading.
/// Linear: every entry's walk to its run's head is computed once and remembered.
pub(super) fn scan(log: &Log, mode: Mode) -> Scan {
    let mut out = Scan {
        mode,
        runs: Vec::new(),
        invalid_heads: Vec::new(),
        sequence_breaks: Vec::new(),
        active: None,
        replayed: Vec::new(),
        bounded: false,
    };
    let ring = log.length;
    let mut memo: Vec<Option<Walk>> = vec![None; log.entries.len()];
    // Successor of a valid entry in its run, and the entry that broke the run on sequence.
    let next = |i: usize| -> (Option<usize>, Option<usize>) {
        let e = &log.entries[i];
        let Some(j) = log.entry_at((e.pos + e.length()) % ring) else {
            return (None, None);
        };
        let n = &log.entries[j];
        match (n.valid(mode), e.seq().checked_add(1) == Some(n.seq())) {
            (false, _) => (None, None),
            (true, true) => (Some(j), None),
            (true, false) => (None, Some(j)),
        }
    };
    let mut breaks = std::collections::BTreeSet::new();
    let mut walk = |start: usize, memo: &mut Vec<Option<Walk>>| -> Walk {
        let mut path = Vec::new();
        let mut cur = start;
        let end = loop {
            if let Some(w) = memo[cur] {
                break w;
            }
            path.push(cur);
            match next(cur) {
                (Some(j), _) => cur = j,
                (None, brk) => {
                    if let Some(b) = brk {
                        breaks.insert((cur, b));
                    }
                    break Walk {
                        head: cur,
                        contains_tail: false,
                        bytes: 0,
                    };
                }
            }
        };
        let mut w = end;
        let tail = log.entries[w.head].header.tail as u64;
        for &i in path.iter().rev() {
            let e = &log.entries[i];
            w = Walk {
                head: w.head,
                contains_tail: w.contains_tail || e.pos == tail,
                bytes: w.bytes.saturating_add(e.length()),
            };
            memo[i] = Some(w);
        }
        w
    };
    let mut tail = 0u64;
    let mut travelled = 0u64;
    let mut seen_heads = std::collections::BTreeSet::new();
    // Head entry -> index into `out.runs`.
    let mut run_heads = std::collections::HashMap::new();
    // Entries walked for runs longer than the ring (crafted logs only).
    let mut capped_steps = 4 * log.entries.len() as u64 + 65536;
    while travelled < ring {
        let start = log.entry_at(tail).filter(|&i| log.entries[i].valid(mode));
        let mut advance = SECTOR;
        if let Some(start) = start {
            let w = walk(start, &mut memo);
            let (head, contains, entries) = if w.bytes <= ring {
                let valid = w.contains_tail || !mode.tail_test();
                let entries = if valid {
                    collect_run(log, start, ring, mode)
                } else {
                    Vec::new()
                };
                (w.head, w.contains_tail, entries)
            } else if capped_steps > 0 {
                // The run would pass its own first entry: it ends where the ring is consumed.
                let entries = collect_run(log, start, ring, mode);
                capped_steps = capped_steps.saturating_sub(entries.len() as u64);
                let head = *entries.last().unwrap_or(&start);
                let t = log.entries[head].header.tail as u64;
                let contains = entries.iter().any(|&i| log.entries[i].pos == t);
                (head, contains, entries)
            } else {
                out.bounded = true;
                (w.head, false, Vec::new())
            };
            if (contains || !mode.tail_test()) && !entries.is_empty() {
                advance = entries.iter().map(|&i| log.entries[i].length()).sum();
                // A run met again from an earlier start (its entries before the ring end
                // scanned last) is the same sequence: the first one found stays.
                let head = entries[entries.len() - 1];
                match run_heads.get(&head) {
                    None => {
                        run_heads.insert(head, out.runs.len());
                        out.runs.push(Run {
                            entries,
                            after: None,
                        });
                    }
                    // Readings that replay from the Tail replay the same entries either
                    // way; the longer run shows what precedes the Tail (LOG-062).
                    Some(&k) if mode.tail_test() && entries.len() > out.runs[k].entries.len() => {
                        out.runs[k].entries = entries;
                    }
                    Some(_) => {}
                }
            } else if seen_heads.insert(head) {
                out.invalid_heads.push(head);
            }
        }
        tail = (tail + advance) % ring;
        travelled += advance;
    }
    out.sequence_breaks = breaks.into_iter().collect();
    // A head met first without its tail (the scan starts inside a sequence that wraps the
    // ring end) and later as the head of a valid sequence is not a broken run.
    let valid_heads: std::collections::BTreeSet<usize> = out.runs.iter().map(Run::head).collect();
    out.invalid_heads.retain(|h| !valid_heads.contains(h));
    // CATALOGUE 3.3 step 5: strictly greater wins, so the first found stays on a tie.
    for (i, r) in out.runs.iter().enumerate() {
        let seq = log.entries[r.head()].seq();
        if out
            .active
            .is_none_or(|a| seq > log.entries[out.runs[a].head()].seq())
        {
            out.active = Some(i);
        }
    }
    if let Some(r) = out.active_run() {
        let t = log.entries[r.head()].header.tail as u64;
        let from = match mode {
            Mode::Lenient => 0,
            _ => (r.entries.iter())
                .position(|&i| log.entries[i].pos == t)
                .unwrap_or(0),
        };
        out.replayed = r.entries[from..].to_vec();
    }
    out
}

/// The entries of the run from `start`, stopping before an entry that would make the run
/// longer than the ring (it would overlap the run's first entry). Only valid runs and
/// runs longer than the ring are collected, and a valid run moves the scan past its
/// entries, so the walks stay linear.
pub(super) fn collect_run(log: &Log, start: usize, ring: u64, mode: Mode) -> Vec<usize> {
    let mut out = vec![start];
    let mut bytes = log.entries[start].length();
    let mut cur = start;
    loop {
        let e = &log.entries[cur];
        let Some(j) = log.entry_at((e.pos + e.length()) % ring) else {
            break;
        };
        let n = &log.entries[j];
        if !n.valid(mode) || e.seq().checked_add(1) != Some(n.seq()) {
            break;
        }
        bytes = bytes.saturating_add(n.length());
        if bytes > ring {
            break;
        }
        out.push(j);
        cur = j;
    }
    out
}
