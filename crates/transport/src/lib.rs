//! # palomar-transport: TLS and HMAC-tagged frames over TCP
//!
//! The one place that turns a socket into a stream of verified payloads, shared by the server and every
//! client.
//!
//! # Layout
//! - [`tls`]: server certificates (generated on first start, reloadable), client trust (fingerprint pinning
//!   or a CA), and the per-connection frame keys from the TLS exporter.
//! - [`framed`]: reading and writing tagged frames of typed messages on a TLS stream.

pub mod framed;
pub mod tls;

pub use framed::{FramedReader, FramedWriter, ReadError};
pub use tls::{
    CertError, Fingerprint, SeenCertificate, ServerIdentity, TrustDecision, client_config, frame_keys, load_ca_file,
    server_config,
};
