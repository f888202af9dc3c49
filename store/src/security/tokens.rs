//! Client tokens: random strings, stored on nodes only as SHA-256 hashes, each with a role.
//!
//! The tokens file has one token per line, `ROLE SHA256-HEX NAME`; `#` starts a comment.
//! Several tokens may be valid at once, so a token is rotated by adding the new one
//! (`ringkv token`), moving clients over, then deleting the old line. A node re-reads the
//! file within [`RELOAD_EVERY`] of a change; a file that no longer parses is reported and
//! the tokens already loaded stay in force.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use ring::digest::{SHA256, digest};

use super::SecurityError;
use super::files;

/// How often (at most) a node looks at the tokens file for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// What every token starts with, so a leaked one is easy to recognise.
const TOKEN_PREFIX: &str = "rkv_";

/// What a token may do. Ordered: each role includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Get and status.
    Read,
    /// Read, put and delete.
    ReadWrite,
    /// Everything, including join, leave, repair, cleanup and fault injection.
    Admin,
}

impl Role {
    /// The name in the tokens file and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::ReadWrite => "readwrite",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Role::Read),
            "readwrite" => Ok(Role::ReadWrite),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("role {s:?} is not one of read, readwrite, admin")),
        }
    }
}

/// A fresh token.
pub fn new_token() -> Result<String, SecurityError> {
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        super::material::random_hex(TOKEN_BYTES)?
    ))
}

fn hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Parses a tokens file.
fn parse(text: &str, path: &Path) -> Result<HashMap<[u8; 32], Role>, SecurityError> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| SecurityError::file(path, format!("line {}: {why}", n + 1));
        let mut parts = line.split_whitespace();
        let role: Role = parts.next().unwrap_or_default().parse().map_err(bad)?;
        let h = parts.next().and_then(unhex32).ok_or_else(|| {
            bad("the second field must be a SHA-256 hash in hex (64 digits)".into())
        })?;
        out.insert(h, role);
    }
    Ok(out)
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When the file was last read (modification time and length), and what it held.
type Loaded = (Option<(SystemTime, u64)>, HashMap<[u8; 32], Role>);

/// The tokens a node accepts.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    state: RwLock<Loaded>,
    checked_ms: AtomicU64,
}

impl TokenStore {
    /// Reads the tokens file; it must be private and parse.
    pub fn load(path: &Path) -> Result<TokenStore, SecurityError> {
        let tokens = parse(&files::read_private_text(path)?, path)?;
        Ok(TokenStore {
            path: path.to_path_buf(),
            state: RwLock::new((modified(path), tokens)),
            checked_ms: AtomicU64::new(now_ms()),
        })
    }

    /// The tokens-file line for a token.
    pub fn line(role: Role, token: &str, name: &str) -> String {
        format!("{} {} {name}", role.as_str(), hex(&hash(token)))
    }

    /// The role of a token, if it is accepted.
    pub fn role(&self, token: &str) -> Option<Role> {
        self.maybe_reload();
        self.state.read().1.get(&hash(token)).copied()
    }

    fn maybe_reload(&self) {
        let now = now_ms();
        let last = self.checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < RELOAD_EVERY.as_millis() as u64
            || self
                .checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let stamp = modified(&self.path);
        if stamp == self.state.read().0 {
            return;
        }
        let loaded = files::read_private_text(&self.path).and_then(|text| parse(&text, &self.path));
        match loaded {
            Ok(tokens) => {
                tracing::info!(path = %self.path.display(), tokens = tokens.len(), "tokens file re-read");
                *self.state.write() = (stamp, tokens);
            }
            Err(e) => {
                tracing::error!(error = %e, "tokens file changed but cannot be used; the tokens already loaded stay in force");
                self.state.write().0 = stamp;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_lines_round_trip() {
        assert!(Role::Admin > Role::ReadWrite && Role::ReadWrite > Role::Read);
        let t = new_token().unwrap();
        let parsed = parse(&TokenStore::line(Role::Read, &t, "ci"), Path::new("x")).unwrap();
        assert_eq!(parsed.get(&hash(&t)), Some(&Role::Read));
        assert!(parse("root abc", Path::new("x")).is_err());
        assert!(parse("read 1234", Path::new("x")).is_err());
    }

    #[test]
    fn a_token_added_to_the_file_is_accepted_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens");
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        files::append_private(&p, &TokenStore::line(Role::Admin, &a, "a")).unwrap();
        let store = TokenStore::load(&p).unwrap();
        assert_eq!(store.role(&a), Some(Role::Admin));
        assert_eq!(store.role(&b), None);
        files::append_private(&p, &TokenStore::line(Role::Read, &b, "b")).unwrap();
        store.checked_ms.store(0, Ordering::Relaxed);
        assert_eq!(store.role(&b), Some(Role::Read));
        assert_eq!(
            store.role(&a),
            Some(Role::Admin),
            "both valid during a rotation"
        );
    }
}
