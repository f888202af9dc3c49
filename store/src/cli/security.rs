//! `ringkv certs`, `ringkv token`, and how the client commands find the CA and token.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, ClientArgs};
use crate::security::material::{self, NodeName};
use crate::security::tokens::{Role, TokenStore, new_token};
use crate::security::{ClientSecurity, files};

/// `ringkv certs`: make a cluster directory's material for real hosts.
#[derive(Args, Debug)]
pub struct CertsArgs {
    /// The cluster directory (created 0700; existing files are kept).
    #[arg(long)]
    pub dir: PathBuf,
    /// Nodes to make certificates for: ID or ID@HOST (HOST is added to the certificate's
    /// names), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<NodeName>,
    /// Also make a client certificate with this name (`client-NAME.pem`, `client-NAME.key`).
    #[arg(long)]
    pub client: Option<String>,
}

/// `ringkv token`: add a client token.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The cluster directory whose `tokens` file gets the new token.
    #[arg(long)]
    pub dir: PathBuf,
    /// read, readwrite or admin.
    #[arg(long)]
    pub role: Role,
    /// A name for the token (shown in the tokens file, to find it when revoking).
    #[arg(long)]
    pub name: String,
}

fn failed(e: crate::security::SecurityError) -> CliError {
    CliError::Failed(e.to_string())
}

/// Makes the missing material and says what each file is for.
pub(super) fn certs_command(a: &CertsArgs) -> Result<(), CliError> {
    let made = material::init(&a.dir, &a.nodes).map_err(failed)?;
    if let Some(name) = &a.client {
        let (cert, key) = material::issue_client(&a.dir, name).map_err(failed)?;
        files::write_new(
            &a.dir.join(format!("client-{name}.key")),
            key.as_bytes(),
            true,
        )
        .map_err(failed)?;
        files::write_new(
            &a.dir.join(format!("client-{name}.pem")),
            cert.as_bytes(),
            false,
        )
        .map_err(failed)?;
        println!("made client certificate client-{name}.pem");
    }
    let d = a.dir.display();
    if made.created.is_empty() {
        println!("{d}: every file exists already; nothing made");
    } else {
        println!("{d}: made {}", made.created.join(", "));
    }
    println!("  clients trust  {d}/{}", files::CA_CERT);
    println!("  admin token    {d}/{}", files::ADMIN_TOKEN);
    println!(
        "  each node gets ca.pem, tokens, cluster.key and its own nodes/ID.pem and nodes/ID.key;"
    );
    println!("  start it with  ringkv node --cluster-dir DIR ...  (or --tls-ca, --tls-cert, ...)");
    println!("  keep ca.key off the nodes; it is needed only to make more certificates here.");
    Ok(())
}

/// Adds a token to the tokens file and prints it (the only time it is shown).
pub(super) fn token_command(a: &TokenArgs) -> Result<(), CliError> {
    material::check_name(&a.name).map_err(|e| CliError::Usage(format!("--name: {e}")))?;
    let tokens = a.dir.join(files::TOKENS);
    if !tokens.exists() {
        return Err(CliError::Usage(format!(
            "{} does not exist; make the cluster directory with `ringkv certs --dir {}` first",
            tokens.display(),
            a.dir.display()
        )));
    }
    let token = new_token().map_err(failed)?;
    files::append_private(&tokens, &TokenStore::line(a.role, &token, &a.name)).map_err(failed)?;
    println!("{token}");
    eprintln!(
        "added a {} token named {:?} to {}; copy that file to every node (nodes re-read it within {} s). Revoke it by deleting its line.",
        a.role.as_str(),
        a.name,
        tokens.display(),
        crate::security::tokens::RELOAD_EVERY.as_secs()
    );
    Ok(())
}

/// What a client command presents: `--insecure` nothing; else the CA and token given, or
/// the cluster directory's.
pub(super) fn client_security(c: &ClientArgs) -> Result<ClientSecurity, CliError> {
    if c.insecure {
        return Ok(ClientSecurity::insecure());
    }
    let dir = c.cluster_dir.as_deref();
    let ca: Option<PathBuf> = c.ca.clone().or_else(|| dir.map(|d| d.join(files::CA_CERT)));
    let Some(ca) = ca else {
        return Err(CliError::Usage(
            "no CA to trust: pass --cluster-dir DIR or set RINGKV_CLUSTER_DIR (`ringkv cluster up` prints it), or set RINGKV_CA and RINGKV_TOKEN; use --insecure only for a cluster started with --insecure".into(),
        ));
    };
    let token = match (&c.token, dir) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(d)) => Some(
            files::read_private_text(&d.join(files::ADMIN_TOKEN))
                .map_err(|e| CliError::Usage(e.to_string()))?,
        ),
        (None, None) => None,
    };
    ClientSecurity::from_parts(Some(&ca), token, None).map_err(|e| CliError::Usage(e.to_string()))
}
