//! The server's configuration file: arbitrary text read as `palomar serve --config` reads it. Never a panic; a
//! configuration that parses writes back to TOML that parses and writes back the same, with the same verdict;
//! and for one that passes validation, the deadlines the server computes from it (now + a timeout, the
//! dead-peer time, a lockout) do not overflow.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use palomar_server::Config;

fuzz_target!(|text: &str| {
    let Ok(config) = toml::from_str::<Config>(text) else { return };
    let valid = config.validate().is_ok();
    let written = toml::to_string(&config).expect("a parsed configuration writes back");
    let again: Config = toml::from_str(&written).expect("what was written parses");
    // Compared as written, not with `==`: a rate may be NaN, which TOML can say and which equals nothing.
    assert_eq!(toml::to_string(&again).expect("writes back"), written);
    assert_eq!(again.validate().is_ok(), valid);
    if valid {
        let now = Instant::now();
        let _ = now + config.dead_after();
        let _ = now + Duration::from_millis(config.limits.handshake_timeout_ms);
        let _ = now + Duration::from_millis(config.limits.presence_after_ms);
        let _ = now + Duration::from_secs(config.login.max_lockout_secs.saturating_mul(2));
        let _ = now + Duration::from_secs(config.history.retention_interval_secs);
    }
});
