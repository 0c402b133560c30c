//! How many connections this process can hold, decided once at start:
//! `MAX_CONNECTIONS`, capped by the open-files limit when sockets are process
//! descriptors, or by what the shards' registered file tables hold when they
//! are direct descriptors; plus the admin reserve on top. When the configured
//! figure cannot stand as written, one log line says why and what to change.

use super::uring::TABLE_HEADROOM;

/// Descriptors the process needs besides connections: stdio, and per shard
/// its listener, eventfd and ring or epoll instance, with some slack for
/// what a library user opens.
fn fixed_descriptors(shards: usize) -> u64 {
    16 + 4 * shards as u64
}

/// The kernel's most entries in one registered file table.
const TABLE_MAX: u64 = 1 << 20;

/// What the shards enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capacity {
    /// Sockets admitted normally, all shards.
    pub(crate) max_connections: usize,
    /// Sockets admitted past that for plain HTTP only (health, admin).
    pub(crate) admin_reserve: usize,
    /// Entries of each shard's registered file table (direct descriptors).
    pub(crate) table_entries: Option<u32>,
}

/// Why the limits leave no room for connections at all.
#[derive(Debug, thiserror::Error)]
#[error("the open-files limit ({nofile}) leaves no descriptors for connections with {shards} shards; raise it (ulimit -n) or lower RINGGATE_SHARDS")]
pub struct NoCapacity {
    nofile: u64,
    shards: usize,
}

/// Plans the limits for `shards` shards under an open-files limit `nofile`.
pub(crate) fn plan(
    max_connections: usize,
    admin_reserve: usize,
    shards: usize,
    nofile: u64,
    direct: bool,
) -> Result<Capacity, NoCapacity> {
    let none = || NoCapacity { nofile, shards };
    let left = nofile
        .checked_sub(fixed_descriptors(shards))
        .filter(|&n| n > 0)
        .ok_or_else(none)?;
    if direct {
        return Ok(plan_tables(max_connections, admin_reserve, shards, nofile));
    }
    // Room for accepted sockets on their way to a 503, about one in eight.
    let spare = (left / 8).clamp(shards as u64, 32 * shards as u64);
    let usable = left.saturating_sub(spare);
    let reserve = (admin_reserve as u64).min(usable / 4);
    let fit = usable - reserve;
    if fit == 0 {
        return Err(none());
    }
    let max = (max_connections as u64).min(fit) as usize;
    if max < max_connections {
        tracing::info!(
            "MAX_CONNECTIONS {max_connections} capped at {max} by the open-files limit ({nofile}); {reserve} more sockets kept for /health and admin requests; raise the limit (ulimit -n, LimitNOFILE=) or use RINGGATE_DIRECT_DESCRIPTORS"
        );
    }
    Ok(Capacity {
        max_connections: max,
        admin_reserve: reserve as usize,
        table_entries: None,
    })
}

/// Direct descriptors: each shard's table holds up to `nofile` entries (the
/// kernel's cap per table), of which some stay free for accepts in flight
/// and the admin reserve.
fn plan_tables(
    max_connections: usize,
    admin_reserve: usize,
    shards: usize,
    nofile: u64,
) -> Capacity {
    let kept = u64::from(TABLE_HEADROOM) + admin_reserve as u64;
    let entries = (max_connections as u64 + kept).min(nofile).min(TABLE_MAX);
    let per_table = entries.saturating_sub(kept);
    let total = per_table * shards as u64;
    let max = (max_connections as u64).min(total) as usize;
    tracing::info!(
        "direct descriptors: {shards} shards x {per_table} connections (file tables of {entries} entries, at most RLIMIT_NOFILE {nofile} each) hold {total}; MAX_CONNECTIONS {max_connections}"
    );
    if max < max_connections {
        let needed =
            (max_connections as u64).div_ceil(nofile.min(TABLE_MAX).saturating_sub(kept).max(1));
        tracing::warn!(
            "MAX_CONNECTIONS {max_connections} capped at {max}: the shards' file tables hold no more; RINGGATE_SHARDS={needed} or a higher open-files limit would hold it"
        );
    }
    Capacity {
        max_connections: max.max(1),
        admin_reserve,
        table_entries: Some(entries as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_descriptors_cap_the_connections() {
        let c = plan(100_000, 16, 2, 20_000, false).unwrap();
        assert_eq!(c.admin_reserve, 16);
        assert!(c.max_connections < 20_000 - 16 - 24);
        assert!(c.max_connections > 19_800);
        // What the cap leaves always fits the limit, reserve and spare included.
        for nofile in [40, 48, 64, 100, 1000] {
            let c = plan(100_000, 16, 1, nofile, false).unwrap();
            assert!((c.max_connections + c.admin_reserve) as u64 + fixed_descriptors(1) < nofile);
            assert!(c.max_connections >= 1);
        }
        assert!(plan(100_000, 16, 2, 24, false).is_err());
    }

    #[test]
    fn a_small_limit_under_the_cap_stands() {
        let c = plan(100, 16, 2, 20_000, false).unwrap();
        assert_eq!((c.max_connections, c.admin_reserve), (100, 16));
    }

    #[test]
    fn direct_tables_are_sized_per_shard() {
        let c = plan(2_000_000, 16, 52, 20_000, true).unwrap();
        assert_eq!(c.table_entries, Some(20_000));
        assert_eq!(c.max_connections, 52 * (20_000 - 32 - 16));
        let c = plan(1000, 16, 2, 20_000, true).unwrap();
        assert_eq!(c.table_entries, Some(1000 + 48));
        assert_eq!(c.max_connections, 1000);
    }
}
