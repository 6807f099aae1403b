//! FINGERPRINT computation (RFC 8489 §14.7).

/// The value XOR-ed into the CRC-32 so that FINGERPRINT differs from CRCs other protocols
/// put in the same position ("STUN" in ASCII).
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// CRC-32 (ISO HDLC, as in gzip) of `bytes`, XOR 0x5354554e. `bytes` is the message up
/// to, not including, the FINGERPRINT attribute, with the header length already covering
/// FINGERPRINT.
pub fn compute(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes) ^ FINGERPRINT_XOR
}

/// [`compute`] over a message held in two pieces: the header and the attributes before
/// FINGERPRINT.
pub(crate) fn compute_parts(header: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    h.update(body);
    h.finalize() ^ FINGERPRINT_XOR
}
