//! The `redis` target: a calibration point. The same key and value generators, the same
//! runners and histograms, against a server whose reference figures are well known
//! (`redis-benchmark`): reads are `GET`, writes `SET`, deletes `DEL`, a read-modify-write a
//! `GET` then a `SET`. Requests share `connections` multiplexed connections (the `redis`
//! crate pipelines the requests in flight on each), round-robin.
//!
//! `cluster: { start: true }` starts a local `redis-server` for the run (on 127.0.0.1, an
//! ephemeral port, no persistence) and stops it at the end; `cluster.endpoints` names a
//! running one.

use std::cell::Cell;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use super::{BatchAnswers, BatchOp, OpError, Seen, Target};
use crate::generator::{OpKind, OpSpec};

/// How long a started server may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` process started for a run; killed when dropped.
pub struct RedisServer {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on 127.0.0.1 and a free port, without persistence, and waits
    /// until it answers.
    pub async fn start() -> Result<RedisServer, String> {
        let program = which("redis-server").ok_or_else(|| {
            "`cluster.start` needs `redis-server` on the PATH (Debian: apt-get install \
             redis-server)"
                .to_string()
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?
            .port();
        let dir = tempfile::Builder::new()
            .prefix("loadgen-redis-")
            .tempdir()
            .map_err(|e| format!("cannot make a directory for redis-server: {e}"))?;
        let child = Command::new(program)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let mut server = RedisServer {
            child,
            address: format!("127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(mut c) = connect_one(&server.address).await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server exited at start ({status})"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "redis-server did not answer within {}s",
                    START_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `HOST:PORT` it listens on.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

async fn connect_one(address: &str) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(format!("redis://{address}/"))
        .map_err(|e| format!("redis endpoint {address:?}: {e}"))?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("cannot connect to redis at {address}: {e}"))
}

/// Connections to one redis server.
pub struct RedisTarget {
    conns: Vec<MultiplexedConnection>,
    next: Cell<usize>,
    timeout: Duration,
    pids: Vec<u32>,
}

impl RedisTarget {
    /// Opens `connections` multiplexed connections to `address`; `pids` are the server's
    /// processes to sample (empty for a remote one).
    pub async fn connect(
        address: &str,
        connections: usize,
        timeout: Duration,
        pids: Vec<u32>,
    ) -> Result<RedisTarget, String> {
        let mut conns = Vec::with_capacity(connections.max(1));
        for _ in 0..connections.max(1) {
            conns.push(connect_one(address).await?);
        }
        Ok(RedisTarget {
            conns,
            next: Cell::new(0),
            timeout,
            pids,
        })
    }

    fn conn(&self) -> MultiplexedConnection {
        let i = self.next.get();
        self.next.set(i.wrapping_add(1));
        // `connect` opens at least one.
        self.conns[i % self.conns.len().max(1)].clone()
    }

    /// One wire-level pipeline, as `redis-benchmark -P` sends it: every command written
    /// together, the answers read back in order. A command the server refuses fails only its
    /// operation; a connection error or the timeout fails them all.
    async fn run_batch(&self, ops: &[BatchOp<'_>]) -> Result<Vec<redis::Value>, OpError> {
        let mut pipe = redis::pipe();
        for b in ops {
            match b.op.kind {
                OpKind::Read => pipe.get(b.key),
                OpKind::Write => pipe.set(b.key, b.value),
                OpKind::Delete => pipe.del(b.key),
                OpKind::ReadModifyWrite => pipe.get(b.key).set(b.key, b.value),
            };
        }
        pipe.ignore_errors();
        let mut c = self.conn();
        match tokio::time::timeout(self.timeout, pipe.query_async::<Vec<redis::Value>>(&mut c))
            .await
        {
            Err(_) => Err(OpError::Timeout),
            Ok(Err(e)) => Err(OpError::Failed(e.to_string())),
            Ok(Ok(values)) => Ok(values),
        }
    }

    /// One operation; a read that found nothing says so (a read-modify-write's GET is not
    /// counted: like ringkv's, it is a write).
    async fn run(&self, op: OpSpec, key: &[u8], value: &[u8]) -> redis::RedisResult<Seen> {
        let mut c = self.conn();
        Ok(match op.kind {
            OpKind::Read => match c.get::<_, Option<Vec<u8>>>(key).await? {
                Some(_) => Seen::Nothing,
                None => Seen::Empty,
            },
            OpKind::Write => {
                let () = c.set(key, value).await?;
                Seen::Nothing
            }
            OpKind::Delete => {
                let _: u64 = c.del(key).await?;
                Seen::Nothing
            }
            OpKind::ReadModifyWrite => {
                let _: Option<Vec<u8>> = c.get(key).await?;
                let () = c.set(key, value).await?;
                Seen::Nothing
            }
        })
    }
}

impl Target for RedisTarget {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn execute(&self, op: OpSpec, key: &[u8], value: &[u8]) -> Result<Seen, OpError> {
        match tokio::time::timeout(self.timeout, self.run(op, key, value)).await {
            Err(_) => Err(OpError::Timeout),
            Ok(Err(e)) => Err(OpError::Failed(e.to_string())),
            Ok(Ok(seen)) => Ok(seen),
        }
    }

    async fn execute_batch<'a>(&'a self, ops: &'a [BatchOp<'a>]) -> BatchAnswers {
        let result = self.run_batch(ops).await;
        let done = std::time::Instant::now();
        let mut answers = Vec::with_capacity(ops.len());
        match result {
            Err(e) => answers.extend(ops.iter().map(|_| (Err(e.clone()), done))),
            Ok(values) => {
                let mut values = values.into_iter();
                for b in ops {
                    let commands = if b.op.kind == OpKind::ReadModifyWrite {
                        2
                    } else {
                        1
                    };
                    let mut outcome = Ok(Seen::Nothing);
                    for _ in 0..commands {
                        outcome = match (outcome, values.next()) {
                            (Err(e), _) => Err(e),
                            (Ok(_), None) => Err(OpError::Failed(
                                "redis answered fewer replies than the pipeline sent".into(),
                            )),
                            (Ok(_), Some(redis::Value::ServerError(e))) => {
                                Err(OpError::Failed(e.to_string()))
                            }
                            // A read's one reply is its GET's.
                            (Ok(_), Some(redis::Value::Nil)) if b.op.kind == OpKind::Read => {
                                Ok(Seen::Empty)
                            }
                            (Ok(seen), Some(_)) => Ok(seen),
                        };
                    }
                    answers.push((outcome, done));
                }
            }
        }
        answers
    }

    fn pids(&self) -> Vec<u32> {
        self.pids.clone()
    }
}
