//! The two views of a file with a pending replay (CATALOGUE 0.4): both models are built
//! here, and the findings only one view has are reported as LOG-007.

use super::threads;
use crate::findings::{Finding, Loc, RuleId, View, id};
use crate::io::ReadAt;
use crate::model::replay::ReplayedView;
use crate::model::{ChainBreak, Headers, LogCell, Model, ParentLink, log};
use crate::rules::sink::Sink;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Builds the RAW model of `src` and, when its log has a pending replay, the REPLAYED model
/// (the structures judged after replay, CATALOGUE 0.4), and hands both to `f`.
pub(super) fn with_models<R>(
    src: &dyn ReadAt,
    parent: Option<ParentLink>,
    broken: Option<ChainBreak>,
    f: impl FnOnce(&Model, Option<&Model>) -> R,
) -> R {
    let headers = Headers::read(src);
    let log = LogCell::default();
    std::thread::scope(|scope| {
        // A ring with data is analysed ahead on a second thread while the structures are
        // built — and, for a stale ring (LogGuid zero: nothing depends on it), while every
        // pass but the LOG passes runs (they run last, CATALOGUE 5.8). Whichever thread
        // asks first analyses it; the other waits for that analysis.
        if let Some(h) = headers.current().filter(|h| log::ring_holds_data(src, h)) {
            let (h, log) = (h.clone(), log.clone());
            threads::spawn_beside(scope, move || {
                log.get_or_init(|| log::analyse(src, &h).map(Arc::new));
            });
        }
        let mut model = Model::assemble(src, headers, log);
        model.parent = parent.clone();
        model.chain_break = broken.clone();
        if model.log_is_history() {
            return f(&model, None);
        }
        let log = model.log_shared().filter(|l| l.dirty());
        let view = log
            .as_deref()
            .and_then(|l| l.plan.as_ref())
            .map(|plan| ReplayedView::new(src, plan));
        let replayed = view.as_ref().map(|v| {
            let mut m = Model::build_replayed(v, &model);
            m.parent = parent;
            m.chain_break = broken;
            m
        });
        f(&model, replayed.as_ref())
    })
}

/// LOG-007 is decided by comparing the two views' findings, outside any pass.
pub const VIEW_DIFF_IDS: &[RuleId] = &[id::LOG_007];

/// LOG-007: findings present in one view only. Equal findings (rule, structure and
/// message) in both views say nothing about replay. A rule with instances beyond the cap
/// in either view shows different samples in each, so it is compared by its counts.
pub fn diff_views(raw: &Sink, replayed: &Sink, s: &mut Sink) {
    let key = |f: &Finding| (f.rule, f.structure.clone(), f.message.clone());
    let in_raw: BTreeSet<_> = raw.findings().iter().map(key).collect();
    let in_rep: BTreeSet<_> = replayed.findings().iter().map(key).collect();
    let capped = |id: &str| raw.capped(id) || replayed.capped(id);
    let sides = [
        (
            raw,
            &in_rep,
            View::Raw,
            "RAW view only (replay resolves it)",
        ),
        (
            replayed,
            &in_raw,
            View::Replayed,
            "REPLAYED view only (replay introduces it)",
        ),
    ];
    for (sink, other, view, how) in sides {
        for f in sink.findings().iter().filter(|f| !capped(f.rule)) {
            if other.contains(&key(f)) {
                continue;
            }
            let loc = Loc {
                offset: f.offset,
                length: f.length,
            };
            s.emit_in_view(id::LOG_007, view, loc, || {
                (
                    f.structure.clone(),
                    format!("{how}: {} {}: {}", f.rule, f.severity, f.message),
                )
            });
        }
    }
    let ids: BTreeSet<&'static str> = (raw.findings().iter())
        .chain(replayed.findings())
        .map(|f| f.rule)
        .filter(|id| capped(id))
        .collect();
    for id in ids {
        let (a, b) = (raw.total(id), replayed.total(id));
        if a != b {
            s.emit_in_view(id::LOG_007, View::Replayed, Loc::NONE, || {
                (
                    "log".into(),
                    format!("{id}: {a} instances in the RAW view, {b} after replay"),
                )
            });
        }
    }
}
