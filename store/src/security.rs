//! Security: TLS on every listener, node identity between peers (mutual TLS), client tokens
//! with roles, and causal contexts signed under a cluster key. A leaf module: the server,
//! the peer pool, the client, the CLI and local clusters use it; it uses none of them.
//!
//! One directory holds a cluster's material ([`files`] names every file); `ringkv certs`
//! and every local cluster make it ([`material::init`]). docs/security.md has the threat
//! model.

pub mod contexts;
pub mod files;
pub mod material;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tonic::{Request, Status};

pub use contexts::ContextSigner;
pub use files::{CA_ENV, CLUSTER_DIR_ENV, TOKEN_ENV};
pub use tokens::{Role, TokenStore};

/// The metadata key a client's token travels in (`authorization: Bearer <token>`).
pub const AUTHORIZATION: &str = "authorization";

/// Why security material could not be made, read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// A file is missing or unreadable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A secret file can be read by other users.
    #[error(
        "{path} is readable by other users (mode {mode:o}); secrets must be private: chmod 600 {path}"
    )]
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Certificates or keys could not be generated or parsed.
    #[error("{0}")]
    Crypto(String),
    /// The request is impossible (a bad node name, a missing CA key).
    #[error("{0}")]
    Invalid(String),
}

impl SecurityError {
    pub(crate) fn file(path: &Path, message: impl std::fmt::Display) -> Self {
        SecurityError::File {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

/// Where one node's material is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePaths {
    /// The cluster CA certificate (trusted for peers and client certificates).
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// This node's private key (secret).
    pub key: PathBuf,
    /// Hashed client tokens with roles (secret).
    pub tokens: PathBuf,
    /// The key contexts are signed under (secret).
    pub cluster_key: PathBuf,
}

impl NodePaths {
    /// The files `ringkv certs` makes for node `id` in `dir`.
    pub fn in_cluster_dir(dir: &Path, id: &str) -> NodePaths {
        NodePaths {
            ca: dir.join(files::CA_CERT),
            cert: files::node_cert(dir, id),
            key: files::node_key(dir, id),
            tokens: dir.join(files::TOKENS),
            cluster_key: dir.join(files::CLUSTER_KEY),
        }
    }
}

/// A node's loaded material: what its listener, its peer connections and its request
/// checks need.
#[derive(Clone)]
pub struct NodeSecurity {
    /// For the listener: this node's identity; peers' certificates checked against the CA.
    pub server_tls: ServerTlsConfig,
    /// For connections to peers: the CA, and this node's identity as a client certificate.
    pub peer_tls: ClientTlsConfig,
    /// Client tokens (re-read when the file changes).
    pub tokens: Arc<TokenStore>,
    /// Signs and checks causal contexts.
    pub contexts: ContextSigner,
}

impl std::fmt::Debug for NodeSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecurity { .. }")
    }
}

impl NodeSecurity {
    /// Reads and checks every file: secrets must be private, the certificate must be a node
    /// certificate of this cluster naming `id`.
    pub fn load(paths: &NodePaths, id: &str) -> Result<NodeSecurity, SecurityError> {
        let ca = files::read_public(&paths.ca)?;
        let cert = files::read_public(&paths.cert)?;
        let key = files::read_private(&paths.key)?;
        let named = material::node_id_of_pem(&cert)
            .map_err(|e| SecurityError::file(&paths.cert, e))?
            .ok_or_else(|| {
                SecurityError::file(
                    &paths.cert,
                    "is not a ringkv node certificate (make one with `ringkv certs`)",
                )
            })?;
        if named != id {
            return Err(SecurityError::file(
                &paths.cert,
                format!("names node {named:?}, not {id:?}; each node needs its own certificate"),
            ));
        }
        let identity = Identity::from_pem(&cert, &key);
        let server_tls = ServerTlsConfig::new()
            .identity(identity.clone())
            .client_ca_root(Certificate::from_pem(&ca))
            .client_auth_optional(true);
        let peer_tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca))
            .identity(identity);
        Ok(NodeSecurity {
            server_tls,
            peer_tls,
            tokens: Arc::new(TokenStore::load(&paths.tokens)?),
            contexts: ContextSigner::load(&paths.cluster_key)?,
        })
    }

    /// Checks a client call's token against the role it needs.
    #[allow(clippy::result_large_err)]
    pub fn authorize(&self, metadata: &MetadataMap, need: Role, what: &str) -> Result<(), Status> {
        let role = self.role_of(metadata)?;
        require(role, need, what)
    }

    /// The role of a client call's token.
    #[allow(clippy::result_large_err)]
    pub fn role_of(&self, metadata: &MetadataMap) -> Result<Role, Status> {
        let Some(value) = metadata.get(AUTHORIZATION) else {
            return Err(Status::unauthenticated(
                "no token: send `authorization: Bearer <token>` (the ringkv CLI and loadgen read RINGKV_TOKEN or RINGKV_CLUSTER_DIR)",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("the authorization header is not `Bearer <token>`")
            })?;
        self.tokens
            .role(token.trim())
            .ok_or_else(|| Status::unauthenticated("the token is not one this cluster accepts"))
    }

    /// Checks that a node-to-node call comes from a node of this cluster: a client
    /// certificate signed by the CA (checked in the handshake) that names a node, matching
    /// the node the call says it is from. Returns that node's id.
    #[allow(clippy::result_large_err)]
    pub fn authorize_peer<T>(
        &self,
        request: &Request<T>,
        from_header: &str,
    ) -> Result<String, Status> {
        let certs = request.peer_certs();
        let Some(leaf) = certs.as_ref().and_then(|c| c.first()) else {
            return Err(Status::unauthenticated(
                "node-to-node calls need a node certificate signed by the cluster CA",
            ));
        };
        let id = match material::node_id_of_der(leaf.as_ref()) {
            Ok(Some(id)) => id,
            Ok(None) => {
                return Err(Status::permission_denied(
                    "a client certificate cannot make node-to-node calls",
                ));
            }
            Err(e) => return Err(Status::permission_denied(e)),
        };
        if let Some(claimed) = request.metadata().get(from_header)
            && claimed.to_str().ok() != Some(id.as_str())
        {
            return Err(Status::permission_denied(format!(
                "the call says it is from {claimed:?} but its certificate names {id:?}"
            )));
        }
        Ok(id)
    }
}

/// Refuses a role below `need`.
#[allow(clippy::result_large_err)]
pub fn require(role: Role, need: Role, what: &str) -> Result<(), Status> {
    if role >= need {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "{what} needs a {} token; this one has the {} role",
            need.as_str(),
            role.as_str()
        )))
    }
}

/// What a client needs to reach a secured cluster.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    /// The cluster CA (PEM); `None` talks plaintext (an `--insecure` cluster).
    pub ca_pem: Option<Arc<Vec<u8>>>,
    /// The bearer token.
    pub token: Option<Arc<str>>,
    /// A client certificate and key (PEM), for clusters that want one.
    pub identity: Option<Arc<(Vec<u8>, Vec<u8>)>>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.ca_pem.is_some())
            .field("token", &self.token.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl ClientSecurity {
    /// No TLS and no token: for `--insecure` clusters.
    pub fn insecure() -> ClientSecurity {
        ClientSecurity::default()
    }

    /// The CA and the admin token of a cluster directory.
    pub fn from_cluster_dir(dir: &Path) -> Result<ClientSecurity, SecurityError> {
        let ca = files::read_public(&dir.join(files::CA_CERT))?;
        let token = files::read_private_text(&dir.join(files::ADMIN_TOKEN))?;
        Ok(ClientSecurity {
            ca_pem: Some(Arc::new(ca)),
            token: Some(Arc::from(token)),
            identity: None,
        })
    }

    /// From files: a CA, a token (file or string) and optionally a client certificate.
    pub fn from_parts(
        ca: Option<&Path>,
        token: Option<String>,
        cert_and_key: Option<(&Path, &Path)>,
    ) -> Result<ClientSecurity, SecurityError> {
        let ca_pem = ca.map(files::read_public).transpose()?.map(Arc::new);
        let identity = match cert_and_key {
            Some((c, k)) => Some(Arc::new((files::read_public(c)?, files::read_private(k)?))),
            None => None,
        };
        Ok(ClientSecurity {
            ca_pem,
            token: token.map(|t| Arc::from(t.trim())),
            identity,
        })
    }

    /// What the environment says: `RINGKV_CLUSTER_DIR`, else `RINGKV_CA` and
    /// `RINGKV_TOKEN`; `None` when none is set.
    pub fn from_env() -> Result<Option<ClientSecurity>, SecurityError> {
        if let Some(dir) = std::env::var_os(CLUSTER_DIR_ENV).filter(|d| !d.is_empty()) {
            return ClientSecurity::from_cluster_dir(Path::new(&dir)).map(Some);
        }
        let ca = std::env::var_os(CA_ENV).filter(|v| !v.is_empty());
        let token = std::env::var(TOKEN_ENV).ok().filter(|v| !v.is_empty());
        if ca.is_none() && token.is_none() {
            return Ok(None);
        }
        ClientSecurity::from_parts(ca.as_deref().map(Path::new), token, None).map(Some)
    }

    /// TLS settings for a channel, or `None` for plaintext.
    pub fn tls_config(&self) -> Option<ClientTlsConfig> {
        let ca = self.ca_pem.as_ref()?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.as_slice()));
        if let Some(id) = &self.identity {
            tls = tls.identity(Identity::from_pem(&id.0, &id.1));
        }
        Some(tls)
    }

    /// The `authorization` value to send, if there is a token.
    pub fn bearer(&self) -> Result<Option<AsciiMetadataValue>, SecurityError> {
        let Some(t) = &self.token else {
            return Ok(None);
        };
        AsciiMetadataValue::try_from(format!("Bearer {t}"))
            .map(Some)
            .map_err(|_| {
                SecurityError::Invalid("the token has characters a header cannot carry".into())
            })
    }
}

/// Adds the bearer token to every call of a client stub.
#[derive(Clone, Debug, Default)]
pub struct Bearer(pub Option<AsciiMetadataValue>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert(AUTHORIZATION, v.clone());
        }
        Ok(request)
    }
}

/// Whether `addr` is a loopback address (where `--insecure` is allowed).
pub fn is_loopback(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}
