//! Watching the host's addresses for continual gathering: a laptop moving from Wi-Fi to
//! Ethernet, a VPN coming up, DHCP handing out a new address. The interfaces are read
//! again every [`PeerConfig::address_watch`](crate::PeerConfig::address_watch) interval
//! (`getifaddrs`, portable) and, on Linux, at once whenever the kernel announces a link or
//! address change on a netlink route socket (`RTMGRP_LINK`, `RTMGRP_IPV4_IFADDR`,
//! `RTMGRP_IPV6_IFADDR`); the differences go to the driver, which opens a socket on a new address and registers it
//! with the agent (`Agent::add_host`), or withdraws a vanished one (`Agent::remove_host`).
//! The agent does the rest: pairs from the new address are checked, a path that died is
//! recovered, and an address the peer cannot learn otherwise leads to an ICE restart.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::interfaces::{local_addresses, InterfacePolicy};

/// The watcher's settings, and how sockets on new addresses are opened.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    pub(crate) policy: InterfacePolicy,
    pub(crate) interval: Duration,
    pub(crate) port_range: Option<std::ops::RangeInclusive<u16>>,
    pub(crate) dscp: Option<u8>,
}

/// A change of the host's usable addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressChange {
    /// A new usable address, with its interface rank (RFC 8421 local preference).
    Added(IpAddr, usize),
    /// An address went away.
    Removed(IpAddr),
}

/// What changed from `known` to `now`; `known` becomes `now`'s addresses.
pub(crate) fn diff(known: &mut Vec<IpAddr>, now: &[(IpAddr, usize)]) -> Vec<AddressChange> {
    let mut changes: Vec<AddressChange> = known
        .iter()
        .filter(|ip| !now.iter().any(|(n, _)| n == *ip))
        .map(|ip| AddressChange::Removed(*ip))
        .collect();
    changes.extend(
        now.iter()
            .filter(|(ip, _)| !known.contains(ip))
            .map(|(ip, rank)| AddressChange::Added(*ip, *rank)),
    );
    *known = now.iter().map(|(ip, _)| *ip).collect();
    changes
}

/// Polls the interfaces every `interval` and sends each change, starting from `known`
/// (the addresses the connection opened sockets on). Ends when the driver is gone.
pub(crate) fn spawn(
    policy: InterfacePolicy,
    interval: Duration,
    mut known: Vec<IpAddr>,
    tx: mpsc::Sender<AddressChange>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut kernel = netlink::Changes::subscribe();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = kernel.next() => {
                    // A burst (an address and its routes) arrives as several messages;
                    // read the interfaces once it has settled.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    kernel.drain();
                }
            }
            let now = tokio::task::spawn_blocking({
                let policy = policy.clone();
                move || local_addresses(&policy)
            })
            .await
            .unwrap_or_default();
            for change in diff(&mut known, &now) {
                tracing::info!(?change, "local address change");
                if tx.send(change).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// The kernel's announcements of link and address changes (Linux); elsewhere, none.
#[cfg(target_os = "linux")]
mod netlink {
    use netlink_sys::{
        protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket,
    };

    /// rtnetlink multicast groups (linux/rtnetlink.h).
    const RTMGRP_LINK: u32 = 0x1;
    const RTMGRP_IPV4_IFADDR: u32 = 0x10;
    const RTMGRP_IPV6_IFADDR: u32 = 0x100;

    /// A route socket subscribed to link and address changes, or nothing when it cannot
    /// be opened (then the interval alone notices changes).
    pub(super) struct Changes(Option<TokioSocket>, u32);

    impl Changes {
        pub(super) fn subscribe() -> Changes {
            let open = || -> std::io::Result<TokioSocket> {
                let mut s = TokioSocket::new(NETLINK_ROUTE)?;
                s.socket_mut().bind(&SocketAddr::new(
                    0,
                    RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
                ))?;
                Ok(s)
            };
            match open() {
                Ok(s) => Changes(Some(s), 0),
                Err(e) => {
                    tracing::debug!(error = %e, "no netlink route socket; polling alone");
                    Changes(None, 0)
                }
            }
        }

        /// The next announcement (its content is not read: the interfaces are).
        pub(super) async fn next(&mut self) {
            match &mut self.0 {
                Some(s) => {
                    if s.recv_from_full().await.is_ok() {
                        self.1 = 0;
                    } else {
                        // An overrun (ENOBUFS, a burst of link events) still means
                        // "something changed"; only a socket that fails 16 times in a row
                        // is dropped, and polling goes on.
                        self.1 += 1;
                        if self.1 >= 16 {
                            tracing::debug!("netlink route socket keeps failing; polling alone");
                            self.0 = None;
                        }
                    }
                }
                None => std::future::pending().await,
            }
        }

        /// Discards announcements already queued (the socket does not block: an empty
        /// queue is an error).
        pub(super) fn drain(&mut self) {
            if let Some(s) = &mut self.0 {
                let mut buf = bytes::BytesMut::with_capacity(8192);
                while s.socket_ref().recv(&mut buf, 0).is_ok_and(|n| n > 0) {
                    buf.clear();
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod netlink {
    /// No kernel announcements here: the interval alone notices changes.
    pub(super) struct Changes;

    impl Changes {
        pub(super) fn subscribe() -> Changes {
            Changes
        }

        pub(super) async fn next(&mut self) {
            std::future::pending().await
        }

        pub(super) fn drain(&mut self) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_move_from_one_network_to_another_is_a_removal_and_an_addition() {
        let mut known = vec![ip("192.168.1.2"), ip("2001:db8::2")];
        assert!(diff(
            &mut known,
            &[(ip("192.168.1.2"), 0), (ip("2001:db8::2"), 0)]
        )
        .is_empty());
        let changes = diff(&mut known, &[(ip("2001:db8::2"), 0), (ip("10.20.0.2"), 1)]);
        assert_eq!(
            changes,
            [
                AddressChange::Removed(ip("192.168.1.2")),
                AddressChange::Added(ip("10.20.0.2"), 1)
            ]
        );
        assert_eq!(known, [ip("2001:db8::2"), ip("10.20.0.2")]);
        assert!(diff(&mut known, &[(ip("2001:db8::2"), 0), (ip("10.20.0.2"), 1)]).is_empty());
    }
}
