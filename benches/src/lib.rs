//! Shared helpers for ringkv's benchmarks.
