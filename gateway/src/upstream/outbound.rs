//! Where the gateway's own requests may go (federated servers, their relays, REST tools): not to
//! loopback, link-local (a cloud's metadata service at 169.254.169.254) or private addresses unless
//! `OUTBOUND_ALLOW` names them, as ContextForge's SSRF settings do. Checked on a URL's literal
//! address before a request, on every address a name resolves to when the connection is made (the
//! HTTP client's resolver, so a name that changes its answer after a check gets no further), and on
//! every redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The address ranges outbound requests may reach besides public ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outbound {
    pub loopback: bool,
    pub private: bool,
    pub link_local: bool,
}

/// What an address is, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    Public,
    Loopback,
    Private,
    LinkLocal,
    /// Unspecified, multicast, broadcast, documentation: never a server.
    Never,
}

fn range_v4(ip: Ipv4Addr) -> Range {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() || a == 0 {
        Range::Loopback
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Range::Private
    } else if ip.is_link_local() {
        Range::LinkLocal
    } else if ip.is_multicast() || ip.is_broadcast() || ip.is_documentation() {
        Range::Never
    } else {
        Range::Public
    }
}

fn range_v6(ip: Ipv6Addr) -> Range {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return range_v4(v4);
    }
    let seg = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // An IPv4 address carried inside: NAT64 (64:ff9b::/96), 6to4 (2002::/16), IPv4-compatible (::/96).
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return range_v4(v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return range_v4(v4(seg[1], seg[2]));
    }
    if seg[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return range_v4(v4(seg[6], seg[7]));
    }
    let first = seg[0];
    if ip.is_loopback() || ip.is_unspecified() {
        Range::Loopback
    } else if first & 0xfe00 == 0xfc00 {
        Range::Private
    } else if first & 0xffc0 == 0xfe80 {
        Range::LinkLocal
    } else if ip.is_multicast() {
        Range::Never
    } else {
        Range::Public
    }
}

impl Outbound {
    /// `OUTBOUND_ALLOW`: a comma-separated list of `loopback`, `private`, `link-local`, or `all`;
    /// empty allows public addresses only.
    pub fn parse(list: &str) -> Result<Outbound, String> {
        let mut allowed = Outbound::default();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "loopback" => allowed.loopback = true,
                "private" => allowed.private = true,
                "link-local" => allowed.link_local = true,
                "all" => {
                    allowed = Outbound {
                        loopback: true,
                        private: true,
                        link_local: true,
                    };
                }
                other => {
                    return Err(format!(
                        "{other:?} is not a range: OUTBOUND_ALLOW takes loopback, private, link-local or all"
                    ));
                }
            }
        }
        Ok(allowed)
    }

    /// Why `ip` may not be reached, if it may not.
    pub fn refuses(self, ip: IpAddr) -> Option<&'static str> {
        let range = match ip {
            IpAddr::V4(v4) => range_v4(v4),
            IpAddr::V6(v6) => range_v6(v6),
        };
        match range {
            Range::Public => None,
            Range::Loopback if self.loopback => None,
            Range::Private if self.private => None,
            Range::LinkLocal if self.link_local => None,
            Range::Loopback => Some("a loopback address (OUTBOUND_ALLOW=loopback allows it)"),
            Range::Private => Some("a private address (OUTBOUND_ALLOW=private allows it)"),
            Range::LinkLocal => Some("a link-local address (OUTBOUND_ALLOW=link-local allows it)"),
            Range::Never => Some("not an address a server has"),
        }
    }

    /// A URL the gateway may request: http or https, and not to a refused address written in it (a
    /// name is checked when it is resolved).
    pub fn check(self, url: &reqwest::Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{url}: only http and https are requested"));
        }
        let Some(host) = url.host_str() else {
            return Err(format!("{url}: no host"));
        };
        let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
            return Ok(());
        };
        match self.refuses(ip) {
            Some(why) => Err(format!("{url}: {ip} is {why}")),
            None => Ok(()),
        }
    }
}

/// The client's resolver: a name's addresses the policy refuses are never connected to.
pub struct Resolver(pub Outbound);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut why = "no address";
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.refuses(a.ip()) {
                    Some(w) => {
                        why = w;
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to {why}: refused by the outbound policy").into();
                return Err(refused);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Follow a redirect only where a request could go in the first place (at most 10).
pub fn redirects(policy: Outbound) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 10 {
            return attempt.error("more than 10 redirects");
        }
        match policy.check(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(why) => attempt.error(format!("a redirect refused by the outbound policy: {why}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        s.parse().unwrap()
    }

    #[test]
    fn private_loopback_and_link_local_are_refused_unless_allowed() {
        let none = Outbound::default();
        for refused in [
            "http://127.0.0.1:8080/mcp",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:7f00:1::]/",
            "http://[::10.0.0.1]/",
            "http://0.0.0.0/",
            "file:///etc/passwd",
        ] {
            assert!(none.check(&url(refused)).is_err(), "{refused}");
        }
        assert!(none.check(&url("http://93.184.215.14/")).is_ok());
        assert!(
            none.check(&url("https://example.com/mcp")).is_ok(),
            "a name waits for its resolution"
        );
        let loopback = Outbound::parse("loopback").unwrap();
        assert!(loopback.check(&url("http://127.0.0.1:8080/mcp")).is_ok());
        assert!(loopback.check(&url("http://169.254.169.254/")).is_err());
        assert!(Outbound::parse("all").unwrap().check(&url("http://10.0.0.1/")).is_ok());
        assert!(Outbound::parse("loopback,nope").is_err());
    }
}
