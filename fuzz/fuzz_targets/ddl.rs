//! `billmgr_ops::fuzzing::ddl`: see src/fuzzing.rs for its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| billmgr_ops::fuzzing::ddl(data));
