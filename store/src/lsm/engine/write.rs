//! The group-commit write path: writers queue, a leader commits each group (one log write,
//! one `fdatasync` under `SyncPolicy::Always`), inserts it into the memtable, publishes it and
//! wakes the followers; the memtable is sealed and a new log started when it is full.

use super::*;

/// How a queued writer learns its fate.
pub(super) enum WaitState {
    Waiting,
    Lead,
    /// The write's result, and the next follower of the same group to wake (followers wake
    /// each other in a chain, so the leader pays for one wake-up per group).
    Done(Result<u64>, Option<Arc<Waiter>>),
}

pub(super) struct Waiter {
    state: Mutex<WaitState>,
    cv: Condvar,
}

impl Waiter {
    pub(super) fn set(&self, s: WaitState) {
        *self.state.lock() = s;
        self.cv.notify_one();
    }

    /// Blocks until the state leaves `Waiting`; returns it (resetting it to `Waiting`).
    pub(super) fn wait(&self) -> WaitState {
        let mut st = self.state.lock();
        loop {
            match std::mem::replace(&mut *st, WaitState::Waiting) {
                WaitState::Waiting => self.cv.wait(&mut st),
                other => return other,
            }
        }
    }
}

/// Returns a follower's result after waking the next follower of its group.
pub(super) fn finish_follower(r: Result<u64>, next: Option<Arc<Waiter>>) -> Result<u64> {
    if let Some(n) = next {
        n.cv.notify_one();
    }
    r
}

thread_local! {
    /// Each thread reuses one waiter: a thread waits for at most one write at a time.
    static WAITER: Arc<Waiter> = Arc::new(Waiter {
        state: Mutex::new(WaitState::Waiting),
        cv: Condvar::new(),
    });
}

pub(super) struct Pending {
    batch: WriteBatch,
    waiter: Arc<Waiter>,
}

#[derive(Default)]
pub(super) struct CommitQueue {
    leader_active: bool,
    queue: VecDeque<Pending>,
}

/// Groups one leader commits back to back before it hands the leadership on.
pub(super) const MAX_LEAD_ROUNDS: usize = 8;

/// Takes queued batches for one group, up to `MAX_GROUP_BYTES` including `first_bytes`.
pub(super) fn take_group(q: &mut CommitQueue, first_bytes: usize) -> Vec<Pending> {
    let mut bytes = first_bytes;
    let mut group = Vec::new();
    while let Some(p) = q.queue.front() {
        if !group.is_empty() && bytes + p.batch.data.len() > MAX_GROUP_BYTES {
            break;
        }
        bytes += p.batch.data.len();
        if let Some(p) = q.queue.pop_front() {
            group.push(p);
        }
    }
    group
}

impl Engine {
    pub(super) fn write(&self, batch: WriteBatch) -> Result<u64> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let mut q = inner.commit.lock();
        if !q.leader_active {
            q.leader_active = true;
            let followers = take_group(&mut q, batch.data.len());
            drop(q);
            return inner.lead(Some(batch), followers);
        }
        let waiter = WAITER.with(Arc::clone);
        *waiter.state.lock() = WaitState::Waiting;
        q.queue.push_back(Pending {
            batch,
            waiter: Arc::clone(&waiter),
        });
        drop(q);
        match waiter.wait() {
            WaitState::Done(r, next) => finish_follower(r, next),
            WaitState::Waiting | WaitState::Lead => {
                let mut q = inner.commit.lock();
                // The previous leader promoted the front of the queue: this writer.
                let own = q.queue.pop_front();
                let own_bytes = own.as_ref().map_or(0, |p| p.batch.data.len());
                let followers = take_group(&mut q, own_bytes);
                drop(q);
                match own {
                    Some(p) if Arc::ptr_eq(&p.waiter, &waiter) => {
                        inner.lead(Some(p.batch), followers)
                    }
                    other => {
                        // Not expected; lead the group anyway and wait for our result.
                        let mut group = followers;
                        if let Some(p) = other {
                            group.insert(0, p);
                        }
                        let _ = inner.lead(None, group);
                        loop {
                            if let WaitState::Done(r, next) = waiter.wait() {
                                return finish_follower(r, next);
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Inner {
    /// Commits `own` and the followers' batches as one group; wakes the followers, passes
    /// the leadership on, and returns `own`'s result.
    pub(super) fn lead(&self, own: Option<WriteBatch>, followers: Vec<Pending>) -> Result<u64> {
        let has_own = own.is_some();
        let mut own = own;
        let mut followers = followers;
        let mut own_result: Result<u64> = Ok(0);
        for round in 1.. {
            let result = {
                let mut batches: Vec<&WriteBatch> = Vec::with_capacity(followers.len() + 1);
                batches.extend(own.as_ref());
                batches.extend(followers.iter().map(|p| &p.batch));
                self.commit_group(&batches)
            };
            let skip = usize::from(own.take().is_some());
            if skip == 1 {
                own_result = match &result {
                    Ok(seqs) => Ok(seqs.first().copied().unwrap_or(0)),
                    Err(e) => Err(e.duplicate()),
                };
            }
            // Hand every follower its result, then wake the first: each wakes the next.
            let mut next: Option<Arc<Waiter>> = None;
            for (i, p) in followers.iter().enumerate().rev() {
                let r = match &result {
                    Ok(seqs) => Ok(seqs.get(i + skip).copied().unwrap_or(0)),
                    Err(e) => Err(e.duplicate()),
                };
                *p.waiter.state.lock() = WaitState::Done(r, next.take());
                next = Some(Arc::clone(&p.waiter));
            }
            if let Some(first) = next {
                first.cv.notify_one();
            }
            // Keep leading while writers are queued: the next group starts without waiting
            // for another thread to be scheduled. After a bounded number of groups (so this
            // writer's own call returns), hand the leadership to the oldest waiter.
            let mut q = self.commit.lock();
            if q.queue.is_empty() {
                q.leader_active = false;
                break;
            }
            if round >= MAX_LEAD_ROUNDS || result.is_err() {
                if let Some(front) = q.queue.front() {
                    front.waiter.set(WaitState::Lead);
                }
                break;
            }
            followers = take_group(&mut q, 0);
        }
        if has_own { own_result } else { Ok(0) }
    }

    /// Writes one group: WAL append (+ sync), memtable insert, publish. Returns the last
    /// sequence number of each batch.
    pub(super) fn commit_group(&self, batches: &[&WriteBatch]) -> Result<Vec<u64>> {
        let mut w = self.writer.lock();
        self.check_writable()?;
        let bytes: usize = batches.iter().map(|b| b.data.len()).sum();
        self.make_room(&mut w, bytes)?;

        let mut seq = w.last_seq;
        let mut lasts = Vec::with_capacity(batches.len());
        let mut user_bytes = 0;
        for b in batches {
            w.wal.append_batch(seq + 1, b.count, &b.data);
            seq += u64::from(b.count);
            lasts.push(seq);
            user_bytes += b.user_bytes;
        }
        if seq > key::MAX_SEQ {
            return Err(Error::InvalidOptions {
                reason: "sequence numbers exhausted".into(),
            });
        }
        if let Err(e) = w.wal.commit(&self.stats) {
            self.poison(&e);
            return Err(e);
        }
        self.insert_and_publish(&mut w, batches, seq, user_bytes)?;
        if self.opts.sync == SyncPolicy::Always {
            // The group's sync covered every write before it, deferred ones included.
            self.durable_seq.fetch_max(seq, Ordering::AcqRel);
        }
        Ok(lasts)
    }

    /// Inserts `batches` (already in the log) into the memtable with the sequence numbers
    /// after `w.last_seq`, up to `last`, and publishes `last` to readers.
    pub(super) fn insert_and_publish(
        &self,
        w: &mut Writer,
        batches: &[&WriteBatch],
        last: u64,
        user_bytes: u64,
    ) -> Result<()> {
        let mut s = w.last_seq;
        for b in batches {
            for op in b.ops() {
                let op = op.map_err(|r| Error::corruption("<write batch>", 0, r))?;
                s += 1;
                w.mem.insert(op.key, s, op.kind, op.value);
            }
        }
        w.last_seq = last;
        self.visible_seq.store(last, Ordering::Release);
        self.stats.add(&self.stats.user_bytes_written, user_bytes);
        self.stats.add(&self.stats.commit_groups, 1);
        Ok(())
    }

    /// Makes sure the memtable has room, slowing the writer down (or, as a last resort,
    /// stopping it) when flushes or L0 compactions fall behind.
    pub(super) fn make_room(&self, w: &mut Writer, group_bytes: usize) -> Result<()> {
        let opts = &self.opts;
        let mut slowed = false;
        let mut stop_started: Option<Instant> = None;
        loop {
            self.check_writable()?;
            let sv = self.super_version();
            let l0 = if opts.background_compaction {
                sv.version.levels.first().map_or(0, Vec::len)
            } else {
                0
            };
            let imms = sv.imms.len();
            let mem_full = w.mem.approximate_bytes() >= opts.memtable_bytes;
            if l0 >= opts.l0_stop_trigger || (mem_full && imms >= opts.max_immutable_memtables) {
                let started = *stop_started.get_or_insert_with(|| {
                    self.stats.add(&self.stats.write_stops, 1);
                    Instant::now()
                });
                let mut bg = self.bg.lock();
                if !bg.shutdown {
                    bg.compaction_wanted = true;
                    self.bg_cv.notify_all();
                    self.bg_cv.wait_for(&mut bg, Duration::from_millis(50));
                }
                let shutdown = bg.shutdown;
                drop(bg);
                let us = started.elapsed().as_micros() as u64;
                self.stats.record_stall(us);
                if shutdown {
                    return Err(Error::Closed);
                }
                continue;
            }
            if let Some(started) = stop_started.take() {
                let us = started.elapsed().as_micros() as u64;
                self.stats.add(&self.stats.write_stop_micros, us);
            }
            let l0_excess = (l0 + 1).saturating_sub(opts.l0_slowdown_trigger);
            let imm_excess = usize::from(imms > 0 && imms + 1 >= opts.max_immutable_memtables);
            let excess = l0_excess.max(imm_excess);
            if !slowed && excess > 0 {
                slowed = true;
                let rate = (opts.slowdown_bytes_per_sec >> (excess - 1).min(20)).max(1);
                w.slowdown_debt_us += group_bytes as f64 * 1e6 / rate as f64;
                if w.slowdown_debt_us >= 1000.0 {
                    let us = w.slowdown_debt_us.min(100_000.0) as u64;
                    w.slowdown_debt_us = 0.0;
                    std::thread::sleep(Duration::from_micros(us));
                    self.stats.add(&self.stats.write_slowdowns, 1);
                    self.stats.add(&self.stats.write_slowdown_micros, us);
                    self.stats.record_stall(us);
                }
                continue;
            }
            if mem_full {
                self.rotate(w)?;
                continue;
            }
            return Ok(());
        }
    }

    /// Seals the memtable: starts a new log and memtable and queues the old ones for flush.
    pub(super) fn rotate(&self, w: &mut Writer) -> Result<()> {
        let id = self.next_file.fetch_add(1, Ordering::Relaxed);
        let new_wal = WalWriter::create(
            &self.dir,
            id,
            w.mem.wal_id,
            self.opts.sync,
            self.opts.wal_buffer_bytes,
            self.opts.wal_prealloc_bytes(),
            &self.stats,
        )?;
        let sealed = match self.opts.sync {
            SyncPolicy::Never => w.wal.write_out(&self.stats),
            _ => w.wal.sync(&self.stats),
        };
        if let Err(e) = sealed {
            self.poison(&e);
            let _ = std::fs::remove_file(wal_path(&self.dir, id));
            return Err(e);
        }
        if self.opts.sync != SyncPolicy::Never {
            sync_dir(&self.dir, &self.stats)?;
        }
        let new_mem = Arc::new(Memtable::new(id));
        let old_mem = std::mem::replace(&mut w.mem, Arc::clone(&new_mem));
        w.wal = new_wal;
        {
            let mut sv = self.sv.write();
            let mut next = SuperVersion::clone(&sv);
            next.imms.insert(0, old_mem);
            next.mem = new_mem;
            *sv = Arc::new(next);
        }
        let _bg = self.bg.lock();
        self.bg_cv.notify_all();
        Ok(())
    }
}
