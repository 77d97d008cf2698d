//! Reading the server name (SNI) from a TLS ClientHello without consuming it.

/// What the bytes read so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// More bytes are needed.
    Incomplete,
    /// This is not a TLS ClientHello.
    NotTls,
    /// A complete ClientHello, with its server name if it has one.
    Complete(Option<String>),
}

/// The most ClientHello bytes the proxy waits for.
pub const MAX_HELLO: usize = 32 * 1024;

/// Parses the TLS records at the start of `buf` as a ClientHello.
pub fn parse_client_hello(buf: &[u8]) -> Hello {
    // Reassemble the handshake message from consecutive handshake records.
    let mut handshake = Vec::new();
    let mut pos = 0;
    loop {
        if buf.len() < pos + 5 {
            return Hello::Incomplete;
        }
        if buf[pos] != 0x16 || buf[pos + 1] != 3 {
            return Hello::NotTls;
        }
        let len = usize::from(u16::from_be_bytes([buf[pos + 3], buf[pos + 4]]));
        if buf.len() < pos + 5 + len {
            return Hello::Incomplete;
        }
        handshake.extend_from_slice(&buf[pos + 5..pos + 5 + len]);
        pos += 5 + len;
        if handshake.len() >= 4 {
            if handshake[0] != 1 {
                return Hello::NotTls;
            }
            let body_len = (usize::from(handshake[1]) << 16)
                | (usize::from(handshake[2]) << 8)
                | usize::from(handshake[3]);
            if handshake.len() >= 4 + body_len {
                return match server_name(&handshake[4..4 + body_len]) {
                    Some(sni) => Hello::Complete(sni),
                    None => Hello::NotTls,
                };
            }
        }
    }
}

/// The SNI of a ClientHello body; `None` if the body is malformed, `Some(None)` if it has no SNI.
fn server_name(body: &[u8]) -> Option<Option<String>> {
    let mut r = Reader(body);
    r.take(2)?; // legacy version
    r.take(32)?; // random
    let n = usize::from(r.u8()?);
    r.take(n)?; // session id
    let n = usize::from(r.u16()?);
    r.take(n)?; // cipher suites
    let n = usize::from(r.u8()?);
    r.take(n)?; // compression methods
    if r.0.is_empty() {
        return Some(None);
    }
    let n = usize::from(r.u16()?);
    let mut exts = Reader(r.take(n)?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let n = usize::from(exts.u16()?);
        let data = exts.take(n)?;
        if kind == 0 {
            let mut list = Reader(data);
            let n = usize::from(list.u16()?);
            let mut list = Reader(list.take(n)?);
            while !list.0.is_empty() {
                let name_type = list.u8()?;
                let n = usize::from(list.u16()?);
                let name = list.take(n)?;
                if name_type == 0 {
                    return Some(Some(String::from_utf8(name.to_vec()).ok()?));
                }
            }
            return Some(None);
        }
    }
    Some(None)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ClientHello as produced by rustls for `example.com`.
    fn hello(name: Option<&str>) -> Vec<u8> {
        use std::sync::Arc;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut config = config;
        config.enable_sni = name.is_some();
        let server =
            rustls_pki_types::ServerName::try_from(name.unwrap_or("example.com").to_string())
                .unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn reads_sni_from_a_real_client_hello() {
        let h = hello(Some("example.com"));
        assert_eq!(
            parse_client_hello(&h),
            Hello::Complete(Some("example.com".into()))
        );
        assert_eq!(parse_client_hello(&hello(None)), Hello::Complete(None));
    }

    #[test]
    fn partial_and_foreign_input() {
        let h = hello(Some("example.com"));
        for cut in [0, 1, 4, 5, 40, h.len() - 1] {
            assert_eq!(
                parse_client_hello(&h[..cut]),
                Hello::Incomplete,
                "cut at {cut}"
            );
        }
        assert_eq!(parse_client_hello(b"GET / HTTP/1.1\r\n\r\n"), Hello::NotTls);
    }

    #[test]
    fn hello_split_over_two_records() {
        let h = hello(Some("split.example"));
        let body = &h[5..];
        let (a, b) = body.split_at(50);
        let mut two = Vec::new();
        for part in [a, b] {
            two.extend_from_slice(&[0x16, 3, 1]);
            two.extend_from_slice(&(part.len() as u16).to_be_bytes());
            two.extend_from_slice(part);
        }
        assert_eq!(
            parse_client_hello(&two),
            Hello::Complete(Some("split.example".into()))
        );
    }
}
