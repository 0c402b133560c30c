//! The handshake streams (registry, passwords): upgrades at the stream's
//! rate from a pool of threads, one attempt in flight each, so a slow
//! server slows the stream instead of piling up sockets. Each answer is
//! counted by status and timed (connect() to the answer); an upgrade that
//! succeeds is left at once (a Close, then the socket dropped), never
//! booted.

use std::time::Instant;

use crate::pace::Pacer;

use super::peer::{upgrade, Refusal, Upgrade};
use super::plan::Kind;
use super::tally::Tally;
use super::{seed, Ctx, Knocks};

/// Attempts in flight at most.
const MAX_THREADS: usize = 64;
/// Attempts per second one thread is given.
const PER_THREAD: f64 = 16.0;

/// Runs `kind`'s stream of `knocks` to its end.
pub fn run(ctx: &Ctx<'_>, kind: Kind, knocks: &dyn Knocks) -> Tally {
    let rate = ctx.plan.rate(kind);
    let pacer = Pacer::new(rate, ctx.start, Some(ctx.end));
    let threads = ((rate / PER_THREAD).ceil() as usize).clamp(1, MAX_THREADS);
    let mut tally = std::thread::scope(|s| {
        let pacer = &pacer;
        let handles: Vec<_> = (0..threads)
            .map(|i| s.spawn(move || knock(ctx, kind, i as u64, pacer, knocks)))
            .collect();
        let mut tally = Tally::default();
        for h in handles {
            match h.join() {
                Ok(t) => tally.merge(&t),
                Err(_) => eprintln!("ringgate-load: a {} thread panicked", kind.name()),
            }
        }
        tally
    });
    tally.due = pacer.due_by(ctx.end);
    tally
}

/// One thread of the pool.
fn knock(ctx: &Ctx<'_>, kind: Kind, i: u64, pacer: &Pacer, knocks: &dyn Knocks) -> Tally {
    let mut rng = seed((i << 8) | kind as u64);
    let mut t = Tally::default();
    while let Some((n, due)) = pacer.claim() {
        // A thread behind schedule sends late, but never after the end.
        if !pacer.wait_for(due) || Instant::now() >= ctx.end {
            break;
        }
        let (id, authorization) = knocks.attempt(n);
        let target = ctx.target(&id);
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        let up = Upgrade {
            addr: ctx.plan.url.addr,
            host: &ctx.plan.url.host_header,
            target: &target,
            headers: &headers,
            deflate: false,
            timeout: ctx.handshake_timeout(),
        };
        t.sent(0, 0);
        let started = Instant::now();
        match upgrade(&up, &mut rng) {
            Ok((peer, took)) => {
                t.answer("HTTP 101", took.as_micros() as u64);
                peer.leave();
            }
            Err(refusal @ Refusal::Status(_)) => {
                t.answer(&refusal.key(), started.elapsed().as_micros() as u64);
            }
            Err(refusal) => t.no_answer(&refusal.key()),
        }
    }
    t
}
