//! The integration-test binary (one binary, many modules).

mod builder;
mod cli;
mod corpus_images;
mod rules_bat;
mod rules_header;
mod rules_metadata;
mod rules_region;
mod chain;
mod rules_parent;
