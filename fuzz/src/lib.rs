//! Shared set-up for the fuzz targets in `fuzz_targets/`; the entry points themselves live in
//! `zmtp_core::fuzzing` so `cargo test` can replay findings through the same code.

/// Reads `ZMTP_FUZZ_TOLERATE` (comma-separated ids of open findings, see FUZZING.md) and
/// tells the oracle to look past those bugs. Unset: every check is strict.
pub fn init() {
    let ids = std::env::var("ZMTP_FUZZ_TOLERATE").unwrap_or_default();
    if !ids.trim().is_empty() {
        let unknown = zmtp_core::fuzzing::tolerate(&ids);
        assert_eq!(
            unknown, 0,
            "ZMTP_FUZZ_TOLERATE={ids:?} names unknown findings"
        );
        eprintln!("zmtp-fuzz: tolerating open findings {ids:?}");
    }
}
