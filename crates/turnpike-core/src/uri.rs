//! URI path normalization as Kong applies it before routing (`kong/tools/uri.lua`).
//!
//! Percent-encoded unreserved and "other" characters are decoded, reserved ones are kept
//! encoded (upper-cased), dot segments are removed and, optionally, `//` are merged.

const RESERVED: &[u8] = b"!*'();:@&=+$,/?%#[]";

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode_unreserved(uri: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(uri.len());
    let mut i = 0;
    while i < uri.len() {
        if uri[i] == b'%' && i + 2 < uri.len() {
            if let (Some(h), Some(l)) = (hex(uri[i + 1]), hex(uri[i + 2])) {
                let c = h * 16 + l;
                if RESERVED.contains(&c) {
                    out.push(b'%');
                    out.push(uri[i + 1].to_ascii_uppercase());
                    out.push(uri[i + 2].to_ascii_uppercase());
                } else {
                    out.push(c);
                }
                i += 3;
                continue;
            }
        }
        out.push(uri[i]);
        i += 1;
    }
    out
}

/// Normalizes a request path (`normalize(uri, merge_slashes)`). Works on bytes: a decoded
/// `%FF` is not valid UTF-8, and Kong does not care either.
pub fn normalize_bytes(uri: &[u8], merge_slashes: bool) -> Vec<u8> {
    if uri.is_empty() || uri == b"/" {
        return uri.to_vec();
    }
    let uri: Vec<u8> =
        if uri.contains(&b'%') { percent_decode_unreserved(uri) } else { uri.to_vec() };
    if !uri.contains(&b'.') && (!merge_slashes || !uri.windows(2).any(|w| w == b"//")) {
        return uri;
    }

    let mut output: Vec<Vec<u8>> = Vec::new();
    let mut rest: &[u8] = &uri;
    loop {
        if rest.is_empty() {
            break;
        }
        let first = rest.first().copied();
        let second = rest.get(1).copied();
        let third = rest.get(2).copied();
        let fourth = rest.get(3).copied();
        if rest == b"/." {
            rest = b"/";
        } else if rest == b"/.." {
            rest = b"/";
            output.pop();
        } else if rest == b"." || rest == b".." {
            rest = b"";
        } else if first == Some(b'.') && second == Some(b'.') && third == Some(b'/') {
            rest = &rest[3..];
        } else if (first == Some(b'.') && second == Some(b'/'))
            || (first == Some(b'/') && second == Some(b'.') && third == Some(b'/'))
        {
            rest = &rest[2..];
        } else if first == Some(b'/')
            && second == Some(b'.')
            && third == Some(b'.')
            && fourth == Some(b'/')
        {
            rest = &rest[3..];
            output.pop();
        } else if merge_slashes && first == Some(b'/') && second == Some(b'/') {
            rest = &rest[1..];
        } else {
            match rest[1..].iter().position(|b| *b == b'/') {
                Some(p) => {
                    output.push(rest[..p + 1].to_vec());
                    rest = &rest[p + 1..];
                }
                None => {
                    output.push(rest.to_vec());
                    rest = b"";
                }
            }
        }
    }
    output.concat()
}

/// [`normalize_bytes`] for text; invalid UTF-8 produced by decoding is replaced.
pub fn normalize(uri: &str, merge_slashes: bool) -> String {
    String::from_utf8_lossy(&normalize_bytes(uri.as_bytes(), merge_slashes)).into_owned()
}

/// Kong's `escape`: percent-encodes bytes that are unsafe in a path or header, keeping
/// reserved characters (and `%`) as they are.
pub fn escape(uri: &[u8]) -> String {
    let mut out = String::with_capacity(uri.len());
    for &b in uri {
        let safe = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'/'
                    | b':'
                    | b';'
                    | b'='
                    | b'?'
                    | b'@'
                    | b'['
                    | b']'
                    | b'-'
                    | b'_'
                    | b'.'
                    | b'~'
                    | b'%'
            );
        if safe {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_like_kong() {
        let cases = [
            ("/", "/"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/a/%2E%2E/b", "/b"),
            ("/route%2E%2E/req", "/route../req"),
            ("/%7euser", "/~user"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%2Fb", "/a%2Fb"),
            ("/../a", "/a"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input, false), want, "{input}");
        }
        assert_eq!(normalize("/a//b", true), "/a/b");
        assert_eq!(normalize("/a//b", false), "/a//b");
    }
}
