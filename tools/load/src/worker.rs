//! One client thread: a mio event loop over its share of the connections.
//! Owns the connection table and what happens on a readiness event
//! (connect done, handshake answer, frames in, output drained) and on a
//! connection's end. The phases that drive it live in `phases` (and
//! `fanout_phase`, `soak_phase`, `ocpp_phase`, which also hold the soak and
//! charge point hooks called here).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Interest, Poll, Token};
use ringgate::protocol::frame::OpCode;
use slab::Slab;

use crate::cli::{Mode, Plan};
use crate::conn::{open_socket, Conn, EchoSpec, Msgs, Pending, ReadEnd, Role, State};
use crate::deflate_codec::{append_message, Codec};
use crate::fanout::Subscriber;
use crate::handshake::{check_response, write_request, HandshakeError, Offered, Upgraded};
use crate::marker::Listener;
use crate::ocpp::ChargePoint;
use crate::realtime::{self, Member};
use crate::soak_phase::SoakState;
use crate::stats::{Cause, Live, Stats};
use crate::sync::Rendezvous;
use crate::wire::{stamp_len, MessageTemplate};

/// Scratch read buffer per thread.
const READ_BUF: usize = 256 * 1024;
/// Longest single poll wait, so deadlines are checked often enough.
pub const MAX_WAIT: Duration = Duration::from_millis(50);
/// Realtime tokens stay valid this long past the run's `--timeout`.
const TOKEN_SLACK_S: u64 = 3600;

/// What the threads share: the plan, the live counters and the rendezvous.
#[derive(Debug)]
pub struct Shared {
    pub plan: Plan,
    pub lives: Vec<Live>,
    pub rendezvous: Rendezvous,
    /// The run's hard end (`--timeout` after the start).
    pub deadline: Instant,
    /// Zero of every thread's nanosecond clock.
    pub epoch: Instant,
    /// Fanout: messages sent by each publisher, set when it stops.
    pub published: Vec<AtomicU64>,
    /// Fanout: threads done publishing (their `published` entries are final).
    pub published_done: AtomicUsize,
    /// Realtime: when a member last heard from the server while settling,
    /// ns since `epoch`.
    pub last_heard_ns: AtomicU64,
    /// OCPP with `--commands`: threads done with their charge points' work,
    /// which keep answering commands until `commands_done`.
    pub work_done: AtomicUsize,
    pub commands_done: AtomicBool,
    /// Set by SIGUSR1 (idle and storm): the hold ends now.
    pub hold_stop: Arc<AtomicBool>,
}

impl Shared {
    pub fn new(plan: Plan, start: Instant) -> Shared {
        let threads = plan.threads;
        Shared {
            lives: (0..threads).map(|_| Live::default()).collect(),
            rendezvous: Rendezvous::new(threads + 1),
            deadline: start + plan.timeout,
            epoch: start,
            published: (0..plan.publishers).map(|_| AtomicU64::new(0)).collect(),
            published_done: AtomicUsize::new(0),
            last_heard_ns: AtomicU64::new(0),
            work_done: AtomicUsize::new(0),
            commands_done: AtomicBool::new(false),
            hold_stop: Arc::new(AtomicBool::new(false)),
            plan,
        }
    }
}

/// One thread's event loop and connections.
pub struct Worker {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    poll: Poll,
    events: Events,
    pub(crate) conns: Slab<Conn>,
    pub(crate) epoch: Instant,
    rx: Box<[u8]>,
    pub(crate) tx: Vec<u8>,
    pub(crate) template: MessageTemplate,
    pub(crate) spec: EchoSpec,
    pub(crate) rng: u64,
    pub(crate) stats: Stats,
    hs_deadlines: VecDeque<(u64, usize, u64)>,
    next_id: u64,
    /// Connections this thread opens, and may have handshaking at once.
    pub(crate) to_open: u64,
    pub(crate) max_handshaking: u64,
    pub(crate) opened: u64,
    /// Connections connecting or handshaking.
    pub(crate) connecting: u64,
    /// Connections open (not closing).
    pub(crate) up: u64,
    /// Whether echoes trigger more sends.
    pub(crate) sending: bool,
    /// Messages each connection sends, in count mode.
    pub(crate) target: u64,
    pub(crate) window: u64,
    /// Messages in flight over all connections.
    pub(crate) outstanding: u64,
    /// Connections that have not received all their echoes (count mode).
    pub(crate) unfinished: u64,
    /// Sustained mode: (start ns, slot width ns) of the latency table.
    pub(crate) slots: Option<(u64, u64)>,
    /// The close phase started: closes are expected, not failures.
    pub(crate) closing_all: bool,
    /// Fanout: new connections are publishers; subscribers and publishers
    /// opened so far.
    pub(crate) opening_publishers: bool,
    subscribers_opened: u64,
    pub(crate) publishers_opened: u64,
    /// Realtime members and OCPP charge points upgraded, and of those, the
    /// ones that ended before their `room_joined` or boot answer (the others
    /// are `stats.realtime.joins` and `stats.ocpp.boots_answered`).
    joining_upgraded: u64,
    joining_lost: u64,
    /// Realtime: the tokens' expiry, Unix seconds.
    token_exp: u64,
    /// Fanout: the request target of publishers (`role=pub` added).
    publisher_target: String,
    /// Soak: the mix, the timers, the replacements.
    pub(crate) soak: Option<Box<SoakState>>,
    /// OCPP: when a charge point's next heartbeat is due (ns, key, id).
    pub(crate) ocpp_timers: BinaryHeap<Reverse<(u64, usize, u64)>>,
}

/// Splits `total` over `parts` as evenly as possible; share `i`.
pub fn share(total: u64, parts: usize, i: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((i as u64) < total % parts)
}

impl Worker {
    pub fn new(index: usize, shared: Arc<Shared>) -> std::io::Result<Worker> {
        let plan = &shared.plan;
        let seed = (Instant::now().elapsed().as_nanos() as u64)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
            ^ ((index as u64 + 1) << 48)
            ^ u64::from(std::process::id());
        let mut rng = seed | 1;
        let unix_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mask = (xorshift(&mut rng) as u32).to_le_bytes();
        let template = MessageTemplate::new(plan.payload, plan.text, mask);
        let spec = EchoSpec {
            payload_len: plan.payload as u64,
            stamp_len: stamp_len(plan.payload, plan.text),
            text: plan.text,
            mask,
        };
        let to_open = share(plan.connections, plan.threads, index);
        let max_handshaking = share(plan.max_concurrent, plan.threads, index).max(1);
        let soak = match &plan.mode {
            Mode::Soak(soak) => Some(Box::new(SoakState::new(
                soak,
                index,
                plan.threads,
                &mut rng,
            ))),
            _ => None,
        };
        Ok(Worker {
            index,
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            conns: Slab::with_capacity(to_open as usize),
            epoch: shared.epoch,
            rx: vec![0; READ_BUF].into_boxed_slice(),
            tx: Vec::with_capacity(64 * 1024),
            template,
            spec,
            rng,
            stats: Stats::default(),
            hs_deadlines: VecDeque::new(),
            next_id: 0,
            to_open,
            max_handshaking,
            opened: 0,
            connecting: 0,
            up: 0,
            sending: false,
            target: 0,
            window: plan.window as u64,
            outstanding: 0,
            unfinished: 0,
            slots: None,
            closing_all: false,
            opening_publishers: false,
            subscribers_opened: 0,
            publishers_opened: 0,
            joining_upgraded: 0,
            joining_lost: 0,
            token_exp: unix_now + plan.timeout.as_secs() + TOKEN_SLACK_S,
            publisher_target: crate::url::add_query_param(&plan.url.target, "role=pub"),
            soak,
            ocpp_timers: BinaryHeap::new(),
            shared,
        })
    }

    /// Nanoseconds since this worker started.
    pub(crate) fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Waits up to `wait` for events, handles them, expires handshakes and
    /// publishes the live counters.
    pub(crate) fn turn(&mut self, wait: Duration) {
        // Never sleep through a charge point's heartbeat.
        let wait = self.ocpp_next_timer().map_or(wait, |due| wait.min(due));
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                eprintln!("ringgate-load: poll: {e}");
                std::thread::sleep(wait);
            }
        }
        for event in events.iter() {
            self.on_event(event);
        }
        self.events = events;
        self.expire_handshakes();
        if self.soak.is_some() {
            self.soak_timers();
        }
        if !self.ocpp_timers.is_empty() {
            self.ocpp_timers_due();
        }
        self.shared.lives[self.index].publish(self.up, &self.stats);
    }

    /// Starts one connection attempt.
    pub(crate) fn start_connect(&mut self) {
        let plan = &self.shared.plan;
        let global = self.opened as usize * plan.threads + self.index;
        let source: Option<IpAddr> =
            (!plan.source_ips.is_empty()).then(|| plan.source_ips[global % plan.source_ips.len()]);
        let addr = plan.url.addr;
        let hs_timeout = plan.handshake_timeout.as_nanos() as u64;
        self.opened += 1;
        self.stats.attempts += 1;
        let started_ns = self.now_ns();
        let (mut sock, connected) = match open_socket(addr, source) {
            Ok(s) => s,
            Err(cause) => return self.stats.fail(cause, 1),
        };
        let role = self.new_role();
        if let Role::ChargePoint(_) = role {
            self.stats.ocpp.connecting(started_ns);
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut sock, Token(key), interest)
            .is_err()
        {
            return self.stats.fail(Cause::SocketError, 1);
        }
        let id = self.next_id;
        self.next_id += 1;
        entry.insert(Conn {
            id,
            sock,
            state: State::Connecting,
            started_ns,
            handshake: None,
            decoder: Default::default(),
            codec: None,
            out: Vec::new(),
            out_pos: 0,
            msgs: Msgs::default(),
            role,
        });
        self.connecting += 1;
        self.hs_deadlines
            .push_back((started_ns + hs_timeout, key, id));
        if connected {
            self.on_connected(key);
        }
    }

    /// The role of the next connection.
    fn new_role(&mut self) -> Role {
        let plan = &self.shared.plan;
        // Thread i's j-th charge point (subscriber, publisher) is
        // j × threads + i: 0..connections (0..publishers) overall.
        let threads = plan.threads as u64;
        if let Mode::Ocpp(ocpp) = &plan.mode {
            let index = (self.opened - 1) * threads + self.index as u64;
            return Role::ChargePoint(Box::new(ChargePoint::new(ocpp, index)));
        }
        if !plan.mode.delivers() {
            return match plan.mode.marker() {
                Some(marker) => Role::Listener(Box::new(Listener::new(marker.clone()))),
                None => Role::Echo,
            };
        }
        if !self.opening_publishers {
            if self.soak.is_some() {
                return self.soak_role();
            }
            let index = self.subscribers_opened * threads + self.index as u64;
            self.subscribers_opened += 1;
            if let Mode::Realtime(rt) = &plan.mode {
                return Role::Member(Box::new(Member::listener(rt, index)));
            }
            return Role::Subscriber(Box::new(Subscriber::new(plan.publishers as usize)));
        }
        let index = (self.publishers_opened * threads + self.index as u64) as u32;
        self.publishers_opened += 1;
        if let Mode::Realtime(rt) = &plan.mode {
            let member = Member::publisher(rt, index, plan.connections);
            return Role::Member(Box::new(member));
        }
        Role::Publisher { index }
    }

    fn on_event(&mut self, event: &Event) {
        let key = event.token().0;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        match conn.state {
            State::Connecting => match conn.connect_done() {
                Ok(true) => self.on_connected(key),
                Ok(false) => {}
                Err(cause) => self.drop_conn(key, Some(cause)),
            },
            State::Handshaking => {
                if event.is_writable() && !conn.flush() {
                    return self.drop_conn(key, Some(Cause::IoError));
                }
                if readable {
                    self.read_handshake(key);
                }
            }
            State::Open | State::Closing => {
                if event.is_writable() && !conn.flush() {
                    let cause = (conn.state == State::Open).then_some(Cause::IoError);
                    return self.drop_conn(key, cause);
                }
                if readable && conn.role.reads() {
                    self.read_frames(key, event.is_read_closed() || event.is_error());
                } else if event.is_error() || event.is_read_closed() {
                    // A never-reader notices the server's end without reading.
                    let cause = if event.is_error() {
                        Cause::IoError
                    } else {
                        Cause::ClosedEarly
                    };
                    self.drop_conn(key, Some(cause));
                }
            }
        }
    }

    /// TCP is up: send the upgrade request.
    fn on_connected(&mut self, key: usize) {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&xorshift(&mut self.rng).to_le_bytes());
        nonce[8..].copy_from_slice(&xorshift(&mut self.rng).to_le_bytes());
        let plan = &self.shared.plan;
        let url = &plan.url;
        let (member_target, charge_point_target);
        let mut headers = Vec::new();
        let target = match &self.conns[key].role {
            Role::Publisher { .. } => &self.publisher_target,
            Role::Member(m) => {
                let Mode::Realtime(rt) = &plan.mode else {
                    unreachable!("members only in realtime runs")
                };
                let token = rt
                    .jwt_secret
                    .as_ref()
                    .map(|secret| realtime::token(secret, m.user, self.token_exp));
                member_target = realtime::member_target(&url.target, token.as_deref(), m.room);
                &member_target
            }
            Role::ChargePoint(cp) => {
                let Mode::Ocpp(ocpp) = &plan.mode else {
                    unreachable!("charge points only in ocpp runs")
                };
                headers = ocpp.headers(&cp.id);
                charge_point_target = ocpp.target(&url.target, &cp.id);
                &charge_point_target
            }
            _ => &url.target,
        };
        let mut headers: Vec<(&str, &str)> =
            headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        if plan.deflate {
            headers.push(("Sec-WebSocket-Extensions", crate::deflate::OFFER));
        }
        self.tx.clear();
        let ws_key = write_request(&mut self.tx, &url.host_header, target, &headers, nonce);
        if self.soak.is_some() {
            self.soak_connected(key);
        }
        let conn = &mut self.conns[key];
        conn.state = State::Handshaking;
        conn.handshake = Some(Box::new(Pending {
            key: ws_key,
            response: Vec::new(),
        }));
        if !conn.send(&self.tx) {
            self.drop_conn(key, Some(Cause::IoError));
        }
    }

    fn read_handshake(&mut self, key: usize) {
        let subprotocol = self.shared.plan.mode.subprotocol();
        let deflate = self.shared.plan.deflate;
        let conn = &mut self.conns[key];
        let mut outcome = None;
        let end = conn.read_into(&mut self.rx, true, |c, bytes| {
            let Some(p) = c.handshake.as_mut() else {
                return false;
            };
            p.response.extend_from_slice(bytes);
            let offered = Offered {
                key: &p.key,
                subprotocol,
                deflate,
            };
            match check_response(&p.response, offered) {
                Ok(None) => true,
                Ok(Some(up)) => {
                    outcome = Some(Ok(up));
                    false
                }
                Err(e) => {
                    outcome = Some(Err(e));
                    false
                }
            }
        });
        match (outcome, end) {
            (Some(Ok(up)), _) => self.on_upgraded(key, up),
            (Some(Err(e)), _) => {
                let cause = match e {
                    HandshakeError::Status(status) => {
                        self.stats.note_refusal(status);
                        Cause::BadStatus
                    }
                    HandshakeError::Bad(_) => Cause::BadHandshake,
                    HandshakeError::Subprotocol => Cause::NoSubprotocol,
                    HandshakeError::Extension(_) => Cause::BadExtension,
                };
                self.drop_conn(key, Some(cause));
            }
            (None, ReadEnd::Drained) => {}
            (None, ReadEnd::Eof) => self.drop_conn(key, Some(Cause::ClosedEarly)),
            (None, ReadEnd::Error) => self.drop_conn(key, Some(Cause::IoError)),
        }
    }

    /// The 101 arrived (its head `up.head_len` bytes of the response).
    fn on_upgraded(&mut self, key: usize, up: Upgraded) {
        let now = self.now_ns();
        let conn = &mut self.conns[key];
        let pending = conn.handshake.take().expect("handshaking");
        conn.state = State::Open;
        if self.shared.plan.deflate {
            self.stats.deflate.answered(up.deflate);
        }
        if let Some(agreed) = up.deflate {
            conn.codec = Some(Box::new(Codec::new(agreed)));
            conn.decoder.allow_compressed();
        }
        let us = now.saturating_sub(conn.started_ns) / 1000;
        self.stats.handshake.saturating_record(us.max(1));
        self.stats.handshakes += 1;
        if conn.role.publisher_index().is_some() {
            self.stats.publishers += 1;
        }
        if conn.role.joining() {
            self.joining_upgraded += 1;
        }
        self.connecting -= 1;
        self.up += 1;
        self.tx.clear();
        let leftover = &pending.response[up.head_len..];
        let fed = conn.feed(
            leftover,
            self.spec,
            &mut self.stats,
            &mut self.tx,
            now,
            None,
        );
        if let Err(e) = fed {
            return self.drop_conn(key, Some(Cause::of_decode_error(&e)));
        }
        if !conn.send(&self.tx) {
            return self.drop_conn(key, Some(Cause::IoError));
        }
        let reads = conn.role.reads();
        if self.soak.is_some() {
            self.soak_upgraded(key);
        }
        if reads {
            // Reading stopped at the head: drain whatever followed it (a
            // charge point then sends its BootNotification).
            self.read_frames(key, true);
        }
    }

    /// Reads and handles server frames; then sends replies and refills the window.
    fn read_frames(&mut self, key: usize, until_block: bool) {
        let (epoch, spec, slots) = (self.epoch, self.spec, self.slots);
        let stats = &mut self.stats;
        let tx = &mut self.tx;
        tx.clear();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut bad_frame = None;
        let mut completed = 0;
        let end = conn.read_into(&mut self.rx, until_block, |c, bytes| {
            let now = epoch.elapsed().as_nanos() as u64;
            let slot = slots.map(|(start, width)| (now.saturating_sub(start) / width) as usize);
            match c.feed(bytes, spec, stats, tx, now, slot) {
                Ok(n) => {
                    completed += n;
                    true
                }
                Err(e) => {
                    bad_frame = Some(Cause::of_decode_error(&e));
                    false
                }
            }
        });
        self.outstanding -= completed;
        if completed > 0 && !conn.msgs.done && conn.msgs.received >= self.target {
            conn.msgs.done = true;
            self.unfinished = self.unfinished.saturating_sub(1);
        }
        if let Some(cause) = bad_frame {
            return self.drop_conn(key, Some(cause));
        }
        match end {
            ReadEnd::Drained => {}
            ReadEnd::Eof | ReadEnd::Error => {
                let expected = conn.state == State::Closing;
                let cause = if end == ReadEnd::Eof {
                    Cause::ClosedEarly
                } else {
                    Cause::IoError
                };
                return self.drop_conn(key, (!expected).then_some(cause));
            }
        }
        if conn.msgs.got_close && conn.state == State::Open {
            conn.state = State::Closing;
            self.up -= 1;
            if !conn.msgs.done {
                conn.msgs.done = true;
                self.unfinished = self.unfinished.saturating_sub(1);
            }
            // A soak connection's end is counted when it ends.
            if !self.closing_all && self.soak.is_none() {
                self.stats.fail(Cause::ClosedByServer, 1);
            }
        }
        if self.sending && conn.state == State::Open {
            let room = self.window - conn.msgs.in_flight();
            let n = room.min(self.target.saturating_sub(conn.msgs.sent));
            let now = self.epoch.elapsed().as_nanos() as u64;
            let codec = conn.codec.as_deref_mut();
            append_messages(&self.template, &mut conn.msgs, codec, &mut self.tx, n, now);
            self.outstanding += n;
            self.stats.sent += n;
        }
        if !conn.send(&self.tx) {
            return self.drop_conn(key, Some(Cause::IoError));
        }
        if let Role::ChargePoint(_) = conn.role {
            self.ocpp_step(key);
        }
    }

    /// Queues `n` messages on connection `key` and writes them.
    pub(crate) fn send_messages(&mut self, key: usize, n: u64) {
        let now = self.now_ns();
        let conn = &mut self.conns[key];
        self.tx.clear();
        let codec = conn.codec.as_deref_mut();
        append_messages(&self.template, &mut conn.msgs, codec, &mut self.tx, n, now);
        self.outstanding += n;
        self.stats.sent += n;
        if !conn.send(&self.tx) {
            self.drop_conn(key, Some(Cause::IoError));
        }
    }

    /// Sends a Close (1000) on an open connection and waits for the server's end.
    pub(crate) fn start_close(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if conn.state != State::Open {
            return;
        }
        conn.state = State::Closing;
        self.up -= 1;
        if conn.msgs.close_sent {
            return;
        }
        conn.msgs.close_sent = true;
        self.tx.clear();
        ringgate::protocol::writer::encode_client_frame(
            &mut self.tx,
            true,
            OpCode::Close,
            &1000u16.to_be_bytes(),
            self.spec.mask,
        );
        if !conn.send(&self.tx) {
            self.drop_conn(key, None);
        }
    }

    /// Removes connection `key`, counting `cause` (a soak run counts it
    /// with the connection's behaviour) and its unanswered messages.
    pub(crate) fn drop_conn(&mut self, key: usize, cause: Option<Cause>) {
        let Some(conn) = self.conns.try_remove(key) else {
            return;
        };
        self.stats.deflate.add_codec(conn.codec.as_deref());
        match conn.state {
            State::Connecting | State::Handshaking => self.connecting -= 1,
            State::Open => self.up -= 1,
            State::Closing => {}
        }
        let upgraded = matches!(conn.state, State::Open | State::Closing);
        if upgraded && conn.role.joining() {
            self.joining_lost += 1;
        }
        if let (Role::Listener(listener), true) = (&conn.role, upgraded && !self.closing_all) {
            self.stats.marker.tally(listener.hits);
        }
        let in_flight = conn.msgs.in_flight();
        if in_flight > 0 {
            self.stats.fail(Cause::Unanswered, in_flight);
            self.outstanding -= in_flight;
        }
        if self.target > 0 && !conn.msgs.done {
            self.unfinished = self.unfinished.saturating_sub(1);
        }
        if self.soak.is_some() {
            self.soak_ended(conn.role, conn.msgs.close_code, cause);
        } else if let Some(cause) = cause {
            self.stats.fail(cause, 1);
        }
    }

    /// Drops the connections whose handshake (for a realtime member: its
    /// handshake and `room_joined`; for a charge point, its handshake and
    /// boot answer) is not done `--handshake-timeout` after connect().
    fn expire_handshakes(&mut self) {
        let now = self.now_ns();
        while let Some(&(deadline, key, id)) = self.hs_deadlines.front() {
            if deadline > now {
                break;
            }
            self.hs_deadlines.pop_front();
            let Some(conn) = self.conns.get(key).filter(|c| c.id == id) else {
                continue;
            };
            match conn.state {
                State::Connecting | State::Handshaking => {
                    self.drop_conn(key, Some(Cause::Timeout));
                }
                State::Open if conn.role.joining() => {
                    let cause = match conn.role {
                        Role::ChargePoint(_) => Cause::NotBooted,
                        _ => Cause::NotJoined,
                    };
                    self.drop_conn(key, Some(cause));
                }
                _ => {}
            }
        }
    }

    /// Realtime members upgraded that wait for their `room_joined`, and
    /// charge points for their boot answer.
    pub(crate) fn awaiting_join(&self) -> u64 {
        let joined = self.stats.realtime.joins + self.stats.ocpp.boots_answered;
        self.joining_upgraded
            .saturating_sub(self.joining_lost + joined)
    }

    /// Connections that count against `--max-concurrent`: connecting or
    /// handshaking, and in an ocpp run also the charge points whose
    /// BootNotification is unanswered.
    pub(crate) fn in_flight(&self) -> u64 {
        match self.shared.plan.mode {
            Mode::Ocpp(_) => self.connecting + self.awaiting_join(),
            _ => self.connecting,
        }
    }

    /// Keys of the connections in `state`.
    pub(crate) fn keys_in(&self, state: State) -> Vec<usize> {
        self.conns
            .iter()
            .filter(|(_, c)| c.state == state)
            .map(|(k, _)| k)
            .collect()
    }

    /// Every connection still connecting or handshaking counts as a timeout.
    pub(crate) fn abandon_handshakes(&mut self) {
        for key in self.keys_in(State::Connecting) {
            self.drop_conn(key, Some(Cause::Timeout));
        }
        for key in self.keys_in(State::Handshaking) {
            self.drop_conn(key, Some(Cause::Timeout));
        }
    }

    /// Rendezvous with the other threads and the main thread.
    pub(crate) fn rendezvous(&self) {
        let deadline = self.shared.deadline + crate::run::RENDEZVOUS_SLACK;
        self.shared
            .rendezvous
            .wait(deadline, Duration::from_millis(100), || {});
    }
}

/// Appends `n` stamped messages to `out` (compressed with `codec` when the
/// connection agreed to deflate), noting their send time.
fn append_messages(
    t: &MessageTemplate,
    msgs: &mut Msgs,
    mut codec: Option<&mut Codec>,
    out: &mut Vec<u8>,
    n: u64,
    now: u64,
) {
    let ring = msgs.ring.len() as u64;
    for _ in 0..n {
        let seq = msgs.sent;
        let (head, len) = t.seq_head(seq);
        append_message(codec.as_deref_mut(), t, &head[..len], out);
        msgs.ring[(seq % ring) as usize] = now;
        msgs.sent += 1;
    }
}

/// xorshift64*: cheap, good enough for masks, nonces and the soak's dice.
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, parts) in [(10_000, 3), (1, 4), (7, 7), (5, 1)] {
            let sum: u64 = (0..parts).map(|i| share(total, parts, i)).sum();
            assert_eq!(sum, total);
            let max = (0..parts).map(|i| share(total, parts, i)).max().unwrap();
            let min = (0..parts).map(|i| share(total, parts, i)).min().unwrap();
            assert!(max - min <= 1);
        }
    }

    #[test]
    fn xorshift_moves() {
        let mut s = 1;
        let a = xorshift(&mut s);
        let b = xorshift(&mut s);
        assert_ne!(a, b);
    }
}
