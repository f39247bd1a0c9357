//! One image, end to end: build the model, run every rule pass, collect the report.

use crate::io::ReadAt;
use crate::model::{Model, ParentLink};
use crate::rules::finding::{Finding, Severity, View};
use crate::rules::sink::{Sink, Suppressed};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

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

#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub size: u64,
    pub findings: Vec<Finding>,
    /// Instances beyond `max_per_rule`, per rule.
    pub suppressed: BTreeMap<&'static str, Suppressed>,
}

impl ImageReport {
    /// Every rule id that fired, shown or suppressed.
    pub fn ids(&self) -> BTreeSet<&'static str> {
        self.findings
            .iter()
            .map(|f| f.rule)
            .chain(self.suppressed.keys().copied())
            .collect()
    }

    pub fn has(&self, id: &str) -> bool {
        self.findings.iter().any(|f| f.rule == id) || self.suppressed.contains_key(id)
    }

    /// Instances at exactly `sev`, suppressed ones included.
    pub fn count(&self, sev: Severity) -> u64 {
        let shown = self.findings.iter().filter(|f| f.severity == sev).count() as u64;
        let hidden: u64 = self
            .suppressed
            .values()
            .filter(|s| s.severity == Some(sev))
            .map(|s| s.count)
            .sum();
        shown + hidden
    }

    /// The highest severity present, if any.
    pub fn worst(&self) -> Option<Severity> {
        let shown = self.findings.iter().map(|f| f.severity).max();
        let hidden = self.suppressed.values().filter_map(|s| s.severity).max();
        shown.max(hidden)
    }
}

/// Checks one image. Never fails: every defect of the image is a finding.
pub fn check(src: &dyn ReadAt, opts: &CheckOptions) -> ImageReport {
    check_with_parent(src, None, opts)
}

/// Checks one image of a chain: `parent` (from [`crate::chain`]) enables the CHAIN rules.
pub fn check_with_parent(
    src: &dyn ReadAt,
    parent: Option<ParentLink>,
    opts: &CheckOptions,
) -> ImageReport {
    let mut sink = Sink::new(View::Raw, opts.max_per_rule);
    let mut model = Model::build(src);
    model.parent = parent;
    crate::rules::run_all(&model, &mut sink);
    let (mut findings, suppressed) = sink.finish();
    findings.sort_by(|a, b| {
        (a.offset.unwrap_or(u64::MAX), a.rule, a.view).cmp(&(
            b.offset.unwrap_or(u64::MAX),
            b.rule,
            b.view,
        ))
    });
    ImageReport {
        size: src.len(),
        findings,
        suppressed,
    }
}
