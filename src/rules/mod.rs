//! The checks: one module per rule family, each a list of passes. A pass declares the
//! catalogue ids it emits; `grep -r BAT-013 src/rules` finds the code of a rule.

pub mod catalogue;
pub mod sink;

mod bat;
mod chain;
mod fti;
mod hdr;
mod layout;
mod log;
mod meta;
mod ploc;
mod rgn;
mod sbm;

use crate::findings::View;
use crate::model::Model;
use sink::Sink;

/// Where a known metadata item's value is (for the policy's requirement findings too).
pub(crate) use meta::value_loc;

/// A check over the model that may emit the listed rule ids.
pub struct Pass {
    pub name: &'static str,
    pub ids: &'static [&'static str],
    /// Which view of the file the pass judges (CATALOGUE 0.4).
    pub scope: Scope,
    pub run: fn(&Model, &mut Sink),
}

/// The views a pass runs on when the log has a pending replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The bytes as they are: identifier, headers, the log itself.
    Raw,
    /// Structures the log may rewrite: judged on the REPLAYED view, and on RAW too so
    /// LOG-007 can say what replay changes.
    Views,
    /// What replay writes: judged on the view replay produces.
    Replay,
}

/// The passes before the BAT walk, in evaluation order (CATALOGUE 5).
const MAIN: [&[Pass]; 8] = [
    fti::PASSES,
    hdr::PASSES,
    rgn::PASSES,
    meta::PASSES,
    ploc::PASSES,
    sbm::PASSES,
    layout::PASSES,
    chain::PASSES,
];

/// The BAT walk: it reads the BAT on its own, so it can run beside the main passes.
const SIDE: &[Pass] = bat::PASSES;

/// The LOG passes judge what the model already holds (the views are decided before any
/// pass runs), so they run last, with the forensic sweeps (CATALOGUE 5.8): a stale ring is
/// analysed meanwhile on another thread (`check::with_models`).
const LAST: &[Pass] = log::PASSES;

/// Every pass, in the order they run on one thread.
pub fn passes() -> impl Iterator<Item = &'static Pass> {
    MAIN.into_iter().flatten().chain(SIDE).chain(LAST)
}

/// Every rule id some pass (or the view comparison) implements.
pub fn implemented_ids() -> impl Iterator<Item = &'static str> {
    passes()
        .flat_map(|p| p.ids.iter().copied())
        .chain(log::VIEW_DIFF_IDS.iter().copied())
}

/// Runs every pass on `raw` (only FTI-007 when it is another format), or, when the log has a pending replay, the RAW passes on
/// `raw` and the others on `replayed` (CATALOGUE 0.4); findings that only one view has
/// are reported once more as LOG-007.
pub fn run_all(raw: &Model, replayed: Option<&Model>, sink: &mut Sink) {
    // Another format (or nothing): one finding naming it, not a cascade of VHDX ones.
    if fti::foreign_format(raw).is_some() {
        sink.begin_pass(fti::NOT_VHDX.ids);
        (fti::NOT_VHDX.run)(raw, sink);
        return;
    }
    let Some(rep) = replayed else {
        run_passes(raw, |_| true, sink);
        return;
    };
    run_passes(raw, |p| p.scope == Scope::Raw, sink);
    let mut raw_views = sink.fork_view(View::Raw);
    let mut rep_views = sink.fork_view(View::Replayed);
    let mut rep_targets = sink.fork_view(View::Replayed);
    std::thread::scope(|scope| {
        crate::threads::spawn_beside(scope, || {
            run_passes(raw, |p| p.scope == Scope::Views, &mut raw_views)
        });
        run_passes(rep, |p| p.scope == Scope::Views, &mut rep_views);
        run_passes(rep, |p| p.scope == Scope::Replay, &mut rep_targets);
    });
    // Only the families both views judge are compared.
    sink.begin_pass(log::VIEW_DIFF_IDS);
    log::diff_views(&raw_views, &rep_views, sink);
    sink.join(rep_views);
    sink.join(rep_targets);
}

/// Runs the selected passes. The BAT pass runs on a second thread beside the others: it
/// and the layout pass each stream the whole table (up to 4 GiB), and on two cores the
/// walks overlap. Passes share nothing but the model, and no pass claims another's ids,
/// so the second sink joins the first unchanged; findings are sorted afterwards.
fn run_passes(model: &Model, select: impl Fn(&Pass) -> bool + Sync, sink: &mut Sink) {
    if !bat::walk_on_thread(model) {
        for p in passes().filter(|p| select(p)) {
            sink.begin_pass(p.ids);
            (p.run)(model, sink);
        }
        return;
    }
    let mut side = sink.fork();
    std::thread::scope(|scope| {
        // A panic in the side pass is propagated when the scope ends.
        crate::threads::spawn_beside(scope, || {
            for p in SIDE.iter().filter(|p| select(p)) {
                side.begin_pass(p.ids);
                (p.run)(model, &mut side);
            }
        });
        for p in (MAIN.into_iter().flatten().chain(LAST)).filter(|p| select(p)) {
            sink.begin_pass(p.ids);
            (p.run)(model, sink);
        }
    });
    sink.join(side);
}

/// The parts of `[0, len)` that no range in `used` covers (ranges may overlap, be unsorted
/// or reach past `len`), in order. Sweeps for slack use it.
pub(crate) fn gaps(mut used: Vec<(u64, u64)>, len: u64) -> Vec<(u64, u64)> {
    used.sort_unstable();
    let mut pos = 0u64;
    let mut out = Vec::new();
    for (start, end) in used {
        if start > pos {
            out.push((pos, start.min(len)));
        }
        pos = pos.max(end);
    }
    out.push((pos, len));
    out.retain(|(a, b)| a < b);
    out
}

/// `0x10000` style offsets in messages.
pub(crate) fn hex(v: u64) -> String {
    format!("{v:#x}")
}

#[cfg(test)]
mod tests {
    use super::catalogue::catalogue;
    use std::collections::BTreeSet;

    #[test]
    fn gaps_between_used_ranges() {
        assert_eq!(
            super::gaps(vec![(10, 20), (0, 5), (15, 30)], 40),
            vec![(5, 10), (30, 40)]
        );
        assert_eq!(super::gaps(vec![(0, 50)], 40), vec![]);
        assert_eq!(super::gaps(vec![(60, 70)], 40), vec![(0, 40)]);
    }

    #[test]
    fn no_id_is_claimed_by_two_passes() {
        let mut seen = BTreeSet::new();
        for id in super::implemented_ids() {
            assert!(seen.insert(id), "{id} declared by two passes");
        }
    }

    #[test]
    fn catalogue_entries_are_complete() {
        for r in catalogue().rules() {
            assert!(
                !r.title.is_empty() && !r.spec.is_empty() && !r.rationale.is_empty(),
                "{} incomplete",
                r.id
            );
            let (fam, num) = r.id.split_once('-').expect("id is FAMILY-NNN");
            assert!(
                fam.chars().all(|c| c.is_ascii_uppercase()) && num.len() == 3,
                "{}",
                r.id
            );
        }
    }
}
