//! The integration-test binary (one binary, many modules).

mod batch;
mod builder;
mod chain;
mod cli;
mod corpus_images;
mod evidence;
mod html;
mod log_bounds;
mod policy;
mod replay;
mod rules_bat;
mod rules_header;
mod rules_log;
mod rules_metadata;
mod rules_parent;
mod rules_region;
mod sarif;
