//! The acceptance policy (`--policy FILE`): when an image is rejected, per-rule severity
//! overrides, waivers (each with a reason) and requirements on the image. Applied to a
//! report after the rules ran; a waived finding stays in the report but never decides the
//! verdict. The file format is in [`file`], the requirement checks in [`require`].

mod file;
pub mod require;

pub use file::PolicyError;

use crate::findings::{ImageReport, Severity, View, sort_findings};
use crate::model::{DiskType, Model};
use crate::rules::sink::Sink;
use std::collections::BTreeMap;

/// A parsed policy. The default is the empty policy: no overrides, waivers or requirements.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The rejection level; `--fail-on` on the command line wins over it.
    pub fail_on: Option<FailOn>,
    /// Severity per rule id, replacing the catalogue's (and a rule's own downgrades).
    pub severity: BTreeMap<&'static str, Severity>,
    pub waivers: Vec<Waiver>,
    pub require: Requirements,
}

/// When an image is rejected (DESIGN: exit-code contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

impl FailOn {
    pub fn rejects(self, r: &ImageReport) -> bool {
        let threshold = match self {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
            FailOn::Info => Severity::Info,
            FailOn::Never => return false,
        };
        r.worst().is_some_and(|w| w >= threshold)
    }
}

/// A finding the policy accepts, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub rule: &'static str,
    pub reason: String,
    /// Only findings on exactly this structure path; `None`: every instance of the rule.
    pub structure: Option<String>,
}

impl Waiver {
    fn covers(&self, rule: &str, structure: &str) -> bool {
        self.rule == rule && self.structure.as_deref().is_none_or(|s| s == structure)
    }
}

/// What an acceptable image must be. `None` / `true` means no requirement.
#[derive(Debug, Clone)]
pub struct Requirements {
    pub disk_types: Option<Vec<DiskType>>,
    pub max_virtual_size: Option<u64>,
    pub block_sizes: Option<Vec<u64>>,
    pub logical_sector_sizes: Option<Vec<u32>>,
    pub allow_parent: bool,
    /// "Pending log": the current header's LogGuid is non-zero.
    pub allow_pending_log: bool,
    /// Regions other than the BAT and metadata regions.
    pub allow_unknown_regions: bool,
    /// Metadata items other than the six the specification defines (user items included).
    pub allow_unknown_metadata_items: bool,
}

impl Default for Requirements {
    fn default() -> Self {
        Requirements {
            disk_types: None,
            max_virtual_size: None,
            block_sizes: None,
            logical_sector_sizes: None,
            allow_parent: true,
            allow_pending_log: true,
            allow_unknown_regions: true,
            allow_unknown_metadata_items: true,
        }
    }
}

impl Policy {
    /// True for the empty policy, whose [`Policy::judge`] leaves every report as it is
    /// (`fail_on` is applied by the caller, not by `judge`).
    pub fn is_empty(&self) -> bool {
        // Exhaustive patterns: a new setting cannot be forgotten here.
        let Policy {
            fail_on: _,
            severity,
            waivers,
            require,
        } = self;
        let Requirements {
            disk_types,
            max_virtual_size,
            block_sizes,
            logical_sector_sizes,
            allow_parent,
            allow_pending_log,
            allow_unknown_regions,
            allow_unknown_metadata_items,
        } = require;
        severity.is_empty()
            && waivers.is_empty()
            && disk_types.is_none()
            && max_virtual_size.is_none()
            && block_sizes.is_none()
            && logical_sector_sizes.is_none()
            && *allow_parent
            && *allow_pending_log
            && *allow_unknown_regions
            && *allow_unknown_metadata_items
    }

    /// Applies the policy to the report of `model`'s image, once: requirement findings
    /// (capped at `cap` per rule like any other), then severity overrides, then waivers.
    pub fn judge(&self, model: &Model, report: &mut ImageReport, cap: u64) {
        let mut sink = Sink::new(View::Raw, cap);
        require::run(model, &self.require, &mut sink);
        let (findings, suppressed) = sink.finish();
        report.findings.extend(findings);
        report.suppressed.extend(suppressed);

        for f in &mut report.findings {
            if let Some(&sev) = self.severity.get(f.rule) {
                f.severity = sev;
            }
        }
        for (id, s) in &mut report.suppressed {
            if let Some(&sev) = self.severity.get(id) {
                s.severity = Some(sev);
            }
        }
        sort_findings(&mut report.findings);

        report.waived.clear();
        for (i, f) in report.findings.iter().enumerate() {
            if let Some(w) = self.waivers.iter().find(|w| w.covers(f.rule, &f.structure)) {
                report.waived.insert(i, w.reason.clone());
            }
        }
        // Instances beyond the cap have no structure: only a rule-wide waiver covers them.
        report.waived_suppressed.clear();
        for id in report.suppressed.keys() {
            if let Some(w) = self
                .waivers
                .iter()
                .find(|w| w.rule == *id && w.structure.is_none())
            {
                report.waived_suppressed.insert(id, w.reason.clone());
            }
        }
    }
}
