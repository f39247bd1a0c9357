//! Replays every committed seed and regression input through the fuzz entry functions:
//! `cargo test` in fuzz/ (no libFuzzer run needed).
//!
//! corpus/<target>/*            seeds of each target
//! corpus/regressions/<target>-* minimized crash inputs (must no longer crash once fixed)

use std::path::{Path, PathBuf};
use vhdx_check_fuzz::{generate::Desc, sparse::SparseImage};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus")
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let dir = corpus().join(target);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            out.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    if let Ok(rd) = std::fs::read_dir(corpus().join("regressions")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{target}-")) {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn replay(target: &str, f: impl Fn(&[u8])) {
    let inputs = inputs(target);
    for (path, data) in &inputs {
        eprintln!("{target}: {}", path.display());
        f(data);
    }
    eprintln!("{target}: {} inputs", inputs.len());
}

#[test]
fn parse_header() {
    replay("parse_header", vhdx_check_fuzz::parse_header);
}

#[test]
fn parse_region_table() {
    replay("parse_region_table", vhdx_check_fuzz::parse_region_table);
}

#[test]
fn parse_metadata_table() {
    replay(
        "parse_metadata_table",
        vhdx_check_fuzz::parse_metadata_table,
    );
}

#[test]
fn image_sparse() {
    replay("image_sparse", |d| {
        vhdx_check_fuzz::image_sparse(&SparseImage::decode(d))
    });
}

fn desc(data: &[u8]) -> Option<Desc> {
    use arbitrary::{Arbitrary, Unstructured};
    Desc::arbitrary_take_rest(Unstructured::new(data)).ok()
}

#[test]
fn image_structured() {
    replay("image_structured", |d| {
        if let Some(desc) = desc(d) {
            vhdx_check_fuzz::image_structured(&desc);
        }
    });
}

/// The seed images decode to what qemu-img wrote: a sanity check of the encoding.
#[test]
fn qemu_seeds_are_accepted() {
    for (path, data) in inputs("image_sparse") {
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("qemu-")
        {
            continue;
        }
        let r = vhdx_check_fuzz::check_image(&SparseImage::decode(&data).reader());
        assert_eq!(
            r.count(vhdx_check::Severity::Error),
            0,
            "{}: {:#?}",
            path.display(),
            r.findings
        );
    }
}

/// A spread of uncorrupted generated images (every block size, both sector sizes, both
/// kinds, sizes from one sector to the cap) has no error finding.
#[test]
fn generated_valid_images_have_no_errors() {
    use vhdx_check_fuzz::generate::{Alloc, AllocState, Kind};
    let mut n = 0;
    for kind in [Kind::Dynamic, Kind::Fixed] {
        for bs in 0..9u8 {
            for lss in [false, true] {
                for exp in [0u8, 9, 20, 26, 33, 40, 46] {
                    let d = Desc {
                        kind,
                        block_size_log2: bs,
                        logical_4k: lss,
                        physical_4k: !lss,
                        size_exp: exp,
                        size_mant: 3,
                        log_mib: exp % 3,
                        bat_first: exp % 2 == 1,
                        sequence: exp as u64 * 77,
                        blocks: (0..5)
                            .map(|k| Alloc {
                                block: k * 4099,
                                state: [
                                    AllocState::FullyPresent,
                                    AllocState::Zero,
                                    AllocState::Unmapped,
                                ][k as usize % 3],
                                fill: k as u8,
                            })
                            .collect(),
                        corruptions: vec![],
                        reseal: false,
                    };
                    vhdx_check_fuzz::image_structured(&d);
                    n += 1;
                }
            }
        }
    }
    eprintln!("{n} generated images");
}
