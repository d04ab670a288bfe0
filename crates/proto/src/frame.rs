//! Framing and integrity: every frame is `u32 length (big-endian) | payload | HMAC-SHA256 tag`.
//!
//! The tag covers an implicit 64-bit frame counter and the payload, under a key of its own per connection
//! and direction, so a changed, replayed, reordered or reflected frame fails to verify. Both sides count
//! every frame they send or receive, valid or not, so one bad frame does not desynchronise the rest.

use bytes::{Buf, BytesMut};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of the HMAC-SHA256 tag that ends every frame.
pub const TAG_LEN: usize = 32;
/// Length of the length prefix.
pub const LEN_PREFIX: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes is over the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("frame of {size} bytes is too short to hold a tag")]
    TooShort { size: usize },
    #[error("frame tag does not verify")]
    BadTag,
}

/// The two HMAC keys of one connection, one per direction.
#[derive(Clone)]
pub struct DirectionKeys {
    pub client_to_server: [u8; 32],
    pub server_to_client: [u8; 32],
}

impl DirectionKeys {
    /// Derives both keys from a secret that only the two ends of the connection share (the TLS exporter).
    pub fn derive(shared_secret: &[u8]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(b"palomar frame keys v1"), shared_secret);
        let mut client_to_server = [0u8; 32];
        let mut server_to_client = [0u8; 32];
        // Expanding 32 bytes from SHA-256 HKDF is always within its output limit.
        let _ = hkdf.expand(b"client to server", &mut client_to_server);
        let _ = hkdf.expand(b"server to client", &mut server_to_client);
        DirectionKeys { client_to_server, server_to_client }
    }
}

impl std::fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectionKeys(..)")
    }
}

fn keyed(key: &[u8; 32]) -> HmacSha256 {
    // HMAC accepts keys of any length; 32 bytes can never be refused.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Tags outgoing frames.
pub struct Sealer {
    mac: HmacSha256,
    counter: u64,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer { mac: keyed(key), counter: 0 }
    }

    /// Appends one whole frame (prefix, payload, tag) for `payload` to `out`.
    pub fn seal_into(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let body_len = payload.len() + TAG_LEN;
        out.reserve(LEN_PREFIX + body_len);
        out.extend_from_slice(&(body_len as u32).to_be_bytes());
        out.extend_from_slice(payload);
        let mut mac = self.mac.clone();
        mac.update(&self.counter.to_be_bytes());
        mac.update(payload);
        out.extend_from_slice(&mac.finalize().into_bytes());
        self.counter += 1;
    }

    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.seal_into(payload, &mut out);
        out
    }
}

/// Verifies incoming frames.
pub struct Opener {
    mac: HmacSha256,
    counter: u64,
}

impl Opener {
    pub fn new(key: &[u8; 32]) -> Self {
        Opener { mac: keyed(key), counter: 0 }
    }

    /// Verifies a frame body (payload and tag, without the prefix) and returns its payload.
    /// Every call consumes one counter value, so the frame after a bad one still verifies.
    pub fn open<'a>(&mut self, body: &'a [u8]) -> Result<&'a [u8], FrameError> {
        let counter = self.counter;
        self.counter += 1;
        if body.len() < TAG_LEN {
            return Err(FrameError::TooShort { size: body.len() });
        }
        let (payload, tag) = body.split_at(body.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(&counter.to_be_bytes());
        mac.update(payload);
        mac.verify_slice(tag).map_err(|_| FrameError::BadTag)?;
        Ok(payload)
    }
}

/// Splits a byte stream into frame bodies, refusing any frame over `max_body` before buffering it.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    pub max_body: usize,
}

impl FrameDecoder {
    /// Returns the next whole frame body from `buf`, or `None` when more bytes are needed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if buf.len() < LEN_PREFIX {
            return Ok(None);
        }
        let size = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if size > self.max_body {
            return Err(FrameError::TooLarge { size, max: self.max_body });
        }
        if buf.len() < LEN_PREFIX + size {
            buf.reserve(LEN_PREFIX + size - buf.len());
            return Ok(None);
        }
        buf.advance(LEN_PREFIX);
        Ok(Some(buf.split_to(size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair() -> (Sealer, Opener) {
        let keys = DirectionKeys::derive(b"shared secret");
        (Sealer::new(&keys.client_to_server), Opener::new(&keys.client_to_server))
    }

    fn split(frames: &[u8]) -> Vec<BytesMut> {
        let decoder = FrameDecoder { max_body: 1024 };
        let mut buf = BytesMut::from(frames);
        let mut out = Vec::new();
        while let Some(body) = decoder.decode(&mut buf).expect("within limit") {
            out.push(body);
        }
        out
    }

    #[test]
    fn frames_round_trip_in_order() {
        let (mut sealer, mut opener) = pair();
        let mut wire = sealer.seal(b"one");
        wire.extend(sealer.seal(b"two"));
        let bodies = split(&wire);
        assert_eq!(opener.open(&bodies[0]), Ok(&b"one"[..]));
        assert_eq!(opener.open(&bodies[1]), Ok(&b"two"[..]));
    }

    #[test]
    fn a_flipped_bit_fails_and_the_next_frame_still_verifies() {
        let (mut sealer, mut opener) = pair();
        let mut first = sealer.seal(b"hello");
        let last = first.len() - 1;
        first[last] ^= 1;
        let second = sealer.seal(b"world");
        assert_eq!(opener.open(&split(&first)[0]), Err(FrameError::BadTag));
        assert_eq!(opener.open(&split(&second)[0]), Ok(&b"world"[..]));
    }

    #[test]
    fn replayed_and_reordered_frames_fail() {
        let (mut sealer, mut opener) = pair();
        let first = sealer.seal(b"a");
        let second = sealer.seal(b"b");
        assert_eq!(opener.open(&split(&second)[0]), Err(FrameError::BadTag));
        let (_, mut opener) = pair();
        assert!(opener.open(&split(&first)[0]).is_ok());
        assert_eq!(opener.open(&split(&first)[0]), Err(FrameError::BadTag));
    }

    #[test]
    fn the_other_direction_key_does_not_verify() {
        let keys = DirectionKeys::derive(b"secret");
        let mut sealer = Sealer::new(&keys.server_to_client);
        let mut opener = Opener::new(&keys.client_to_server);
        assert_eq!(opener.open(&split(&sealer.seal(b"x"))[0]), Err(FrameError::BadTag));
    }

    #[test]
    fn oversized_frames_are_refused_from_the_prefix_alone() {
        let decoder = FrameDecoder { max_body: 100 };
        let mut buf = BytesMut::from(&[0u8, 0, 1, 0][..]);
        assert_eq!(decoder.decode(&mut buf), Err(FrameError::TooLarge { size: 256, max: 100 }));
    }

    #[test]
    fn truncated_frames_wait_for_more_bytes() {
        let (mut sealer, _) = pair();
        let wire = sealer.seal(b"payload");
        let decoder = FrameDecoder { max_body: 1024 };
        let mut buf = BytesMut::from(&wire[..wire.len() - 1]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&wire[wire.len() - 1..]);
        assert!(decoder.decode(&mut buf).expect("fits").is_some());
    }

    proptest! {
        #[test]
        fn arbitrary_streams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let decoder = FrameDecoder { max_body: 64 };
            let mut buf = BytesMut::from(&bytes[..]);
            let (_, mut opener) = pair();
            while let Ok(Some(body)) = decoder.decode(&mut buf) {
                let _ = opener.open(&body);
            }
        }

        #[test]
        fn any_payload_round_trips(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..8)) {
            let (mut sealer, mut opener) = pair();
            let mut wire = Vec::new();
            for p in &payloads {
                sealer.seal_into(p, &mut wire);
            }
            let bodies = split(&wire);
            for (p, body) in payloads.iter().zip(bodies.iter()) {
                prop_assert_eq!(opener.open(body).ok(), Some(&p[..]));
            }
        }
    }
}
