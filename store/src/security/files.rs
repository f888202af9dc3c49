//! The files of a cluster directory, and reading and writing them with the right
//! permissions: secrets are created 0600 and refused when other users can read them.
//!
//! ```text
//! D/ca.pem            the cluster CA certificate (public; clients trust it)
//! D/ca.key            the CA's private key (only `ringkv certs` needs it)
//! D/admin.token       a token with the admin role
//! D/tokens            every accepted token, hashed, with its role (nodes read it)
//! D/cluster.key       the key causal contexts are signed under (nodes read it)
//! D/nodes/ID.pem      node ID's certificate
//! D/nodes/ID.key      node ID's private key
//! ```

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::SecurityError;

/// A cluster directory (the CLI, the loadgen and external clients read it).
pub const CLUSTER_DIR_ENV: &str = "RINGKV_CLUSTER_DIR";
/// A CA file to trust, when there is no cluster directory.
pub const CA_ENV: &str = "RINGKV_CA";
/// A token string, when there is no cluster directory.
pub const TOKEN_ENV: &str = "RINGKV_TOKEN";

/// The CA certificate.
pub const CA_CERT: &str = "ca.pem";
/// The CA's private key.
pub const CA_KEY: &str = "ca.key";
/// A token with the admin role.
pub const ADMIN_TOKEN: &str = "admin.token";
/// Hashed tokens and roles.
pub const TOKENS: &str = "tokens";
/// The context-signing key.
pub const CLUSTER_KEY: &str = "cluster.key";
/// Node certificates and keys.
pub const NODES: &str = "nodes";

/// Permission bits that let other users read, write or run a file.
const OTHERS: u32 = 0o077;

/// Node `id`'s certificate in cluster directory `dir`.
pub fn node_cert(dir: &Path, id: &str) -> PathBuf {
    dir.join(NODES).join(format!("{id}.pem"))
}

/// Node `id`'s private key in cluster directory `dir`.
pub fn node_key(dir: &Path, id: &str) -> PathBuf {
    dir.join(NODES).join(format!("{id}.key"))
}

/// Reads a file anyone may read (a certificate).
pub fn read_public(path: &Path) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|e| SecurityError::file(path, e))
}

/// Reads a secret, refusing it when other users can read it.
pub fn read_private(path: &Path) -> Result<Vec<u8>, SecurityError> {
    check_private(path)?;
    read_public(path)
}

/// Reads a secret text file, trimmed, refusing it when other users can read it.
pub fn read_private_text(path: &Path) -> Result<String, SecurityError> {
    let bytes = read_private(path)?;
    String::from_utf8(bytes)
        .map(|t| t.trim().to_string())
        .map_err(|_| SecurityError::file(path, "is not text"))
}

/// Refuses a secret file other users can read.
pub fn check_private(path: &Path) -> Result<(), SecurityError> {
    let meta = std::fs::metadata(path).map_err(|e| SecurityError::file(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & OTHERS != 0 {
        return Err(SecurityError::NotPrivate {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Creates `dir` (and missing parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), SecurityError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| SecurityError::file(dir, e))
}

/// Writes a new file atomically (temp file, fsync, rename), 0600 for secrets and 0644
/// otherwise. Never overwrites an existing file.
pub fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), SecurityError> {
    if path.exists() {
        return Err(SecurityError::file(path, "exists already; not overwritten"));
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(|e| SecurityError::file(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| SecurityError::file(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| SecurityError::file(path, e))
}

/// Appends a line to a secret file (creating it 0600).
pub fn append_private(path: &Path, line: &str) -> Result<(), SecurityError> {
    if path.exists() {
        check_private(path)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| SecurityError::file(path, e))?;
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| SecurityError::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_written_private_and_world_readable_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        write_new(&p, b"x", true).unwrap();
        assert_eq!(read_private(&p).unwrap(), b"x");
        assert!(write_new(&p, b"y", true).is_err(), "never overwrites");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_private(&p).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
