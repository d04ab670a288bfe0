//! The frame decoder and tag check on arbitrary bytes, as a server reads them from a client: never a panic,
//! never a frame over the limit, and every verified payload decodes or is refused cleanly.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use palomar_proto::{ClientMsg, DirectionKeys, FrameDecoder, FrameError, Opener, Sealer, decode};

fuzz_target!(|data: &[u8]| {
    let keys = DirectionKeys::derive(b"fuzzing");
    let decoder = FrameDecoder { max_body: 4096 };
    let mut opener = Opener::new(&keys.client_to_server);
    let mut buf = BytesMut::from(data);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(body)) => {
                assert!(body.len() <= 4096);
                if let Ok(payload) = opener.open(&body) {
                    let _ = decode::<ClientMsg>(payload);
                }
            }
            Ok(None) | Err(FrameError::TooLarge { .. }) => break,
            Err(other) => panic!("the decoder only refuses sizes, got {other:?}"),
        }
    }
    // What a correct peer seals, the other side opens, whatever the payload.
    let mut sealer = Sealer::new(&keys.server_to_client);
    let mut opener = Opener::new(&keys.server_to_client);
    let mut wire = BytesMut::from(&sealer.seal(data)[..]);
    let body = FrameDecoder { max_body: usize::MAX }.decode(&mut wire).ok().flatten().expect("a whole frame");
    assert_eq!(opener.open(&body), Ok(data));
});
