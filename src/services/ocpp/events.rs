//! The event sink: every OCPP message a charge point sends or is sent, and every connect and
//! disconnect, becomes an [`Event`] that shards hand to [`Events`] and a thread of its own
//! writes to an [`EventSink`] (an NDJSON file, an in-process callback; a backend bus later).
//! Publishing never blocks and allocates nothing beyond the event. The queue is bounded in
//! events and in bytes (an event's payload is held as its JSON text, [`JsonText`]): an event
//! past either bound is dropped and counted.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use super::rawjson;

/// The NDJSON file's buffer: a burst goes out in writes this big.
const NDJSON_BUFFER: usize = 64 * 1024;

/// At most one log line about sink errors per this long.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the charge point.
    Uplink,
    /// To the charge point.
    Downlink,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Uplink => "uplink",
            Direction::Downlink => "downlink",
        }
    }
}

/// What happened: a message of one of the three types, or a connection opening or closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Call,
    CallResult,
    CallError,
    Connected,
    Disconnected,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Call => "call",
            EventKind::CallResult => "call_result",
            EventKind::CallError => "call_error",
            EventKind::Connected => "connected",
            EventKind::Disconnected => "disconnected",
        }
    }
}

/// An event's payload: the text of one JSON value, on one line. What a charge point sent is
/// kept as it sent it, less the whitespace outside strings; what the gateway made is written
/// compact. It goes into an NDJSON line as it is, never encoded twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// `json`, the text of a value a charge point sent (the parser accepted it), compacted.
    pub fn received(json: &str) -> JsonText {
        JsonText(rawjson::compact(json))
    }

    /// `value`, written compact.
    pub fn of(value: &impl Serialize) -> JsonText {
        // The gateway's values are maps of strings to values: they always serialize.
        JsonText(serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()))
    }

    /// A CALLERROR as an event shows it: `{"code","description","details"}`.
    pub fn call_error(code: &str, description: &str, details: &Value) -> JsonText {
        #[derive(Serialize)]
        struct CallError<'a> {
            code: &'a str,
            description: &'a str,
            details: &'a Value,
        }
        JsonText::of(&CallError {
            code,
            description,
            details,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value the text holds.
    pub fn parse(&self) -> serde_json::Result<Value> {
        serde_json::from_str(&self.0)
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Checked as JSON once more (cheap, on the events thread), then written as it is.
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// One thing that happened on a charge point's connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub charge_point_id: Arc<str>,
    /// `None` for a connect or disconnect.
    pub direction: Option<Direction>,
    pub kind: EventKind,
    pub action: Option<String>,
    pub message_id: Option<String>,
    pub payload: Option<JsonText>,
    pub received_at: SystemTime,
    /// The subprotocol, e.g. `"ocpp1.6"`.
    pub protocol: Option<&'static str>,
}

/// An event as one NDJSON line has it, fields in this order.
#[derive(Serialize)]
struct Line<'a> {
    charge_point_id: &'a str,
    direction: Option<&'static str>,
    message_type: &'static str,
    action: Option<&'a str>,
    message_id: Option<&'a str>,
    payload: Option<&'a JsonText>,
    received_at: String,
    protocol: Option<&'static str>,
}

impl Event {
    fn line(&self) -> Line<'_> {
        Line {
            charge_point_id: &self.charge_point_id,
            direction: self.direction.map(Direction::as_str),
            message_type: self.kind.as_str(),
            action: self.action.as_deref(),
            message_id: self.message_id.as_deref(),
            payload: self.payload.as_ref(),
            received_at: crate::control::rfc3339(self.received_at),
            protocol: self.protocol,
        }
    }

    /// The event as one line of JSON (no newline); absent fields are `null`.
    pub fn to_json(&self) -> String {
        // Strings and JSON text always serialize.
        serde_json::to_string(&self.line()).unwrap_or_default()
    }

    /// What the event holds in memory while queued, in bytes: what [`Events`] budgets.
    pub fn held_bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<Event>()
            + text(&self.action)
            + text(&self.message_id)
            + self.payload.as_ref().map_or(0, |p| p.0.len())
    }
}

/// Where events go, on the events thread.
pub trait EventSink: Send + 'static {
    fn publish(&mut self, event: &Event) -> io::Result<()>;

    /// Called when no event is waiting.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends each event as one line of JSON to a file.
#[derive(Debug)]
pub struct NdjsonFile {
    writer: BufWriter<File>,
}

impl NdjsonFile {
    /// Opens `path` for appending, creating it when absent.
    pub fn open(path: &Path) -> io::Result<NdjsonFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(NdjsonFile {
            writer: BufWriter::with_capacity(NDJSON_BUFFER, file),
        })
    }
}

impl EventSink for NdjsonFile {
    fn publish(&mut self, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut self.writer, &event.line())?;
        self.writer.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Hands each event to a function: the in-process sink.
pub struct Callback<F>(pub F)
where
    F: FnMut(&Event) + Send + 'static;

impl<F> EventSink for Callback<F>
where
    F: FnMut(&Event) + Send + 'static,
{
    fn publish(&mut self, event: &Event) -> io::Result<()> {
        (self.0)(event);
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// What the queued events hold ([`Event::held_bytes`]).
    queued_bytes: AtomicUsize,
}

#[derive(Debug)]
struct Running {
    queue: Sender<Event>,
    /// The most `counters.queued_bytes` may reach.
    max_bytes: usize,
    stop: Sender<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

/// The publishing handle shards hold; clones share one queue and thread. The thread drains the
/// queue, flushes and exits once every handle is dropped, or on [`stop`](Events::stop).
#[derive(Debug, Clone)]
pub struct Events {
    running: Option<Arc<Running>>,
}

impl Events {
    /// Publishes nothing.
    pub fn disabled() -> Events {
        Events { running: None }
    }

    /// Starts the thread `ocpp-events` writing to `sink`, behind a queue of `capacity` events
    /// (at least 1) holding at most `max_bytes` ([`Event::held_bytes`]).
    pub fn start(
        sink: Box<dyn EventSink>,
        capacity: usize,
        max_bytes: usize,
    ) -> io::Result<Events> {
        let (queue, events) = crossbeam_channel::bounded(capacity.max(1));
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            sink,
            counters: counters.clone(),
            failures_unlogged: 0,
            last_logged: None,
        };
        let thread = std::thread::Builder::new()
            .name("ocpp-events".to_owned())
            .spawn(move || writer.run(&events, &stopped))?;
        let running = Running {
            queue,
            max_bytes,
            stop,
            thread: Mutex::new(Some(thread)),
            counters,
        };
        Ok(Events {
            running: Some(Arc::new(running)),
        })
    }

    /// Whether events go anywhere: callers skip building them when not.
    pub fn enabled(&self) -> bool {
        self.running.is_some()
    }

    /// Queues `event`, or drops and counts it when the queue is full (in events or in bytes) or
    /// the thread gone.
    pub fn publish(&self, event: Event) {
        let Some(running) = &self.running else {
            return;
        };
        let counters = &running.counters;
        let size = event.held_bytes();
        let before = counters.queued_bytes.fetch_add(size, Ordering::Relaxed);
        let fits = before + size <= running.max_bytes;
        let queued = fits && running.queue.try_send(event).is_ok();
        let counter = if queued {
            &counters.published
        } else {
            counters.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            &counters.dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Events queued.
    pub fn published(&self) -> u64 {
        self.count(|counters| &counters.published)
    }

    /// Events dropped because the queue was full, in events or in bytes (or the thread had
    /// stopped).
    pub fn dropped(&self) -> u64 {
        self.count(|counters| &counters.dropped)
    }

    /// What the events queued now hold, in bytes ([`Event::held_bytes`]).
    pub fn queued_bytes(&self) -> usize {
        self.running.as_ref().map_or(0, |running| {
            running.counters.queued_bytes.load(Ordering::Relaxed)
        })
    }

    /// Sink calls (publish or flush) that returned an error.
    pub fn failed(&self) -> u64 {
        self.count(|counters| &counters.failed)
    }

    fn count(&self, which: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        self.running.as_ref().map_or(0, |running| {
            which(&running.counters).load(Ordering::Relaxed)
        })
    }

    /// Lets the thread write what is queued, flush and exit, and waits for it; later events
    /// are dropped. Not to be called from the sink.
    pub fn stop(&self) {
        let Some(running) = &self.running else {
            return;
        };
        // Full means a stop is already on its way.
        let _ = running.stop.try_send(());
        let thread = running
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::warn!("the ocpp events thread panicked");
            }
        }
    }
}

/// The events thread's side.
struct Writer {
    sink: Box<dyn EventSink>,
    counters: Arc<Counters>,
    failures_unlogged: u64,
    last_logged: Option<Instant>,
}

impl Writer {
    fn run(mut self, events: &Receiver<Event>, stopped: &Receiver<()>) {
        loop {
            crossbeam_channel::select! {
                recv(events) -> event => match event {
                    Ok(event) => self.write(&event, events),
                    Err(_) => break,
                },
                // A stop, or every handle dropped (the queue then disconnects too).
                recv(stopped) -> _ => break,
            }
        }
        while let Ok(event) = events.try_recv() {
            self.write(&event, events);
        }
        let flushed = self.sink.flush();
        self.check(flushed);
    }

    /// Publishes `event`, and flushes when no other is waiting.
    fn write(&mut self, event: &Event, events: &Receiver<Event>) {
        let published = self.sink.publish(event);
        // Out of the budget as soon as the sink is done with it.
        self.counters
            .queued_bytes
            .fetch_sub(event.held_bytes(), Ordering::Relaxed);
        self.check(published);
        if events.is_empty() {
            let flushed = self.sink.flush();
            self.check(flushed);
        }
    }

    fn check(&mut self, outcome: io::Result<()>) {
        let Err(error) = outcome else {
            return;
        };
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        self.failures_unlogged += 1;
        let due = self
            .last_logged
            .map_or(true, |at| at.elapsed() >= FAILURE_LOG_EVERY);
        if due {
            tracing::warn!(
                failures = self.failures_unlogged,
                "ocpp event sink failed: {error}"
            );
            self.failures_unlogged = 0;
            self.last_logged = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(message_id: &str) -> Event {
        Event {
            charge_point_id: Arc::from("CP1"),
            direction: Some(Direction::Uplink),
            kind: EventKind::Call,
            action: Some("Heartbeat".to_owned()),
            message_id: Some(message_id.to_owned()),
            payload: Some(JsonText::of(&json!({}))),
            received_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            protocol: Some("ocpp1.6"),
        }
    }

    #[test]
    fn to_json_of_a_call_and_a_connect() {
        let call: Value = serde_json::from_str(&event("m1").to_json()).unwrap();
        let expected = json!({"charge_point_id": "CP1", "direction": "uplink",
            "message_type": "call", "action": "Heartbeat", "message_id": "m1", "payload": {},
            "received_at": "2023-11-14T22:13:20.123Z", "protocol": "ocpp1.6"});
        assert_eq!(call, expected);
        let connected = Event {
            direction: None,
            kind: EventKind::Connected,
            action: None,
            message_id: None,
            payload: None,
            ..event("")
        };
        let line = connected.to_json();
        assert!(!line.contains('\n'));
        assert!(line.starts_with(r#"{"charge_point_id":"CP1","direction":null,"#));
        let expected = json!({"charge_point_id": "CP1", "direction": null,
            "message_type": "connected", "action": null, "message_id": null, "payload": null,
            "received_at": "2023-11-14T22:13:20.123Z", "protocol": "ocpp1.6"});
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), expected);
    }

    #[test]
    fn disabled_publishes_nothing() {
        let events = Events::disabled();
        assert!(!events.enabled());
        events.publish(event("m1"));
        events.stop();
        assert_eq!((events.published(), events.dropped()), (0, 0));
    }

    #[test]
    fn events_reach_a_callback_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        let sink = Callback(move |event: &Event| {
            let id = event.message_id.clone().unwrap_or_default();
            into.lock().unwrap().push(id);
        });
        let events = Events::start(Box::new(sink), 1024, usize::MAX).unwrap();
        assert!(events.enabled());
        let ids: Vec<String> = (0..500).map(|n| n.to_string()).collect();
        for id in &ids {
            events.clone().publish(event(id));
        }
        events.stop();
        assert_eq!(*seen.lock().unwrap(), ids);
        assert_eq!((events.published(), events.dropped()), (500, 0));
        assert_eq!(events.failed(), 0);
    }

    #[test]
    fn a_blocked_sink_makes_publish_drop_not_block() {
        let (entered, first_taken) = crossbeam_channel::bounded(1);
        let (release, gate) = crossbeam_channel::bounded::<()>(0);
        let sink = Callback(move |_: &Event| {
            let _ = entered.try_send(());
            let _ = gate.recv();
        });
        let events = Events::start(Box::new(sink), 4, usize::MAX).unwrap();
        events.publish(event("first"));
        first_taken.recv_timeout(Duration::from_secs(10)).unwrap();
        let attempts = 50;
        for n in 1..attempts {
            events.publish(event(&n.to_string()));
        }
        assert_eq!(events.published() + events.dropped(), attempts);
        assert_eq!(events.published(), 5);
        assert_eq!(events.dropped(), attempts - 5);
        drop(release);
        events.stop();
    }

    struct Failing;

    impl EventSink for Failing {
        fn publish(&mut self, _: &Event) -> io::Result<()> {
            Err(io::Error::other("refused"))
        }
    }

    #[test]
    fn sink_errors_are_counted() {
        let events = Events::start(Box::new(Failing), 16, usize::MAX).unwrap();
        for n in 0..3 {
            events.publish(event(&n.to_string()));
        }
        events.stop();
        assert_eq!(events.failed(), 3);
        events.publish(event("late"));
        assert_eq!((events.published(), events.dropped()), (3, 1));
    }

    #[test]
    fn ndjson_file_has_one_json_line_per_event() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("ringgate-ocpp-events-{}-{nanos}.ndjson", std::process::id());
        let path = std::env::temp_dir().join(name);
        let sink = NdjsonFile::open(&path).unwrap();
        let events = Events::start(Box::new(sink), 64, usize::MAX).unwrap();
        for n in 0..10 {
            events.publish(event(&format!("m{n}")));
        }
        events.stop();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10);
        for (n, line) in lines.into_iter().enumerate() {
            let parsed: Value = serde_json::from_str(line).unwrap();
            assert_eq!(parsed["message_id"], format!("m{n}"));
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_payload_is_written_as_received_less_whitespace() {
        let received =
            JsonText::received("{ \"n\" : 1.50 ,\n \"s\": \"a  b\\n\", \"big\": 1e400 }");
        assert_eq!(received.as_str(), r#"{"n":1.50,"s":"a  b\n","big":1e400}"#);
        let call = Event {
            payload: Some(received),
            ..event("m1")
        };
        let line = call.to_json();
        assert!(!line.contains('\n'));
        assert!(
            line.contains(r#","payload":{"n":1.50,"s":"a  b\n","big":1e400},"#),
            "{line}"
        );
        let error = JsonText::call_error("GenericError", "went \"wrong\"", &json!({"k": [1]}));
        assert_eq!(
            error.parse().unwrap(),
            json!({"code": "GenericError", "description": "went \"wrong\"", "details": {"k": [1]}})
        );
    }

    #[test]
    fn a_blocked_sink_holds_at_most_the_byte_budget() {
        let (entered, first_taken) = crossbeam_channel::bounded(1);
        let (release, gate) = crossbeam_channel::bounded::<()>(0);
        let sink = Callback(move |_: &Event| {
            let _ = entered.try_send(());
            let _ = gate.recv();
        });
        let big = |n: usize| Event {
            payload: Some(JsonText::of(&"x".repeat(1000))),
            ..event(&n.to_string())
        };
        let size = big(0).held_bytes();
        assert!(size > 1000);
        let budget = 10 * size + size / 2;
        let events = Events::start(Box::new(sink), 1024, budget).unwrap();
        events.publish(big(0));
        first_taken.recv_timeout(Duration::from_secs(10)).unwrap();
        // The one with the sink counts until the sink is done with it; nine more fit in the
        // budget, the rest are dropped.
        for n in 1..=50 {
            events.publish(big(n));
            assert!(events.queued_bytes() <= budget);
        }
        assert_eq!((events.published(), events.dropped()), (10, 41));
        assert_eq!(events.queued_bytes(), 10 * size);
        // A small event still fits where a big one does not.
        events.publish(event("small"));
        assert_eq!(
            events.dropped(),
            41,
            "a heartbeat-sized event is not dropped"
        );
        drop(release);
        events.stop();
        assert_eq!(events.queued_bytes(), 0);
    }
}
