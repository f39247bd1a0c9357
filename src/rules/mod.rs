//! The checks: one module per rule family (named as its rules/*.toml file), each a list of
//! passes. A pass declares the catalogue ids it emits, as [`id`] constants;
//! `grep -r BAT_013 src/rules` finds the code of a rule. A pass is a pure check over a
//! [`Model`]: [`crate::engine`] decides when, on which view and on which thread it runs.

pub mod catalogue;
pub mod sink;

pub(crate) mod bat;
pub(crate) mod chain;
pub(crate) mod header;
pub(crate) mod identifier;
pub(crate) mod layout;
pub(crate) mod log;
pub(crate) mod metadata;
pub(crate) mod parent;
pub(crate) mod region;
pub(crate) mod sector_bitmap;

pub use crate::findings::{RuleId, id};
use crate::model::Model;
use sink::Sink;

/// Where a known metadata item's value is (for the policy's requirement findings too).
pub(crate) use metadata::value_loc;

/// A check over the model that may emit the listed rule ids.
pub struct Pass {
    pub ids: &'static [RuleId],
    /// Which view of the file the pass judges (CATALOGUE 0.4).
    pub scope: Scope,
    pub run: fn(&Model, &mut Sink),
}

/// The views a pass runs on when the log has a pending replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The bytes as they are: identifier, headers, the log itself.
    Raw,
    /// Structures the log may rewrite: judged on the REPLAYED view, and on RAW too so
    /// LOG-007 can say what replay changes.
    Views,
    /// What replay writes: judged on the view replay produces.
    Replay,
}

/// The parts of `[0, len)` that no range in `used` covers (ranges may overlap, be unsorted
/// or reach past `len`), in order. Sweeps for slack use it.
pub(crate) fn gaps(mut used: Vec<(u64, u64)>, len: u64) -> Vec<(u64, u64)> {
    used.sort_unstable();
    let mut pos = 0u64;
    let mut out = Vec::new();
    for (start, end) in used {
        if start > pos {
            out.push((pos, start.min(len)));
        }
        pos = pos.max(end);
    }
    out.push((pos, len));
    out.retain(|(a, b)| a < b);
    out
}

/// `0x10000` style offsets in messages.
pub(crate) fn hex(v: u64) -> String {
    format!("{v:#x}")
}

#[cfg(test)]
mod tests {
    use super::catalogue::catalogue;

    #[test]
    fn gaps_between_used_ranges() {
        assert_eq!(
            super::gaps(vec![(10, 20), (0, 5), (15, 30)], 40),
            vec![(5, 10), (30, 40)]
        );
        assert_eq!(super::gaps(vec![(0, 50)], 40), vec![]);
        assert_eq!(super::gaps(vec![(60, 70)], 40), vec![(0, 40)]);
    }

    #[test]
    fn catalogue_entries_are_complete() {
        for r in catalogue().rules() {
            assert!(
                !r.title.is_empty() && !r.spec.is_empty() && !r.rationale.is_empty(),
                "{} incomplete",
                r.id
            );
            let (fam, num) = r.id.split_once('-').expect("id is FAMILY-NNN");
            assert!(
                fam.chars().all(|c| c.is_ascii_uppercase()) && num.len() == 3,
                "{}",
                r.id
            );
        }
    }
}
