//! Datagrams read in one go from one socket, handed to the worker's core as one event:
//! one allocation and one queue operation per batch instead of per datagram. A reader
//! hands a batch over once it holds [`MAX_COUNT`] datagrams or [`MAX_BYTES`] (so at
//! most that plus one datagram), and the worker's bounded queue bounds memory as before.

use std::net::SocketAddr;

/// Bytes after which a batch is handed over.
pub(crate) const MAX_BYTES: usize = 64 * 1024;
/// Datagrams after which a batch is handed over.
pub(crate) const MAX_COUNT: usize = 64;

/// Datagrams back to back, with each one's sender and end offset.
#[derive(Debug, Default)]
pub(crate) struct Datagrams {
    bytes: Vec<u8>,
    ends: Vec<(SocketAddr, usize)>,
}

impl Datagrams {
    /// Appends one datagram.
    pub(crate) fn push(&mut self, from: SocketAddr, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        self.ends.push((from, self.bytes.len()));
    }

    /// Whether the batch should be handed over now.
    pub(crate) fn is_full(&self) -> bool {
        self.ends.len() >= MAX_COUNT || self.bytes.len() >= MAX_BYTES
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Each datagram with its sender, in the order read.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        let mut start = 0;
        self.ends.iter().filter_map(move |&(from, end)| {
            let d = self.bytes.get(start..end)?;
            start = end;
            Some((from, d))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_come_back_as_pushed_and_batches_are_bounded() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "[::1]:2".parse().unwrap();
        let mut d = Datagrams::default();
        assert!(d.is_empty() && !d.is_full());
        d.push(a, b"one");
        d.push(b, b"");
        d.push(a, b"three");
        let got: Vec<(SocketAddr, &[u8])> = d.iter().collect();
        assert_eq!(
            got,
            vec![(a, &b"one"[..]), (b, &b""[..]), (a, &b"three"[..])]
        );
        assert_eq!(d.len(), 3);
        assert!(!d.is_full());
        d.push(a, &vec![0; MAX_BYTES]);
        assert!(d.is_full(), "by bytes");
        let mut full = Datagrams::default();
        for _ in 0..MAX_COUNT {
            assert!(!full.is_full());
            full.push(a, b"x");
        }
        assert!(full.is_full(), "by count");
    }
}
