//! Running the checks on one image: building the models (RAW, and REPLAYED when the log
//! has a pending replay), the pass schedule and its threads, the LOG-007 comparison of the
//! views, and the sink that collects the findings into a report. The rules themselves are
//! pure checks over a model ([`crate::rules`]).

mod run;
pub mod threads;
mod views;

pub use run::{implemented_ids, passes};

use crate::findings::{ImageReport, View, sort_findings};
use crate::io::ReadAt;
use crate::model::{ChainBreak, Model, ParentLink};
use crate::rules::sink::Sink;
use std::collections::BTreeMap;

/// Builds the models of `src`, runs every pass on them, and hands the report and the
/// models to `stage`.
pub(crate) fn run_checks<R>(
    src: &dyn ReadAt,
    parent: Option<ParentLink>,
    broken: Option<ChainBreak>,
    max_per_rule: u64,
    stage: impl FnOnce(&Model, Option<&Model>, &mut ImageReport) -> R,
) -> (ImageReport, R) {
    views::with_models(src, parent, broken, |raw, replayed| {
        let mut sink = Sink::new(View::Raw, max_per_rule);
        run::run_all(raw, replayed, &mut sink);
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
