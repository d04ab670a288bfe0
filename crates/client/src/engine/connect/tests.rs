//! Tests of how a refused login ends a connection (another node asked, retried, waited out, fatal) and of the
//! changed-certificate text.

use super::*;

#[test]
fn a_busy_or_full_server_is_retried_and_a_refused_password_is_not() {
    for code in [ErrorCode::ServerBusy, ErrorCode::ServerFull] {
        assert!(matches!(refused_login(code, "later".into()), ConnectionEnd::NodeBusy(_, None)), "{code:?}");
    }
    let store = refused_login(ErrorCode::StoreUnavailable, "later".into());
    assert!(matches!(store, ConnectionEnd::RefusedForNow(_, None)), "every node shares the store");
    assert!(matches!(refused_login(ErrorCode::HandshakeTimeout, "slow".into()), ConnectionEnd::Reconnect(_)));
    for code in [ErrorCode::InvalidName, ErrorCode::UnsupportedVersion] {
        assert!(matches!(refused_login(code, "no".into()), ConnectionEnd::Fatal(_)), "{code:?}");
    }
    assert!(matches!(refused_login(ErrorCode::AuthFailed, "no".into()), ConnectionEnd::PasswordRefused(_)));
}

#[test]
fn a_server_that_does_not_speak_this_version_is_asked_in_the_one_before_and_only_that() {
    assert!(speaks_older(ErrorCode::UnsupportedVersion, PROTOCOL_VERSION));
    assert!(!speaks_older(ErrorCode::UnsupportedVersion, OLDER_VERSION), "then the refusal is final");
    assert!(!speaks_older(ErrorCode::AuthFailed, PROTOCOL_VERSION));
    assert_eq!(OLDER_VERSION + 1, PROTOCOL_VERSION, "the version before this client's");
}

#[test]
fn the_remedy_for_a_changed_certificate_names_the_home_in_use() {
    let (pinned, presented) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
    let elsewhere = std::path::Path::new("/nonexistent/palomar test");
    let message = changed_certificate("127.0.0.1:5555", "127.0.0.1:5555", pinned, presented, elsewhere);
    assert!(message.contains(&format!("--fingerprint {presented} --home '/nonexistent/palomar test'")), "{message}");
    if let Ok(default) = crate::home::client_home(None) {
        let message = changed_certificate("127.0.0.1:5555", "127.0.0.1:5555", pinned, presented, &default);
        assert!(!message.contains("--home"), "{message}");
    }
    assert_eq!(shell_word("it's"), r"'it'\''s'");
}

#[test]
fn a_changed_certificate_message_reads_back() {
    let (pinned, presented) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
    let home = std::path::Path::new("/nonexistent/palomar test");
    let message = changed_certificate("127.0.0.1:5555", "127.0.0.1:5555", pinned, presented, home);
    let read = ChangedCertificate::from_message(&message).expect("reads back");
    assert_eq!((read.pinned, read.presented), (pinned, presented));
    assert_eq!(
        read.remedy,
        format!("palomar trust --server 127.0.0.1:5555 --fingerprint {presented} --home '/nonexistent/palomar test'")
    );
    assert_eq!(ChangedCertificate::from_message("login refused: wrong password"), None);
}

#[test]
fn a_lockout_is_waited_out_for_the_time_the_server_says() {
    let locked = refused_login(ErrorCode::RateLimited, "too many failed logins; try again in 29 s".into());
    let wait = |seconds| Some(Duration::from_secs(seconds));
    assert!(matches!(locked, ConnectionEnd::RefusedForNow(_, w) if w == wait(29)), "retried, not fatal");
    let busy = refused_login(ErrorCode::ServerBusy, "the server is busy; try again in 3 s".into());
    assert!(matches!(busy, ConnectionEnd::NodeBusy(_, w) if w == wait(3)));
    let wordless = refused_login(ErrorCode::RateLimited, "slow down".into());
    assert!(matches!(wordless, ConnectionEnd::RefusedForNow(_, None)), "retried with backoff without a time");
    assert_eq!(retry_hint("try again in a while"), None);
}

#[test]
fn a_changed_certificate_on_another_node_names_it_and_the_remedy_names_the_chat() {
    let (pinned, presented) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
    let home = std::path::Path::new("/nonexistent/palomar");
    let message = changed_certificate("10.0.0.2:5555", "10.0.0.1:5555", pinned, presented, home);
    assert!(message.starts_with("the certificate of 10.0.0.2:5555 (a server of 10.0.0.1:5555"), "{message}");
    let read = ChangedCertificate::from_message(&message).expect("reads back");
    assert_eq!((read.pinned, read.presented), (pinned, presented));
    assert!(read.remedy.starts_with("palomar trust --server 10.0.0.1:5555 --fingerprint"), "{}", read.remedy);
}
