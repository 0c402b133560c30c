//! OCPP Basic auth under attack, over real sockets: argon2 runs off the shard, so an echo on
//! the same (only) shard stays fast while wrong passwords pour in for many charge points from
//! many loopback addresses; the back-off answers a guesser 429 without hashing; a right
//! password still gets in, through the deferred upgrade.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{read_response, RawWs, ServerProcess, UpgradeRequest};
use ringgate::services::ocpp::auth::hash_password;

const PASSWORD: &str = "a-right-password-16+";
const IDS: usize = 300;

fn basic(id: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{password}"));
    format!("Basic {encoded}")
}

/// A connection from loopback address 127.0.0.`host` (so the per-address back-off sees many
/// guessers).
fn connect_from(host: u8, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)), 0);
    socket.bind(&local.into())?;
    socket.connect_timeout(&server.into(), Duration::from_secs(5))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    Ok(stream)
}

/// One upgrade to `/ocpp/{id}` with `authorization`; the answer's status.
fn attempt(stream: &mut TcpStream, id: &str, authorization: &str) -> u16 {
    let request = UpgradeRequest::new(&format!("/ocpp/{id}"))
        .header("Sec-WebSocket-Protocol", "ocpp1.6")
        .header("Authorization", authorization);
    stream.write_all(&request.to_bytes()).unwrap();
    read_response(stream).map_or(0, |(resp, _)| resp.status)
}

fn gateway() -> ServerProcess {
    let hash = hash_password(PASSWORD);
    let passwords: Vec<String> = (0..IDS).map(|i| format!("CP{i}={hash}")).collect();
    ServerProcess::spawn(&[
        ("RINGGATE_SHARDS", "1"),
        ("OCPP_PASSWORDS", &passwords.join(" ")),
    ])
}

#[test]
fn an_echo_on_the_shard_stays_fast_while_wrong_passwords_pour_in() {
    let server = gateway();
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    // Four threads send 1,000 wrong-password upgrades a second in all, without waiting for
    // the answers (a real flood does not wait); the answers are read afterwards.
    let attackers: Vec<_> = (0..4u8)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut open = Vec::new();
                let paced = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let n = open.len();
                    let due = paced + Duration::from_millis(4 * n as u64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let host = 2 + ((t as usize * 53 + n) % 200) as u8;
                    let id = format!("CP{}", (t as usize * 37 + n) % IDS);
                    let Ok(mut stream) = connect_from(host, addr) else {
                        continue;
                    };
                    let request = UpgradeRequest::new(&format!("/ocpp/{id}"))
                        .header("Sec-WebSocket-Protocol", "ocpp1.6")
                        .header("Authorization", &basic(&id, "wrong"));
                    if stream.write_all(&request.to_bytes()).is_ok() {
                        open.push(stream);
                    }
                }
                open
            })
        })
        .collect();

    let mut echo = RawWs::connect(addr, "/echo");
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let sent = Instant::now();
        echo.send_text("ping");
        assert_eq!(
            common::read_text(&mut echo, Duration::from_secs(10)),
            "ping"
        );
        worst = worst.max(sent.elapsed());
        rounds += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    let mut made = 0;
    for attacker in attackers {
        for mut stream in attacker.join().unwrap() {
            made += 1;
            let status = read_response(&mut stream).map_or(0, |(resp, _)| resp.status);
            *statuses.entry(status).or_default() += 1;
        }
    }
    eprintln!(
        "{made} wrong-password upgrades {statuses:?}; echo worst {worst:?} over {rounds} rounds"
    );
    assert!(made >= 2000, "the attack made {made} attempts");
    assert!(
        statuses.keys().all(|s| [401, 429, 503].contains(s)),
        "every attempt is refused with 401, 429 or 503: {statuses:?}"
    );
    assert!(
        worst < Duration::from_secs(1),
        "an echo round trip on the shard took {worst:?} while wrong passwords arrived"
    );

    // A charge point that never failed gets in with its right password, from a fresh address.
    let id = format!("CP{}", IDS - 1);
    let mut stream = connect_from(250, addr).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(attempt(&mut stream, &id, &basic(&id, PASSWORD)), 101);
}

#[test]
fn a_guesser_is_shut_out_with_429_and_the_right_password_waits_out_the_back_off() {
    let server = gateway();
    let addr = server.addr;
    let guess = |password: &str| {
        let mut stream = connect_from(7, addr).unwrap();
        attempt(&mut stream, "CP1", &basic("CP1", password))
    };
    for _ in 0..3 {
        assert_eq!(guess("wrong"), 401);
    }
    assert_eq!(
        guess("wrong"),
        401,
        "the fourth wrong password starts the back-off"
    );
    let refused = Instant::now();
    assert_eq!(guess("wrong"), 429);
    assert_eq!(
        guess(PASSWORD),
        429,
        "shut out, even with the right password"
    );
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(refused.elapsed()));
    assert_eq!(
        guess(PASSWORD),
        101,
        "the back-off of one failure past the free ones is 1 s"
    );
    assert_eq!(guess("wrong"), 401, "a right password cleared the record");

    let mut text = String::new();
    let mut stream = common::connect(addr, Duration::from_secs(5));
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    stream.read_to_string(&mut text).unwrap();
    let count = |reason: &str| {
        let line = format!("ocpp_upgrades_refused_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&line))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap())
    };
    assert_eq!(count("too_many_failures"), 2);
    assert_eq!(count("wrong_password"), 5);
}
