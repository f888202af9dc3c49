//! One `Kv.Session` stream: requests tagged with ids, answers routed back by id.
//!
//! A caller registers its id and a oneshot in the pending table, then queues the request; the
//! HTTP/2 connection task encodes whatever is queued into as few writes as it can. One reader
//! task per session takes the answers and completes the oneshots. When the stream breaks,
//! every request still pending learns that its fate is unknown ([`CallError::Lost`]), and
//! later calls learn that nothing was sent ([`CallError::NotSent`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::proto::{self as pb, session_request, session_response};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;

/// How one call on a session ended, when it did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The session was closed before the request was queued: no node saw it.
    NotSent,
    /// The stream broke with the request in flight: it may or may not have been applied.
    Lost(String),
    /// No answer within the time allowed: it may or may not have been applied.
    Timeout,
}

type Answer = Result<session_response::Result, CallError>;

#[derive(Default)]
struct Pending {
    /// Set once the stream broke; no request may be registered after that.
    closed: Option<String>,
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
}

/// An open session to one node.
pub(crate) struct Session {
    queue: mpsc::UnboundedSender<pb::SessionRequest>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU64,
}

impl Session {
    /// Opens a session with `kv`; its reader runs on the current runtime.
    pub(crate) async fn open(mut kv: super::Kv) -> Result<Session, tonic::Status> {
        let (queue, rx) = mpsc::unbounded_channel();
        let mut inbound = kv
            .session(UnboundedReceiverStream::new(rx))
            .await?
            .into_inner();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let reader = pending.clone();
        tokio::spawn(async move {
            let reason = loop {
                match inbound.message().await {
                    Ok(Some(resp)) => {
                        let waiter = reader.lock().waiting.remove(&resp.id);
                        match (waiter, resp.result) {
                            (Some(w), Some(r)) => {
                                let _ = w.send(Ok(r));
                            }
                            (Some(w), None) => {
                                let _ = w.send(Err(CallError::Lost(
                                    "the node answered without a result".into(),
                                )));
                            }
                            // A caller that timed out removed its id; an id nobody sent is a
                            // node bug, and the other requests are unaffected.
                            (None, _) => {
                                tracing::debug!(id = resp.id, "answer for no pending request")
                            }
                        }
                    }
                    Ok(None) => break "the node closed the session".to_string(),
                    Err(status) => break format!("session broke: {}", status.message()),
                }
            };
            let waiting = {
                let mut p = reader.lock();
                p.closed = Some(reason.clone());
                std::mem::take(&mut p.waiting)
            };
            for (_, w) in waiting {
                let _ = w.send(Err(CallError::Lost(reason.clone())));
            }
        });
        Ok(Session {
            queue,
            pending,
            next_id: AtomicU64::new(1),
        })
    }

    /// Whether the stream is still up.
    pub(crate) fn is_open(&self) -> bool {
        self.pending.lock().closed.is_none() && !self.queue.is_closed()
    }

    /// Sends one request and waits at most `wait` for its answer.
    pub(crate) async fn call(
        &self,
        op: session_request::Op,
        wait: Duration,
    ) -> Result<session_response::Result, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock();
            if p.closed.is_some() {
                return Err(CallError::NotSent);
            }
            p.waiting.insert(id, tx);
        }
        if self
            .queue
            .send(pb::SessionRequest { id, op: Some(op) })
            .is_err()
        {
            self.pending.lock().waiting.remove(&id);
            return Err(CallError::NotSent);
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(CallError::Lost("the session reader stopped".into())),
            Err(_) => {
                self.pending.lock().waiting.remove(&id);
                Err(CallError::Timeout)
            }
        }
    }
}
