//! Source addresses: parses `--source-ips` (`127.0.0.2-127.0.0.50`, comma
//! lists, single addresses) into the list that new connections bind to in
//! turn, so one run can exceed a single address's ephemeral port range.

use std::net::{IpAddr, Ipv4Addr};

/// Most addresses one `--source-ips` may expand to.
pub const MAX_SOURCE_IPS: usize = 65_536;

/// Expands a comma-separated list of addresses and inclusive IPv4 ranges.
pub fn parse(spec: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let lo = parse_v4(lo.trim())?;
                let hi = parse_v4(hi.trim())?;
                let (lo, hi) = (u32::from(lo), u32::from(hi));
                if lo > hi {
                    return Err(format!("{part:?}: range runs backwards"));
                }
                if (hi - lo) as usize >= MAX_SOURCE_IPS - out.len() {
                    return Err(format!("{spec:?}: more than {MAX_SOURCE_IPS} addresses"));
                }
                out.extend((lo..=hi).map(|a| IpAddr::V4(Ipv4Addr::from(a))));
            }
            None => {
                let ip: IpAddr = part
                    .parse()
                    .map_err(|_| format!("{part:?}: not an IP address"))?;
                out.push(ip);
            }
        }
    }
    if out.is_empty() {
        return Err(format!("{spec:?}: no addresses"));
    }
    if out.len() > MAX_SOURCE_IPS {
        return Err(format!("{spec:?}: more than {MAX_SOURCE_IPS} addresses"));
    }
    Ok(out)
}

fn parse_v4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("{s:?}: ranges take IPv4 addresses"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn expands_ranges() {
        let ips = parse("127.0.0.2-127.0.0.50").unwrap();
        assert_eq!(ips.len(), 49);
        assert_eq!(ips[0], v4("127.0.0.2"));
        assert_eq!(ips[48], v4("127.0.0.50"));
    }

    #[test]
    fn ranges_cross_octets() {
        let ips = parse("127.0.0.255-127.0.1.1").unwrap();
        assert_eq!(ips, [v4("127.0.0.255"), v4("127.0.1.0"), v4("127.0.1.1")]);
    }

    #[test]
    fn lists_and_singles() {
        let ips = parse("127.0.0.1, 127.0.0.3-127.0.0.4,::1").unwrap();
        assert_eq!(
            ips,
            [v4("127.0.0.1"), v4("127.0.0.3"), v4("127.0.0.4"), v4("::1")]
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "",
            " , ",
            "127.0.0.9-127.0.0.1",
            "127.0.0.1-::1",
            "localhost",
            "127.0.0.300",
            "1.0.0.0-1.255.255.255",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
