//! The OCPP-J gateway on `/ocpp/{charge_point_id}`: charge points speaking `ocpp1.6` or
//! `ocpp2.0.1` (contract, "OCPP-J"). This step holds the sans-IO message layer only, tested on
//! text: the RPC framing ([`frame`]), the versions and error codes ([`errors`]) and the
//! payload validation of uplink CALLs against the official JSON schemas ([`schema`]); the
//! handler, the embedded central system and the admin commands come next. Like every service it uses the
//! library's public API and imports nothing from `engine/`.

pub mod errors;
pub mod frame;
pub mod schema;
