//! The pass schedule: which passes run, in which order, on which thread and on which view.

use super::{threads, views};
use crate::findings::View;
use crate::model::Model;
use crate::rules::sink::Sink;
use crate::rules::{
    Pass, Scope, bat, chain, header, identifier, layout, log, metadata, parent, region,
    sector_bitmap,
};

/// The passes before the BAT walk, in evaluation order (CATALOGUE 5).
const MAIN: [&[Pass]; 8] = [
    identifier::PASSES,
    header::PASSES,
    region::PASSES,
    metadata::PASSES,
    parent::PASSES,
    sector_bitmap::PASSES,
    layout::PASSES,
    chain::PASSES,
];

/// The BAT walk: it reads the BAT on its own, so it can run beside the main passes.
const SIDE: &[Pass] = bat::PASSES;

/// The LOG passes judge what the model already holds (the views are decided before any
/// pass runs), so they run last, with the forensic sweeps (CATALOGUE 5.8): a stale ring is
/// analysed meanwhile on another thread (`views::with_models`).
const LAST: &[Pass] = log::PASSES;

/// Every pass, in the order they run on one thread.
pub fn passes() -> impl Iterator<Item = &'static Pass> {
    MAIN.into_iter().flatten().chain(SIDE).chain(LAST)
}

/// Every rule id some pass (or the view comparison) implements.
pub fn implemented_ids() -> impl Iterator<Item = &'static str> {
    passes()
        .flat_map(|p| p.ids.iter().map(|i| i.as_str()))
        .chain(views::VIEW_DIFF_IDS.iter().map(|i| i.as_str()))
}

/// Runs every pass on `raw` (only FTI-007 when it is another format), or, when the log has a pending replay, the RAW passes on
/// `raw` and the others on `replayed` (CATALOGUE 0.4); findings that only one view has
/// are reported once more as LOG-007.
pub fn run_all(raw: &Model, replayed: Option<&Model>, sink: &mut Sink) {
    // Another format (or nothing): one finding naming it, not a cascade of VHDX ones.
    if identifier::foreign_format(raw).is_some() {
        sink.begin_pass(identifier::NOT_VHDX.ids);
        (identifier::NOT_VHDX.run)(raw, sink);
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
        threads::spawn_beside(scope, || {
            run_passes(raw, |p| p.scope == Scope::Views, &mut raw_views)
        });
        run_passes(rep, |p| p.scope == Scope::Views, &mut rep_views);
        run_passes(rep, |p| p.scope == Scope::Replay, &mut rep_targets);
    });
    // Only the families both views judge are compared.
    sink.begin_pass(views::VIEW_DIFF_IDS);
    views::diff_views(&raw_views, &rep_views, sink);
    sink.join(rep_views);
    sink.join(rep_targets);
}

/// Whether the BAT pass is worth a thread of its own beside the other passes
/// ([`run_all`]): only for a large table ([`crate::model::BatView::large`], whose
/// reads the walks then share). Walking a small one (up to 1 Mi entries, 8 MiB) takes less
/// than starting a thread and waiting for it on a busy machine.
fn walk_on_thread(m: &Model) -> bool {
    m.bat.is_some_and(|b| b.large())
}

/// Runs the selected passes. The BAT pass runs on a second thread beside the others: it
/// and the layout pass each stream the whole table (up to 4 GiB), and on two cores the
/// walks overlap. Passes share nothing but the model, and no pass claims another's ids,
/// so the second sink joins the first unchanged; findings are sorted afterwards.
fn run_passes(model: &Model, select: impl Fn(&Pass) -> bool + Sync, sink: &mut Sink) {
    if !walk_on_thread(model) {
        for p in passes().filter(|p| select(p)) {
            sink.begin_pass(p.ids);
            (p.run)(model, sink);
        }
        return;
    }
    let mut side = sink.fork();
    std::thread::scope(|scope| {
        // A panic in the side pass is propagated when the scope ends.
        threads::spawn_beside(scope, || {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn no_id_is_claimed_by_two_passes() {
        let mut seen = BTreeSet::new();
        for id in super::implemented_ids() {
            assert!(seen.insert(id), "{id} declared by two passes");
        }
    }
}
