//! The pure logic of Kong's `ip-restriction` plugin (`kong/plugins/ip-restriction/handler.lua`):
//! parsing the `allow` / `deny` entries the way Kong's schema validates them
//! (`kong/tools/ip.lua` `is_valid_ip_or_cidr`) and matching a client address the way
//! `lua-resty-ipmatcher` 0.6.1 does, plus Kong's precedence and default rejection.
//!
//! Facts reproduced here:
//! - An entry is an IPv4 or IPv6 address, optionally followed by `/prefix`, where the prefix is
//!   written exactly as a decimal number `0..=32` (IPv4) or `0..=128` (IPv6): no sign, no
//!   leading zero, no spaces. An IPv6 address may be wrapped in brackets (`[::1]`, `[::1]/64`),
//!   because ipmatcher strips them before `inet_pton`. Anything else is rejected with Kong's
//!   message `invalid ip or cidr range: '<entry>'`.
//! - Host bits beyond the prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`); `/0` matches every
//!   address *of the same family*.
//! - Families never mix in ipmatcher: an IPv4 rule never matches an IPv6 client, including an
//!   IPv4-mapped one (`::ffff:10.0.0.1`), and an IPv6 rule written as `::ffff:10.0.0.1` never
//!   matches the IPv4 client `10.0.0.1`. [`IpList::contains`] keeps that strictness.
//!   Kong itself never sees mapped addresses (nginx listens with `ipv6only=on`, and Kong's
//!   default listeners are IPv4), whereas a Rust dual-stack socket reports IPv4 clients as
//!   mapped addresses; [`ip_restriction_decision`] and [`IpRestriction::check`] therefore
//!   turn a mapped client back into its IPv4 address first, which is what Kong would see.
//! - Precedence (`do_restrict`): a non-empty `deny` is checked first and a match rejects; then a
//!   non-empty `allow` that does not match rejects. An address in both lists is rejected. Empty
//!   lists are ignored (an empty `allow` does not reject everything).
//! - Rejection: status `config.status` or 403, message `config.message` or
//!   `IP address not allowed: <remote_addr>`, where `<remote_addr>` is nginx's text form of the
//!   client address (see [`nginx_addr_text`]). A client without an IP address (unix socket)
//!   gets 403 `Cannot identify the client IP address, unix domain sockets are not supported.`
//!
//! Depends on `std::net` only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Kong's default rejection status (`do_exit`: `status or 403`).
pub const DEFAULT_STATUS: u16 = 403;

/// The message Kong sends when the client address is not an IP address (unix domain socket).
pub const UNIX_SOCKET_MESSAGE: &str =
    "Cannot identify the client IP address, unix domain sockets are not supported.";

/// One parsed `allow` / `deny` entry: a network of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpNet {
    /// An IPv4 network: the address with host bits cleared, and the prefix length (0..=32).
    V4 {
        /// Network address (host bits cleared).
        net: Ipv4Addr,
        /// Prefix length, 0..=32.
        prefix: u8,
    },
    /// An IPv6 network: the address with host bits cleared, and the prefix length (0..=128).
    V6 {
        /// Network address (host bits cleared).
        net: Ipv6Addr,
        /// Prefix length, 0..=128.
        prefix: u8,
    },
}

impl IpNet {
    /// Parses one entry the way Kong's `typedefs.ip_or_cidr` validator accepts it; the error is
    /// Kong's message, `invalid ip or cidr range: '<entry>'`.
    pub fn parse(entry: &str) -> Result<IpNet, String> {
        parse_entry(entry).ok_or_else(|| format!("invalid ip or cidr range: '{entry}'"))
    }

    /// Whether `ip` is inside this network. Families never mix (see the module docs).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (IpNet::V4 { net, prefix }, IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(*prefix) == u32::from(*net)
            }
            (IpNet::V6 { net, prefix }, IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(*prefix) == u128::from(*net)
            }
            _ => false,
        }
    }
}

fn mask_v4(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

fn mask_v6(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

/// The prefix must be one of the exact strings "0".."max" (Kong builds a lookup table of
/// `tostring(i)`), so "08", "+8", " 8" and "8.0" are all invalid.
fn parse_prefix(text: &str, max: u8) -> Option<u8> {
    let valid_digits = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !valid_digits {
        return None;
    }
    text.parse::<u8>().ok().filter(|p| *p <= max)
}

/// ipmatcher's `parse_ipv6` strips one pair of surrounding brackets before `inet_pton`.
fn parse_v6(text: &str) -> Option<Ipv6Addr> {
    let inner = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    inner.parse::<Ipv6Addr>().ok()
}

fn parse_entry(entry: &str) -> Option<IpNet> {
    // `split_once(cidr, "/")` splits at the first slash; the rest must be a valid prefix.
    let (addr, prefix) = match entry.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (entry, None),
    };
    // Rust's parser, like glibc's `inet_pton`, wants exactly four decimal octets without
    // leading zeros for IPv4, and accepts the same IPv6 text forms (incl. a dotted tail).
    if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        let prefix = match prefix {
            Some(p) => parse_prefix(p, 32)?,
            None => 32,
        };
        let net = Ipv4Addr::from(u32::from(v4) & mask_v4(prefix));
        return Some(IpNet::V4 { net, prefix });
    }
    let v6 = parse_v6(addr)?;
    let prefix = match prefix {
        Some(p) => parse_prefix(p, 128)?,
        None => 128,
    };
    let net = Ipv6Addr::from(u128::from(v6) & mask_v6(prefix));
    Some(IpNet::V6 { net, prefix })
}

/// Whether Kong's schema accepts `entry` as an `ip_or_cidr` (for callers that only validate).
pub fn is_valid_ip_or_cidr(entry: &str) -> bool {
    parse_entry(entry).is_some()
}

/// A parsed `config.allow` or `config.deny` list, built once per plugin configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList {
    nets: Vec<IpNet>,
}

impl IpList {
    /// Parses every entry; the first invalid one yields Kong's message
    /// `invalid ip or cidr range: '<entry>'`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<IpList, String> {
        let nets =
            entries.iter().map(|e| IpNet::parse(e.as_ref())).collect::<Result<Vec<_>, _>>()?;
        Ok(IpList { nets })
    }

    /// Whether the list has no entry (Kong then skips it entirely: `isempty(list)`).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The parsed entries, in configuration order.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` is in any entry, with ipmatcher's strict families: an IPv4-mapped IPv6
    /// address only matches IPv6 entries (use [`ip_restriction_decision`] for Kong's view of
    /// a dual-stack client).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }
}

/// The address Kong would see for this client: an IPv4-mapped IPv6 address (what a Rust
/// dual-stack listener reports for an IPv4 peer) becomes the IPv4 address nginx would report.
pub fn kong_client_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Kong's precedence (`do_restrict`): `true` when the request may pass. A non-empty `deny`
/// that matches rejects; then a non-empty `allow` that does not match rejects. `None` and
/// empty lists are skipped. The client address goes through [`kong_client_ip`] first.
pub fn ip_restriction_decision(allow: Option<&IpList>, deny: Option<&IpList>, ip: IpAddr) -> bool {
    let ip = kong_client_ip(ip);
    if let Some(deny) = deny.filter(|l| !l.is_empty()) {
        if deny.contains(ip) {
            return false;
        }
    }
    if let Some(allow) = allow.filter(|l| !l.is_empty()) {
        if !allow.contains(ip) {
            return false;
        }
    }
    true
}

/// Kong's default rejection message, `IP address not allowed: <remote_addr>`, with the client
/// address written the way nginx writes `$remote_addr` (after [`kong_client_ip`]).
pub fn not_allowed_message(ip: IpAddr) -> String {
    format!("IP address not allowed: {}", nginx_addr_text(kong_client_ip(ip)))
}

/// `$remote_addr` text: dotted quad for IPv4; for IPv6, nginx's `ngx_inet6_ntop`, which
/// compresses the first longest run of two or more zero groups and prints a dotted IPv4 tail
/// for IPv4-mapped (`::ffff:1.2.3.4`) and IPv4-compatible (`::1.2.3.4`) addresses. It differs
/// from Rust's `Display` only for the latter (`::1.2.3.4` vs `::102:304`).
pub fn nginx_addr_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => inet6_ntop(&v6.octets()),
    }
}

fn inet6_ntop(p: &[u8; 16]) -> String {
    // Find the first longest run (length >= 2) of zero 16-bit groups, as nginx does.
    let mut zero: Option<usize> = None;
    let mut last = 0usize;
    let mut max = 1usize;
    let mut n = 0usize;
    for i in (0..16).step_by(2) {
        if p[i] != 0 || p[i + 1] != 0 {
            if max < n {
                zero = Some(last);
                max = n;
            }
            n = 0;
            continue;
        }
        if n == 0 {
            last = i;
        }
        n += 1;
    }
    if max < n {
        zero = Some(last);
        max = n;
    }

    let mut out = String::with_capacity(46);
    let mut end = 16;
    if zero == Some(0) {
        if (max == 5 && p[10] == 0xff && p[11] == 0xff)
            || max == 6
            || (max == 7 && p[14] != 0 && p[15] != 1)
        {
            end = 12;
        }
        out.push(':');
    }
    let mut i = 0;
    while i < end {
        if Some(i) == zero {
            out.push(':');
            i += max * 2;
            continue;
        }
        let group = u16::from_be_bytes([p[i], p[i + 1]]);
        out.push_str(&format!("{group:x}"));
        if i < 14 {
            out.push(':');
        }
        i += 2;
    }
    if end == 12 {
        out.push_str(&format!("{}.{}.{}.{}", p[12], p[13], p[14], p[15]));
    }
    out
}

/// A rejection the plugin glue turns into `kong.response.error(status, message)` (HTTP) or a
/// bare close with that status (stream routes: Kong calls `ngx.exit(status)` there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRejection {
    /// HTTP status (`config.status`, default 403).
    pub status: u16,
    /// Body message (`config.message`, default `IP address not allowed: <ip>`).
    pub message: String,
}

/// A compiled `ip-restriction` configuration: both lists parsed once, plus status/message.
#[derive(Debug, Clone, Default)]
pub struct IpRestriction {
    allow: Option<IpList>,
    deny: Option<IpList>,
    status: Option<u16>,
    message: Option<String>,
}

impl IpRestriction {
    /// Parses `config.allow` / `config.deny`; `status` / `message` override Kong's defaults.
    /// Errors carry Kong's per-entry message.
    pub fn new<S: AsRef<str>>(
        allow: Option<&[S]>,
        deny: Option<&[S]>,
        status: Option<u16>,
        message: Option<String>,
    ) -> Result<IpRestriction, String> {
        Ok(IpRestriction {
            allow: allow.map(IpList::parse).transpose()?,
            deny: deny.map(IpList::parse).transpose()?,
            status,
            message,
        })
    }

    /// Kong's `do_restrict`: `None` lets the request through; `Some` is the rejection.
    /// `client` is `None` when the peer has no IP address (unix domain socket).
    pub fn check(&self, client: Option<IpAddr>) -> Option<IpRejection> {
        let Some(ip) = client else {
            return Some(IpRejection {
                status: DEFAULT_STATUS,
                message: UNIX_SOCKET_MESSAGE.to_owned(),
            });
        };
        if ip_restriction_decision(self.allow.as_ref(), self.deny.as_ref(), ip) {
            return None;
        }
        Some(IpRejection {
            status: self.status.unwrap_or(DEFAULT_STATUS),
            message: self.message.clone().unwrap_or_else(|| not_allowed_message(ip)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn list(entries: &[&str]) -> IpList {
        IpList::parse(entries).unwrap()
    }

    #[test]
    fn valid_and_invalid_entries() {
        // (entry, valid) — invalid ones are taken from Kong's 01-schema_spec.lua.
        let cases: &[(&str, bool)] = &[
            ("127.0.0.1", true),
            ("127.0.0.1/32", true),
            ("127.0.0.1/8", true),
            ("0.0.0.0/0", true),
            ("::", true),
            ("::/0", true),
            ("::/1", true),
            ("::/128", true),
            ("::1", true),
            ("fe80::/8", true),
            ("::ffff:1.2.3.4", true),
            ("::ffff:1.2.3.4/96", true),
            ("2001:DB8::1", true),
            ("[::1]", true),
            ("[::1]/64", true),
            ("hello", false),
            ("", false),
            ("0.0.0.0/a", false),
            ("0.0.0.0/-1", false),
            ("0.0.0.0/33", false),
            ("::/a", false),
            ("::/-1", false),
            ("::/129", false),
            ("::1/a", false),
            ("::1/-1", false),
            ("::1/129", false),
            ("1.2.3.4/", false),
            ("1.2.3.4/08", false),
            ("1.2.3.4/+8", false),
            ("1.2.3.4/ 8", false),
            ("1.2.3.4/8/8", false),
            ("1.2.3.4/64", false),
            ("01.2.3.4", false),
            ("1.2.3", false),
            ("256.1.1.1", false),
            (" 1.2.3.4", false),
            ("1.2.3.4:80", false),
            ("[1.2.3.4]", false),
            ("::1%eth0", false),
            ("1:2:3:4:5:6:7:8:9", false),
            ("[::1", false),
        ];
        for (entry, valid) in cases {
            assert_eq!(is_valid_ip_or_cidr(entry), *valid, "{entry:?}");
            match IpNet::parse(entry) {
                Ok(_) => assert!(valid, "{entry:?} should be rejected"),
                Err(e) => {
                    assert!(!valid, "{entry:?} should be accepted");
                    assert_eq!(e, format!("invalid ip or cidr range: '{entry}'"));
                }
            }
        }
    }

    #[test]
    fn list_error_names_the_first_bad_entry() {
        let err = IpList::parse(&["127.0.0.1/32", "127.0.0.2/32", "hello"]).unwrap_err();
        assert_eq!(err, "invalid ip or cidr range: 'hello'");
    }

    #[test]
    fn membership() {
        // (entries, client, expected)
        let cases: &[(&[&str], &str, bool)] = &[
            (&["127.0.0.1"], "127.0.0.1", true),
            (&["127.0.0.1"], "127.0.0.2", false),
            (&["127.0.0.1/32"], "127.0.0.1", true),
            (&["127.0.0.0/24"], "127.0.0.255", true),
            (&["127.0.0.0/24"], "127.0.1.0", false),
            (&["10.1.2.3/8"], "10.200.0.1", true),
            (&["0.0.0.0/0"], "203.0.113.9", true),
            (&["0.0.0.0/0"], "::1", false),
            (&["::/0"], "2001:db8::1", true),
            (&["::/0"], "1.2.3.4", false),
            (&["::1"], "::1", true),
            (&["::1/128"], "::1", true),
            (&["::1/128"], "::2", false),
            (&["fe80::/8"], "fe80::1", true),
            (&["fe80::/8"], "fe00::1", true),
            (&["fe80::/10"], "fe00::1", false),
            (&["2001:db8::/33"], "2001:db8:7fff::1", true),
            (&["2001:db8::/33"], "2001:db8:8000::1", false),
            (&["[2001:db8::]/32"], "2001:db8:ffff::1", true),
            (&["::2", "::3"], "::3", true),
            (&["127.0.0.2", "::1"], "::1", true),
            // ipmatcher never mixes families.
            (&["1.2.3.4"], "::ffff:1.2.3.4", false),
            (&["::ffff:1.2.3.4"], "1.2.3.4", false),
            (&["::ffff:1.2.3.4"], "::ffff:1.2.3.4", true),
            (&["::ffff:0.0.0.0/96"], "::ffff:9.9.9.9", true),
        ];
        for (entries, client, expected) in cases {
            assert_eq!(
                list(entries).contains(ip(client)),
                *expected,
                "{entries:?} contains {client}"
            );
        }
    }

    #[test]
    fn precedence() {
        // (allow, deny, client, allowed) — the configurations of Kong's 02-access_spec.lua.
        let cases: &[(&[&str], &[&str], &str, bool)] = &[
            (&[], &["127.0.0.1", "127.0.0.2"], "127.0.0.1", false),
            (&[], &["127.0.0.2"], "127.0.0.1", true),
            (&["127.0.0.2"], &[], "127.0.0.1", false),
            (&["127.0.0.1"], &[], "127.0.0.1", true),
            (&[], &["127.0.0.0/24"], "127.0.0.1", false),
            (&["0.0.0.0/0"], &[], "127.0.0.1", true),
            (&["127.0.0.1"], &["127.0.0.1"], "127.0.0.1", false),
            (&["127.0.0.0/24"], &["127.0.0.1"], "127.0.0.1", false),
            (&["127.0.0.0/24"], &["127.0.0.1"], "127.0.0.2", true),
            (&["127.0.0.0/24"], &["127.0.0.0/24"], "127.0.0.1", false),
            (&[], &["::1", "::2"], "::1", false),
            (&[], &["::2"], "::1", true),
            (&[], &["fe80::/8"], "fe80::1", false),
            (&["::2"], &[], "::1", false),
            (&["::/0"], &[], "::1", true),
            (&["::1/128"], &["::1"], "::1", false),
            // Both empty: nothing to check (Kong's schema forbids it, the handler lets it pass).
            (&[], &[], "127.0.0.1", true),
            // A dual-stack socket's mapped client is judged as the IPv4 client Kong would see.
            (&["127.0.0.1"], &[], "::ffff:127.0.0.1", true),
            (&[], &["127.0.0.0/8"], "::ffff:127.0.0.1", false),
            (&["::ffff:127.0.0.1"], &[], "::ffff:127.0.0.1", false),
        ];
        for (allow, deny, client, allowed) in cases {
            let (a, d) = (list(allow), list(deny));
            assert_eq!(
                ip_restriction_decision(Some(&a), Some(&d), ip(client)),
                *allowed,
                "allow={allow:?} deny={deny:?} client={client}"
            );
        }
        assert!(ip_restriction_decision(None, None, ip("1.2.3.4")));
    }

    #[test]
    fn nginx_text_of_addresses() {
        let cases: &[(&str, &str)] = &[
            ("127.0.0.1", "127.0.0.1"),
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("1:0:0:0:0:0:0:1", "1::1"),
            ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:db8::1:0", "2001:db8::1:0"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("FE80::ABCD", "fe80::abcd"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::0.0.1.2", "::0.0.1.2"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
        ];
        for (input, text) in cases {
            assert_eq!(nginx_addr_text(ip(input)), *text, "{input}");
        }
    }

    #[test]
    fn rejections() {
        let r = IpRestriction::new(Some(&["127.0.0.2"][..]), None, None, None).unwrap();
        assert_eq!(r.check(Some(ip("127.0.0.2"))), None);
        assert_eq!(
            r.check(Some(ip("127.0.0.1"))),
            Some(IpRejection { status: 403, message: "IP address not allowed: 127.0.0.1".into() })
        );
        assert_eq!(
            r.check(Some(ip("::ffff:127.0.0.1"))).map(|r| r.message),
            Some("IP address not allowed: 127.0.0.1".into())
        );
        assert_eq!(
            r.check(Some(ip("::1"))).map(|r| r.message),
            Some("IP address not allowed: ::1".into())
        );
        assert_eq!(
            r.check(None),
            Some(IpRejection { status: 403, message: UNIX_SOCKET_MESSAGE.into() })
        );

        let custom = IpRestriction::new(
            None,
            Some(&["127.0.0.0/24"][..]),
            Some(401),
            Some("Forbidden".into()),
        )
        .unwrap();
        assert_eq!(
            custom.check(Some(ip("127.0.0.1"))),
            Some(IpRejection { status: 401, message: "Forbidden".into() })
        );
        assert_eq!(custom.check(Some(ip("10.0.0.1"))), None);

        assert_eq!(
            IpRestriction::new(Some(&["nope"][..]), None, None, None).unwrap_err(),
            "invalid ip or cidr range: 'nope'"
        );
    }
}
