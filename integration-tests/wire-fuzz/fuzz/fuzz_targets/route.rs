//! libFuzzer target: `raya_wire_fuzz::targets::route`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| raya_wire_fuzz::targets::route(data));
