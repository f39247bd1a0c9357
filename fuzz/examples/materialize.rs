//! Writes image files for output comparisons between two builds (a behaviour-preserving
//! change must give byte-identical reports on all of them; `tools/compare_outputs.sh`):
//! every committed seed of the whole-image targets, and `COUNT` generated images of each
//! kind — structured descriptions, mutated sparse seeds and mutated log rings — from a
//! fixed `SEED`, so two runs write the same files.
//!
//! `cargo run --release --example materialize -- OUTDIR [COUNT] [SEED]`

use arbitrary::{Arbitrary, Unstructured};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use vhdx_check::io::Extent;
use vhdx_check_fuzz::Rng;
use vhdx_check_fuzz::generate::Desc;
use vhdx_check_fuzz::sparse::SparseImage;

/// Writes a sparse file: the extents over a zero background of length `len`.
fn write_sparse(path: &Path, len: u64, extents: &[Extent]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    for e in extents {
        if e.offset >= len {
            continue;
        }
        let n = (len - e.offset).min(e.data.len() as u64) as usize;
        f.seek(SeekFrom::Start(e.offset))?;
        f.write_all(&e.data[..n])?;
    }
    f.set_len(len)
}

/// Writes `bytes` as a sparse file: all-zero 4 KiB pages become holes.
fn write_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let extents: Vec<Extent> = bytes
        .chunks(4096)
        .enumerate()
        .filter(|(_, p)| p.iter().any(|&b| b != 0))
        .map(|(i, p)| Extent {
            offset: (i * 4096) as u64,
            data: p.to_vec(),
        })
        .collect();
    write_sparse(path, bytes.len() as u64, &extents)
}

fn seeds(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect();
    v.sort();
    v
}

/// Flips, overwrites or zeroes a few bytes of the extents (a mutation inside the data the
/// seed holds, where the structures are).
fn mutate_sparse(img: &mut SparseImage, rng: &mut Rng) {
    if img.extents.is_empty() {
        return;
    }
    for _ in 0..1 + rng.below(6) {
        let e = rng.below(img.extents.len() as u64) as usize;
        let data = &mut img.extents[e].data;
        if data.is_empty() {
            continue;
        }
        let at = rng.below(data.len() as u64) as usize;
        match rng.below(3) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next_u64() as u8,
            _ => {
                let n = (1 + rng.below(16) as usize).min(data.len() - at);
                data[at..at + n].fill(0);
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = args.get(1).map(PathBuf::from) else {
        eprintln!("usage: materialize OUTDIR [COUNT] [SEED]");
        std::process::exit(2);
    };
    let count: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(500);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    std::fs::create_dir_all(&out)?;
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut rng = Rng(seed.max(1));
    let mut written = 0usize;

    let sparse_seeds = seeds(&corpus.join("image_sparse"));
    for (name, bytes) in &sparse_seeds {
        let img = SparseImage::decode(bytes);
        write_sparse(
            &out.join(format!("sparse-{name}.vhdx")),
            img.len,
            &img.extents,
        )?;
        written += 1;
    }
    let log_seeds = seeds(&corpus.join("log_ring"));
    for (name, bytes) in &log_seeds {
        let img = vhdx_check_fuzz::log_ring_image(bytes);
        write_bytes(&out.join(format!("log-{name}.vhdx")), &img)?;
        written += 1;
    }
    let desc_seeds = seeds(&corpus.join("image_structured"));
    for (name, bytes) in &desc_seeds {
        if let Ok(desc) = Desc::arbitrary_take_rest(Unstructured::new(bytes)) {
            let built = desc.build();
            write_sparse(
                &out.join(format!("desc-{name}.vhdx")),
                built.len,
                &built.extents(),
            )?;
            written += 1;
        }
    }
    for i in 0..count {
        // A structured description from random bytes (its corruptions included).
        let n = 64 + rng.below(512) as usize;
        let raw = rng.bytes(n);
        if let Ok(desc) = Desc::arbitrary_take_rest(Unstructured::new(&raw)) {
            let built = desc.build();
            write_sparse(
                &out.join(format!("gen-desc-{i:05}.vhdx")),
                built.len,
                &built.extents(),
            )?;
            written += 1;
        }
        // A mutated sparse seed.
        if !sparse_seeds.is_empty() {
            let (name, bytes) = &sparse_seeds[rng.below(sparse_seeds.len() as u64) as usize];
            let mut img = SparseImage::decode(bytes);
            mutate_sparse(&mut img, &mut rng);
            write_sparse(
                &out.join(format!("gen-sparse-{i:05}-{name}.vhdx")),
                img.len,
                &img.extents,
            )?;
            written += 1;
        }
        // A mutated log ring (flags byte kept, a few ring bytes changed).
        if !log_seeds.is_empty() {
            let (name, bytes) = &log_seeds[rng.below(log_seeds.len() as u64) as usize];
            let mut ring = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                if ring.len() > 1 {
                    let at = 1 + rng.below(ring.len() as u64 - 1) as usize;
                    ring[at] = rng.next_u64() as u8;
                }
            }
            let img = vhdx_check_fuzz::log_ring_image(&ring);
            write_bytes(&out.join(format!("gen-log-{i:05}-{name}.vhdx")), &img)?;
            written += 1;
        }
    }
    eprintln!("materialize: wrote {written} images to {}", out.display());
    Ok(())
}
