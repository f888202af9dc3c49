//! Command-line front ends: the node's arguments and entry point (shared by
//! `ringkv node` and the loadgen's node mode), and the `ringkv` subcommands.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client::{Client, ClientError, ClientOptions, Consistency, GetReply};
use crate::config::PeerSpec;
use crate::local_cluster::{ClusterSpec, LocalCluster, NodeLauncher};
use crate::proto as pb;

/// Exit code for a usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;

mod autoscale;
mod node;
mod security;

pub use node::{
    DurabilityArg, EXIT_WITH_PARENT_ENV, FailureArgs, NodeArgs, node_config, run_node_blocking,
    shutdown_signal,
};

/// `ringkv`: a Dynamo-style distributed key-value store.
#[derive(Parser, Debug)]
#[command(name = "ringkv", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by the client commands.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Any node of the cluster (repeat or comma-separate for several).
    #[arg(long, short, value_delimiter = ',', default_value = "127.0.0.1:7001")]
    pub endpoint: Vec<String>,
    /// Request deadline in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Cluster directory with ca.pem and admin.token (`ringkv cluster up` prints it).
    #[arg(long, env = crate::security::CLUSTER_DIR_ENV)]
    pub cluster_dir: Option<PathBuf>,
    /// CA certificate to trust (instead of the cluster directory's).
    #[arg(long, env = crate::security::CA_ENV)]
    pub ca: Option<PathBuf>,
    /// Token to present (instead of the cluster directory's admin token).
    #[arg(long, env = crate::security::TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,
    /// No TLS and no token: for a cluster started with --insecure.
    #[arg(long)]
    pub insecure: bool,
}

/// The `ringkv` subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one node in the foreground.
    Node(Box<NodeArgs>),
    /// Run a local cluster of real node processes.
    Cluster {
        /// What to do with it.
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Store a value.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Causal context (hex) from a get; omit to add a sibling.
        #[arg(long)]
        context: Option<String>,
        /// Write quorum for this request.
        #[arg(long)]
        w: Option<u32>,
        /// Count hinted writes towards W.
        #[arg(long)]
        sloppy: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Read every concurrent version of a key.
    Get {
        /// The key.
        key: String,
        /// Read quorum for this request.
        #[arg(long)]
        r: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
        /// Causal context (hex) from a get; omit to read it first.
        #[arg(long)]
        context: Option<String>,
        /// Write quorum for this request.
        #[arg(long)]
        w: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change ring membership (one explicit, versioned step that moves data).
    Admin {
        /// What to change.
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Run Merkle anti-entropy now on every member (or only --endpoint's node).
    Repair {
        /// Only the node at --endpoint.
        #[arg(long)]
        only: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove local copies of ranges a node no longer replicates, on every
    /// member (or only --endpoint's node). Runs by itself after a join or
    /// leave completes; refused while one is in progress.
    Cleanup {
        /// Only the node at --endpoint.
        #[arg(long)]
        only: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make a cluster's TLS material for real hosts: CA, node certificates, admin token,
    /// context key (existing files are kept, so it also adds nodes).
    Certs(security::CertsArgs),
    /// Add a client token with a role to a cluster directory and print it.
    Token(security::TokenArgs),
    /// Scale a cluster on real hosts on its traffic: sample every member, decide by a
    /// policy, and start or stop nodes through an operator's command (one controller per
    /// cluster, by a lock file).
    Autoscale(Box<autoscale::AutoscaleArgs>),
    /// Show a node's view: ring, members, hints and counters.
    Status {
        /// Print every counter.
        #[arg(long)]
        stats: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `ringkv admin` actions.
#[derive(Subcommand, Debug)]
pub enum AdminAction {
    /// Add a running node (started with --join) to the ring: its ranges are
    /// streamed to it before it serves reads for them.
    Join {
        /// ID@HOST:PORT[/ZONE]
        node: PeerSpec,
        /// Its virtual nodes.
        #[arg(long, default_value_t = crate::ring::DEFAULT_TOKENS_PER_NODE)]
        tokens: u32,
        /// Its zone (overrides /ZONE).
        #[arg(long)]
        zone: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a node from the ring after handing its data off.
    Leave {
        /// Node id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `ringkv cluster` actions.
#[derive(Subcommand, Debug)]
pub enum ClusterAction {
    /// Start N local nodes, print their endpoints, stop them all on Ctrl-C.
    Up {
        /// Nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Where data and logs go (default: a temp dir removed on exit).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Replication factor N (default: min(3, nodes)).
        #[arg(long)]
        replication: Option<u32>,
        /// Default W (default: N/2 + 1).
        #[arg(long)]
        write_quorum: Option<u32>,
        /// Default R (default: N/2 + 1).
        #[arg(long)]
        read_quorum: Option<u32>,
        /// Zones assigned round-robin, e.g. a,b,c.
        #[arg(long, value_delimiter = ',')]
        zones: Vec<String>,
        /// Tokens per node.
        #[arg(long, default_value_t = crate::ring::DEFAULT_TOKENS_PER_NODE)]
        tokens: u32,
        /// No TLS, no tokens (loud; loopback only).
        #[arg(long)]
        insecure: bool,
        /// Add and remove nodes on the cluster's traffic (see docs/autoscaling.md).
        #[arg(long)]
        autoscale: bool,
        /// The autoscaling policy (YAML); the defaults without it.
        #[arg(long, requires = "autoscale")]
        autoscale_policy: Option<PathBuf>,
    },
}

/// Let a closed stdout end the process quietly (as `ringkv status | head`
/// expects) instead of failing a print. Only for the short client commands: a node (and
/// `cluster up`) must keep SIGPIPE ignored, or a peer that closes a connection while the
/// node writes to it (a TLS close alert, an answer) kills the node.
fn restore_default_sigpipe() {
    // SAFETY: setting the SIGPIPE disposition to its default at start-up,
    // before any other thread exists, is async-signal-safe and has no
    // memory-safety implications.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Run the `ringkv` command line.
pub fn main_with(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Node(args) => return run_node_blocking(*args),
        Command::Cluster { .. } => {}
        _ => restore_default_sigpipe(),
    }
    // A controller's decisions are what an operator watches it for.
    node::init_logging(match cli.command {
        Command::Autoscale(_) | Command::Cluster { .. } => "warn,store::autoscale=info",
        _ => "warn",
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ringkv: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match rt.block_on(run_command(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(m)) => {
            eprintln!("ringkv: {m}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(CliError::Failed(m)) => {
            eprintln!("ringkv: {m}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

enum CliError {
    Usage(String),
    Failed(String),
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        match e.code() {
            Some(tonic::Code::InvalidArgument) => CliError::Usage(e.to_string()),
            _ => match e {
                ClientError::BadEndpoint(_) | ClientError::NoEndpoints => {
                    CliError::Usage(e.to_string())
                }
                _ => CliError::Failed(e.to_string()),
            },
        }
    }
}

/// Sends the admin operation `op()` to every member of the ring the first endpoint serves
/// (or, with `only`, to that node alone), one at a time, printing each answer.
async fn on_every_node(
    client: &ClientArgs,
    only: bool,
    op: impl Fn() -> pb::admin_request::Op,
) -> Result<(), CliError> {
    let c = connect(client).await?;
    let status = c.status_of(0).await?;
    let members: Vec<String> = match (&status.ring, only) {
        (Some(r), false) => r.members.iter().map(|m| m.address.clone()).collect(),
        _ => vec![status.address.clone()],
    };
    for addr in members {
        let args = ClientArgs {
            endpoint: vec![addr.clone()],
            timeout_ms: client.timeout_ms.max(60_000),
            ..client.clone()
        };
        let node = connect(&args).await?;
        let r = node.admin_of(0, op()).await?;
        println!("{addr}: {}", r.message);
    }
    Ok(())
}

async fn connect(c: &ClientArgs) -> Result<Client, CliError> {
    let opts = ClientOptions {
        timeout: Duration::from_millis(c.timeout_ms.max(1)),
        routing: crate::client::Routing::TokenAware,
        connections: 1,
        security: security::client_security(c)?,
        hedge_reads_after: None,
    };
    Ok(Client::connect(&c.endpoint, opts).await?)
}

fn parse_context(hex: Option<&str>) -> Result<Option<Vec<u8>>, CliError> {
    let Some(h) = hex else { return Ok(None) };
    decode_hex(h)
        .map(Some)
        .ok_or_else(|| CliError::Usage(format!("--context {h:?} is not hex from `ringkv get`")))
}

/// Lower-case hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

async fn run_command(cmd: Command) -> Result<(), CliError> {
    match cmd {
        Command::Node(_) => Ok(()),
        Command::Cluster { action } => cluster_command(action).await,
        Command::Put {
            key,
            value,
            context,
            w,
            sloppy,
            client,
        } => {
            let c = connect(&client).await?;
            let ctx = parse_context(context.as_deref())?;
            let cons = Consistency {
                w,
                sloppy: sloppy.then_some(true),
                ..Consistency::default()
            };
            let r = c
                .put(key.as_bytes(), value.as_bytes(), ctx.as_deref(), &cons)
                .await?;
            println!("ok ({} acks)", r.acks);
            println!("context: {}", encode_hex(&r.context));
            Ok(())
        }
        Command::Get { key, r, client } => {
            let c = connect(&client).await?;
            let cons = Consistency {
                r,
                ..Consistency::default()
            };
            let reply = c.get(key.as_bytes(), &cons).await?;
            print_get(&key, &reply);
            Ok(())
        }
        Command::Delete {
            key,
            context,
            w,
            client,
        } => {
            let c = connect(&client).await?;
            let cons = Consistency {
                w,
                ..Consistency::default()
            };
            // Without a context, delete what is there now (read it first),
            // which is what a user typing `delete KEY` means.
            let ctx = match parse_context(context.as_deref())? {
                Some(ctx) => ctx,
                None => c
                    .get(key.as_bytes(), &Consistency::default())
                    .await?
                    .context
                    .to_vec(),
            };
            let r = c.delete(key.as_bytes(), Some(&ctx), &cons).await?;
            println!("deleted ({} acks)", r.acks);
            Ok(())
        }
        Command::Admin { action } => {
            let (client, op) = match action {
                AdminAction::Join {
                    node,
                    tokens,
                    zone,
                    client,
                } => (
                    client,
                    pb::admin_request::Op::Join(pb::JoinNode {
                        id: node.id,
                        address: node.address,
                        zone: zone.unwrap_or(node.zone),
                        tokens,
                        reason: String::new(),
                    }),
                ),
                AdminAction::Leave { id, client } => (
                    client,
                    pb::admin_request::Op::Leave(pb::LeaveNode {
                        id,
                        reason: String::new(),
                    }),
                ),
            };
            let c = connect(&client).await?;
            let r = c.admin_of(0, op).await?;
            println!("{}", r.message);
            Ok(())
        }
        Command::Cleanup { only, client } => {
            on_every_node(&client, only, || {
                pb::admin_request::Op::Cleanup(pb::Cleanup {})
            })
            .await
        }
        Command::Repair { only, client } => {
            on_every_node(&client, only, || {
                pb::admin_request::Op::Repair(pb::Repair {})
            })
            .await
        }
        Command::Status { stats, client } => {
            let c = connect(&client).await?;
            let s = c.status().await?;
            print_status(&s, stats);
            Ok(())
        }
        Command::Autoscale(a) => autoscale::autoscale_command(*a).await,
        Command::Certs(a) => security::certs_command(&a),
        Command::Token(a) => security::token_command(&a),
    }
}

fn print_get(key: &str, reply: &GetReply) {
    let now = crate::version::now_millis();
    match reply.versions.len() {
        0 => println!("{key}: not found"),
        1 => {
            if let Some(v) = reply.versions.first() {
                println!("{}", String::from_utf8_lossy(&v.value));
            }
        }
        n => {
            println!(
                "{key}: {n} concurrent versions (siblings); put with the context below to resolve"
            );
            for (i, v) in reply.versions.iter().enumerate() {
                let age = now.saturating_sub(v.timestamp_ms) as f64 / 1000.0;
                if v.tombstone {
                    println!("  [{}] <deleted>  (written {age:.1}s ago)", i + 1);
                } else {
                    println!(
                        "  [{}] {}  (written {age:.1}s ago)",
                        i + 1,
                        String::from_utf8_lossy(&v.value)
                    );
                }
            }
        }
    }
    println!("context: {}", encode_hex(&reply.context));
}

fn print_status(s: &pb::StatusResponse, all_stats: bool) {
    println!(
        "node {} at {}{}",
        s.node_id,
        s.address,
        if s.zone.is_empty() {
            String::new()
        } else {
            format!(" (zone {})", s.zone)
        }
    );
    if let Some(ring) = &s.ring {
        println!(
            "ring version {}, N = {}, W = {}, R = {}{}",
            ring.version,
            ring.replication,
            s.write_quorum,
            s.read_quorum,
            if s.sloppy_default { ", sloppy" } else { "" }
        );
        println!(
            "{:<10} {:<22} {:<6} {:>6} {:<8} {:>11} {:>13}",
            "member", "address", "zone", "tokens", "state", "incarnation", "hints pending"
        );
        for m in &ring.members {
            println!(
                "{:<10} {:<22} {:<6} {:>6} {:<8} {:>11} {:>13}",
                m.id, m.address, m.zone, m.tokens, m.state, m.incarnation, m.hints_pending
            );
        }
        println!(
            "autoscaler: {} nodes added, {} removed over the ring's history",
            ring.autoscaled_out, ring.autoscaled_in
        );
    }
    let mut keys: Vec<&String> = s.stats.keys().collect();
    keys.sort();
    let wanted = |k: &str| {
        all_stats
            || k.starts_with("hints.")
            || k.starts_with("coordinator.")
            || k.starts_with("anti_entropy.")
            || k.starts_with("transfer.")
            || k.starts_with("handoff.")
            || k.starts_with("merkle.")
    };
    for k in keys.into_iter().filter(|k| wanted(k)) {
        println!("  {k} = {}", s.stats.get(k).copied().unwrap_or(0));
    }
}

async fn cluster_command(action: ClusterAction) -> Result<(), CliError> {
    match action {
        ClusterAction::Up {
            nodes,
            dir,
            replication,
            write_quorum,
            read_quorum,
            zones,
            tokens,
            insecure,
            autoscale,
            autoscale_policy,
        } => {
            let policy = if autoscale {
                Some(autoscale::load_policy(autoscale_policy.as_deref())?)
            } else {
                None
            };
            let n = replication.unwrap_or(nodes.min(3) as u32);
            let majority = n / 2 + 1;
            let spec = ClusterSpec {
                nodes,
                tokens_per_node: tokens,
                zones,
                replication: n,
                write_quorum: write_quorum.unwrap_or(majority),
                read_quorum: read_quorum.unwrap_or(majority),
                base_dir: dir,
                extra_node_args: Vec::new(),
                insecure,
                own_addresses: false,
            };
            let program = std::env::current_exe()
                .map_err(|e| CliError::Failed(format!("cannot find my own executable: {e}")))?;
            let launcher = NodeLauncher {
                program,
                args_prefix: vec!["node".into()],
            };
            let cluster = LocalCluster::start(&spec, &launcher)
                .await
                .map_err(|e| match e {
                    crate::local_cluster::ClusterError::Invalid(m) => CliError::Usage(m),
                    e => CliError::Failed(e.to_string()),
                })?;
            println!(
                "ringkv cluster: {} nodes, N = {}, W = {}, R = {}",
                nodes, spec.replication, spec.write_quorum, spec.read_quorum
            );
            for node in cluster.nodes() {
                println!(
                    "  {}  {}  data {}  log {}",
                    node.id,
                    node.address,
                    node.data_dir.display(),
                    node.log.display()
                );
            }
            let first = cluster.endpoints().first().cloned().unwrap_or_default();
            let base = cluster.base_dir().display();
            if insecure {
                println!(
                    "INSECURE: no TLS, no tokens; anything on this machine can read and change the data"
                );
                println!("try:  ringkv put hello world --insecure --endpoint {first}");
            } else {
                println!(
                    "security: TLS with the CA {base}/ca.pem; admin token in {base}/admin.token"
                );
                println!("try:  export RINGKV_CLUSTER_DIR={base}");
                println!("      ringkv put hello world --endpoint {first}");
            }
            println!("      ringkv get hello --endpoint {first}");
            println!("type `help` for add/remove/kill/restart; Ctrl-C stops every node.");
            let cluster = tokio::sync::Mutex::new(cluster);
            match policy {
                None => interactive(&cluster).await,
                Some(policy) => with_autoscaler(&cluster, policy).await?,
            }
            println!("stopping...");
            cluster
                .into_inner()
                .stop()
                .await
                .map_err(|e| CliError::Failed(e.to_string()))?;
            println!("stopped.");
            Ok(())
        }
    }
}

/// Runs the prompt with a controller beside it that scales the cluster on its traffic.
async fn with_autoscaler(
    cluster: &tokio::sync::Mutex<LocalCluster>,
    policy: crate::autoscale::Policy,
) -> Result<(), CliError> {
    let (seeds, opts, lock) = {
        let c = cluster.lock().await;
        (
            c.endpoints(),
            crate::autoscale::controller::client_options(
                c.client_options(Duration::from_secs(600)),
            ),
            c.base_dir().join("autoscale.lock"),
        )
    };
    let lease = crate::autoscale::Lease::acquire(&lock).map_err(CliError::Failed)?;
    println!(
        "autoscaling between {} and {} nodes (lock {}); decisions print here",
        policy.min_nodes,
        policy.max_nodes,
        lease.path().display()
    );
    let mut controller =
        crate::autoscale::Controller::new(policy, seeds, opts, std::time::Instant::now());
    let mut actuator = crate::autoscale::SharedCluster(cluster);
    autoscale::run_until(&mut controller, &mut actuator, interactive(cluster)).await;
    Ok(())
}

/// Read cluster commands from stdin until `quit`, end of input or a signal.
async fn interactive(cluster: &tokio::sync::Mutex<LocalCluster>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let line = tokio::select! {
            _ = &mut stop => return,
            l = lines.next_line(), if stdin_open => l,
        };
        let line = match line {
            Ok(Some(l)) => l,
            _ => {
                // No terminal (or end of input): keep running until a signal.
                stdin_open = false;
                continue;
            }
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        // Held for one command, so an autoscaler beside the prompt waits for it.
        let mut guard = cluster.lock().await;
        let cluster = &mut *guard;
        let index_of = |id: &str| cluster.nodes().iter().position(|n| n.id == id);
        let outcome: Result<String, String> = match words.as_slice() {
            [] => continue,
            ["help"] => Ok("commands: add [ZONE] | remove ID | kill ID | restart ID | pause ID | resume ID | nodes | quit".into()),
            ["quit"] | ["exit"] => return,
            ["nodes"] => Ok(cluster
                .nodes()
                .iter()
                .map(|n| format!("{} {} {}", n.id, n.address, if n.is_running() { "running" } else { "stopped" }))
                .collect::<Vec<_>>()
                .join("\n")),
            ["add"] | ["add", _] => {
                let zone = words.get(1).map(|z| z.to_string());
                match cluster.add_node(zone).await {
                    Ok(i) => Ok(cluster
                        .nodes()
                        .get(i)
                        .map(|n| format!("added {} at {}", n.id, n.address))
                        .unwrap_or_default()),
                    Err(e) => Err(e.to_string()),
                }
            }
            [cmd, id] => match index_of(id) {
                None => Err(format!("no node {id}")),
                Some(i) => match *cmd {
                    "remove" => cluster.remove_node(i).await.map(|()| format!("removed {id}")).map_err(|e| e.to_string()),
                    "kill" => cluster.kill_node(i).await.map(|()| format!("killed {id} (SIGKILL)")).map_err(|e| e.to_string()),
                    "restart" => cluster.restart_node(i).await.map(|()| format!("restarted {id}")).map_err(|e| e.to_string()),
                    "pause" => Ok(format!("paused {id}: {}", cluster.pause_node(i))),
                    "resume" => Ok(format!("resumed {id}: {}", cluster.resume_node(i))),
                    _ => Err(format!("unknown command {cmd:?}; type help")),
                },
            },
            _ => Err("unknown command; type help".into()),
        };
        match outcome {
            Ok(m) => println!("{m}"),
            Err(e) => println!("error: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let b = vec![0u8, 1, 0xab, 0xff];
        assert_eq!(decode_hex(&encode_hex(&b)).unwrap(), b);
        assert!(decode_hex("abc").is_none());
        assert!(decode_hex("zz").is_none());
    }

    #[test]
    fn node_args_need_identity() {
        let err = node_config(&NodeArgs::default()).unwrap_err();
        assert!(err.contains("--id"), "{err}");
    }

    #[test]
    fn a_node_without_tls_material_names_ringkv_certs_and_insecure_needs_loopback() {
        let mut args = NodeArgs {
            id: Some("n1".into()),
            listen: Some("127.0.0.1:7001".parse().unwrap()),
            data_dir: Some("/tmp/x".into()),
            ..NodeArgs::default()
        };
        // The environment may name a cluster directory; this test is about its absence.
        args.security.cluster_dir = None;
        let err = node_config(&args).unwrap_err();
        assert!(err.contains("ringkv certs"), "{err}");
        args.security.insecure = true;
        node_config(&args).unwrap();
        args.listen = Some("0.0.0.0:7001".parse().unwrap());
        let err = node_config(&args).unwrap_err();
        assert!(err.contains("loopback"), "{err}");
    }

    #[test]
    fn small_cluster_defaults_replication_to_its_size() {
        let args = NodeArgs {
            id: Some("n1".into()),
            listen: Some("127.0.0.1:7001".parse().unwrap()),
            data_dir: Some("/tmp/x".into()),
            security: node::SecurityArgs {
                insecure: true,
                ..Default::default()
            },
            ..NodeArgs::default()
        };
        let cfg = node_config(&args).unwrap();
        assert_eq!(
            (cfg.replication, cfg.write_quorum, cfg.read_quorum),
            (1, 1, 1)
        );
    }
}
