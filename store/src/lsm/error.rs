//! Typed errors. Every variant carries the facts (which file, which byte) and its message says
//! what to do about it.

use std::path::PathBuf;

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key longer than `Options::max_key_bytes`.
    #[error(
        "key is {len} bytes, over the limit of {max} bytes (Options::max_key_bytes); use a shorter key"
    )]
    KeyTooLarge {
        /// Length of the refused key.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A value longer than `Options::max_value_bytes`.
    #[error(
        "value is {len} bytes, over the limit of {max} bytes (Options::max_value_bytes); split the value or raise the limit"
    )]
    ValueTooLarge {
        /// Length of the refused value.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The empty key is reserved.
    #[error("the empty key is not allowed; use a key of at least one byte")]
    EmptyKey,
    /// Bytes on disk do not decode as the format says they must.
    #[error("corruption in {} at byte {offset}: {reason}; the file is damaged: restore this node's data from a replica", file.display())]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset in the file where decoding failed.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A block or record whose checksum does not match its bytes.
    #[error("checksum mismatch in {} at byte {offset}: stored {expected:#010x}, computed {got:#010x}; the file is damaged: restore this node's data from a replica", file.display())]
    ChecksumMismatch {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the block or record.
        offset: u64,
        /// The checksum stored in the file.
        expected: u32,
        /// The checksum computed over the bytes read.
        got: u32,
    },
    /// An I/O error, with the file it happened on.
    #[error("I/O error on {}: {source}; check the disk, free space and permissions", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The data directory does not exist and `Options::create_if_missing` is false.
    #[error("data directory {} does not exist; create it or set Options::create_if_missing", path.display())]
    MissingDir {
        /// The directory asked for.
        path: PathBuf,
    },
    /// Another engine (in this or another process) has the directory open.
    #[error("data directory {} is locked by another engine; stop the other process or use another directory", path.display())]
    Locked {
        /// The directory asked for.
        path: PathBuf,
    },
    /// The options are inconsistent.
    #[error("invalid options: {reason}")]
    InvalidOptions {
        /// What is wrong with them.
        reason: String,
    },
    /// The engine is shutting down or was closed.
    #[error("the engine is closed; open it again")]
    Closed,
    /// An earlier write-ahead-log or background failure made the engine refuse further writes.
    #[error(
        "the engine stopped accepting writes after an earlier failure: {reason}; close and reopen it (recovery replays the log)"
    )]
    Poisoned {
        /// The earlier failure.
        reason: String,
    },
}

impl Error {
    /// An `Io` error for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A `Corruption` error.
    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// A copy of this error, for handing one failure to every writer of a commit group.
    /// (`std::io::Error` is not `Clone`; the copy keeps its kind and message.)
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::KeyTooLarge { len, max } => Error::KeyTooLarge {
                len: *len,
                max: *max,
            },
            Error::ValueTooLarge { len, max } => Error::ValueTooLarge {
                len: *len,
                max: *max,
            },
            Error::EmptyKey => Error::EmptyKey,
            Error::Corruption {
                file,
                offset,
                reason,
            } => Error::Corruption {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            Error::ChecksumMismatch {
                file,
                offset,
                expected,
                got,
            } => Error::ChecksumMismatch {
                file: file.clone(),
                offset: *offset,
                expected: *expected,
                got: *got,
            },
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::MissingDir { path } => Error::MissingDir { path: path.clone() },
            Error::Locked { path } => Error::Locked { path: path.clone() },
            Error::InvalidOptions { reason } => Error::InvalidOptions {
                reason: reason.clone(),
            },
            Error::Closed => Error::Closed,
            Error::Poisoned { reason } => Error::Poisoned {
                reason: reason.clone(),
            },
        }
    }

    /// True for errors that mean bytes on disk are damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corruption { .. } | Error::ChecksumMismatch { .. }
        )
    }
}
