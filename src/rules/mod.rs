//! The checks: one module per rule family, each a list of passes. A pass declares the
//! catalogue ids it emits; `grep -r BAT-013 src/rules` finds the code of a rule.

pub mod catalogue;
pub mod finding;
pub mod sink;

mod bat;
mod fti;
mod hdr;
mod layout;
mod meta;
mod rgn;

use crate::model::Model;
use sink::Sink;

/// A check over the model that may emit the listed rule ids.
pub struct Pass {
    pub name: &'static str,
    pub ids: &'static [&'static str],
    pub run: fn(&Model, &mut Sink),
}

/// Every pass, in evaluation order (CATALOGUE 5).
pub fn passes() -> impl Iterator<Item = &'static Pass> {
    [fti::PASSES, hdr::PASSES, rgn::PASSES, meta::PASSES, bat::PASSES, layout::PASSES]
        .into_iter()
        .flatten()
}

/// Every rule id some pass implements.
pub fn implemented_ids() -> impl Iterator<Item = &'static str> {
    passes().flat_map(|p| p.ids.iter().copied())
}

pub fn run_all(model: &Model, sink: &mut Sink) {
    for p in passes() {
        sink.begin_pass(p.ids);
        (p.run)(model, sink);
    }
}

/// `0x10000` style offsets in messages.
pub(crate) fn hex(v: u64) -> String {
    format!("{v:#x}")
}
