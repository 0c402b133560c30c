//! What one uplink OCPP message costs a shard before it is answered: the frame parse and the
//! schema validation of a CALL (`frame::parse`, then `schema::validate`), for an ordinary
//! MeterValues, for the hostile one of the security review (a 1 MiB MeterValues whose
//! `sampledValue` array holds half a million wrong items; compressed it is a few KB), and for
//! the costliest ones `OCPP_MAX_MESSAGE_ITEMS` (at its default) lets through: all valid, and
//! all wrong.
//!
//! `cargo bench --bench ocpp` (add `-- --quick` for a rough pass). Nothing here asserts a timing.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ringgate::config::OcppConfig;
use ringgate::services::ocpp::errors::Version;
use ringgate::services::ocpp::frame::{self, Frame, Parsed};
use ringgate::services::ocpp::schema;

/// A 1.6 MeterValues CALL whose one meter value holds `items` as its `sampledValue` array. The
/// frame and the payload hold ten items besides them.
fn meter_values(items: &[String]) -> String {
    format!(
        r#"[2,"m1","MeterValues",{{"connectorId":1,"transactionId":7,"meterValue":[{{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{}]}}]}}]"#,
        items.join(",")
    )
}

/// `n` valid sampled values of one meter (six items each: the object and its five members).
fn sampled(n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|n| {
            format!(
                r#"{{"value":"{n}.5","context":"Sample.Periodic","measurand":"Current.Import","phase":"L{}","unit":"A"}}"#,
                n % 3 + 1
            )
        })
        .collect();
    meter_values(&items)
}

/// `n` `0`s where sampled-value objects belong; half a million make just under 1 MiB.
fn wrong(n: usize) -> String {
    meter_values(&vec!["0".to_owned(); n])
}

/// Parse and validate as the gateway does for an uplink CALL; true when the payload passed.
fn check(text: &str, scratch: &mut Vec<u8>, max_items: usize) -> bool {
    match frame::parse(text, scratch, max_items) {
        Ok(Parsed {
            frame: Frame::Call {
                action, payload, ..
            },
            ..
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
    let max_items = OcppConfig::default().max_message_items;
    let cases = [
        ("meter_values_10_sampled", sampled(10), true),
        ("meter_values_500k_wrong_items_1MiB", wrong(500_000), false),
        (
            "meter_values_1665_sampled_at_the_item_cap",
            sampled(1665),
            true,
        ),
        (
            "meter_values_9990_wrong_items_at_the_item_cap",
            wrong(9990),
            false,
        ),
    ];
    for (name, text, valid) in &cases {
        assert!(text.len() < 1 << 20, "{name}: {} bytes", text.len());
        assert_eq!(check(text, &mut scratch, max_items), *valid, "{name}");
        group.bench_function(*name, |b| {
            b.iter(|| check(black_box(text), &mut scratch, max_items))
        });
    }
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
