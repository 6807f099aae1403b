//! Which local addresses to open UDP sockets on.

use std::net::IpAddr;

/// Which interfaces to use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterfacePolicy {
    /// Loopback: `None` (default) uses it only when nothing else is up, as on an isolated
    /// host or a network namespace with only `lo`; browsers leave it out otherwise.
    pub loopback: Option<bool>,
    /// Use IPv6 (default `true`); link-local IPv6 is always left out (it needs a scope id
    /// and never reaches a peer elsewhere).
    pub no_ipv6: bool,
    /// Only these interface names (empty: all).
    pub include: Vec<String>,
    /// Never these interface names.
    pub exclude: Vec<String>,
}

/// The addresses to bind, in preference order (the order interfaces are listed in; the
/// agent interleaves families per RFC 8421). Returns `(address, interface rank)`.
pub fn local_addresses(policy: &InterfacePolicy) -> Vec<(IpAddr, usize)> {
    let all = if_addrs::get_if_addrs().unwrap_or_default();
    let usable = |i: &if_addrs::Interface| {
        let ip = i.ip();
        let named = (policy.include.is_empty() || policy.include.contains(&i.name))
            && !policy.exclude.contains(&i.name);
        let link_local_v6 = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
        let family_ok = !(policy.no_ipv6 && ip.is_ipv6());
        let special = link_local_v6 || ip.is_unspecified() || ip.is_multicast();
        named && family_ok && !special
    };
    let others: Vec<&if_addrs::Interface> = all
        .iter()
        .filter(|i| usable(i) && !i.is_loopback())
        .collect();
    let loopback = policy.loopback.unwrap_or(others.is_empty());
    let mut names: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for i in all
        .iter()
        .filter(|i| usable(i) && (!i.is_loopback() || loopback))
    {
        let rank = names.iter().position(|n| *n == i.name).unwrap_or_else(|| {
            names.push(&i.name);
            names.len() - 1
        });
        if !out.iter().any(|(ip, _)| *ip == i.ip()) {
            out.push((i.ip(), rank));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_used_when_forced_and_link_local_never() {
        let mut p = InterfacePolicy {
            loopback: Some(true),
            ..InterfacePolicy::default()
        };
        let addrs = local_addresses(&p);
        assert!(addrs.iter().any(|(ip, _)| ip.is_loopback()), "{addrs:?}");
        assert!(addrs
            .iter()
            .all(|(ip, _)| !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)));
        p.loopback = Some(false);
        assert!(local_addresses(&p).iter().all(|(ip, _)| !ip.is_loopback()));
    }
}
