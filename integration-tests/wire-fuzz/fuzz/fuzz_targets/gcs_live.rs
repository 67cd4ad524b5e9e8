//! libFuzzer target: `raya_wire_fuzz::targets::gcs_live`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raya_wire_fuzz::targets::gcs_live(data));
