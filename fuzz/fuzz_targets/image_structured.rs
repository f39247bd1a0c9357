#![no_main]
use libfuzzer_sys::fuzz_target;
use vhdx_check_fuzz::generate::Desc;

fuzz_target!(|desc: Desc| vhdx_check_fuzz::image_structured(&desc));
