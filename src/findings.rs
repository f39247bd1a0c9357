//! What the checks report, below the rules that emit it and the renderers that show it:
//! a finding (rule id, severity, place in the file, view), the counts beyond the cap, and
//! one image's report with its verdict helpers.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which bytes a finding was judged on (CATALOGUE 0.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    Raw,
    Replayed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Byte offset in the image file, where known.
    pub offset: Option<u64>,
    pub length: Option<u64>,
    /// Path of the structure, e.g. `region_table[2].entry[1]`, `bat[4097]`.
    pub structure: String,
    /// Specification section, from the catalogue entry.
    pub spec: &'static str,
    pub view: View,
}

/// Where a finding is in the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loc {
    pub offset: Option<u64>,
    pub length: Option<u64>,
}

impl Loc {
    pub fn at(offset: u64, length: u64) -> Loc {
        Loc {
            offset: Some(offset),
            length: Some(length),
        }
    }
    pub const NONE: Loc = Loc {
        offset: None,
        length: None,
    };
}

/// Instances of one rule beyond the shown cap.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Suppressed {
    pub severity: Option<Severity>,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub size: u64,
    pub findings: Vec<Finding>,
    /// Instances beyond `max_per_rule`, per rule.
    pub suppressed: BTreeMap<&'static str, Suppressed>,
    /// Findings a policy waiver covers: index into `findings` -> the waiver's reason.
    /// They stay in the report and never decide the verdict.
    pub waived: BTreeMap<usize, String>,
    /// Rules whose suppressed instances a rule-wide waiver covers, with its reason.
    pub waived_suppressed: BTreeMap<&'static str, String>,
    /// Digests of the file and of the virtual disk, when asked for.
    pub digests: Option<Digests>,
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

    /// The reason of the waiver covering finding `i`, if one does.
    pub fn waiver(&self, i: usize) -> Option<&str> {
        self.waived.get(&i).map(String::as_str)
    }

    /// Findings that decide the verdict: shown ones not waived, and the severity of
    /// each rule's suppressed instances unless a waiver covers them.
    fn deciding(
        &self,
    ) -> (
        impl Iterator<Item = &Finding>,
        impl Iterator<Item = &Suppressed>,
    ) {
        let shown = (self.findings.iter().enumerate())
            .filter(|(i, _)| !self.waived.contains_key(i))
            .map(|(_, f)| f);
        let hidden = (self.suppressed.iter())
            .filter(|(id, _)| !self.waived_suppressed.contains_key(*id))
            .map(|(_, s)| s);
        (shown, hidden)
    }

    /// Instances at exactly `sev`, suppressed ones included, waived ones not.
    pub fn count(&self, sev: Severity) -> u64 {
        let (shown, hidden) = self.deciding();
        let shown = shown.filter(|f| f.severity == sev).count() as u64;
        let hidden: u64 = hidden
            .filter(|s| s.severity == Some(sev))
            .map(|s| s.count)
            .sum();
        shown + hidden
    }

    /// Waived instances, suppressed ones included.
    pub fn count_waived(&self) -> u64 {
        let hidden: u64 = (self.waived_suppressed.keys())
            .filter_map(|id| self.suppressed.get(id))
            .map(|s| s.count)
            .sum();
        self.waived.len() as u64 + hidden
    }

    /// The highest severity present and not waived, if any.
    pub fn worst(&self) -> Option<Severity> {
        let (shown, hidden) = self.deciding();
        let shown = shown.map(|f| f.severity).max();
        let hidden = hidden.filter_map(|s| s.severity).max();
        shown.max(hidden)
    }
}

/// Evidence digests of one image (computed by [`crate::hash`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digests {
    pub algorithm: &'static str,
    /// Digest of the image file, byte for byte.
    pub file: String,
    /// Digest of the virtual disk contents, when they can be known from this file alone.
    pub virtual_disk: Option<String>,
    /// Why `virtual_disk` is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_unavailable: Option<String>,
}

/// The report order (DESIGN: by offset, then rule id); findings without an offset last.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.offset.unwrap_or(u64::MAX), a.rule, a.view).cmp(&(
            b.offset.unwrap_or(u64::MAX),
            b.rule,
            b.view,
        ))
    });
}
