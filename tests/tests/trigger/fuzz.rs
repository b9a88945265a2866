//! Outside input never panics the decoder: arbitrary JSON built from the keys the decoders
//! look at, and arbitrary bytes, decode to a result or an error; and a small share of every
//! target of `scripts/fuzz` (which runs a million inputs and writes bench/FUZZ.md).

use std::time::Duration;

use clb_ingress::trigger::{decode, decode_bytes, Payload};
use clb_ingress_tests::fuzz::{json_value, run_target, targets};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_json_decodes_or_errors_without_panicking(v in json_value()) {
        if let Ok(Payload::Decoded(d)) = decode(&v) {
            let skipped: usize = d.skipped.values().sum();
            prop_assert!(d.changes.len() + skipped <= d.items.max(1));
        }
    }

    #[test]
    fn arbitrary_bytes_decode_or_error_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_bytes(&bytes);
    }
}

/// Inputs per run of the test command, split among the targets like `scripts/fuzz` splits its
/// million.
const SMALL_SHARE: u64 = 3000;

#[test]
fn a_small_share_of_every_fuzz_target_finds_no_panic_and_no_hang() {
    let mut total = 0;
    for (i, mut target) in targets().into_iter().enumerate() {
        let inputs = (SMALL_SHARE * u64::from(target.share) / 1000).max(20);
        let found = run_target(
            &mut target,
            inputs,
            1000 + i as u64,
            Duration::from_secs(10),
        );
        assert_eq!(found.inputs, inputs, "{}", found.name);
        assert_eq!(
            (found.panics, found.hangs),
            (0, 0),
            "{}: first panic {:?}",
            found.name,
            found.first_panic
        );
        total += found.inputs;
    }
    assert!(total >= SMALL_SHARE);
}
