//! The `attack` mode: hostile OCPP inputs against a gateway on this
//! machine, as bounded streams that stop by themselves. One module per
//! stream (`schema`, `labels`, `events` send CALLs through `calls`;
//! `registry`, `passwords` knock through `upgrades`), each on threads of its
//! own for `--duration`; `sampler` watches the server (`--pid`), `report`
//! says what each stream sent and got back. Never targets another host.

mod calls;
mod events;
mod labels;
mod passwords;
mod peer;
mod plan;
mod registry;
mod report;
mod sampler;
mod schema;
mod tally;
mod upgrades;

use std::time::{Duration, Instant};

pub use plan::{AttackArgs, AttackPlan};
pub use report::AttackReport;

use plan::Kind;
use sampler::Sampler;
use tally::Tally;

/// Time allowed for connect() and the 101, and for a boot's answer.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every stream of a run shares.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub plan: &'a AttackPlan,
    /// When the streams start: every pacer's first slot.
    pub start: Instant,
    /// When the streams stop sending.
    pub end: Instant,
    /// When everything stops (`--timeout`).
    pub deadline: Instant,
}

impl Ctx<'_> {
    /// The upgrade target of charge point `id`.
    pub fn target(&self, id: &str) -> String {
        crate::url::add_path_segment(&self.plan.url.target, &crate::realtime::percent_encode(id))
    }

    /// The handshake timeout, cut short by the deadline.
    pub fn handshake_timeout(&self) -> Duration {
        let left = self.deadline.saturating_duration_since(Instant::now());
        HANDSHAKE_TIMEOUT.min(left).max(Duration::from_millis(1))
    }
}

/// Runs every stream of `plan` at once and reports.
pub fn run(plan: &AttackPlan) -> AttackReport {
    let start = Instant::now();
    let ctx = Ctx {
        plan,
        start,
        end: start + plan.duration,
        deadline: start + plan.timeout,
    };
    let sampler = plan
        .pid
        .map(|pid| Sampler::start(pid, plan.sample_every, start));
    let tallies: Vec<(Kind, String, Tally)> = std::thread::scope(|s| {
        let ctx = &ctx;
        let streams: Vec<_> = plan
            .kinds
            .iter()
            .map(|&kind| (kind, s.spawn(move || stream(ctx, kind))))
            .collect();
        streams
            .into_iter()
            .map(|(kind, h)| {
                let (what, tally) = h.join().unwrap_or_else(|_| {
                    eprintln!("ringgate-load: the {} stream panicked", kind.name());
                    ("(panicked)".to_owned(), Tally::default())
                });
                (kind, what, tally)
            })
            .collect()
    });
    let samples = sampler.map(Sampler::stop).unwrap_or_default();
    AttackReport::new(plan, tallies, samples, start.elapsed())
}

/// Runs one stream to its end: what it sent, in words, and its tally.
fn stream(ctx: &Ctx<'_>, kind: Kind) -> (String, Tally) {
    let size = ctx.plan.size;
    match kind {
        Kind::Schema => send(ctx, kind, &schema::MeterValues::new(size)),
        Kind::Labels => send(ctx, kind, &labels::HostileNames),
        Kind::Events => send(ctx, kind, &events::DataTransfer::new(size)),
        Kind::Registry => knock(ctx, kind, &registry::FreshIds::new(ctx.plan)),
        Kind::Passwords => knock(ctx, kind, &passwords::WrongPasswords::new(ctx.plan)),
    }
}

fn send(ctx: &Ctx<'_>, kind: Kind, calls: &dyn Calls) -> (String, Tally) {
    (calls.describe(), calls::run(ctx, kind, calls))
}

fn knock(ctx: &Ctx<'_>, kind: Kind, knocks: &dyn Knocks) -> (String, Tally) {
    (knocks.describe(), upgrades::run(ctx, kind, knocks))
}

/// What a message stream sends.
pub trait Calls: Sync {
    /// Writes the CALL with message id `msg_id` into `out` (emptied first).
    fn write(&self, msg_id: u64, out: &mut Vec<u8>);
    /// What the stream sends, in a few words, for the report.
    fn describe(&self) -> String;
}

/// What a handshake stream tries.
pub trait Knocks: Sync {
    /// Attempt `n`: the charge point id, and an `Authorization` value.
    fn attempt(&self, n: u64) -> (String, Option<String>);
    fn describe(&self) -> String;
}

/// A seed for a thread's nonces and masks.
pub fn seed(salt: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1
}
