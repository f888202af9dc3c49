//! ringkv's store: a Dynamo-style distributed key-value store.

pub mod proto {
    //! Generated from `proto/ringkv.proto`.
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("ringkv.v1");
}

pub mod ring;
pub mod version;
