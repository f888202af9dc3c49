//! `ringkv autoscale` (a controller for a cluster on real hosts) and the policy file both it
//! and `ringkv cluster up --autoscale` read.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::{CliError, ClientArgs};
use crate::autoscale::{Actuator, CommandActuator, Controller, Lease, Policy};
use crate::client::ClientOptions;

/// `ringkv autoscale` arguments.
#[derive(Args, Debug)]
pub struct AutoscaleArgs {
    /// The policy, a YAML file (see docs/autoscaling.md); the defaults without it.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Shell command that starts (`$1` = out) or stops (`$1` = in) a node; see
    /// docs/autoscaling.md for its arguments, environment and output.
    #[arg(long)]
    pub command: String,
    /// Lock file that keeps a second controller from acting on the same cluster.
    #[arg(long, default_value = "ringkv-autoscale.lock")]
    pub lock: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Reads and checks a policy file, or the defaults.
pub fn load_policy(path: Option<&Path>) -> Result<Policy, CliError> {
    let policy = match path {
        None => Policy::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                CliError::Usage(format!("cannot read the policy {}: {e}", p.display()))
            })?;
            serde_saphyr::from_str::<Policy>(&text).map_err(|e| {
                CliError::Usage(format!("the policy {} is not valid: {e}", p.display()))
            })?
        }
    };
    policy
        .validate()
        .map_err(|m| CliError::Usage(format!("autoscaling policy: {m}")))?;
    Ok(policy)
}

/// Runs `ringkv autoscale` until a signal.
pub async fn autoscale_command(a: AutoscaleArgs) -> Result<(), CliError> {
    let policy = load_policy(a.policy.as_deref())?;
    let lease = Lease::acquire(&a.lock).map_err(CliError::Failed)?;
    let opts = ClientOptions {
        security: super::security::client_security(&a.client)?,
        ..ClientOptions::default()
    };
    let mut controller = Controller::new(
        policy,
        a.client.endpoint.clone(),
        crate::autoscale::controller::client_options(opts),
        Instant::now(),
    );
    let mut actuator = CommandActuator {
        command: a.command,
        seeds: a.client.endpoint,
    };
    println!(
        "ringkv autoscale: holding {}; sampling every member; Ctrl-C stops",
        lease.path().display()
    );
    let log = controller.log();
    run_until(&mut controller, &mut actuator, async {
        super::node::shutdown_signal().await;
        println!("stopping after the action under way, if any...");
    })
    .await;
    let log = log.lock();
    println!(
        "stopped after {} decisions ({} samples, {} incomplete)",
        log.decisions.len(),
        log.samples.len(),
        log.incomplete_samples
    );
    Ok(())
}

/// Runs `controller` through `actuator`, printing each decision, until `until` resolves; an
/// action under way then is finished first.
pub async fn run_until<A: Actuator>(
    controller: &mut Controller,
    actuator: &mut A,
    until: impl std::future::Future<Output = ()>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let log = controller.log();
    let stop = async {
        until.await;
        let _ = tx.send(true);
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = controller.run(actuator, rx) => {}
        () = print_decisions(log) => {}
        () = stop => {}
    }
}

/// Prints each decision of `log` as it is made (a line per decision; never returns).
async fn print_decisions(log: crate::autoscale::SharedLog) {
    let mut seen = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let log = log.lock();
        for d in log.decisions.iter().skip(seen) {
            println!(
                "autoscale {} at {:.1}s: {} -> {} nodes{} ({}){}",
                d.action.as_str(),
                d.decided_s,
                d.nodes_before,
                d.nodes_after,
                d.node
                    .as_deref()
                    .map(|n| format!(", {n}"))
                    .unwrap_or_default(),
                d.why,
                d.error
                    .as_deref()
                    .map(|e| format!("; failed: {e}"))
                    .unwrap_or_default()
            );
        }
        seen = log.decisions.len();
    }
}
