//! Signed causal contexts. A context a node hands a client is `context ‖ tag`, where the
//! tag is HMAC-SHA256 under the cluster key over the key and the context; a node takes a
//! context back only if the tag matches. A client therefore cannot forge a context, nor
//! move one from one key to another (either could make a write supersede versions its
//! writer never saw). An empty context (a blind write) needs no tag.

use std::path::Path;

use bytes::Bytes;
use ring::hmac;
use subtle::ConstantTimeEq;

use super::SecurityError;
use super::files;

/// Bytes of the tag appended to a context.
pub const TAG_BYTES: usize = 32;

/// Signs and checks contexts under the cluster key.
#[derive(Clone)]
pub struct ContextSigner {
    key: hmac::Key,
}

/// A context the cluster did not issue for this key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the causal context is not one this cluster issued for this key (its signature does not match); pass the context a get of this key returned, or none"
)]
pub struct Forged;

impl ContextSigner {
    /// A signer for a raw key.
    pub fn new(key: &[u8]) -> ContextSigner {
        ContextSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// Reads the cluster key file (hex, private).
    pub fn load(path: &Path) -> Result<ContextSigner, SecurityError> {
        let text = files::read_private_text(path)?;
        let text = text.as_str();
        let key: Option<Vec<u8>> = (text.len() >= 32 && text.len().is_multiple_of(2))
            .then(|| {
                (0..text.len())
                    .step_by(2)
                    .map(|i| {
                        text.get(i..i + 2)
                            .and_then(|p| u8::from_str_radix(p, 16).ok())
                    })
                    .collect()
            })
            .flatten();
        let key = key.ok_or_else(|| {
            SecurityError::file(path, "must hold at least 16 bytes of key as hex")
        })?;
        Ok(ContextSigner::new(&key))
    }

    fn tag(&self, key: &[u8], context: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(key.len() as u64).to_be_bytes());
        ctx.update(key);
        ctx.update(context);
        ctx.sign()
    }

    /// `context ‖ tag` for `key`.
    pub fn sign(&self, key: &[u8], context: &[u8]) -> Bytes {
        if context.is_empty() {
            return Bytes::new();
        }
        let tag = self.tag(key, context);
        let mut out = Vec::with_capacity(context.len() + TAG_BYTES);
        out.extend_from_slice(context);
        out.extend_from_slice(tag.as_ref());
        Bytes::from(out)
    }

    /// The context inside a signed one, if the tag matches (compared in constant time).
    pub fn verify(&self, key: &[u8], signed: &Bytes) -> Result<Bytes, Forged> {
        if signed.is_empty() {
            return Ok(Bytes::new());
        }
        let split = signed.len().checked_sub(TAG_BYTES).ok_or(Forged)?;
        let (context, tag) = signed.split_at(split);
        if bool::from(self.tag(key, context).as_ref().ct_eq(tag)) {
            Ok(signed.slice(..split))
        } else {
            Err(Forged)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_verifies_only_unchanged_and_for_its_key() {
        let s = ContextSigner::new(b"0123456789abcdef0123456789abcdef");
        let signed = s.sign(b"k1", b"ctx");
        assert_eq!(
            s.verify(b"k1", &signed).unwrap(),
            Bytes::from_static(b"ctx")
        );
        assert_eq!(
            s.verify(b"k2", &signed),
            Err(Forged),
            "moved to another key"
        );
        let mut bad = signed.to_vec();
        bad[0] ^= 1;
        assert_eq!(s.verify(b"k1", &Bytes::from(bad)), Err(Forged), "tampered");
        assert_eq!(
            s.verify(b"k1", &Bytes::from_static(b"ctx")),
            Err(Forged),
            "unsigned"
        );
        let other = ContextSigner::new(b"another key, another cluster....");
        assert_eq!(other.verify(b"k1", &signed), Err(Forged), "other cluster");
        assert!(
            s.verify(b"k1", &Bytes::new()).unwrap().is_empty(),
            "blind write"
        );
    }
}
