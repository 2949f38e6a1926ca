//! Header fields of an HTTP/1 message, kept where they were received: slices of the head's
//! bytes, in order, names in their original case, each tagged with the [`Known`] name it is
//! (if any). Looking up a header the gateway cares about is an integer compare, and a
//! message passes through with its fields copied as they came, like nginx does; building an
//! `http::HeaderMap` (hashing, one reference count per value) only happens for HTTP/2.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

macro_rules! known {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// Header names the gateway reads or sets.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Known {
            Other,
            $($variant),*
        }

        impl Known {
            /// The lowercase name.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    Self::Other => "",
                    $(Self::$variant => $name),*
                }
            }

            /// Classifies a received name (case-insensitive).
            pub(crate) fn of(name: &[u8]) -> Self {
                $(
                    if name.len() == $name.len() && name.eq_ignore_ascii_case($name.as_bytes()) {
                        return Self::$variant;
                    }
                )*
                Self::Other
            }
        }
    };
}

known! {
    Host = "host",
    ContentLength = "content-length",
    TransferEncoding = "transfer-encoding",
    Connection = "connection",
    Upgrade = "upgrade",
    Te = "te",
    Expect = "expect",
    KeepAlive = "keep-alive",
    Proxy = "proxy",
    ProxyConnection = "proxy-connection",
    Trailer = "trailer",
    Via = "via",
    XForwardedFor = "x-forwarded-for",
    XForwardedProto = "x-forwarded-proto",
    XForwardedHost = "x-forwarded-host",
    XForwardedPort = "x-forwarded-port",
    XForwardedPath = "x-forwarded-path",
    XForwardedPrefix = "x-forwarded-prefix",
    XRealIp = "x-real-ip",
    XKongRequestId = "x-kong-request-id",
    XKongUpstreamLatency = "x-kong-upstream-latency",
    XKongProxyLatency = "x-kong-proxy-latency",
    XKongUpstreamStatus = "x-kong-upstream-status",
    KongDebug = "kong-debug",
    Accept = "accept",
    ContentType = "content-type",
    Server = "server",
    Date = "date",
}

impl Known {
    /// A bit of this name in a [`KnownSet`].
    pub(crate) const fn bit(self) -> u64 {
        1 << (self as u8)
    }
}

/// A set of [`Known`] names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KnownSet(pub(crate) u64);

impl KnownSet {
    pub(crate) const fn of(names: &[Known]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < names.len() {
            bits |= names[i].bit();
            i += 1;
        }
        Self(bits)
    }

    pub(crate) fn contains(self, k: Known) -> bool {
        k != Known::Other && self.0 & k.bit() != 0
    }

    pub(crate) fn insert(&mut self, k: Known) {
        self.0 |= k.bit();
    }
}

#[derive(Clone, Copy, Debug)]
struct Field {
    known: Known,
    name: (u32, u32),
    value: (u32, u32),
}

/// The header fields of a received message.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields {
    head: Bytes,
    list: Vec<Field>,
}

impl Fields {
    pub(crate) fn with_capacity(head: Bytes, n: usize) -> Self {
        Self { head, list: Vec::with_capacity(n) }
    }

    /// Adds a field given by its position in the head.
    pub(crate) fn push(&mut self, name: (usize, usize), value: (usize, usize)) {
        let known = Known::of(&self.head[name.0..name.0 + name.1]);
        self.list.push(Field {
            known,
            name: (name.0 as u32, name.1 as u32),
            value: (value.0 as u32, value.1 as u32),
        });
    }

    fn slice(&self, (start, len): (u32, u32)) -> &[u8] {
        &self.head[start as usize..(start + len) as usize]
    }

    /// The first value of a known header.
    pub(crate) fn get(&self, k: Known) -> Option<&[u8]> {
        self.list.iter().find(|f| f.known == k).map(|f| self.slice(f.value))
    }

    /// Every value of a known header.
    pub(crate) fn get_all(&self, k: Known) -> KnownValues<'_> {
        KnownValues { fields: self, known: k, next: 0 }
    }

    /// Every value of a header by name (case-insensitive).
    pub(crate) fn get_all_named<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
        self.list
            .iter()
            .filter(move |f| {
                f.name.1 as usize == name.len() && self.slice(f.name).eq_ignore_ascii_case(name)
            })
            .map(|f| self.slice(f.value))
    }

    /// The value of a field as a shared slice of the head (no copy).
    pub(crate) fn get_shared(&self, k: Known) -> Option<Bytes> {
        self.list.iter().find(|f| f.known == k).map(|f| {
            let (s, l) = f.value;
            self.head.slice(s as usize..(s + l) as usize)
        })
    }

    /// Every field: name as received, value, and what it is.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], Known)> {
        self.list.iter().map(|f| (self.slice(f.name), self.slice(f.value), f.known))
    }

    /// The fields as an `http::HeaderMap` (for HTTP/2).
    pub(crate) fn to_header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.list.len());
        for f in &self.list {
            let Ok(name) = HeaderName::from_bytes(self.slice(f.name)) else { continue };
            let (s, l) = f.value;
            let Ok(value) =
                HeaderValue::from_maybe_shared(self.head.slice(s as usize..(s + l) as usize))
            else {
                continue;
            };
            map.append(name, value);
        }
        map
    }
}

/// The values of one known header, in order.
#[derive(Clone, Debug)]
pub(crate) struct KnownValues<'a> {
    fields: &'a Fields,
    known: Known,
    next: usize,
}

impl<'a> Iterator for KnownValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while let Some(f) = self.fields.list.get(self.next) {
            self.next += 1;
            if f.known == self.known {
                return Some(self.fields.slice(f.value));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let head = Bytes::from_static(
            b"HOST: a\r\nX-Forwarded-For: 1\r\nx-forwarded-for: 2\r\nX-Other: o\r\n",
        );
        let mut f = Fields::with_capacity(head, 4);
        f.push((0, 4), (6, 1));
        f.push((9, 15), (26, 1));
        f.push((29, 15), (46, 1));
        f.push((49, 7), (58, 1));
        assert_eq!(f.get(Known::Host), Some(&b"a"[..]));
        assert_eq!(f.get_all(Known::XForwardedFor).collect::<Vec<_>>(), vec![&b"1"[..], &b"2"[..]]);
        assert_eq!(f.get_all_named(b"x-other").next(), Some(&b"o"[..]));
        assert!(f.get(Known::Via).is_none());
        let map = f.to_header_map();
        assert_eq!(map.get_all("x-forwarded-for").iter().count(), 2);
        assert_eq!(Known::of(b"Content-Length"), Known::ContentLength);
        assert_eq!(Known::of(b"Content-Lengt"), Known::Other);
        let set = KnownSet::of(&[Known::Host, Known::Via]);
        assert!(
            set.contains(Known::Via) && !set.contains(Known::Te) && !set.contains(Known::Other)
        );
    }
}
