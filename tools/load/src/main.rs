//! `ringgate-load`: a WebSocket load and stress client for any server.
//!
//! Process concerns only: parse the flags, raise the open-files limit, check
//! the connection count fits it (realtime: make the rooms), run, print the
//! report. Modes: `storm`, `throughput`, `sustained`, `idle`, `fanout`,
//! `soak`, `realtime`, `ocpp` (see `--help`); any of them may offer
//! permessage-deflate (`--deflate`). Each thread runs one mio
//! event loop over nonblocking sockets with hand-written client framing, so
//! a message costs a copy of a pre-masked frame and no allocation.

mod cli;
mod conn;
mod deflate;
mod deflate_codec;
mod deflate_report;
mod fanout;
mod fanout_phase;
mod handshake;
mod monitor;
mod ocpp;
mod ocpp_phase;
mod ocpp_report;
mod phases;
mod procinfo;
mod progress;
mod realtime;
mod report;
mod rooms;
mod run;
mod soak;
mod soak_phase;
mod soak_report;
mod sourceip;
mod stats;
mod sync;
mod url;
mod wire;
mod worker;

use std::process::ExitCode;

use clap::Parser as _;

/// File descriptors kept free for everything that is not a connection.
const SPARE_FDS: u64 = 32;

fn main() -> ExitCode {
    let args = match cli::seed_spelling(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("ringgate-load: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = match cli::Cli::parse_from(args).into_plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("ringgate-load: {e}");
            return ExitCode::from(2);
        }
    };
    let nofile = procinfo::raise_nofile_limit();
    let connections = plan.total_connections();
    if connections + SPARE_FDS > nofile {
        eprintln!(
            "ringgate-load: {connections} connections need {} open files; the limit is {nofile} \
             (raise the hard limit, or lower --connections)",
            connections + SPARE_FDS
        );
        return ExitCode::from(2);
    }
    let rooms = match &plan.mode {
        cli::Mode::Realtime(rt) => match rooms::create_rooms(&plan.url, rt) {
            Ok(setup) => Some(setup),
            Err(e) => {
                eprintln!("ringgate-load: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let mut outcome = run::run(plan.clone());
    outcome.rooms = rooms;
    let report = report::Report::new(&plan, &outcome);
    if plan.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if report.connected == 0 || report.failed_check() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
