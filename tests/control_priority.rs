//! The control plane's thread runs at real-time priority when the process may, and at normal
//! priority when `http.realtime_priority` is off. One test in this binary: it counts the
//! process's control-plane threads.

mod common;

use ringgate::Server;

/// The scheduling policies (`/proc/.../stat` field 41) of this process's threads named `name`.
fn thread_policies(name: &str) -> Vec<u32> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .unwrap_or_default()
                .trim()
                == name
        })
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // Fields after the command name (which ends with the last ')') start at field 3.
            stat[stat.rfind(')')? + 2..]
                .split(' ')
                .nth(41 - 3)?
                .parse()
                .ok()
        })
        .collect()
}

/// Whether this process may use real-time priority (a scratch thread tries).
fn realtime_allowed() -> bool {
    std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: the scratch thread's own policy; it ends right after.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) == 0 }
    })
    .join()
    .unwrap()
}

#[test]
fn the_control_plane_runs_at_realtime_priority_when_allowed() {
    let _handle = Server::builder(common::loopback_config())
        .start()
        .expect("server starts");
    let want = if realtime_allowed() {
        libc::SCHED_RR
    } else {
        libc::SCHED_OTHER
    };
    assert_eq!(thread_policies("ringgate-contro"), [want as u32]);

    let mut cfg = common::loopback_config();
    cfg.http.realtime_priority = false;
    let _plain = Server::builder(cfg).start().expect("server starts");
    let mut policies = thread_policies("ringgate-contro");
    policies.sort_unstable();
    let mut expected = [want as u32, libc::SCHED_OTHER as u32];
    expected.sort_unstable();
    assert_eq!(
        policies, expected,
        "the second server's control plane at normal priority"
    );
}
