//! Cutting a route's own token out of what its host answers.
//!
//! A route host may echo the request (an echo endpoint, an error page quoting the headers): the agent
//! must never read the token the proxy injected. Every occurrence in the response headers and body is
//! replaced by `*` of the same length, so lengths and framing stay as the upstream sent them. The body
//! is cut as it streams: the last `len - 1` bytes of each chunk wait for the next one, so a token
//! split across chunks is cut too.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use hyper::body::{Body, Frame, SizeHint};

use crate::body::{Counted, RespBody};

/// A route's token as it is sent upstream. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct RouteToken(Arc<[u8]>);

impl RouteToken {
    /// Wraps the token's bytes.
    pub fn new(token: &str) -> RouteToken {
        RouteToken(Arc::from(token.as_bytes()))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for RouteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RouteToken(<{} bytes>)", self.0.len())
    }
}

/// Replaces every occurrence of `token` in `data` by `*`; returns whether any was found.
fn cut(data: &mut [u8], token: &[u8]) -> bool {
    if token.is_empty() || data.len() < token.len() {
        return false;
    }
    let mut found = false;
    let mut i = 0;
    while i + token.len() <= data.len() {
        if &data[i..i + token.len()] == token {
            data[i..i + token.len()].fill(b'*');
            found = true;
            i += token.len();
        } else {
            i += 1;
        }
    }
    found
}

/// Cuts `token` out of every header value; returns whether any was found.
pub fn cut_headers(headers: &mut HeaderMap, token: &RouteToken) -> bool {
    let mut found = false;
    for value in headers.values_mut() {
        let mut bytes = value.as_bytes().to_vec();
        if cut(&mut bytes, token.bytes()) {
            found = true;
            // `*` is a valid header byte, so the cut value is always a valid header value.
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                *value = v;
            }
        }
    }
    found
}

/// Asks the route host for an uncompressed answer: a compressed echo could not be searched.
pub fn ask_identity(headers: &mut HeaderMap) {
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
}

/// The answer of `host` with `token` cut from its headers and body. A compressed body (the host
/// ignored `Accept-Encoding: identity`) cannot be searched, so it is refused with 502 instead.
pub(crate) fn guard(
    host: &str,
    mut parts: http::response::Parts,
    body: Counted,
    token: RouteToken,
) -> Response<RespBody> {
    let encoding = parts
        .headers
        .get(CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|v| !v.trim().eq_ignore_ascii_case("identity"));
    if let Some(encoding) = encoding {
        tracing::warn!(%host, %encoding, "route host answered compressed; refused");
        return crate::handler::text(
            StatusCode::BAD_GATEWAY,
            format!(
                "bottle egress proxy: the route host `{host}` answered with Content-Encoding                  `{encoding}` although the proxy asked for none; the answer cannot be checked for                  the route's token, so it is not passed on\n"
            ),
        );
    }
    if cut_headers(&mut parts.headers, &token) {
        tracing::warn!(%host, "the route's token was echoed in response headers; cut");
    }
    let host = host.to_string();
    let body = TokenCut::new(body, token, move || {
        tracing::warn!(%host, "the route's token was echoed in a response body; cut");
    });
    Response::from_parts(parts, RespBody::new(body))
}

/// A response body with `token` cut out as it streams.
pub struct TokenCut<B> {
    inner: B,
    token: RouteToken,
    /// Bytes held back: a token may start in them and end in the next chunk.
    carry: BytesMut,
    /// Trailers read while `carry` still had to go out first.
    trailers: Option<Frame<Bytes>>,
    ended: bool,
    /// Called once if the token was found (for the log).
    on_found: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl<B> TokenCut<B> {
    /// Wraps `inner`; `on_found` runs once the first time the token is cut.
    pub fn new(
        inner: B,
        token: RouteToken,
        on_found: impl FnOnce() + Send + Sync + 'static,
    ) -> TokenCut<B> {
        TokenCut {
            inner,
            token,
            carry: BytesMut::new(),
            trailers: None,
            ended: false,
            on_found: Some(Box::new(on_found)),
        }
    }

    /// Appends `data`, cuts, and returns what can go out now (everything but the held-back tail).
    fn push(&mut self, data: &[u8]) -> Bytes {
        self.carry.extend_from_slice(data);
        self.cut_carry();
        let keep = (self.token.bytes().len() - 1).min(self.carry.len());
        let ready = self.carry.len() - keep;
        self.carry.split_to(ready).freeze()
    }

    fn cut_carry(&mut self) {
        let token = self.token.clone();
        if cut(&mut self.carry, token.bytes())
            && let Some(found) = self.on_found.take()
        {
            found();
        }
    }

    /// Everything still held back, at the end of the data.
    fn flush(&mut self) -> Option<Frame<Bytes>> {
        self.cut_carry();
        (!self.carry.is_empty()).then(|| Frame::data(self.carry.split().freeze()))
    }
}

impl<B> Body for TokenCut<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        loop {
            if self.ended {
                return Poll::Ready(self.trailers.take().map(Ok));
            }
            let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) => {
                    self.ended = true;
                    match self.flush() {
                        Some(rest) => return Poll::Ready(Some(Ok(rest))),
                        None => continue,
                    }
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    let ready = self.push(&data);
                    if !ready.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(ready))));
                    }
                }
                Err(trailers) => {
                    // Trailers end the data: flush what is held back, then send them.
                    self.ended = true;
                    self.trailers = Some(trailers);
                    if let Some(rest) = self.flush() {
                        return Poll::Ready(Some(Ok(rest)));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.trailers.is_none() && self.carry.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        // Cutting keeps lengths, so the upstream's hint stays true for the whole body.
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::convert::Infallible;

    use http_body_util::BodyExt;

    const TOKEN: &str = "tok-0123456789abcdef";

    /// A body that yields the given chunks one frame at a time.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    async fn through(chunks: &[&str]) -> String {
        let chunks = chunks.iter().map(|c| Bytes::from(c.to_string())).collect();
        let cut = TokenCut::new(Chunks(chunks), RouteToken::new(TOKEN), || {});
        let bytes = cut.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn cut_whole_and_split_and_repeated() {
        let stars = "*".repeat(TOKEN.len());
        assert_eq!(
            through(&[&format!("a {TOKEN} b")]).await,
            format!("a {stars} b")
        );
        // Split across three chunks, one of them shorter than the token.
        let (a, rest) = TOKEN.split_at(5);
        let (b, c) = rest.split_at(3);
        assert_eq!(
            through(&[&format!("x{a}"), b, &format!("{c}y{TOKEN}")]).await,
            format!("x{stars}y{stars}")
        );
        // Nothing to cut: unchanged, including a prefix of the token at the very end.
        assert_eq!(through(&["hello ", "tok-01"]).await, "hello tok-01");
    }

    #[test]
    fn headers_are_cut_too() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-echo",
            HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
        );
        h.insert("x-other", HeaderValue::from_static("fine"));
        assert!(cut_headers(&mut h, &RouteToken::new(TOKEN)));
        assert_eq!(
            h["x-echo"],
            format!("Bearer {}", "*".repeat(TOKEN.len())).as_str()
        );
        assert_eq!(h["x-other"], "fine");
        assert_eq!(
            format!("{:?}", RouteToken::new(TOKEN)),
            format!("RouteToken(<{} bytes>)", TOKEN.len())
        );
    }
}
