//! The replica executor: dedicated threads that apply replica operations to
//! the local engine, in batches.
//!
//! The engine is synchronous and may block (fsync, disk reads), so it never
//! runs on the async workers. Rather than one blocking-pool hand-off per
//! operation, requests from every source (peers' pipelines and this node's
//! own coordinator) go into one queue. Each executor thread takes what has
//! queued up (up to [`MAX_BATCH`]), answers the reads, and applies all
//! hint-free writes as one engine batch — one commit-log record and one
//! fsync for the lot — before answering them. Under load this turns N
//! thread hand-offs and N commit-log syncs into one each.
//!
//! The per-key locks are held only while a batch is applied (read, update,
//! append to the log, insert into the memtable), never across the fsync:
//! while one thread waits for its batch to be durable, another applies the
//! next one, and every batch applied during one fsync shares the next. Reads
//! whose answer is in memory never come here (`Cluster::fetch_from_memory`),
//! so they never queue behind an fsync. (A separate syncer thread was tried:
//! it adds a wake-up per write, and at 3,000 ops/s open loop the two
//! designs measured within the run-to-run noise, so the simpler one stays.)
//! A coordinated write can also ask to hear its new version set as soon as it
//! is applied ([`Minted`]), so the coordinator sends it to the other replicas
//! while the local fsync runs.

use std::sync::Arc;
use std::sync::mpsc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::proto::{ReplicaResponse, replica_request};
use crate::replica::{LocalWrite, Replica};
use crate::version::VersionSet;

use super::{ApplyError, apply_local, decode_context, respond};

/// Most operations one executor thread takes at once.
const MAX_BATCH: usize = 256;

/// Where an answer goes.
pub type Reply = Box<dyn FnOnce(ReplicaResponse) + Send>;

/// Told a coordinated write's resulting version set (and its encoding) once it is applied,
/// before it is durable; the [`Reply`] still comes after the fsync.
pub type Minted = Box<dyn FnOnce(&VersionSet, &Bytes) + Send>;

struct Job {
    op: replica_request::Op,
    reply: Reply,
    minted: Option<Minted>,
}

/// Operations queued or running at once; past it, submitters wait. This is
/// the back-pressure that keeps a node from accepting more work than its
/// engine can absorb: a pipeline stops reading its stream (HTTP/2 flow
/// control then slows the sending peer), and the coordinator waits, instead
/// of a queue that grows by seconds of work under overload.
pub const MAX_QUEUED: usize = 1024;

/// Handle to the executor threads; cheap to clone.
#[derive(Clone)]
pub struct Executor {
    tx: mpsc::Sender<Job>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Executor {
    /// Start `threads` executor threads over `replica`.
    pub fn start(replica: Arc<Replica>, threads: usize) -> std::io::Result<Executor> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let replica = replica.clone();
            std::thread::Builder::new()
                .name(format!("ringkv-replica-{i}"))
                .spawn(move || run(&replica, &rx))?;
        }
        Ok(Executor {
            tx,
            permits: Arc::new(tokio::sync::Semaphore::new(MAX_QUEUED)),
        })
    }

    /// Queue an operation once there is room; `reply` is called with the
    /// answer on an executor thread. Returns false if the executor stopped.
    pub async fn submit(&self, op: replica_request::Op, reply: Reply) -> bool {
        self.submit_with(op, reply, None).await
    }

    /// As [`submit`](Self::submit); a coordinated write also calls `minted` as soon as its
    /// new version set is applied (other operations never call it).
    pub async fn submit_with(
        &self,
        op: replica_request::Op,
        reply: Reply,
        minted: Option<Minted>,
    ) -> bool {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return false;
        };
        let reply: Reply = Box::new(move |resp| {
            drop(permit);
            reply(resp);
        });
        self.tx.send(Job { op, reply, minted }).is_ok()
    }
}

/// Waits until `seq` is durable, then answers (or fails) every write it covers.
fn answer_when_durable(
    replica: &Replica,
    seq: u64,
    answers: impl IntoIterator<Item = (Reply, Bytes)>,
) {
    match replica.sync_through(seq) {
        Ok(()) => {
            for (reply, versions) in answers {
                reply(respond(Ok(versions)));
            }
        }
        Err(e) => {
            let failed = respond(Err(ApplyError::from(e)));
            for (reply, _) in answers {
                reply(failed.clone());
            }
        }
    }
}

fn run(replica: &Replica, rx: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let jobs = {
            let rx = rx.lock();
            let Ok(first) = rx.recv() else {
                return;
            };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            jobs
        };
        execute(replica, jobs);
    }
}

/// A write of the batch waiting for its answer.
struct Waiting {
    reply: Reply,
    /// A coordinated write returns its set; a merge only an ack.
    wants_set: bool,
    minted: Option<Minted>,
}

/// Answer reads and one-off operations at once; batch the plain writes.
fn execute(replica: &Replica, jobs: Vec<Job>) {
    let mut writes: Vec<LocalWrite> = Vec::new();
    let mut waiting: Vec<Waiting> = Vec::new();
    for job in jobs {
        match job.op {
            replica_request::Op::Coordinate(c) if c.hint_for.is_empty() => {
                match decode_context(&c.context) {
                    Ok(context) => {
                        let w = LocalWrite::Coordinate {
                            key: c.key,
                            value: (!c.tombstone).then_some(c.value),
                            context,
                            timestamp_ms: c.timestamp_ms,
                        };
                        match replica.check_write(&w) {
                            Ok(()) => {
                                writes.push(w);
                                waiting.push(Waiting {
                                    reply: job.reply,
                                    wants_set: true,
                                    minted: job.minted,
                                });
                            }
                            Err(e) => (job.reply)(respond(Err(ApplyError::Invalid(e.to_string())))),
                        }
                    }
                    Err(e) => (job.reply)(respond(Err(e))),
                }
            }
            replica_request::Op::Merge(m) if m.hint_for.is_empty() => {
                match VersionSet::decode(&m.versions).map_err(ApplyError::from) {
                    Ok(incoming) => {
                        let w = LocalWrite::Merge {
                            key: m.key,
                            incoming,
                        };
                        match replica.check_write(&w) {
                            Ok(()) => {
                                writes.push(w);
                                waiting.push(Waiting {
                                    reply: job.reply,
                                    wants_set: false,
                                    minted: None,
                                });
                            }
                            Err(e) => (job.reply)(respond(Err(ApplyError::Invalid(e.to_string())))),
                        }
                    }
                    Err(e) => (job.reply)(respond(Err(e))),
                }
            }
            op => (job.reply)(apply_local(replica, op)),
        }
    }
    if writes.is_empty() {
        return;
    }
    let failed = |e: crate::replica::ReplicaError, waiting: Vec<Waiting>| {
        let failed = respond(Err(ApplyError::from(e)));
        for w in waiting {
            (w.reply)(failed.clone());
        }
    };
    let (sets, seq) = match replica.apply_many(writes) {
        Ok(applied) => applied,
        Err(e) => return failed(e, waiting),
    };
    // Encode each coordinated write's set once: for the early `minted` call and the answer.
    let mut answers: Vec<(Reply, Bytes)> = Vec::with_capacity(waiting.len());
    for (w, set) in waiting.into_iter().zip(sets) {
        let versions = if w.wants_set {
            Bytes::from(set.encode())
        } else {
            Bytes::new()
        };
        if let Some(minted) = w.minted {
            minted(&set, &versions);
        }
        answers.push((w.reply, versions));
    }
    // The locks are released: the other threads apply the next batches meanwhile.
    answer_when_durable(replica, seq, answers);
}
