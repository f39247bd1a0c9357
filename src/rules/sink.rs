//! Collects findings: severity from the catalogue, per-rule cap, deterministic order.

use super::catalogue::catalogue;
use crate::findings::{Finding, Loc, RuleId, Severity, Suppressed, View};
use std::collections::BTreeMap;

/// Per-rule state, found by the address of the id literal: a per-entry rule on a hostile
/// 4 GiB BAT emits hundreds of millions of instances, so the hot path avoids hashing and
/// string compares.
struct RuleCount {
    id: &'static str,
    default: Severity,
    spec: &'static str,
    count: u64,
    /// Highest severity among the instances beyond the cap.
    suppressed_severity: Option<Severity>,
}

pub struct Sink {
    view: View,
    cap: u64,
    allowed: &'static [RuleId],
    findings: Vec<Finding>,
    counts: Vec<RuleCount>,
    /// (address of an id literal, index into `counts`): two literals of one id share a counter.
    keys: Vec<(usize, usize)>,
    last: (usize, usize),
}

impl Sink {
    pub fn new(view: View, cap: u64) -> Sink {
        Sink {
            view,
            cap,
            allowed: &[],
            findings: Vec::new(),
            counts: Vec::new(),
            keys: Vec::new(),
            last: (0, usize::MAX),
        }
    }

    /// Declares the ids the running pass may emit: a pass emitting an id it does not
    /// declare is a programming error, caught by debug builds (tests, fuzzing).
    pub fn begin_pass(&mut self, ids: &'static [RuleId]) {
        self.allowed = ids;
    }

    /// Reports an instance of rule `id` at the catalogue severity. `describe` returns the
    /// structure path and the message; it is only called for instances that are shown.
    pub fn emit(&mut self, id: RuleId, loc: Loc, describe: impl FnOnce() -> (String, String)) {
        let n = self.counter(id);
        let sev = self.counts[n].default;
        self.record(n, sev, loc, describe);
    }

    /// As [`Sink::emit`], with a severity the catalogue allows for the case (downgrades).
    pub fn emit_as(
        &mut self,
        id: RuleId,
        severity: Severity,
        loc: Loc,
        describe: impl FnOnce() -> (String, String),
    ) {
        let n = self.counter(id);
        self.record(n, severity, loc, describe);
    }

    /// As [`Sink::emit`], at the catalogue severity lowered to `at_most` if above it (a
    /// fault in a redundant copy that is not the one in use).
    pub fn emit_at_most(
        &mut self,
        id: RuleId,
        at_most: Severity,
        loc: Loc,
        describe: impl FnOnce() -> (String, String),
    ) {
        let n = self.counter(id);
        let sev = self.counts[n].default.min(at_most);
        self.record(n, sev, loc, describe);
    }

    /// Counts `n` more instances of rule `id` at the catalogue severity without describing
    /// them, if its cap is already reached (they would not be shown): for rules that fire
    /// on millions of BAT entries at once. Returns false, counting nothing, otherwise.
    pub fn emit_hidden(&mut self, id: RuleId, n: u64) -> bool {
        let k = self.counter(id);
        let c = &mut self.counts[k];
        if c.count < self.cap {
            return false;
        }
        c.count = c.count.saturating_add(n);
        if n > 0 {
            c.suppressed_severity = c.suppressed_severity.max(Some(c.default));
        }
        true
    }

    /// Index of the counter for `id`, creating it (with the catalogue's data) on first use.
    fn counter(&mut self, id: RuleId) -> usize {
        let id = id.as_str();
        let key = id.as_ptr() as usize;
        if self.last.0 == key {
            return self.last.1;
        }
        let n = match self.keys.iter().find(|(k, _)| *k == key) {
            Some(&(_, n)) => n,
            None => {
                let n = match self.counts.iter().position(|c| c.id == id) {
                    Some(n) => n,
                    None => {
                        debug_assert!(
                            catalogue().get(id).is_some(),
                            "rule {id} is not in rules/*.toml"
                        );
                        debug_assert!(
                            self.allowed.iter().any(|a| a.as_str() == id),
                            "rule {id} emitted by a pass that does not declare it"
                        );
                        let rule = catalogue().get(id);
                        self.counts.push(RuleCount {
                            id,
                            default: rule.map_or(Severity::Error, |r| r.severity),
                            spec: rule.map_or("", |r| r.spec),
                            count: 0,
                            suppressed_severity: None,
                        });
                        self.counts.len() - 1
                    }
                };
                self.keys.push((key, n));
                n
            }
        };
        self.last = (key, n);
        n
    }

    fn record(
        &mut self,
        n: usize,
        severity: Severity,
        loc: Loc,
        describe: impl FnOnce() -> (String, String),
    ) {
        let c = &mut self.counts[n];
        c.count += 1;
        if c.count > self.cap {
            c.suppressed_severity = c.suppressed_severity.max(Some(severity));
            return;
        }
        let (id, spec) = (c.id, c.spec);
        let (structure, message) = describe();
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

    /// An empty sink with this one's view and cap, for passes run on another thread.
    pub fn fork(&self) -> Sink {
        Sink::new(self.view, self.cap)
    }

    /// An empty sink with this one's cap for findings judged on `view`.
    pub fn fork_view(&self, view: View) -> Sink {
        Sink::new(view, self.cap)
    }

    /// The findings shown so far.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// As [`Sink::emit`], for a finding that belongs to `view` rather than this sink's.
    pub fn emit_in_view(
        &mut self,
        id: RuleId,
        view: View,
        loc: Loc,
        describe: impl FnOnce() -> (String, String),
    ) {
        let n = self.counter(id);
        let sev = self.counts[n].default;
        let before = self.findings.len();
        self.record(n, sev, loc, describe);
        if let Some(f) = self.findings.get_mut(before) {
            f.view = view;
        }
    }

    /// Takes in the findings and counts of a forked sink whose passes claim other ids
    /// than this one's (each rule's count stays in one sink, so caps are unchanged).
    pub fn join(&mut self, other: Sink) {
        debug_assert!(
            other
                .counts
                .iter()
                .all(|c| self.counts.iter().all(|d| d.id != c.id)),
            "joined sinks share a rule"
        );
        self.findings.extend(other.findings);
        // Appended: this sink's address keys stay valid; the other's ids are found by
        // name if they are emitted again.
        self.counts.extend(other.counts);
    }

    /// Instances of `id` so far, shown and beyond the cap.
    pub fn total(&self, id: &str) -> u64 {
        self.counts
            .iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.count)
    }

    /// Whether some instances of `id` are beyond the cap (not shown).
    pub fn capped(&self, id: &str) -> bool {
        self.total(id) > self.cap
    }

    pub fn finish(self) -> (Vec<Finding>, BTreeMap<&'static str, Suppressed>) {
        let mut suppressed: BTreeMap<&'static str, Suppressed> = BTreeMap::new();
        for c in self.counts.iter().filter(|c| c.count > self.cap) {
            suppressed.insert(
                c.id,
                Suppressed {
                    severity: c.suppressed_severity,
                    count: c.count - self.cap,
                },
            );
        }
        (self.findings, suppressed)
    }
}
