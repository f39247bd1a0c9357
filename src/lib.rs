//! vhdx-check: a forensic validator for Microsoft VHDX (MS-VHDX) images.
//!
//! Data flow, one direction: [`io`] (read-only bytes) → [`format`] (spec-named structures,
//! no judgement) → [`model`] (the image as understood) → [`rules`] (one check per catalogue
//! id) → [`engine`] (models, views, pass schedule, threads) → [`policy`] (overrides,
//! waivers, requirements) → [`report`] (text, JSON, SARIF). [`findings`] (what a check
//! reports) sits below the rules; [`check`] is the engine's public front.
//! Beside the flow: [`hash`] (evidence digests), [`batch`] (many images in parallel) and
//! [`replay`] (a replayed copy written to a new file), [`export`] (the virtual disk as a
//! raw image, and its allocation map), [`newfile`] (how both create their output);
//! [`threads`] (in the engine) starts helper threads; [`embed`] is the entry point of
//! embedding programs (the Python bindings).
#![forbid(unsafe_code)]

pub mod batch;
pub mod chain;
pub mod check;
pub mod cli;
pub mod embed;
pub mod engine;
pub mod export;
pub mod findings;
pub mod format;
pub mod hash;
pub mod io;
pub mod model;
pub mod newfile;
pub mod output;
pub mod policy;
pub mod replay;
pub mod report;
pub mod rules;

pub use check::{CheckOptions, check};
/// Kept at its old path for the modules that start helper threads.
pub use engine::threads;
pub use findings::{Finding, ImageReport, Severity, View};
