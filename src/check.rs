//! One image, end to end: the public front of [`crate::engine`] (options, sources that
//! can fail, the chain member's stage).

use crate::engine::run_checks;
pub use crate::findings::ImageReport;
use crate::io::{ReadAt, SourceError, Watch};
use crate::model::{ChainBreak, Model, ParentLink};

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
    run_checks(src, parent, None, opts.max_per_rule, |_, _, _| ()).0
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
    let out = run_checks(&watch, parent, broken, opts.max_per_rule, stage);
    watch.verify()?;
    Ok(out)
}
