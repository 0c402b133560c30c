//! What one uplink OCPP message costs a shard before it is answered: the frame parse and the
//! schema validation of a CALL (`frame::parse`, then `schema::validate`), for an ordinary
//! MeterValues and for the hostile one of the security review (a 1 MiB MeterValues whose
//! `sampledValue` array holds half a million wrong items; compressed it is a few KB).
//!
//! `cargo bench --bench ocpp` (add `-- --quick` for a rough pass). Nothing here asserts a timing.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ringgate::services::ocpp::errors::Version;
use ringgate::services::ocpp::frame::{self, Frame};
use ringgate::services::ocpp::schema;

/// A 1.6 MeterValues CALL whose one meter value holds `items` as its `sampledValue` array.
fn meter_values(items: &[String]) -> String {
    format!(
        r#"[2,"m1","MeterValues",{{"connectorId":1,"transactionId":7,"meterValue":[{{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{}]}}]}}]"#,
        items.join(",")
    )
}

/// What a charge point sends every minute: ten sampled values of one meter.
fn ordinary() -> String {
    let items: Vec<String> = (0..10)
        .map(|n| {
            format!(
                r#"{{"value":"{n}.5","context":"Sample.Periodic","measurand":"Current.Import","phase":"L{}","unit":"A"}}"#,
                n % 3 + 1
            )
        })
        .collect();
    meter_values(&items)
}

/// Just under 1 MiB: half a million `0`s where sampled-value objects belong.
fn hostile() -> String {
    meter_values(&vec!["0".to_owned(); 500_000])
}

/// Parse and validate as the gateway does for an uplink CALL; true when the payload passed.
fn check(text: &str, scratch: &mut Vec<u8>) -> bool {
    match frame::parse(text, scratch) {
        Ok(Frame::Call {
            action, payload, ..
        }) => schema::validate(Version::V16, &action, &payload).is_ok(),
        _ => false,
    }
}

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("ocpp_uplink_call");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    let mut scratch = Vec::new();
    let normal = ordinary();
    assert!(
        check(&normal, &mut scratch),
        "the ordinary MeterValues is valid"
    );
    group.bench_function("meter_values_10_sampled", |b| {
        b.iter(|| check(black_box(&normal), &mut scratch))
    });
    let hostile = hostile();
    assert!(hostile.len() < 1 << 20, "{} bytes", hostile.len());
    assert!(
        !check(&hostile, &mut scratch),
        "the hostile MeterValues is refused"
    );
    group.bench_function("meter_values_500k_wrong_items_1MiB", |b| {
        b.iter(|| check(black_box(&hostile), &mut scratch))
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
