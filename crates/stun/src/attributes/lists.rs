//! List attributes: UNKNOWN-ATTRIBUTES (RFC 8489 §14.13) and PASSWORD-ALGORITHMS
//! (§14.11), plus the single PASSWORD-ALGORITHM (§14.12) whose entry format they share.

use core::fmt;

use super::{AttrType, Attribute, RawAttribute};
use crate::{Error, TransactionId};

/// UNKNOWN-ATTRIBUTES (RFC 8489 §14.13): the comprehension-required attribute types a
/// server did not understand, sent with 420. Decoded values borrow the wire bytes; to
/// send, build it from a slice with [`UnknownAttributes::from_types`].
#[derive(Clone, Copy)]
pub struct UnknownAttributes<'a>(Repr<'a, AttrType>);

#[derive(Clone, Copy)]
enum Repr<'a, T> {
    Wire(&'a [u8]),
    List(&'a [T]),
}

impl<'a> UnknownAttributes<'a> {
    /// An attribute listing `types`.
    pub fn from_types(types: &'a [AttrType]) -> UnknownAttributes<'a> {
        UnknownAttributes(Repr::List(types))
    }

    /// The listed types, in order.
    pub fn iter(&self) -> impl Iterator<Item = AttrType> + 'a {
        let (wire, list): (&'a [u8], &'a [AttrType]) = match self.0 {
            Repr::Wire(w) => (w, &[]),
            Repr::List(l) => (&[], l),
        };
        wire.chunks_exact(2)
            .filter_map(|c| c.first_chunk().copied())
            .map(|c| AttrType(u16::from_be_bytes(c)))
            .chain(list.iter().copied())
    }

    /// Number of listed types.
    pub fn len(&self) -> usize {
        match self.0 {
            Repr::Wire(w) => w.len() / 2,
            Repr::List(l) => l.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for UnknownAttributes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> Attribute<'a> for UnknownAttributes<'a> {
    const TYPE: AttrType = AttrType::UNKNOWN_ATTRIBUTES;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        if raw.value.len() % 2 != 0 {
            return Err(raw.bad_length("UNKNOWN-ATTRIBUTES", "a multiple of 2"));
        }
        Ok(UnknownAttributes(Repr::Wire(raw.value)))
    }

    fn value_len(&self) -> usize {
        self.len() * 2
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        for (chunk, t) in out.chunks_exact_mut(2).zip(self.iter()) {
            chunk.copy_from_slice(&t.0.to_be_bytes());
        }
    }
}

/// PASSWORD-ALGORITHM (RFC 8489 §14.12): the algorithm the client chose, with its
/// parameters (none for MD5 and SHA-256). Also one entry of [`PasswordAlgorithms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordAlgorithm<'a> {
    /// Algorithm number: 0x0001 MD5, 0x0002 SHA-256 (RFC 8489 §18.5).
    pub algorithm: u16,
    /// Algorithm parameters.
    pub params: &'a [u8],
}

impl PasswordAlgorithm<'_> {
    /// MD5 (0x0001), no parameters.
    pub const MD5: PasswordAlgorithm<'static> = PasswordAlgorithm {
        algorithm: 1,
        params: &[],
    };
    /// SHA-256 (0x0002), no parameters.
    pub const SHA256: PasswordAlgorithm<'static> = PasswordAlgorithm {
        algorithm: 2,
        params: &[],
    };

    fn entry_len(&self) -> usize {
        4 + self.params.len().next_multiple_of(4)
    }

    /// Writes algorithm, parameters length, parameters, then zeros to the end of `out`
    /// (the padding of a PASSWORD-ALGORITHMS entry; none for PASSWORD-ALGORITHM).
    fn write_entry(&self, out: &mut [u8]) {
        let [a0, a1] = self.algorithm.to_be_bytes();
        let [l0, l1] = (self.params.len() as u16).to_be_bytes();
        let bytes = [a0, a1, l0, l1]
            .into_iter()
            .chain(self.params.iter().copied())
            .chain(core::iter::repeat(0));
        for (o, b) in out.iter_mut().zip(bytes) {
            *o = b;
        }
    }
}

impl<'a> Attribute<'a> for PasswordAlgorithm<'a> {
    const TYPE: AttrType = AttrType::PASSWORD_ALGORITHM;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let (&[a0, a1, l0, l1], rest) = raw
            .value
            .split_first_chunk()
            .ok_or_else(|| raw.bad_length("PASSWORD-ALGORITHM", "at least 4"))?;
        let params = rest
            .get(..usize::from(u16::from_be_bytes([l0, l1])))
            .ok_or_else(|| raw.invalid("parameters length runs past the attribute"))?;
        Ok(PasswordAlgorithm {
            algorithm: u16::from_be_bytes([a0, a1]),
            params,
        })
    }

    fn value_len(&self) -> usize {
        4 + self.params.len()
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        self.write_entry(out);
    }
}

/// PASSWORD-ALGORITHMS (RFC 8489 §14.11): the algorithms a server supports, in order of
/// preference. Each entry's parameters are padded to 4 bytes.
#[derive(Clone, Copy)]
pub struct PasswordAlgorithms<'a>(Repr<'a, PasswordAlgorithm<'a>>);

impl<'a> PasswordAlgorithms<'a> {
    /// An attribute listing `algorithms`.
    pub fn from_list(algorithms: &'a [PasswordAlgorithm<'a>]) -> PasswordAlgorithms<'a> {
        PasswordAlgorithms(Repr::List(algorithms))
    }

    /// The listed algorithms, in order. A decoded value was validated, so every entry is
    /// whole.
    pub fn iter(&self) -> impl Iterator<Item = PasswordAlgorithm<'a>> + 'a {
        let (mut wire, list): (&'a [u8], &'a [PasswordAlgorithm<'a>]) = match self.0 {
            Repr::Wire(w) => (w, &[]),
            Repr::List(l) => (&[], l),
        };
        core::iter::from_fn(move || {
            let (entry, rest) = split_entry(wire)?;
            wire = rest;
            Some(entry)
        })
        .chain(list.iter().copied())
    }
}

/// Splits the first PASSWORD-ALGORITHMS entry off `wire`.
fn split_entry(wire: &[u8]) -> Option<(PasswordAlgorithm<'_>, &[u8])> {
    let (&[a0, a1, l0, l1], after_head) = wire.split_first_chunk()?;
    let params_len = usize::from(u16::from_be_bytes([l0, l1]));
    let params = after_head.get(..params_len)?;
    let rest = after_head
        .get(params_len.next_multiple_of(4)..)
        .unwrap_or(&[]);
    Some((
        PasswordAlgorithm {
            algorithm: u16::from_be_bytes([a0, a1]),
            params,
        },
        rest,
    ))
}

impl fmt::Debug for PasswordAlgorithms<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> Attribute<'a> for PasswordAlgorithms<'a> {
    const TYPE: AttrType = AttrType::PASSWORD_ALGORITHMS;

    fn decode(raw: &RawAttribute<'a>, _: &TransactionId) -> Result<Self, Error> {
        let mut rest = raw.value;
        while !rest.is_empty() {
            let (&[_, _, l0, l1], after_head) = rest
                .split_first_chunk()
                .ok_or_else(|| raw.invalid("truncated algorithm entry"))?;
            let padded_params_len = usize::from(u16::from_be_bytes([l0, l1])).next_multiple_of(4);
            rest = after_head
                .get(padded_params_len..)
                .ok_or_else(|| raw.invalid("algorithm parameters run past the attribute"))?;
        }
        Ok(PasswordAlgorithms(Repr::Wire(raw.value)))
    }

    fn value_len(&self) -> usize {
        match self.0 {
            Repr::Wire(w) => w.len(),
            Repr::List(l) => l.iter().map(PasswordAlgorithm::entry_len).sum(),
        }
    }

    fn encode(&self, _: &TransactionId, out: &mut [u8]) {
        match self.0 {
            Repr::Wire(w) => out.copy_from_slice(w),
            Repr::List(l) => {
                // `out` is the sum of the entry lengths, so every entry fits.
                let mut rest = out;
                for a in l {
                    let Some((entry, tail)) =
                        core::mem::take(&mut rest).split_at_mut_checked(a.entry_len())
                    else {
                        return;
                    };
                    a.write_entry(entry);
                    rest = tail;
                }
            }
        }
    }
}

/// Equal when they list the same entries, however each was made.
impl PartialEq for UnknownAttributes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for UnknownAttributes<'_> {}

/// Equal when they list the same entries, however each was made.
impl PartialEq for PasswordAlgorithms<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for PasswordAlgorithms<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_unknown_attributes_length_is_rejected() {
        let raw = RawAttribute {
            typ: AttrType::UNKNOWN_ATTRIBUTES,
            value: &[0, 1, 2],
            offset: 20,
        };
        assert!(UnknownAttributes::decode(&raw, &TransactionId([0; 12])).is_err());
    }

    #[test]
    fn password_algorithms_entries_are_padded() {
        let list = [
            PasswordAlgorithm {
                algorithm: 7,
                params: &[1, 2, 3],
            },
            PasswordAlgorithm::SHA256,
        ];
        let attr = PasswordAlgorithms::from_list(&list);
        let tid = TransactionId([0; 12]);
        let mut buf = vec![0u8; attr.value_len()];
        attr.encode(&tid, &mut buf);
        assert_eq!(buf, [0, 7, 0, 3, 1, 2, 3, 0, 0, 2, 0, 0]);
        let raw = RawAttribute {
            typ: AttrType::PASSWORD_ALGORITHMS,
            value: &buf,
            offset: 0,
        };
        let decoded = PasswordAlgorithms::decode(&raw, &tid).unwrap();
        assert_eq!(decoded.iter().collect::<Vec<_>>(), list);
    }

    #[test]
    fn password_algorithms_with_overlong_params_is_rejected() {
        let raw = RawAttribute {
            typ: AttrType::PASSWORD_ALGORITHMS,
            value: &[0, 1, 0, 8, 0, 0],
            offset: 0,
        };
        assert!(PasswordAlgorithms::decode(&raw, &TransactionId([0; 12])).is_err());
    }
}
