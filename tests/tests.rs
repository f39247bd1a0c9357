//! The integration-test binary (one binary, many modules).

mod batch;
mod builder;
mod chain;
mod cli;
mod corpus_images;
mod docs;
mod edges_input;
mod edges_output;
mod evidence;
mod habits;
mod html;
mod log_bounds;
mod not_vhdx;
mod outside_corpora;
mod policy;
mod qemu_differential;
mod replay;
mod rules_bat;
mod rules_header;
mod rules_log;
mod rules_metadata;
mod rules_parent;
mod rules_region;
mod sarif;
mod schemas;
mod virtual_disk;
