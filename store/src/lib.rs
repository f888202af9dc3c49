//! ringkv's store: a Dynamo-style distributed key-value store.
//!
//! Modules, top of the stack first (dependencies point down):
//!
//! - [`cli`]: `ringkv` subcommands and the node entry point both binaries use.
//! - [`server`]: gRPC services over the coordinator and the local replica.
//! - [`coordinator`]: quorum reads and writes, read repair, sloppy quorum.
//! - [`cluster`]: peers (pipelined streams), ring in force, membership, faults.
//! - [`replica`]: one node's versioned data, Merkle index and hints.
//! - [`lsm`]: the storage engine (synchronous, no network).
//! - [`ring`], [`version`]: consistent hashing and causal versions (leaves);
//!   [`audit`]: the lost-write check over a client history (a leaf).
//! - [`client`]: the Rust client; [`local_cluster`]: real node processes on
//!   127.0.0.1 for `ringkv cluster up`, the loadgen and the tests.
//! - [`config`]: node configuration and every named limit; [`procstat`]: a
//!   process's `/proc` counters (a leaf).
//! - [`security`]: TLS material, tokens and signed contexts (a leaf).
//! - [`proto`]: generated from `proto/ringkv.proto`; [`wire`]: conversions.

pub mod audit;
pub mod autoscale;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod local_cluster;
pub mod lsm;
pub mod procstat;
pub mod replica;
pub mod ring;
pub mod security;
pub mod server;
pub mod version;
pub mod wire;

pub mod proto {
    //! Generated from `proto/ringkv.proto`.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("ringkv.v1");
}
