//! What a user may give as a server's address: `host` or `host:port` (`[v6]:port` for an IPv6 address), checked
//! before anything connects, so that a typo is said once, plainly, instead of retried forever.

/// The port a Palomar server listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 5555;

/// Why an address was refused, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a server address: {1}; give host or host:port, like chat.example.org:5555")]
pub struct BadAddress(pub String, pub &'static str);

/// The address as the client uses it (`host:port`, with the default port added when none was given), or why
/// it cannot be one.
pub fn parse_server(raw: &str) -> Result<String, BadAddress> {
    let bad = |why| Err(BadAddress(raw.to_owned(), why));
    let text = raw.trim();
    if text.is_empty() {
        return bad("it is empty");
    }
    if text.contains("://") {
        return bad("a Palomar server is not reached through a URL");
    }
    if text.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
        return bad("it holds a space, a '/' or an '@'");
    }
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let Some((v6, rest)) = bracketed.split_once(']') else { return bad("a '[' without its ']'") };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("the part in brackets is not an IPv6 address");
        }
        match rest {
            "" => (format!("[{v6}]"), None),
            _ => match rest.strip_prefix(':') {
                Some(port) => (format!("[{v6}]"), Some(port)),
                None => return bad("something other than :port after the ']'"),
            },
        }
    } else if text.parse::<std::net::Ipv6Addr>().is_ok() {
        (format!("[{text}]"), None)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (text.to_owned(), None),
        }
    };
    if host.is_empty() {
        return bad("the host is missing");
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(0) | Err(_) => return bad("the port is not a number from 1 to 65535"),
            Ok(port) => port,
        },
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_port_is_the_default_one() {
        assert_eq!(parse_server("127.0.0.1").as_deref(), Ok("127.0.0.1:5555"));
        assert_eq!(parse_server(" chat.example.org ").as_deref(), Ok("chat.example.org:5555"));
        assert_eq!(parse_server("localhost:6000").as_deref(), Ok("localhost:6000"));
        assert_eq!(parse_server("::1").as_deref(), Ok("[::1]:5555"));
        assert_eq!(parse_server("[::1]:7000").as_deref(), Ok("[::1]:7000"));
        assert_eq!(parse_server("[::1]").as_deref(), Ok("[::1]:5555"));
    }

    #[test]
    fn what_can_never_connect_is_refused_with_the_reason() {
        for raw in ["", "127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:http", "http://127.0.0.1:5601", ":5555", "a b:1"] {
            let refused = parse_server(raw);
            assert!(refused.is_err(), "{raw:?} was taken: {refused:?}");
        }
        let url = parse_server("http://127.0.0.1:5601").expect_err("a URL");
        assert!(url.to_string().contains("URL"), "{url}");
        assert!(parse_server("[::1]x").is_err());
        assert!(parse_server("[nope]:1").is_err());
    }
}
