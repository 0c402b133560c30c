//! What the gateway knows of one charge point ([`Station`]): its connection, what its boot
//! said, its connectors' last status and its open transactions, kept up to date from the
//! [`Update`]s the embedded central system draws from its CALLs, and shown as JSON. Bounded
//! against a hostile charge point: [`MAX_CONNECTORS`] connectors, [`MAX_TRANSACTIONS`] open
//! transactions. Sans-IO: the caller passes the time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::central::{BootStatus, Update};
use super::errors::Version;

/// Most connectors kept; a status for a new one past this is ignored.
pub const MAX_CONNECTORS: usize = 128;

/// Most open transactions kept; a new one past this evicts the one started first.
pub const MAX_TRANSACTIONS: usize = 128;

/// A connector's last reported status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Connector {
    status: String,
    error_code: Option<String>,
    info: Option<String>,
    updated_at: SystemTime,
}

/// An open transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transaction {
    evse_id: Option<u32>,
    connector_id: Option<u32>,
    id_tag: Option<String>,
    meter_start: Option<i64>,
    /// The charge point's timestamp, as sent.
    started_at: Option<String>,
    last_meter_at: Option<SystemTime>,
    /// The order the gateway learnt of the start in: the smallest is evicted first.
    started_order: u64,
}

/// One charge point, connected or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    id: String,
    protocol: Option<&'static str>,
    connected: bool,
    connected_at: Option<SystemTime>,
    disconnected_at: Option<SystemTime>,
    remote_addr: Option<SocketAddr>,
    vendor: Option<String>,
    model: Option<String>,
    firmware_version: Option<String>,
    serial_number: Option<String>,
    boot_status: Option<BootStatus>,
    last_boot_at: Option<SystemTime>,
    last_heartbeat_at: Option<SystemTime>,
    last_message_at: Option<SystemTime>,
    /// By (evse id, connector id); the evse id is `None` in 1.6.
    connectors: BTreeMap<(Option<u32>, u32), Connector>,
    /// By transaction id.
    transactions: BTreeMap<String, Transaction>,
    transactions_started: u64,
}

impl Station {
    /// A charge point known by its id only.
    pub fn new(id: &str) -> Station {
        Station {
            id: id.to_owned(),
            protocol: None,
            connected: false,
            connected_at: None,
            disconnected_at: None,
            remote_addr: None,
            vendor: None,
            model: None,
            firmware_version: None,
            serial_number: None,
            boot_status: None,
            last_boot_at: None,
            last_heartbeat_at: None,
            last_message_at: None,
            connectors: BTreeMap::new(),
            transactions: BTreeMap::new(),
            transactions_started: 0,
        }
    }

    /// The charge point id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A connection opened, speaking `version`. Connectors and transactions are kept: a
    /// transaction outlives a dropped connection.
    pub fn connected(
        &mut self,
        version: Version,
        remote_addr: Option<SocketAddr>,
        now: SystemTime,
    ) {
        self.protocol = Some(version.subprotocol());
        self.connected = true;
        self.connected_at = Some(now);
        self.remote_addr = remote_addr;
    }

    /// The connection closed.
    pub fn disconnected(&mut self, now: SystemTime) {
        self.connected = false;
        self.disconnected_at = Some(now);
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether a BootNotification of it was ever answered (whatever the status).
    pub fn has_booted(&self) -> bool {
        self.last_boot_at.is_some()
    }

    /// A message arrived from the charge point.
    pub fn touch(&mut self, now: SystemTime) {
        self.last_message_at = Some(now);
    }

    /// Learns what a CALL taught.
    pub fn apply(&mut self, update: &Update, now: SystemTime) {
        match update {
            Update::Boot {
                vendor,
                model,
                firmware,
                serial,
                status,
            } => {
                self.vendor = Some(vendor.clone());
                self.model = Some(model.clone());
                self.firmware_version = firmware.clone();
                self.serial_number = serial.clone();
                self.boot_status = Some(*status);
                self.last_boot_at = Some(now);
            }
            Update::Heartbeat => self.last_heartbeat_at = Some(now),
            Update::Status {
                evse,
                connector,
                status,
                error_code,
                info,
            } => {
                let reported = Connector {
                    status: status.clone(),
                    error_code: error_code.clone(),
                    info: info.clone(),
                    updated_at: now,
                };
                self.set_connector((*evse, *connector), reported);
            }
            Update::TransactionStarted {
                id,
                evse,
                connector,
                id_tag,
                meter_start,
                started_at,
            } => {
                self.transactions_started += 1;
                let started = Transaction {
                    evse_id: *evse,
                    connector_id: *connector,
                    id_tag: id_tag.clone(),
                    meter_start: *meter_start,
                    started_at: started_at.clone(),
                    last_meter_at: None,
                    started_order: self.transactions_started,
                };
                self.open_transaction(id, started);
            }
            Update::TransactionEnded { id, .. } => {
                self.transactions.remove(id);
            }
            Update::MeterValues { transaction_id, .. } => {
                let open = transaction_id
                    .as_ref()
                    .and_then(|id| self.transactions.get_mut(id));
                if let Some(transaction) = open {
                    transaction.last_meter_at = Some(now);
                }
            }
        }
    }

    fn set_connector(&mut self, key: (Option<u32>, u32), reported: Connector) {
        let known = self.connectors.contains_key(&key);
        if known || self.connectors.len() < MAX_CONNECTORS {
            self.connectors.insert(key, reported);
        }
    }

    fn open_transaction(&mut self, id: &str, started: Transaction) {
        let known = self.transactions.contains_key(id);
        if !known && self.transactions.len() >= MAX_TRANSACTIONS {
            let oldest = self
                .transactions
                .iter()
                .min_by_key(|(_, transaction)| transaction.started_order)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.transactions.remove(&oldest);
            }
        }
        self.transactions.insert(id.to_owned(), started);
    }

    /// The station as the admin API shows it; times in RFC 3339, `null` when unknown.
    pub fn to_json(&self) -> Value {
        let connectors: Vec<Value> = self
            .connectors
            .iter()
            .map(|(&(evse, connector), reported)| {
                json!({
                    "evse_id": evse,
                    "connector_id": connector,
                    "status": reported.status,
                    "error_code": reported.error_code,
                    "info": reported.info,
                    "updated_at": time(Some(reported.updated_at)),
                })
            })
            .collect();
        let transactions: Vec<Value> = self
            .transactions
            .iter()
            .map(|(id, open)| {
                json!({
                    "transaction_id": id,
                    "evse_id": open.evse_id,
                    "connector_id": open.connector_id,
                    "id_tag": open.id_tag,
                    "meter_start": open.meter_start,
                    "started_at": open.started_at,
                    "last_meter_at": time(open.last_meter_at),
                })
            })
            .collect();
        json!({
            "id": self.id,
            "connected": self.connected,
            "protocol": self.protocol,
            "connected_at": time(self.connected_at),
            "disconnected_at": time(self.disconnected_at),
            "remote_addr": self.remote_addr.map(|addr| addr.to_string()),
            "vendor": self.vendor,
            "model": self.model,
            "firmware_version": self.firmware_version,
            "serial_number": self.serial_number,
            "boot_status": self.boot_status.map(BootStatus::as_str),
            "last_boot": time(self.last_boot_at),
            "last_heartbeat": time(self.last_heartbeat_at),
            "last_message": time(self.last_message_at),
            "connectors": connectors,
            "transactions": transactions,
        })
    }
}

fn time(at: Option<SystemTime>) -> Value {
    at.map_or(Value::Null, |at| Value::String(crate::control::rfc3339(at)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    fn status(evse: Option<u32>, connector: u32, status: &str) -> Update {
        Update::Status {
            evse,
            connector,
            status: status.into(),
            error_code: None,
            info: None,
        }
    }

    fn started(id: &str) -> Update {
        Update::TransactionStarted {
            id: id.into(),
            evse: None,
            connector: Some(1),
            id_tag: Some("TAG".into()),
            meter_start: Some(10),
            started_at: Some("2024-01-01T00:00:00Z".into()),
        }
    }

    fn ended(id: &str) -> Update {
        Update::TransactionEnded {
            id: id.into(),
            meter_stop: None,
            reason: None,
            stopped_at: None,
        }
    }

    fn transaction_ids(station: &Station) -> Vec<String> {
        station.transactions.keys().cloned().collect()
    }

    #[test]
    fn a_fresh_station_shows_nulls() {
        let shown = Station::new("CP1").to_json();
        assert_eq!(shown["id"], "CP1");
        assert_eq!(shown["connected"], false);
        for key in [
            "protocol",
            "connected_at",
            "vendor",
            "boot_status",
            "last_message",
        ] {
            assert_eq!(shown[key], Value::Null, "{key}");
        }
        assert_eq!(shown["connectors"], json!([]));
        assert_eq!(shown["transactions"], json!([]));
    }

    #[test]
    fn apply_sequence() {
        let mut station = Station::new("CP1");
        let addr: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        station.connected(Version::V16, Some(addr), at(0));
        assert!(station.is_connected());
        station.touch(at(1));
        let boot = Update::Boot {
            vendor: "V".into(),
            model: "M".into(),
            firmware: Some("1.0".into()),
            serial: None,
            status: BootStatus::Accepted,
        };
        assert!(!station.has_booted());
        station.apply(&boot, at(1));
        assert!(station.has_booted());
        station.apply(&Update::Heartbeat, at(2));
        station.apply(&status(None, 2, "Available"), at(3));
        station.apply(&status(None, 1, "Available"), at(3));
        station.apply(&status(None, 1, "Charging"), at(4));
        station.apply(&started("7"), at(4));
        let meter = Update::MeterValues {
            evse_or_connector: 1,
            transaction_id: Some("7".into()),
        };
        station.apply(&meter, at(5));

        let shown = station.to_json();
        assert_eq!(shown["protocol"], "ocpp1.6");
        assert_eq!(shown["remote_addr"], "192.0.2.1:4000");
        assert_eq!(shown["connected_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(shown["last_message"], "2023-11-14T22:13:21.000Z");
        assert_eq!(shown["vendor"], "V");
        assert_eq!(shown["firmware_version"], "1.0");
        assert_eq!(shown["serial_number"], Value::Null);
        assert_eq!(shown["boot_status"], "Accepted");
        assert_eq!(shown["last_boot"], "2023-11-14T22:13:21.000Z");
        assert_eq!(shown["last_heartbeat"], "2023-11-14T22:13:22.000Z");
        let connectors = json!([
            {"evse_id": null, "connector_id": 1, "status": "Charging", "error_code": null,
             "info": null, "updated_at": "2023-11-14T22:13:24.000Z"},
            {"evse_id": null, "connector_id": 2, "status": "Available", "error_code": null,
             "info": null, "updated_at": "2023-11-14T22:13:23.000Z"},
        ]);
        assert_eq!(shown["connectors"], connectors);
        let transactions = json!([
            {"transaction_id": "7", "evse_id": null, "connector_id": 1, "id_tag": "TAG",
             "meter_start": 10, "started_at": "2024-01-01T00:00:00Z",
             "last_meter_at": "2023-11-14T22:13:25.000Z"},
        ]);
        assert_eq!(shown["transactions"], transactions);

        station.apply(&ended("unknown"), at(6));
        assert_eq!(transaction_ids(&station), ["7"]);
        station.apply(&ended("7"), at(6));
        assert!(station.transactions.is_empty());
        station.disconnected(at(7));
        assert!(!station.is_connected());
        let shown = station.to_json();
        assert_eq!(shown["connected"], false);
        assert_eq!(shown["disconnected_at"], "2023-11-14T22:13:27.000Z");
    }

    #[test]
    fn connectors_sort_by_evse_then_connector() {
        let mut station = Station::new("CP2");
        station.connected(Version::V201, None, at(0));
        for (evse, connector) in [(2, 1), (1, 2), (1, 1)] {
            station.apply(&status(Some(evse), connector, "Available"), at(1));
        }
        let shown = station.to_json();
        let keys: Vec<(u64, u64)> = shown["connectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["evse_id"].as_u64().unwrap(),
                    c["connector_id"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(keys, [(1, 1), (1, 2), (2, 1)]);
        assert_eq!(shown["protocol"], "ocpp2.0.1");
    }

    #[test]
    fn connectors_are_bounded() {
        let mut station = Station::new("CP3");
        for connector in 0..MAX_CONNECTORS as u32 + 10 {
            station.apply(&status(None, connector, "Available"), at(1));
        }
        assert_eq!(station.connectors.len(), MAX_CONNECTORS);
        assert!(!station
            .connectors
            .contains_key(&(None, MAX_CONNECTORS as u32)));
        // A known connector still updates when full.
        station.apply(&status(None, 0, "Faulted"), at(2));
        assert_eq!(station.connectors[&(None, 0)].status, "Faulted");
    }

    #[test]
    fn transactions_are_bounded_evicting_the_oldest_started() {
        let mut station = Station::new("CP4");
        for id in 0..MAX_TRANSACTIONS + 2 {
            station.apply(&started(&format!("t{id}")), at(1));
        }
        assert_eq!(station.transactions.len(), MAX_TRANSACTIONS);
        assert!(!station.transactions.contains_key("t0"));
        assert!(!station.transactions.contains_key("t1"));
        assert!(station.transactions.contains_key("t2"));
        let last = format!("t{}", MAX_TRANSACTIONS + 1);
        assert!(station.transactions.contains_key(&last));
        // Restarting a known id evicts nothing.
        station.apply(&started("t2"), at(2));
        assert_eq!(station.transactions.len(), MAX_TRANSACTIONS);
        assert!(station.transactions.contains_key("t3"));
    }
}
