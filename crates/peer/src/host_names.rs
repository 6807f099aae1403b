//! Host candidates signalled under mDNS names instead of their addresses
//! (draft-ietf-mmusic-mdns-ice-candidates-03 §3.1), as browsers do: each host address
//! gets a random `<uuid>.local` name, published on the link by the peer's mDNS service,
//! and the related address of the other candidates (which would give the host address
//! away) is signalled as the unspecified address, port 0. Sans-IO: the randomness is a
//! seed, and publishing is a callback.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use floe_ice::{Candidate, CandidateAddress, CandidateKind};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// What the mDNS responder must learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameChange<'a> {
    /// Answer for this name with this address from now on.
    Published(&'a str, IpAddr),
    /// The address went away: stop answering for its name.
    Withdrawn(IpAddr),
}

/// Tells the responder.
type Publish = Box<dyn FnMut(NameChange<'_>) + Send>;

/// The names given so far and how to publish a new one.
pub(crate) struct HostNames {
    rng: StdRng,
    names: Vec<(IpAddr, String)>,
    publish: Publish,
}

impl fmt::Debug for HostNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostNames")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl HostNames {
    /// Names drawn from `seed`; `publish` is told of each new name before it is
    /// signalled, and of each withdrawn one.
    pub(crate) fn new(
        seed: u64,
        publish: impl FnMut(NameChange<'_>) + Send + 'static,
    ) -> HostNames {
        HostNames {
            rng: StdRng::seed_from_u64(seed),
            names: Vec::new(),
            publish: Box::new(publish),
        }
    }

    /// The candidate as the peer may see it.
    pub(crate) fn conceal(&mut self, candidate: &Candidate) -> Candidate {
        let mut c = candidate.clone();
        if let (CandidateKind::Host, CandidateAddress::Ip(addr)) = (c.kind, &c.address) {
            let port = addr.port();
            let name = self.name_of(addr.ip());
            c.address = CandidateAddress::Mdns { name, port };
        }
        if let Some(related) = c.related {
            c.related = Some(match related {
                SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
            });
        }
        c
    }

    /// A withdrawn candidate as the peer knew it: its host address under the name it
    /// had, which is then forgotten (should the address come back, it gets a new name).
    pub(crate) fn withdraw(&mut self, candidate: &Candidate) -> Candidate {
        let concealed = self.conceal(candidate);
        if let (CandidateKind::Host, CandidateAddress::Ip(addr)) =
            (candidate.kind, &candidate.address)
        {
            let ip = addr.ip();
            self.names.retain(|(a, _)| *a != ip);
            (self.publish)(NameChange::Withdrawn(ip));
        }
        concealed
    }

    fn name_of(&mut self, ip: IpAddr) -> String {
        if let Some((_, name)) = self.names.iter().find(|(a, _)| *a == ip) {
            return name.clone();
        }
        let name = floe_ice::mdns::host_name(self.rng.gen());
        (self.publish)(NameChange::Published(&name, ip));
        self.names.push((ip, name.clone()));
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn host_addresses_become_one_name_each_and_related_addresses_go() {
        let published = Arc::new(Mutex::new(Vec::new()));
        let p = published.clone();
        let mut names = HostNames::new(1, move |change| {
            if let NameChange::Published(n, ip) = change {
                p.lock().unwrap().push((n.to_owned(), ip));
            }
        });
        let a: SocketAddr = "192.168.1.2:5000".parse().unwrap();
        let host = Candidate::new(CandidateKind::Host, a, a, None, 65535);
        let host2 = Candidate::new(
            CandidateKind::Host,
            "192.168.1.2:5001".parse().unwrap(),
            a,
            None,
            65535,
        );
        let srflx = Candidate::new(
            CandidateKind::ServerReflexive,
            "203.0.113.9:6000".parse().unwrap(),
            a,
            None,
            65535,
        );

        let h = names.conceal(&host);
        let CandidateAddress::Mdns { name, port: 5000 } = &h.address else {
            panic!("{h}")
        };
        assert_eq!(&name[36..], ".local");
        let h2 = names.conceal(&host2);
        assert_eq!(
            h2.address,
            CandidateAddress::Mdns {
                name: name.clone(),
                port: 5001
            }
        );
        assert_eq!(*published.lock().unwrap(), vec![(name.clone(), a.ip())]);

        let s = names.conceal(&srflx);
        assert_eq!(s.address, srflx.address);
        assert_eq!(s.related, Some("0.0.0.0:0".parse().unwrap()));
        let line = s.to_string();
        assert!(!line.contains("192.168"), "{line}");
        assert!(!h.to_string().contains("192.168"), "{h}");
        // The lines parse back as the peer will read them.
        assert_eq!(
            h.to_string().parse::<Candidate>().unwrap().address,
            h.address
        );
    }
}
