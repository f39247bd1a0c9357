//! The integration-test binary (one binary, many modules).

mod builder;
mod cli;
mod corpus_images;
