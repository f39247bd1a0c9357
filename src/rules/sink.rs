//! Collects findings: severity from the catalogue, per-rule cap, deterministic order.

use super::catalogue::catalogue;
use super::finding::{Finding, Severity, View};
use std::collections::BTreeMap;

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

pub struct Sink {
    view: View,
    cap: u64,
    allowed: &'static [&'static str],
    findings: Vec<Finding>,
    per_rule: BTreeMap<&'static str, u64>,
    suppressed: BTreeMap<&'static str, Suppressed>,
}

impl Sink {
    pub fn new(view: View, cap: u64) -> Sink {
        Sink {
            view,
            cap,
            allowed: &[],
            findings: Vec::new(),
            per_rule: BTreeMap::new(),
            suppressed: BTreeMap::new(),
        }
    }

    /// Declares the ids the running pass may emit: a pass emitting an id it does not
    /// declare is a programming error, caught by debug builds (tests, fuzzing).
    pub fn begin_pass(&mut self, ids: &'static [&'static str]) {
        self.allowed = ids;
    }

    /// Reports an instance of rule `id` at the catalogue severity. `describe` returns the
    /// structure path and the message; it is only called for instances that are shown.
    pub fn emit(
        &mut self,
        id: &'static str,
        loc: Loc,
        describe: impl FnOnce() -> (String, String),
    ) {
        let sev = catalogue()
            .get(id)
            .map(|r| r.severity)
            .unwrap_or(Severity::Error);
        self.emit_as(id, sev, loc, describe);
    }

    /// As [`Sink::emit`], with a severity the catalogue allows for the case (downgrades).
    pub fn emit_as(
        &mut self,
        id: &'static str,
        severity: Severity,
        loc: Loc,
        describe: impl FnOnce() -> (String, String),
    ) {
        debug_assert!(
            catalogue().get(id).is_some(),
            "rule {id} is not in rules/*.toml"
        );
        debug_assert!(
            self.allowed.contains(&id),
            "rule {id} emitted by a pass that does not declare it"
        );
        let n = self.per_rule.entry(id).or_insert(0);
        *n += 1;
        if *n > self.cap {
            let s = self.suppressed.entry(id).or_default();
            s.count += 1;
            s.severity = s.severity.max(Some(severity));
            return;
        }
        let (structure, message) = describe();
        let spec = catalogue().get(id).map(|r| r.spec.as_str()).unwrap_or("");
        self.findings.push(Finding {
            rule: id,
            severity,
            message,
            offset: loc.offset,
            length: loc.length,
            structure,
            spec,
            view: self.view,
        });
    }

    pub fn fired(&self, id: &str) -> bool {
        self.per_rule.contains_key(id)
    }

    pub fn finish(self) -> (Vec<Finding>, BTreeMap<&'static str, Suppressed>) {
        (self.findings, self.suppressed)
    }
}
