//! The replica executor: dedicated threads that apply replica operations to
//! the local engine, in batches.
//!
//! The engine is synchronous and may block (fsync, disk reads), so it never
//! runs on the async workers. Rather than one blocking-pool hand-off per
//! operation, requests from every source (peers' pipelines and this node's
//! own coordinator) go into one queue. Each executor thread takes what has
//! queued up (up to [`MAX_BATCH`]), answers the one-off operations, and applies all
//! hint-free writes as one engine batch — one commit-log record and one
//! fsync for the lot — before answering them. Under load this turns N
//! thread hand-offs and N commit-log syncs into one each.
//!
//! Reads go to a queue of their own with their own threads ([`Pool::Reads`]), so a read
//! that must go to disk never waits behind a write batch's `fdatasync`, which a busy
//! device stretches to tens of milliseconds (`a_read_does_not_wait_behind_stalled_writes`).
//!
//! The per-key locks are held only while a batch is applied (read, update,
//! append to the log, insert into the memtable), never across the fsync:
//! while one thread waits for its batch to be durable, another applies the
//! next one, and every batch applied during one fsync shares the next. Reads
//! whose answer is in memory never come here at all (`Cluster::fetch_from_memory`).
//! (A separate syncer thread was tried:
//! it adds a wake-up per write, and at 3,000 ops/s open loop the two
//! designs measured within the run-to-run noise, so the simpler one stays.)
//! A coordinated write can also ask to hear its new version set as soon as it
//! is applied ([`Minted`]), so the coordinator sends it to the other replicas
//! while the local fsync runs.
//!
//! How many threads apply writes is the node's `write_threads` (default 1,
//! `config::DEFAULT_WRITE_THREADS`). With one, every write that arrives while the thread
//! waits for an fsync joins the next batch. With two, a second thread takes the first
//! arrival at once and syncs it alone, so under load each fsync covers fewer writes and
//! more arrivals wake a thread: more throughput and less CPU per operation with one, about
//! half an fsync less write latency at low load with two (docs/performance.md, "Write
//! threads").
//!
//! The threads share one queue ([`JobQueue`]): an idle thread sleeps on its condition
//! variable, and a submit wakes one only if one sleeps (std's `notify_one` makes a futex
//! call whether or not anyone waits). (The queue was an `mpsc` receiver behind a
//! `parking_lot` mutex: the idle thread that did not hold it spun through up to seven
//! `sched_yield` calls per job before parking, about 3,800 a second per node at 1,000
//! ops/s, and on two busy vCPUs a yield often gave the core away for over 10 ms.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use bytes::Bytes;

use crate::proto::{ReplicaResponse, replica_request};
use crate::replica::{LocalWrite, Replica};
use crate::version::VersionSet;

use super::faults::Faults;
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

/// Handle to the executor threads; cheap to clone. The threads stop once every handle is
/// dropped and the queue is empty.
#[derive(Clone)]
pub struct Executor {
    queue: Arc<Submitters>,
    /// Reads that missed memory: their own threads, so they never wait behind a batch's
    /// `fdatasync` (which a busy disk stretches to tens of milliseconds).
    reads: Arc<Submitters>,
    permits: Arc<tokio::sync::Semaphore>,
    panics: Arc<AtomicU64>,
}

/// The jobs waiting for a thread, in arrival order, and whether any handle is left.
#[derive(Default)]
struct Pending {
    jobs: VecDeque<Job>,
    closed: bool,
    /// Threads asleep on the condition variable.
    idle: usize,
}

/// The queue every executor thread takes from. Only `std`'s mutex and condition variable:
/// a thread that finds the lock taken spins briefly and then sleeps on a futex, never
/// yielding its core in a loop. Critical sections are a push or a drain of up to
/// [`MAX_BATCH`] jobs, and nothing in them can panic, so a poisoned lock still holds a
/// consistent queue.
#[derive(Default)]
struct JobQueue {
    pending: Mutex<Pending>,
    ready: Condvar,
}

impl JobQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a job and wakes one idle thread. Only a handle pushes, and the queue closes
    /// when the last handle is dropped, so it is open here.
    fn push(&self, job: Job) {
        let mut p = self.lock();
        p.jobs.push_back(job);
        let asleep = p.idle > 0;
        drop(p);
        if asleep {
            self.ready.notify_one();
        }
    }

    /// Waits for work; takes up to [`MAX_BATCH`] jobs. `None` once closed and drained.
    fn take(&self) -> Option<Vec<Job>> {
        let mut p = self.lock();
        while p.jobs.is_empty() {
            if p.closed {
                return None;
            }
            p.idle += 1;
            p = self.ready.wait(p).unwrap_or_else(PoisonError::into_inner);
            p.idle -= 1;
        }
        let n = p.jobs.len().min(MAX_BATCH);
        let jobs: Vec<Job> = p.jobs.drain(..n).collect();
        let more = !p.jobs.is_empty() && p.idle > 0;
        drop(p);
        // Jobs left over: another idle thread can take them meanwhile.
        if more {
            self.ready.notify_one();
        }
        Some(jobs)
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// Shared by the handles; the last one dropped closes the queue.
struct Submitters(Arc<JobQueue>);

impl Drop for Submitters {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A reply that answers with an error if it is dropped unanswered (its batch panicked),
/// so the caller learns at once instead of waiting for its deadline.
struct AnswerOnDrop(Option<Reply>);

impl AnswerOnDrop {
    fn answer(mut self, resp: ReplicaResponse) {
        if let Some(r) = self.0.take() {
            r(resp);
        }
    }
}

impl Drop for AnswerOnDrop {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r(respond(Err(ApplyError::Failed(
                "the replica executor failed on this request (see the node log); try another replica".into(),
            ))));
        }
    }
}

impl Executor {
    /// Start `threads` executor threads and `readers` read threads over `replica`; `faults`
    /// may inject panics.
    pub fn start(
        replica: Arc<Replica>,
        threads: usize,
        readers: usize,
        faults: Faults,
    ) -> std::io::Result<Executor> {
        let queue = Arc::new(JobQueue::default());
        let reads = Arc::new(JobQueue::default());
        let panics = Arc::new(AtomicU64::new(0));
        let pools = [
            (Pool::Writes, threads, &queue),
            (Pool::Reads, readers, &reads),
        ];
        for (pool, n, queue) in pools {
            for i in 0..n.max(1) {
                let queue = queue.clone();
                let replica = replica.clone();
                let supervisor = Supervisor {
                    faults: faults.clone(),
                    panics: panics.clone(),
                };
                let name = match pool {
                    Pool::Writes => "replica",
                    Pool::Reads => "read",
                };
                std::thread::Builder::new()
                    .name(format!("ringkv-{name}-{i}"))
                    .spawn(move || run(&replica, &queue, &supervisor, pool))?;
            }
        }
        Ok(Executor {
            queue: Arc::new(Submitters(queue)),
            reads: Arc::new(Submitters(reads)),
            permits: Arc::new(tokio::sync::Semaphore::new(MAX_QUEUED)),
            panics,
        })
    }

    /// Batches that panicked since start (each was answered with errors and the thread
    /// went on).
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Operations queued or running now (at most [`MAX_QUEUED`]; submitters beyond it wait
    /// and are not counted).
    pub fn queued(&self) -> u64 {
        MAX_QUEUED.saturating_sub(self.permits.available_permits()) as u64
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
        let guard = AnswerOnDrop(Some(Box::new(move |resp| {
            drop(permit);
            reply(resp);
        })));
        let reply: Reply = Box::new(move |resp| guard.answer(resp));
        let queue = match op {
            replica_request::Op::Fetch(_) => &self.reads,
            _ => &self.queue,
        };
        queue.0.push(Job { op, reply, minted });
        true
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

/// What keeps an executor thread alive: a batch that panics is logged and counted, its
/// unanswered requests get errors (their replies are dropped, see [`AnswerOnDrop`]), and
/// the thread takes the next batch. The per-key locks are parking_lot's (released on
/// unwind, never poisoned).
struct Supervisor {
    faults: Faults,
    panics: Arc<AtomicU64>,
}

impl Supervisor {
    fn execute(&self, replica: &Replica, jobs: Vec<Job>, pool: Pool) {
        let size = jobs.len();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if self.faults.take_executor_panic() {
                injected_panic();
            }
            match pool {
                Pool::Writes => {
                    if let Some(stall) = self.faults.write_stall() {
                        std::thread::sleep(stall);
                    }
                    execute(replica, jobs);
                }
                Pool::Reads => execute_reads(replica, jobs),
            }
        }));
        if let Err(payload) = outcome {
            let n = self.panics.fetch_add(1, Ordering::Relaxed) + 1;
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            tracing::error!(panics = n, batch = size, error = %what, "a replica executor batch panicked; its requests were answered with errors and the thread goes on");
        }
    }
}

/// A panic on purpose (fault injection), to test the supervisor.
#[allow(clippy::panic)]
fn injected_panic() {
    panic!("injected executor panic (fault injection)");
}

/// Which queue a thread serves.
#[derive(Clone, Copy)]
enum Pool {
    /// Everything but reads: writes are applied in batches and answered once durable.
    Writes,
    /// Reads that missed memory.
    Reads,
}

fn run(replica: &Replica, queue: &JobQueue, supervisor: &Supervisor, pool: Pool) {
    while let Some(jobs) = queue.take() {
        supervisor.execute(replica, jobs, pool);
    }
}

/// Answers reads that missed memory, one at a time (each may wait for a disk read).
fn execute_reads(replica: &Replica, jobs: Vec<Job>) {
    for job in jobs {
        (job.reply)(apply_local(replica, job.op));
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
    for (w, result) in waiting.into_iter().zip(sets) {
        // A write refused alone (the sibling bound) changed nothing: answer it now.
        let set = match result {
            Ok(set) => set,
            Err(refused) => {
                (w.reply)(respond(Err(ApplyError::from(refused))));
                continue;
            }
        };
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::lsm;
    use crate::proto::{CoordinatePut, Fetch};
    use crate::replica::ReplicaOptions;

    fn replica(dir: &std::path::Path) -> Arc<Replica> {
        let opts = ReplicaOptions {
            node_id: "n1".into(),
            max_key_bytes: 1024,
            max_value_bytes: 10240,
            max_siblings: 64,
            engine: lsm::Options::default(),
        };
        Arc::new(Replica::open(dir, opts).unwrap())
    }

    fn put(key: &str) -> replica_request::Op {
        replica_request::Op::Coordinate(CoordinatePut {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::from_static(b"v"),
            timestamp_ms: 1,
            ..CoordinatePut::default()
        })
    }

    /// A read that missed memory is answered while every write thread is held up (here by
    /// an injected stall, in life by a slow `fdatasync`): it has its own threads. It used to
    /// wait in the writes' queue until one of them came back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_does_not_wait_behind_stalled_writes() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::enabled();
        let ex = Executor::start(replica(dir.path()), 2, 2, faults.clone()).unwrap();
        faults.set_write_stall_ms(3_000);
        let (tx, rx) = mpsc::channel::<&'static str>();
        // One write at a time, so that each write thread takes one and sleeps in its stall.
        for key in ["a", "b"] {
            let tx = tx.clone();
            assert!(
                ex.submit(
                    put(key),
                    Box::new(move |_| {
                        let _ = tx.send("write");
                    })
                )
                .await
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        let fetch = replica_request::Op::Fetch(Fetch {
            key: Bytes::from_static(b"z"),
        });
        let read_tx = tx.clone();
        assert!(
            ex.submit(
                fetch,
                Box::new(move |_| {
                    let _ = read_tx.send("read");
                })
            )
            .await
        );
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        faults.set_write_stall_ms(0);
        assert_eq!(
            first, "read",
            "the read was answered only after a stalled write"
        );
        for _ in 0..2 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), "write");
        }
    }
}
