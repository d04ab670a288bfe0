//! What a user may give as a chat's servers: one address, or the addresses of several nodes of one chat
//! separated by commas, each `host` or `host:port` (`[v6]:port` for an IPv6 address). The whole list is checked
//! before anything connects, so that a typo is said once, plainly, naming the entry, instead of retried forever.

use std::fmt;

/// The port a Palomar server listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 5555;

/// Why an address or a list of addresses was refused, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAddress {
    #[error("{entry:?} is not a server address: {why}; give host or host:port, like chat.example.org:5555")]
    Entry { entry: String, why: &'static str },
    #[error(
        "{list:?} has an empty entry (number {position}); give the servers' addresses separated by commas, like \
         a.example.org:5555,b.example.org:5555"
    )]
    EmptyEntry { list: String, position: usize },
    #[error("{list:?} names {address} twice; give each server of the chat once")]
    Duplicate { list: String, address: String },
}

/// The servers of one chat, in the order they are tried: at least one, each `host:port` (the default port
/// added), none twice. Several are nodes sharing one store and one TLS identity, so any of them serves the
/// same account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddresses {
    /// Never empty: [`parse_server`] is the only way to make one.
    addresses: Vec<String>,
}

impl ServerAddresses {
    /// The chat's name: its first address. The pinned certificate and the account's state (outbox, cursors)
    /// are kept under it, whichever node is in use, so moving between nodes, or adding nodes after the first
    /// one, keeps them; putting another address first makes it another chat to the client.
    pub fn name(&self) -> &str {
        &self.addresses[0]
    }

    /// Every address, the name first.
    pub fn all(&self) -> &[String] {
        &self.addresses
    }
}

/// The list as it can be given again: the addresses separated by commas.
impl fmt::Display for ServerAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addresses.join(","))
    }
}

/// The servers named by `raw`, one address or several separated by commas, or why it cannot be that. Each
/// address is as the client uses it (`host:port`, the default port added when none was given). A duplicate
/// is refused rather than dropped: naming a node twice is most likely a typo for another node, and quietly
/// collapsing it would leave the user believing in a failover that is not there.
pub fn parse_server(raw: &str) -> Result<ServerAddresses, BadAddress> {
    if !raw.contains(',') {
        return Ok(ServerAddresses { addresses: vec![parse_address(raw)?] });
    }
    let mut addresses: Vec<String> = Vec::new();
    for (index, entry) in raw.split(',').enumerate() {
        if entry.trim().is_empty() {
            return Err(BadAddress::EmptyEntry { list: raw.to_owned(), position: index + 1 });
        }
        let address = parse_address(entry)?;
        // Host names are case-insensitive: `A.example:1` and `a.example:1` are one node.
        if addresses.iter().any(|known| known.eq_ignore_ascii_case(&address)) {
            return Err(BadAddress::Duplicate { list: raw.to_owned(), address });
        }
        addresses.push(address);
    }
    Ok(ServerAddresses { addresses })
}

/// One address as the client uses it, or why it cannot be one.
fn parse_address(raw: &str) -> Result<String, BadAddress> {
    let bad = |why| Err(BadAddress::Entry { entry: raw.trim().to_owned(), why });
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

    fn one(raw: &str) -> Result<String, BadAddress> {
        let addresses = parse_server(raw)?;
        assert_eq!(addresses.all().len(), 1, "{raw:?}");
        Ok(addresses.name().to_owned())
    }

    #[test]
    fn a_missing_port_is_the_default_one() {
        assert_eq!(one("127.0.0.1").as_deref(), Ok("127.0.0.1:5555"));
        assert_eq!(one(" chat.example.org ").as_deref(), Ok("chat.example.org:5555"));
        assert_eq!(one("localhost:6000").as_deref(), Ok("localhost:6000"));
        assert_eq!(one("::1").as_deref(), Ok("[::1]:5555"));
        assert_eq!(one("[::1]:7000").as_deref(), Ok("[::1]:7000"));
        assert_eq!(one("[::1]").as_deref(), Ok("[::1]:5555"));
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

    #[test]
    fn a_list_keeps_its_order_adds_default_ports_and_is_named_by_its_first_address() {
        let list = parse_server("a.example.org:6000, b.example.org ,[::1]:7000,::2").expect("a list");
        assert_eq!(list.all(), ["a.example.org:6000", "b.example.org:5555", "[::1]:7000", "[::2]:5555"]);
        assert_eq!(list.name(), "a.example.org:6000");
        assert_eq!(list.to_string(), "a.example.org:6000,b.example.org:5555,[::1]:7000,[::2]:5555");
        assert_eq!(parse_server(&list.to_string()), Ok(list), "given again, the same list");
    }

    #[test]
    fn a_bad_entry_of_a_list_is_named_in_the_refusal() {
        let refused = parse_server("a.example.org,b.example.org:99999,c.example.org").expect_err("a bad port");
        assert_eq!(
            refused,
            BadAddress::Entry { entry: "b.example.org:99999".into(), why: "the port is not a number from 1 to 65535" }
        );
        let said = refused.to_string();
        assert!(said.starts_with("\"b.example.org:99999\" is not a server address"), "{said}");
        assert!(said.contains("host:port"), "{said}");
        let url = parse_server("a.example.org, http://b.example.org").expect_err("a URL");
        assert!(url.to_string().starts_with("\"http://b.example.org\""), "{url}");
    }

    #[test]
    fn an_empty_entry_is_refused_with_its_position() {
        for (raw, position) in [("a:1,,b:2", 2), (",a:1", 1), ("a:1,", 2), ("a:1, ,b:2", 2), (",", 1)] {
            let refused = parse_server(raw).expect_err("an empty entry");
            assert_eq!(refused, BadAddress::EmptyEntry { list: raw.into(), position }, "{raw:?}");
            assert!(refused.to_string().contains(&format!("number {position}")), "{refused}");
        }
    }

    #[test]
    fn an_address_given_twice_is_refused_even_written_differently() {
        for (raw, twice) in [
            ("a:1,b:2,a:1", "a:1"),
            ("chat.example.org,chat.example.org:5555", "chat.example.org:5555"),
            ("Chat.Example.org:6000,chat.example.org:6000", "chat.example.org:6000"),
            ("::1,[::1]:5555", "[::1]:5555"),
        ] {
            let refused = parse_server(raw).expect_err("a duplicate");
            assert_eq!(refused, BadAddress::Duplicate { list: raw.into(), address: twice.into() }, "{raw:?}");
            assert!(refused.to_string().contains("twice"), "{refused}");
        }
        assert!(parse_server("a:1,a:2").is_ok(), "two ports of one host are two nodes");
    }
}
