//! Tests of the configuration: the printed defaults parse back, bad keys and values are refused, limits checked.

use super::*;

#[test]
fn the_printed_defaults_parse_back_to_the_defaults() {
    let parsed: Config = toml::from_str(&Config::default_toml()).expect("parses");
    assert!(Config::default_toml().contains("[tls]\n# A certificate chain"), "the unset TLS keys are shown");
    assert!(Config::default_toml().contains("[store]\n# Everything is kept"), "the unset database keys are shown");
    let uncommented = Config::default_toml()
        .replace("# cert = ", "cert = ")
        .replace("# key = ", "key = ")
        .replace("# database = ", "database = ")
        .replace("# password_file = ", "password_file = ");
    let with_all: Config = toml::from_str(&uncommented).expect("the commented keys are valid settings");
    assert!(with_all.tls.cert.is_some() && with_all.tls.key.is_some());
    assert!(with_all.store.database.is_some() && with_all.store.password_file.is_some());
    with_all.validate().expect("valid");
    assert_eq!(parsed, Config::default());
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    assert!(toml::from_str::<Config>("listn = \"127.0.0.1:1\"").is_err());
    let overflowing = "[limits]\nheartbeat_interval_ms = 9223372036854775807\nmissed_heartbeats = 2";
    let config: Config = toml::from_str(overflowing).expect("parses");
    assert!(config.validate().expect_err("past a week").to_string().contains("heartbeat_interval_ms"));
    let config: Config = toml::from_str("[login]\nmax_lockout_secs = 9223372036854775807").expect("parses");
    assert!(config.validate().expect_err("past a week").to_string().contains("max_lockout_secs"));
    let config: Config = toml::from_str("[limits]\nmissed_heartbeats = 4294967295").expect("parses");
    assert!(config.validate().expect_err("too many").to_string().contains("missed_heartbeats"));
    let config: Config = toml::from_str("[limits]\nmax_frame_bytes = 10").expect("parses");
    assert!(config.validate().is_err());
    assert!(toml::from_str::<Config>("[store]\ndurability = \"sometimes\"").is_err());
    let config: Config = toml::from_str("[limits]\nmessages_per_sec_per_user = -1").expect("parses");
    assert!(config.validate().is_err());
    let config: Config =
        toml::from_str("[limits]\nnew_connections_per_sec = 5\nnew_connection_burst = 0").expect("parses");
    assert!(config.validate().is_err());
}

#[test]
fn login_and_registration_limits_are_checked() {
    let bad = [
        "[limits]\nregistrations_per_sec_per_ip = -0.5",
        "[limits]\nregistrations_per_sec = 1\nregistration_burst = 0",
        "[limits]\npassword_queue = 0",
        "[login]\nmax_failures = 0",
        "[login]\nlockout_secs = 1000\nmax_lockout_secs = 900",
        "[login]\naddress_lockout_secs = 901",
        "[login]\nmax_delay_ms = 60000",
        "[login]\ndelay_ms = 100\nmax_delay_ms = 50",
    ];
    for text in bad {
        let config: Config = toml::from_str(text).expect("parses");
        assert!(config.validate().is_err(), "{text} is refused");
    }
    let config: Config =
        toml::from_str("[limits]\nregistrations_per_sec = 0\nregistrations_per_sec_per_ip = 0\n").expect("parses");
    assert!(config.validate().is_ok(), "0 switches registration limits off");
}

#[test]
fn a_rate_of_zero_switches_its_limit_off() {
    let config: Config =
        toml::from_str("[limits]\nmessages_per_sec_per_user = 0\nmessage_burst_per_user = 0").expect("parses");
    assert!(config.validate().is_ok());
}

#[test]
fn durability_is_full_unless_set_to_normal() {
    assert_eq!(Config::default().store.durability, Durability::Full);
    let config: Config = toml::from_str("[store]\ndurability = \"normal\"").expect("parses");
    assert_eq!(config.store.durability, Durability::Normal);
}

#[test]
fn a_database_is_named_by_a_url_without_its_password() {
    let config: Config = toml::from_str("[store]\ndatabase = \"postgres://palomar:hunter2@db/chat\"").expect("parses");
    let refused = config.validate().expect_err("a password in the URL").to_string();
    assert!(refused.contains("PGPASSWORD") && !refused.contains("hunter2"), "{refused}");
    let config: Config = toml::from_str("[store]\ndatabase = \"/var/lib/palomar\"").expect("parses");
    assert!(config.validate().expect_err("not a URL").to_string().contains("store.database"));
    let config: Config = toml::from_str("[store]\npassword_file = \"/etc/pw\"").expect("parses");
    assert!(config.validate().expect_err("alone").to_string().contains("store.database"));

    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "s3cret\n").expect("writes");
    let mut config = Config::default();
    config.store.database = Some("postgres://palomar@db.example/chat".into());
    config.store.password_file = Some(password_file);
    match config.store_location().expect("a location") {
        Location::Postgres(settings) => assert_eq!(settings.to_string(), "postgres://palomar@db.example/chat"),
        Location::Sqlite(path) => panic!("expected the database, got {}", path.display()),
    }
    assert!(matches!(Config::default().store_location(), Ok(Location::Sqlite(path)) if path.ends_with("store.sqlite")));
}

#[test]
fn allowed_origins_are_origins_and_nothing_more() {
    let mut config = Config::default();
    config.web.allowed_origins =
        ["https://chat.example.org", "http://localhost:8080", "https://[::1]:5580", "https://10.0.0.2"]
            .map(String::from)
            .to_vec();
    config.validate().expect("origins");
    for bad in [
        "chat.example.org",
        "https://chat.example.org/",
        "https://Chat.example.org",
        "https://chat.example.org:0",
        "https://chat.example.org:99999",
        "https://[::1",
        "https://",
        "wss://chat.example.org",
    ] {
        config.web.allowed_origins = vec![bad.into()];
        assert!(config.validate().is_err(), "{bad} was taken for an origin");
    }
}
