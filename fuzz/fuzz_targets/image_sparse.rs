#![no_main]
use libfuzzer_sys::fuzz_target;
use vhdx_check_fuzz::sparse::SparseImage;

// The input bytes are decoded by SparseImage's Arbitrary impl (see src/sparse.rs), whose
// Debug output is short (lengths only).
fuzz_target!(|img: SparseImage| vhdx_check_fuzz::image_sparse(&img));
