//! Benchmarks only: see benches/verify.rs and scripts/bench-verifier.sh.
