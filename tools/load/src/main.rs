//! `ringgate-load`: a WebSocket load and stress client for any server.
//!
//! Process concerns only: parse the flags, raise the open-files limit, check
//! the connection count fits it (realtime: make the rooms), run, print the
//! report. Modes: `storm`, `throughput`, `sustained`, `idle`, `fanout`,
//! `soak`, `realtime`, `ocpp` (see `--help`); any of them may offer
//! permessage-deflate (`--deflate`); `all` runs storm, throughput and
//! sustained in turn, `attack` sends hostile OCPP inputs. Each thread runs
//! one mio event loop over nonblocking sockets with hand-written client
//! framing, so a message costs a copy of a pre-masked frame and no
//! allocation.

mod attack;
mod cli;
mod commands;
mod conn;
mod deflate;
mod deflate_codec;
mod deflate_report;
mod fanout;
mod fanout_phase;
mod handshake;
mod http;
mod marker;
mod marker_report;
mod monitor;
mod ocpp;
mod ocpp_phase;
mod ocpp_report;
mod pace;
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
mod suite;
mod sync;
mod url;
mod wire;
mod worker;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Job, Plan};

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
    let job = match cli::Cli::parse_from(args).into_job() {
        Ok(job) => job,
        Err(e) => {
            eprintln!("ringgate-load: {e}");
            return ExitCode::from(2);
        }
    };
    let nofile = procinfo::raise_nofile_limit();
    match job {
        Job::One(plan) => one(*plan, nofile),
        Job::All(plans) => all(plans, nofile),
        Job::Attack(plan) => {
            let report = attack::run(&plan);
            print(plan.json, || report.to_json(), || report.to_table());
            exit(report.passed)
        }
    }
}

/// Runs one mode.
fn one(plan: Plan, nofile: u64) -> ExitCode {
    if let Err(e) = fits(&plan, nofile) {
        eprintln!("ringgate-load: {e}");
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
    print(plan.json, || report.to_json(), || report.to_table());
    exit(report.connected > 0 && !report.failed_check())
}

/// Runs `all`'s phases one after another.
fn all(plans: Vec<Plan>, nofile: u64) -> ExitCode {
    if let Some(e) = plans.iter().find_map(|p| fits(p, nofile).err()) {
        eprintln!("ringgate-load: {e}");
        return ExitCode::from(2);
    }
    let json = plans.iter().any(|p| p.json);
    let reports = plans
        .into_iter()
        .map(|plan| report::Report::new(&plan, &run::run(plan.clone())))
        .collect();
    let report = suite::SuiteReport::new(reports);
    print(json, || report.to_json(), || report.to_table());
    exit(report.passed)
}

/// Whether the run's connections fit the open-files limit `nofile`.
fn fits(plan: &Plan, nofile: u64) -> Result<(), String> {
    let connections = plan.total_connections();
    if connections + SPARE_FDS > nofile {
        return Err(format!(
            "{connections} connections need {} open files; the limit is {nofile} \
             (raise the hard limit, or lower --connections)",
            connections + SPARE_FDS
        ));
    }
    Ok(())
}

/// Prints the report as JSON or as a table.
fn print(json: bool, as_json: impl FnOnce() -> String, as_table: impl FnOnce() -> String) {
    if json {
        println!("{}", as_json());
    } else {
        print!("{}", as_table());
    }
}

fn exit(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
