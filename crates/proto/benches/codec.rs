//! Micro-benchmarks of the wire protocol's pure code: postcard encoding and decoding of the frames on the hot
//! path (a `Send`, a `Messages` batch), and HMAC sealing and opening of frames. `cargo bench -p palomar-proto`.

use divan::Bencher;
use divan::counter::BytesCount;
use palomar_proto::{
    ClientMsg, Conversation, DirectionKeys, FrameDecoder, Message, MessageId, Nick, Opener, RoomName, Sealer,
    ServerMsg, decode, encode,
};

fn main() {
    divan::main();
}

/// A 100-byte text, the size the fan-out benchmarks use.
fn text() -> String {
    "x".repeat(100)
}

fn room() -> Conversation {
    Conversation::Room(RoomName::parse("bench-0").expect("valid room"))
}

fn send() -> ClientMsg {
    ClientMsg::Send { id: MessageId([7; 16]), to: room(), text: text() }
}

/// A live batch of `count` messages, as the server writes them to one member.
fn messages(count: u64) -> ServerMsg {
    let from = Nick::parse("b1").expect("valid nick");
    ServerMsg::Messages(
        (1..=count)
            .map(|seq| Message {
                conversation: room(),
                seq,
                id: MessageId([1; 16]),
                from: from.clone(),
                ts: 1_700_000_000_000 + seq,
                text: text(),
                kind: palomar_proto::MessageKind::Text,
                revision: palomar_proto::Revision::Original,
            })
            .collect(),
    )
}

#[divan::bench]
fn encode_send(bencher: Bencher) {
    let msg = send();
    bencher.bench_local(|| encode(divan::black_box(&msg)));
}

#[divan::bench]
fn decode_send(bencher: Bencher) {
    let bytes = encode(&send());
    bencher.counter(BytesCount::of_slice(&bytes)).bench_local(|| decode::<ClientMsg>(divan::black_box(&bytes)));
}

#[divan::bench(args = [1, 32, 256])]
fn encode_messages(bencher: Bencher, count: u64) {
    let msg = messages(count);
    bencher.bench_local(|| encode(divan::black_box(&msg)));
}

#[divan::bench(args = [1, 32, 256])]
fn decode_messages(bencher: Bencher, count: u64) {
    let bytes = encode(&messages(count));
    bencher.counter(BytesCount::of_slice(&bytes)).bench_local(|| decode::<ServerMsg>(divan::black_box(&bytes)));
}

fn keys() -> DirectionKeys {
    DirectionKeys::derive(b"a secret only the two ends share")
}

#[divan::bench(args = [100, 4096])]
fn seal(bencher: Bencher, payload_len: usize) {
    let payload = vec![0x5a; payload_len];
    let mut sealer = Sealer::new(&keys().client_to_server);
    let mut frame = Vec::with_capacity(payload_len + 64);
    bencher.counter(BytesCount::new(payload_len)).bench_local(|| {
        frame.clear();
        sealer.seal_into(divan::black_box(&payload), &mut frame);
    });
}

/// Opens the same frame body again and again. Only the first open verifies (the counter moves on), but every
/// open computes the whole tag and compares it in constant time, so each iteration costs what a real one does.
#[divan::bench(args = [100, 4096])]
fn open(bencher: Bencher, payload_len: usize) {
    let keys = keys();
    let mut wire = bytes::BytesMut::from(&Sealer::new(&keys.client_to_server).seal(&vec![0x5a; payload_len])[..]);
    let body = FrameDecoder { max_body: payload_len + 64 }.decode(&mut wire).expect("within the limit");
    let body = body.expect("a whole frame");
    let mut opener = Opener::new(&keys.client_to_server);
    bencher.counter(BytesCount::new(payload_len)).bench_local(|| opener.open(divan::black_box(&body)).is_ok());
}
