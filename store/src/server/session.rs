//! `Kv.Session`: many client requests in flight on one long-lived stream.
//!
//! The response stream itself drives the session: when the server polls it for the next
//! answer, it reads every request that has arrived, starts each one, and returns whichever
//! finishes first. So the requests of a session run on the task that writes its answers,
//! with no channel or task hand-off per request, and answers that are ready together are
//! encoded into one write.
//!
//! At most [`MAX_IN_FLIGHT`] requests of one session run at once; past that the session stops
//! reading, and HTTP/2 flow control slows the client. A request that fails is answered with a
//! [`pb::SessionError`] carrying the status code the unary call would have had; the session
//! goes on (a write on a `read` token is refused this way). A frame that does not decode
//! ends the session with `INVALID_ARGUMENT`, after the requests already read have been
//! answered.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::FuturesUnordered;
use tokio_stream::Stream;
use tonic::{Status, Streaming};

use super::Node;
use crate::proto::{self as pb, session_request, session_response};
use crate::security::{Role, require};

/// Most requests of one session running at once.
pub const MAX_IN_FLIGHT: usize = 4096;

type Answer = Pin<Box<dyn Future<Output = pb::SessionResponse> + Send>>;

/// The response stream of one session (see the module docs).
pub struct SessionStream {
    node: Node,
    /// The role of the token the session was opened with.
    role: Role,
    /// `None` once the client closed its side or sent an undecodable frame.
    inbound: Option<Streaming<pb::SessionRequest>>,
    running: FuturesUnordered<Answer>,
    /// Sent after the last answer, when the session ends on an error.
    end: Option<Status>,
}

impl SessionStream {
    /// A session over `inbound` served by `node`, for a client with `role`.
    pub(super) fn new(node: Node, role: Role, inbound: Streaming<pb::SessionRequest>) -> Self {
        SessionStream {
            node,
            role,
            inbound: Some(inbound),
            running: FuturesUnordered::new(),
            end: None,
        }
    }
}

fn error(id: u64, status: &Status) -> pb::SessionResponse {
    pb::SessionResponse {
        id,
        result: Some(session_response::Result::Error(pb::SessionError {
            code: status.code() as i32,
            message: status.message().to_string(),
        })),
    }
}

/// Starts one request; the future answers it.
fn start(node: Node, role: Role, req: pb::SessionRequest) -> Answer {
    let id = req.id;
    Box::pin(async move {
        let result = match req.op {
            Some(session_request::Op::Put(r)) => match require(role, Role::ReadWrite, "put") {
                Ok(()) => node.put(r).await.map(session_response::Result::Put),
                Err(e) => Err(e),
            },
            Some(session_request::Op::Get(r)) => {
                node.get(r).await.map(session_response::Result::Get)
            }
            Some(session_request::Op::Delete(r)) => {
                match require(role, Role::ReadWrite, "delete") {
                    Ok(()) => node.delete(r).await.map(session_response::Result::Delete),
                    Err(e) => Err(e),
                }
            }
            None => Err(Status::invalid_argument(
                "session request without an operation (put, get or delete); is the client newer than this node?",
            )),
        };
        match result {
            Ok(r) => pb::SessionResponse {
                id,
                result: Some(r),
            },
            Err(status) => error(id, &status),
        }
    })
}

impl Stream for SessionStream {
    type Item = Result<pb::SessionResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        while this.running.len() < MAX_IN_FLIGHT {
            let Some(inbound) = this.inbound.as_mut() else {
                break;
            };
            match Pin::new(inbound).poll_next(cx) {
                Poll::Ready(Some(Ok(req))) => {
                    this.running.push(start(this.node.clone(), this.role, req))
                }
                Poll::Ready(Some(Err(status))) => {
                    this.inbound = None;
                    this.end = Some(Status::invalid_argument(format!(
                        "session ended: a request frame could not be read ({}); requests read before it were answered",
                        status.message()
                    )));
                }
                Poll::Ready(None) => this.inbound = None,
                Poll::Pending => break,
            }
        }
        match Pin::new(&mut this.running).poll_next(cx) {
            Poll::Ready(Some(answer)) => Poll::Ready(Some(Ok(answer))),
            Poll::Ready(None) | Poll::Pending => {
                if this.inbound.is_none() && this.running.is_empty() {
                    Poll::Ready(this.end.take().map(Err))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}
