//! One charge point's downlink: the CALL the gateway is waiting on (at most one, as OCPP
//! requires) and the commands queued behind it, in order and bounded. Sans-IO: it hands back
//! the frame to send and the timer to set, and settles each command's reply channel with the
//! answer, a timeout or the reason it was never sent. A command leaves a count on `pending`
//! (for `/metrics`) from the moment it is queued until it is settled or dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

use super::frame::encode_call;

/// What a charge point answered a downlink CALL.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A CALLRESULT's payload.
    Result(Value),
    /// A CALLERROR.
    Error {
        code: String,
        description: String,
        details: Value,
    },
}

/// Why a command got no answer from the charge point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Invalid(String),
    #[error("charge point {0:?} is not connected")]
    NotConnected(String),
    #[error("{0} commands are queued for this charge point already (OCPP_MAX_QUEUED_COMMANDS)")]
    QueueFull(usize),
    #[error("the charge point did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the charge point disconnected before answering")]
    Disconnected,
    #[error("a newer connection of this charge point replaced the one the command was sent on")]
    Replaced,
    #[error("the gateway is overloaded: {0}")]
    Overloaded(String),
}

/// Where a command's outcome goes (the waiting HTTP request or library caller).
pub type Reply = oneshot::Sender<Result<Answer, CommandError>>;

/// A command counted in a shared gauge while it lives.
struct Counted {
    /// Taken when settled.
    reply: Option<Reply>,
    pending: Arc<AtomicI64>,
}

impl Counted {
    fn settle(mut self, outcome: Result<Answer, CommandError>) {
        // The waiter may have given up (its own timeout, a client that left): nothing to do.
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(outcome);
        }
    }

    /// Nobody waits for the outcome any more.
    fn abandoned(&self) -> bool {
        self.reply.as_ref().map_or(true, Reply::is_closed)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A command waiting to be sent.
pub struct Command {
    pub action: String,
    pub payload: Value,
    /// When the waiter stops waiting; a command still queued then is never sent.
    pub deadline: Instant,
    reply: Counted,
}

impl Command {
    /// A command; `pending` counts it until it is settled or dropped.
    pub fn new(
        action: String,
        payload: Value,
        deadline: Instant,
        reply: Reply,
        pending: &Arc<AtomicI64>,
    ) -> Command {
        pending.fetch_add(1, Ordering::Relaxed);
        Command {
            action,
            payload,
            deadline,
            reply: Counted {
                reply: Some(reply),
                pending: pending.clone(),
            },
        }
    }
}

/// A CALL to send now, and the timer that ends the wait for its answer.
pub struct Dispatch {
    pub message_id: String,
    pub action: String,
    pub payload: Value,
    /// The encoded `[2, id, action, payload]`.
    pub text: String,
    pub after: Duration,
    pub token: u64,
}

/// A CALL settled by the charge point's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub action: String,
    pub elapsed: Duration,
    pub error: bool,
}

struct Outstanding {
    message_id: String,
    action: String,
    sent_at: Instant,
    token: u64,
    reply: Counted,
}

/// The downlink of one connection.
#[derive(Default)]
pub struct Downlink {
    /// Set once the connection started closing: nothing is queued any more.
    closed: bool,
    outstanding: Option<Outstanding>,
    /// The message id of the last CALL that timed out, to tell its late answer from noise.
    last_expired: Option<String>,
    queue: VecDeque<Command>,
    /// Timer tokens of CALLs; the caller keeps tokens below [`FIRST_TOKEN`] for itself.
    next_token: u64,
}

/// Timer tokens below this are the caller's own.
pub const FIRST_TOKEN: u64 = 16;

impl Downlink {
    /// Queues `cmd` behind those waiting; refused (and settled with `QueueFull`) when
    /// `max_queued` wait already.
    pub fn enqueue(&mut self, cmd: Command, max_queued: usize) -> Result<(), CommandError> {
        if self.queue.len() >= max_queued {
            let error = CommandError::QueueFull(max_queued);
            cmd.reply.settle(Err(error.clone()));
            return Err(error);
        }
        self.queue.push_back(cmd);
        Ok(())
    }

    /// The next CALL to send, when none is outstanding. Commands whose waiter gave up while
    /// queued (deadline passed, or nobody listening) are settled and skipped.
    pub fn next(&mut self, now: Instant) -> Option<Dispatch> {
        if self.outstanding.is_some() {
            return None;
        }
        while let Some(cmd) = self.queue.pop_front() {
            if cmd.reply.abandoned() {
                continue;
            }
            let Some(left) = cmd
                .deadline
                .checked_duration_since(now)
                .filter(|d| !d.is_zero())
            else {
                cmd.reply.settle(Err(CommandError::Timeout(Duration::ZERO)));
                continue;
            };
            let message_id = uuid::Uuid::new_v4().to_string();
            let text = encode_call(&message_id, &cmd.action, &cmd.payload);
            self.next_token = self.next_token.max(FIRST_TOKEN) + 1;
            let token = self.next_token;
            self.outstanding = Some(Outstanding {
                message_id: message_id.clone(),
                action: cmd.action.clone(),
                sent_at: now,
                token,
                reply: cmd.reply,
            });
            return Some(Dispatch {
                message_id,
                action: cmd.action,
                payload: cmd.payload,
                text,
                after: left,
                token,
            });
        }
        None
    }

    /// The charge point answered `message_id`: settles the outstanding CALL if it is that
    /// one. `None` for any other id (a late answer after a timeout, or one never asked).
    pub fn answer(&mut self, message_id: &str, answer: Answer, now: Instant) -> Option<Settled> {
        if self.outstanding.as_ref()?.message_id != message_id {
            return None;
        }
        let call = self.outstanding.take()?;
        let settled = Settled {
            action: call.action,
            elapsed: now.saturating_duration_since(call.sent_at),
            error: matches!(answer, Answer::Error { .. }),
        };
        call.reply.settle(Ok(answer));
        Some(settled)
    }

    /// Timer `token` fired: if it is the outstanding CALL's, that CALL timed out (settled with
    /// `Timeout`); returns its action and message id. An answer that comes later is not its.
    pub fn expire(&mut self, token: u64, now: Instant) -> Option<(String, String)> {
        if self.outstanding.as_ref()?.token != token {
            return None;
        }
        let call = self.outstanding.take()?;
        let waited = now.saturating_duration_since(call.sent_at);
        call.reply.settle(Err(CommandError::Timeout(waited)));
        self.last_expired = Some(call.message_id.clone());
        Some((call.action, call.message_id))
    }

    /// Whether `message_id` is the last CALL that timed out (so an answer to it is late).
    pub fn timed_out(&self, message_id: &str) -> bool {
        self.last_expired.as_deref() == Some(message_id)
    }

    /// The connection is going: settles every command, outstanding and queued, with `error`.
    /// The caller must queue nothing after ([`is_closed`](Downlink::is_closed)).
    pub fn close(&mut self, error: &CommandError) {
        self.closed = true;
        if let Some(call) = self.outstanding.take() {
            call.reply.settle(Err(error.clone()));
        }
        for cmd in self.queue.drain(..) {
            cmd.reply.settle(Err(error.clone()));
        }
    }

    /// Whether the connection started closing ([`close`](Downlink::close)).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The outstanding CALL's action, if one waits for its answer.
    pub fn outstanding_action(&self) -> Option<&str> {
        self.outstanding.as_ref().map(|c| c.action.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Waiter = oneshot::Receiver<Result<Answer, CommandError>>;

    fn command(action: &str, deadline: Instant, pending: &Arc<AtomicI64>) -> (Command, Waiter) {
        let (tx, rx) = oneshot::channel();
        (
            Command::new(action.into(), json!({}), deadline, tx, pending),
            rx,
        )
    }

    #[test]
    fn one_call_at_a_time_in_order() {
        let pending = Arc::new(AtomicI64::new(0));
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        let mut link = Downlink::default();
        let (a, mut rx_a) = command("Reset", later, &pending);
        let (b, mut rx_b) = command("GetConfiguration", later, &pending);
        link.enqueue(a, 4).unwrap();
        link.enqueue(b, 4).unwrap();
        assert_eq!(pending.load(Ordering::Relaxed), 2);
        let first = link.next(now).unwrap();
        assert_eq!(first.action, "Reset");
        assert!(first.token >= FIRST_TOKEN);
        assert!(first
            .text
            .starts_with(&format!("[2,\"{}\",\"Reset\"", first.message_id)));
        assert!(link.next(now).is_none(), "one outstanding at a time");
        assert_eq!(link.answer("other", Answer::Result(json!({})), now), None);
        let settled = link
            .answer(
                &first.message_id,
                Answer::Result(json!({"status": "Accepted"})),
                now,
            )
            .unwrap();
        assert_eq!(settled.action, "Reset");
        assert_eq!(
            rx_a.try_recv().unwrap(),
            Ok(Answer::Result(json!({"status": "Accepted"})))
        );
        assert_eq!(pending.load(Ordering::Relaxed), 1);
        let second = link.next(now).unwrap();
        assert_eq!(second.action, "GetConfiguration");
        assert_ne!(second.message_id, first.message_id);
        assert_eq!(link.expire(first.token, now), None, "a stale timer");
        assert!(link.expire(second.token, now).is_some());
        assert!(matches!(
            rx_b.try_recv().unwrap(),
            Err(CommandError::Timeout(_))
        ));
        assert_eq!(
            link.answer(&second.message_id, Answer::Result(json!({})), now),
            None,
            "late"
        );
        assert_eq!(pending.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_queue_is_bounded_and_stale_commands_are_skipped() {
        let pending = Arc::new(AtomicI64::new(0));
        let now = Instant::now();
        let mut link = Downlink::default();
        let (expired, mut rx_expired) = command("A", now, &pending);
        let (gone, rx_gone) = command("B", now + Duration::from_secs(5), &pending);
        link.enqueue(expired, 2).unwrap();
        link.enqueue(gone, 2).unwrap();
        let (full, mut rx_full) = command("C", now + Duration::from_secs(5), &pending);
        assert_eq!(link.enqueue(full, 2), Err(CommandError::QueueFull(2)));
        assert_eq!(rx_full.try_recv().unwrap(), Err(CommandError::QueueFull(2)));
        drop(rx_gone);
        assert!(
            link.next(now).is_none(),
            "expired and abandoned commands are not sent"
        );
        assert!(matches!(
            rx_expired.try_recv().unwrap(),
            Err(CommandError::Timeout(_))
        ));
        assert_eq!(pending.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_closing_connection_fails_everything() {
        let pending = Arc::new(AtomicI64::new(0));
        let now = Instant::now();
        let mut link = Downlink::default();
        let (a, mut rx_a) = command("A", now + Duration::from_secs(5), &pending);
        let (b, mut rx_b) = command("B", now + Duration::from_secs(5), &pending);
        link.enqueue(a, 4).unwrap();
        link.enqueue(b, 4).unwrap();
        link.next(now).unwrap();
        assert_eq!(link.outstanding_action(), Some("A"));
        assert!(!link.is_closed());
        link.close(&CommandError::Replaced);
        assert!(link.is_closed());
        assert_eq!(rx_a.try_recv().unwrap(), Err(CommandError::Replaced));
        assert_eq!(rx_b.try_recv().unwrap(), Err(CommandError::Replaced));
        assert_eq!(pending.load(Ordering::Relaxed), 0);
    }
}
