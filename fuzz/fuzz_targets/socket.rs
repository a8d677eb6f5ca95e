#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: zmtp_fuzz::init(),
    |data: &[u8]| zmtp_core::fuzzing::socket(data)
);
