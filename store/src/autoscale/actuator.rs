//! Actuators: how a decision becomes a node process started or stopped. The controller does
//! the ring changes itself (join after [`Actuator::provision`], leave before
//! [`Actuator::retire`]); an actuator only manages processes or machines.
//!
//! * [`LocalCluster`]: starts and stops node processes of a local cluster.
//! * [`CommandActuator`]: runs a command the operator configured (a script that scales a
//!   Kubernetes StatefulSet, starts a VM, ...), with the decision in its arguments and
//!   environment.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::local_cluster::LocalCluster;

/// A node process started and ready to be joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// Its node id.
    pub id: String,
    /// Its gRPC address.
    pub address: String,
    /// Its zone (may be empty).
    pub zone: String,
}

/// Starts and stops node processes for the controller.
#[allow(async_fn_in_trait)]
pub trait Actuator {
    /// Starts one node process outside the ring; `reason` is the decision.
    async fn provision(&mut self, reason: &str) -> Result<Provisioned, String>;
    /// Stops node `id` at `address`, which has already left the ring.
    async fn retire(&mut self, id: &str, address: &str) -> Result<(), String>;
}

impl Actuator for LocalCluster {
    async fn provision(&mut self, _reason: &str) -> Result<Provisioned, String> {
        let i = self
            .add_node_process(None)
            .await
            .map_err(|e| e.to_string())?;
        let n = self
            .nodes()
            .get(i)
            .ok_or_else(|| format!("node {i} vanished after it started"))?;
        Ok(Provisioned {
            id: n.id.clone(),
            address: n.address.clone(),
            zone: n.zone.clone(),
        })
    }

    async fn retire(&mut self, id: &str, _address: &str) -> Result<(), String> {
        let i = self
            .nodes()
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| format!("no local node {id}"))?;
        self.stop_node(i).await.map_err(|e| e.to_string())
    }
}

/// A local cluster shared with something else that changes it (`ringkv cluster up`'s prompt).
pub struct SharedCluster<'a>(pub &'a tokio::sync::Mutex<LocalCluster>);

impl Actuator for SharedCluster<'_> {
    async fn provision(&mut self, reason: &str) -> Result<Provisioned, String> {
        self.0.lock().await.provision(reason).await
    }

    async fn retire(&mut self, id: &str, address: &str) -> Result<(), String> {
        self.0.lock().await.retire(id, address).await
    }
}

/// How long the operator's command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs an operator's command for each action, by `sh`, with `out` or `in` appended as its
/// last argument (`COMMAND out`).
///
/// Environment: `RINGKV_ACTION` (`out` or `in`), `RINGKV_REASON` (the decision and its
/// signals), `RINGKV_SEEDS` (comma-separated member addresses); for `in` also
/// `RINGKV_NODE_ID` and `RINGKV_NODE_ADDRESS` (the node that has left the ring, to stop).
/// For `out` the command starts a node that waits to be joined (`ringkv node ... --join`
/// without peers) and prints `ID ADDRESS [ZONE]` as the last line of its standard output.
/// A non-zero exit, a timeout or an unreadable last line fails the action.
#[derive(Debug, Clone)]
pub struct CommandActuator {
    /// The shell command.
    pub command: String,
    /// Member addresses passed as `RINGKV_SEEDS`.
    pub seeds: Vec<String>,
}

impl CommandActuator {
    async fn run(&self, action: &str, env: &[(&str, &str)]) -> Result<String, String> {
        let mut cmd = tokio::process::Command::new("sh");
        // The action follows the operator's words as their last argument.
        cmd.arg("-c")
            .arg(format!("{} \"$@\"", self.command))
            .arg("ringkv-autoscale")
            .arg(action)
            .env("RINGKV_ACTION", action)
            .env("RINGKV_SEEDS", self.seeds.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run the scaling command {:?}: {e}", self.command))?;
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let read = async {
            let mut out = String::new();
            let mut err = String::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_string(&mut out).await;
            }
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_string(&mut err).await;
            }
            let status = child.wait().await;
            (out, err, status)
        };
        let (out, err, status) =
            tokio::time::timeout(COMMAND_TIMEOUT, read)
                .await
                .map_err(|_| {
                    format!(
                        "the scaling command did not finish within {}s",
                        COMMAND_TIMEOUT.as_secs()
                    )
                })?;
        let status = status.map_err(|e| format!("waiting for the scaling command: {e}"))?;
        if !status.success() {
            let tail: String = err.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            return Err(format!(
                "the scaling command `{action}` failed ({status}): {tail}"
            ));
        }
        Ok(out)
    }
}

/// Reads `ID ADDRESS [ZONE]` from the last non-empty line of a command's output.
pub fn parse_provisioned(out: &str) -> Result<Provisioned, String> {
    let line = out
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or("the scaling command printed nothing; it must print `ID ADDRESS [ZONE]`")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [id, address] | [id, address, _] if address.contains(':') => Ok(Provisioned {
            id: (*id).to_string(),
            address: (*address).to_string(),
            zone: words.get(2).map(|z| (*z).to_string()).unwrap_or_default(),
        }),
        _ => Err(format!(
            "the scaling command's last line {line:?} is not `ID HOST:PORT [ZONE]`"
        )),
    }
}

impl Actuator for CommandActuator {
    async fn provision(&mut self, reason: &str) -> Result<Provisioned, String> {
        let out = self.run("out", &[("RINGKV_REASON", reason)]).await?;
        parse_provisioned(&out)
    }

    async fn retire(&mut self, id: &str, address: &str) -> Result<(), String> {
        self.run(
            "in",
            &[("RINGKV_NODE_ID", id), ("RINGKV_NODE_ADDRESS", address)],
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_names_its_node_on_its_last_line() {
        let p = parse_provisioned("starting...\nn4 10.0.0.4:7000 b\n\n").unwrap();
        assert_eq!(
            p,
            Provisioned {
                id: "n4".into(),
                address: "10.0.0.4:7000".into(),
                zone: "b".into()
            }
        );
        assert!(
            parse_provisioned("")
                .unwrap_err()
                .contains("printed nothing")
        );
        assert!(
            parse_provisioned("done")
                .unwrap_err()
                .contains("ID HOST:PORT")
        );
        assert!(parse_provisioned("n4 nowhere").is_err());
    }

    #[tokio::test]
    async fn a_failing_command_fails_the_action_with_its_error() {
        let mut a = CommandActuator {
            command: "echo out of quota >&2; exit 3".into(),
            seeds: vec![],
        };
        let e = a.provision("test").await.unwrap_err();
        assert!(e.contains("out of quota"), "{e}");
        let mut a = CommandActuator {
            command: "f() { test \"$1\" = in && test \"$RINGKV_NODE_ID\" = n9; }; f".into(),
            seeds: vec![],
        };
        a.retire("n9", "127.0.0.1:1").await.unwrap();
    }
}
