//! Making a cluster's material (`ringkv certs`, local clusters): a CA, node certificates,
//! an admin token and the context key; and reading a node's identity back out of a
//! certificate.
//!
//! A node certificate's subject is `CN=<node id>, OU=ringkv-node`; its names (SANs) are
//! `localhost`, `127.0.0.1`, `::1`, the node id when it is a DNS name, and any host given
//! with `ID@HOST`. Client certificates carry `OU=ringkv-client` and cannot make
//! node-to-node calls.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use ring::rand::{SecureRandom, SystemRandom};

use super::SecurityError;
use super::files::{self, ADMIN_TOKEN, CA_CERT, CA_KEY, CLUSTER_KEY, NODES, TOKENS};
use super::tokens::{Role, TokenStore, new_token};

/// The subject OU of node certificates.
const NODE_OU: &str = "ringkv-node";
/// The subject OU of client certificates.
const CLIENT_OU: &str = "ringkv-client";
/// How long generated certificates are valid, in days.
const VALID_DAYS: i64 = 3650;

/// A node to make a certificate for: `ID` or `ID@HOST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeName {
    /// Node id.
    pub id: String,
    /// Extra host names or addresses it is reached at.
    pub hosts: Vec<String>,
}

impl std::str::FromStr for NodeName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, host) = match s.split_once('@') {
            Some((id, host)) => (id, Some(host)),
            None => (s, None),
        };
        check_name(id)?;
        let hosts = match host {
            Some(h) if h.is_empty() || h.contains(char::is_whitespace) => {
                return Err(format!("{s:?}: the host after @ is empty or has spaces"));
            }
            Some(h) => vec![h.to_string()],
            None => Vec::new(),
        };
        Ok(NodeName {
            id: id.to_string(),
            hosts,
        })
    }
}

/// Node ids and token names become file names, certificate subjects and tokens-file
/// fields: 1 to 64 letters, digits, `-`, `_`, `.`, not starting with `.`.
pub fn check_name(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} must be 1 to 64 letters, digits, '-', '_' or '.' (not starting with '.')"
        ))
    }
}

/// What [`init`] made.
#[derive(Debug, Default)]
pub struct Made {
    /// Files created (existing ones are kept).
    pub created: Vec<String>,
}

/// Makes whatever of a cluster directory is missing: the CA, the context key, an admin
/// token, and a certificate for each node in `nodes`. Existing files are kept, so running
/// it again adds nodes with the same CA.
pub fn init(dir: &Path, nodes: &[NodeName]) -> Result<Made, SecurityError> {
    files::create_private_dir(dir)?;
    files::create_private_dir(&dir.join(NODES))?;
    let mut made = Made::default();
    let ca_cert = dir.join(CA_CERT);
    let ca_key = dir.join(CA_KEY);
    if !ca_cert.exists() && !ca_key.exists() {
        let (cert, key) = new_ca()?;
        files::write_new(&ca_key, key.as_bytes(), true)?;
        files::write_new(&ca_cert, cert.as_bytes(), false)?;
        made.created
            .extend([CA_CERT.to_string(), CA_KEY.to_string()]);
    }
    let cluster_key = dir.join(CLUSTER_KEY);
    if !cluster_key.exists() {
        let key = random_hex(32)?;
        files::write_new(&cluster_key, format!("{key}\n").as_bytes(), true)?;
        made.created.push(CLUSTER_KEY.into());
    }
    let admin = dir.join(ADMIN_TOKEN);
    if !admin.exists() {
        let token = new_token()?;
        files::append_private(
            &dir.join(TOKENS),
            &TokenStore::line(Role::Admin, &token, "admin"),
        )?;
        files::write_new(&admin, format!("{token}\n").as_bytes(), true)?;
        made.created.push(ADMIN_TOKEN.into());
    }
    for n in nodes {
        let cert = files::node_cert(dir, &n.id);
        if cert.exists() {
            continue;
        }
        let (pem, key) = issue(dir, &n.id, &n.hosts, true)?;
        files::write_new(&files::node_key(dir, &n.id), key.as_bytes(), true)?;
        files::write_new(&cert, pem.as_bytes(), false)?;
        made.created.push(format!("{NODES}/{}.pem", n.id));
    }
    Ok(made)
}

/// Issues a client certificate (`OU=ringkv-client`) signed by the CA in `dir`; returns
/// the certificate and key (PEM).
pub fn issue_client(dir: &Path, name: &str) -> Result<(String, String), SecurityError> {
    check_name(name).map_err(SecurityError::Invalid)?;
    issue(dir, name, &[], false)
}

fn crypto(e: rcgen::Error) -> SecurityError {
    SecurityError::Crypto(format!("certificate generation failed: {e}"))
}

fn new_ca() -> Result<(String, String), SecurityError> {
    let key = KeyPair::generate().map_err(crypto)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(crypto)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "ringkv cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params);
    let cert = params.self_signed(&key).map_err(crypto)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn set_validity(params: &mut CertificateParams) {
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    params.not_before = (now - day).into();
    params.not_after = (now + day * VALID_DAYS as u32).into();
}

/// Issues a node (`node` true) or client certificate named `id`, signed by `dir`'s CA.
fn issue(
    dir: &Path,
    id: &str,
    hosts: &[String],
    node: bool,
) -> Result<(String, String), SecurityError> {
    let ca_cert = files::read_public(&dir.join(CA_CERT))?;
    let ca_key_path = dir.join(CA_KEY);
    if !ca_key_path.exists() {
        return Err(SecurityError::Invalid(format!(
            "{} is missing: certificates can only be issued where the CA key is",
            ca_key_path.display()
        )));
    }
    let ca_key = files::read_private(&ca_key_path)?;
    let ca_key =
        String::from_utf8(ca_key).map_err(|_| SecurityError::file(&ca_key_path, "is not PEM"))?;
    let ca_key = KeyPair::from_pem(&ca_key).map_err(|e| SecurityError::file(&ca_key_path, e))?;
    let ca_cert = String::from_utf8(ca_cert)
        .map_err(|_| SecurityError::file(&dir.join(CA_CERT), "is not PEM"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, &ca_key)
        .map_err(|e| SecurityError::file(&dir.join(CA_CERT), e))?;
    let mut names: Vec<String> = Vec::new();
    if node {
        names.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        if id.chars().any(|c| c.is_ascii_alphabetic()) && !id.contains('_') {
            names.push(id.to_string());
        }
        names.extend(hosts.iter().cloned());
    }
    names.dedup();
    let mut params = CertificateParams::new(names).map_err(crypto)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, id);
    params.distinguished_name.push(
        DnType::OrganizationalUnitName,
        if node { NODE_OU } else { CLIENT_OU },
    );
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = if node {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params);
    let key = KeyPair::generate().map_err(crypto)?;
    let cert = params.signed_by(&key, &issuer).map_err(crypto)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The node id a PEM certificate names, `None` when it is not a node certificate.
pub fn node_id_of_pem(pem: &[u8]) -> Result<Option<String>, String> {
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    node_id_of_der(&parsed.contents)
}

/// The node id a DER certificate names, `None` when it is not a node certificate.
pub fn node_id_of_der(der: &[u8]) -> Result<Option<String>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the certificate cannot be parsed: {e}"))?;
    let subject = cert.subject();
    let is_node = subject
        .iter_organizational_unit()
        .any(|ou| ou.as_str() == Ok(NODE_OU));
    if !is_node {
        return Ok(None);
    }
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or("the node certificate has no common name")?;
    check_name(cn)?;
    Ok(Some(cn.to_string()))
}

/// `n` random bytes from the OS, as lower-case hex.
pub fn random_hex(n: usize) -> Result<String, SecurityError> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecurityError::Crypto("the OS random source failed".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_certificates_name_their_node_and_client_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let made = init(
            dir.path(),
            &["n1".parse().unwrap(), "n2@db2.example".parse().unwrap()],
        )
        .unwrap();
        assert!(made.created.contains(&"nodes/n2.pem".to_string()));
        let pem = std::fs::read(files::node_cert(dir.path(), "n2")).unwrap();
        assert_eq!(node_id_of_pem(&pem).unwrap().as_deref(), Some("n2"));
        let (client, _) = issue_client(dir.path(), "ci").unwrap();
        assert_eq!(node_id_of_pem(client.as_bytes()).unwrap(), None);
        // Running again keeps the CA and adds the new node only.
        let again = init(dir.path(), &["n1".parse().unwrap(), "n3".parse().unwrap()]).unwrap();
        assert_eq!(again.created, vec!["nodes/n3.pem".to_string()]);
    }

    #[test]
    fn bad_node_names_are_refused() {
        for bad in ["", "../x", ".hidden", "a b", "n1@", "n/1"] {
            assert!(bad.parse::<NodeName>().is_err(), "{bad:?}");
        }
    }
}
