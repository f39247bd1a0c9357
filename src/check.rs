//! One image, end to end: build the model, run every rule pass, collect the report.

pub use crate::findings::ImageReport;
use crate::findings::{View, sort_findings};
use crate::io::{ReadAt, SourceError, Watch};
use crate::model::replay::ReplayedView;
use crate::model::{ChainBreak, Headers, LogCell, Model, ParentLink, log};
use crate::rules::sink::Sink;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Instances of one rule shown per image; the rest are counted.
    pub max_per_rule: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { max_per_rule: 100 }
    }
}

/// Checks one image whose reads cannot fail (memory: tests, fuzzing). Never fails: every
/// defect of the image is a finding. A read error would read as zeros here: files go
/// through [`try_check`] or [`crate::chain::check_chain`], which void the report then.
pub fn check(src: &dyn ReadAt, opts: &CheckOptions) -> ImageReport {
    check_with_parent(src, None, opts)
}

/// [`check`] of one image of a chain: `parent` (from [`crate::chain`]) enables the CHAIN
/// rules.
pub fn check_with_parent(
    src: &dyn ReadAt,
    parent: Option<ParentLink>,
    opts: &CheckOptions,
) -> ImageReport {
    run_checks(src, parent, None, opts, |_, _, _| ()).0
}

/// [`check_with_parent`] of a source that can fail: the report, or why none can be given
/// (a read error, or the evidence changed while it was checked).
pub fn try_check(
    src: &dyn ReadAt,
    parent: Option<ParentLink>,
    opts: &CheckOptions,
) -> Result<ImageReport, SourceError> {
    check_staged(src, parent, opts, |_, _, _| ()).map(|(r, ())| r)
}

/// [`try_check`], then `stage` with the report and the models it was judged on (the
/// policy and the digests need them): the model, and the log analysis in it, is built
/// once per image.
pub fn check_staged<R>(
    src: &dyn ReadAt,
    parent: Option<ParentLink>,
    opts: &CheckOptions,
    stage: impl FnOnce(&Model, Option<&Model>, &mut ImageReport) -> R,
) -> Result<(ImageReport, R), SourceError> {
    check_member(src, parent, None, opts, stage)
}

/// [`check_staged`] for a member of a chain: `broken` says why its parent is missing from
/// the chain (the CHAIN-006..008 findings). Everything, `stage` included, reads through
/// one [`Watch`]: a report is complete, or absent with the reason.
pub fn check_member<R>(
    src: &dyn ReadAt,
    parent: Option<ParentLink>,
    broken: Option<ChainBreak>,
    opts: &CheckOptions,
    stage: impl FnOnce(&Model, Option<&Model>, &mut ImageReport) -> R,
) -> Result<(ImageReport, R), SourceError> {
    let watch = Watch::new(src);
    let out = run_checks(&watch, parent, broken, opts, stage);
    watch.verify()?;
    Ok(out)
}

fn run_checks<R>(
    src: &dyn ReadAt,
    parent: Option<ParentLink>,
    broken: Option<ChainBreak>,
    opts: &CheckOptions,
    stage: impl FnOnce(&Model, Option<&Model>, &mut ImageReport) -> R,
) -> (ImageReport, R) {
    with_models(src, parent, broken, |raw, replayed| {
        let mut sink = Sink::new(View::Raw, opts.max_per_rule);
        crate::rules::run_all(raw, replayed, &mut sink);
        let (mut findings, suppressed) = sink.finish();
        sort_findings(&mut findings);
        let mut report = ImageReport {
            size: src.len(),
            findings,
            suppressed,
            waived: BTreeMap::new(),
            waived_suppressed: BTreeMap::new(),
            digests: None,
        };
        let r = stage(raw, replayed, &mut report);
        (report, r)
    })
}

/// Builds the RAW model of `src` and, when its log has a pending replay, the REPLAYED model
/// (the structures judged after replay, CATALOGUE 0.4), and hands both to `f`.
fn with_models<R>(
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
            crate::threads::spawn_beside(scope, move || {
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
