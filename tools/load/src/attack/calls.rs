//! The message streams (schema, labels, events): `-c` charge points of the
//! run's own, each a thread that upgrades with permessage-deflate offered,
//! boots, then sends the stream's CALLs at its share of the rate with at
//! most `--window` unanswered, matching each answer to its CALL by id (and
//! answering any CALL of the server). A charge point the server drops is
//! reopened until the stream ends; then what is still unanswered gets a
//! short drain.

use std::time::{Duration, Instant};

use crate::ocpp::{call, call_result, check_result, parse_frame, Action, Frame, Verdict};
use crate::pace::Pacer;

use super::peer::{upgrade, End, Peer, Upgrade};
use super::plan::Kind;
use super::tally::Tally;
use super::{seed, Calls, Ctx};

/// How long the answers still due when a stream ends may take.
const DRAIN: Duration = Duration::from_secs(10);
/// How long a charge point's own Close may take to be answered.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Pause before reopening a charge point that failed to open or boot.
const RETRY: Duration = Duration::from_millis(500);
/// Longest CALLERROR code kept as a key.
const MAX_CODE: usize = 40;

/// Runs `kind`'s stream of `calls` to its end.
pub fn run(ctx: &Ctx<'_>, kind: Kind, calls: &dyn Calls) -> Tally {
    let pacer = Pacer::new(ctx.plan.rate(kind), ctx.start, Some(ctx.end));
    let mut tally = std::thread::scope(|s| {
        let pacer = &pacer;
        let threads: Vec<_> = (0..ctx.plan.connections)
            .map(|j| s.spawn(move || charge_point(ctx, kind, j, pacer, calls)))
            .collect();
        let mut tally = Tally::default();
        for h in threads {
            match h.join() {
                Ok(t) => tally.merge(&t),
                Err(_) => eprintln!("ringgate-load: a {} charge point panicked", kind.name()),
            }
        }
        tally
    });
    tally.due = pacer.due_by(ctx.end);
    tally
}

/// Charge point `j` of the stream: opens, boots, sends, reopens.
fn charge_point(ctx: &Ctx<'_>, kind: Kind, j: u32, pacer: &Pacer, calls: &dyn Calls) -> Tally {
    let id = format!("{}{}-{j}", ctx.plan.id_prefix, kind.name());
    let target = ctx.target(&id);
    let mut rng = seed((u64::from(j) << 8) | kind as u64);
    let mut t = Tally::default();
    let mut talk = Talk {
        due: pacer.claim(),
        msg_id: 0,
        outstanding: Vec::new(),
        buf: Vec::new(),
    };
    while talk.due.is_some() && Instant::now() < ctx.end {
        let up = Upgrade {
            addr: ctx.plan.url.addr,
            host: &ctx.plan.url.host_header,
            target: &target,
            headers: &[],
            deflate: true,
            timeout: ctx.handshake_timeout(),
        };
        let peer = match upgrade(&up, &mut rng) {
            Ok((peer, _)) => peer,
            Err(refusal) => {
                t.end(&format!("refused: {}", refusal.key()));
                std::thread::sleep(RETRY.min(ctx.end.saturating_duration_since(Instant::now())));
                continue;
            }
        };
        t.opened += 1;
        t.compressed += u64::from(peer.compressed());
        let end = match boot(ctx, peer, &mut talk.buf) {
            Ok(peer) => talk.converse(ctx, peer, pacer, calls, &mut t),
            Err(why) => {
                t.end(&why);
                std::thread::sleep(RETRY.min(ctx.end.saturating_duration_since(Instant::now())));
                continue;
            }
        };
        t.end(&end.key());
    }
    t
}

/// Sends a BootNotification and waits for its acceptance; the peer, or
/// why it did not boot (the connection then closed).
fn boot(ctx: &Ctx<'_>, mut peer: Peer, buf: &mut Vec<u8>) -> Result<Peer, String> {
    let sent = peer.send_text(call(0, Action::BootNotification).as_bytes());
    if let Err(end) = sent {
        return Err(format!("boot: {}", end.key()));
    }
    let deadline = Instant::now() + ctx.handshake_timeout();
    loop {
        let message = match peer.next_message(deadline) {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(end) => return Err(format!("boot: {}", end.key())),
        };
        let verdict = match parse_frame(&message) {
            Some(Frame::Result { id, payload }) if id == "0" => {
                check_result(Action::BootNotification, &payload)
            }
            Some(Frame::Error { id, code }) if id == "0" => {
                let _ = peer.close(CLOSE_GRACE);
                return Err(format!("boot: CALLERROR {}", short(&code)));
            }
            Some(Frame::Call { id, action }) => {
                answer(&mut peer, &id, &action, buf).map_err(|e| e.key())?;
                continue;
            }
            _ => continue,
        };
        if verdict == Verdict::Ok {
            return Ok(peer);
        }
        let _ = peer.close(CLOSE_GRACE);
        return Err("boot: not accepted".into());
    }
    let _ = peer.close(CLOSE_GRACE);
    Err("boot: no answer".into())
}

/// Answers the server's CALL `id` as the ocpp mode's charge points do.
fn answer(peer: &mut Peer, id: &str, action: &str, buf: &mut Vec<u8>) -> Result<(), End> {
    *buf = call_result(id, action);
    peer.send_text(buf).map(|_| ())
}

/// A CALLERROR code as a key: short and printable, or a placeholder.
fn short(code: &str) -> &str {
    if code.len() <= MAX_CODE && code.bytes().all(|b| b.is_ascii_graphic()) {
        code
    } else {
        "(unprintable or long code)"
    }
}

/// One charge point's conversation state, kept across reopenings.
struct Talk {
    /// The slot claimed and not sent yet.
    due: Option<(u64, Instant)>,
    /// The last CALL's message id.
    msg_id: u64,
    /// CALLs sent and not answered: message id, send time.
    outstanding: Vec<(u64, Instant)>,
    buf: Vec<u8>,
}

impl Talk {
    /// Sends the stream's CALLs as they fall due on `peer`, then drains and
    /// closes it; how the connection ended.
    fn converse(
        &mut self,
        ctx: &Ctx<'_>,
        mut peer: Peer,
        pacer: &Pacer,
        calls: &dyn Calls,
        t: &mut Tally,
    ) -> End {
        let window = ctx.plan.window as usize;
        while let Some((_, at)) = self.due {
            if let Err(end) = self.read_until(&mut peer, at, t) {
                return self.lost(end, t);
            }
            // Behind schedule, a charge point sends late, never after the end.
            if Instant::now() >= ctx.end {
                self.due = None;
                break;
            }
            if self.outstanding.len() < window {
                self.msg_id += 1;
                self.buf.clear();
                calls.write(self.msg_id, &mut self.buf);
                match peer.send_text(&self.buf) {
                    Ok(wire) => {
                        t.sent(self.buf.len(), wire);
                        self.outstanding.push((self.msg_id, Instant::now()));
                    }
                    Err(end) => return self.lost(end, t),
                }
            } else {
                t.skipped += 1;
            }
            self.due = pacer.claim();
        }
        let drain_end = (Instant::now() + DRAIN).min(ctx.deadline);
        while !self.outstanding.is_empty() && Instant::now() < drain_end {
            if let Err(end) = self.read_until(&mut peer, drain_end, t) {
                return self.lost(end, t);
            }
        }
        t.unanswered += self.outstanding.len() as u64;
        self.outstanding.clear();
        peer.close(CLOSE_GRACE)
    }

    /// Reads and handles server messages until `deadline` (or, draining,
    /// until nothing is outstanding).
    fn read_until(&mut self, peer: &mut Peer, deadline: Instant, t: &mut Tally) -> Result<(), End> {
        loop {
            let Some(message) = peer.next_message(deadline)? else {
                return Ok(());
            };
            let (id, key) = match parse_frame(&message) {
                Some(Frame::Result { id, .. }) => (id, "CALLRESULT".to_owned()),
                Some(Frame::Error { id, code }) => (id, format!("CALLERROR {}", short(&code))),
                Some(Frame::Call { id, action }) => {
                    answer(peer, &id, &action, &mut self.buf)?;
                    continue;
                }
                None => {
                    t.unmatched += 1;
                    continue;
                }
            };
            match self
                .outstanding
                .iter()
                .position(|(n, _)| id == n.to_string())
            {
                Some(i) => {
                    let (_, sent) = self.outstanding.remove(i);
                    t.answer(&key, sent.elapsed().as_micros() as u64);
                }
                None => t.unmatched += 1,
            }
            if self.outstanding.is_empty() && self.due.is_none() {
                return Ok(());
            }
        }
    }

    /// The connection ended under us: what was outstanding is unanswered.
    fn lost(&mut self, end: End, t: &mut Tally) -> End {
        t.unanswered += self.outstanding.len() as u64;
        self.outstanding.clear();
        end
    }
}
