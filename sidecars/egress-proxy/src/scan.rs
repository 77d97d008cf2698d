//! Request bodies scanned as they stream to the upstream, with no size cap and without holding
//! the body in memory.
//!
//! Each chunk is scanned (decompressed and decoded too, see [`bottle_secret_scan::stream`])
//! before it is forwarded, and the last [`Dlp::overlap`] bytes are held back until the next
//! chunk or the end of the body. The guarantee: the body's final bytes are released only after
//! the whole body, and every decoded view of it, scanned clean. When a secret is found the body
//! fails instead, hyper resets the upstream connection mid-body, and the upstream never receives
//! a complete request; for a secret in a form that does not expand on decoding (raw, percent,
//! JSON escapes, base64, hex), none of its bytes have been forwarded.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use bottle_secret_scan::decode::DecodeError;
use bottle_secret_scan::stream::{StreamScanner, ViewFindings};

use crate::body::RespBody;
use crate::dlp::{Dlp, Verdict};
use crate::handler::{Facts, deny};
use crate::proxy::Conn;

/// Errors of a body going upstream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every request the proxy sends upstream.
pub type UpBody = UnsyncBoxBody<Bytes, BoxError>;

/// Why a streaming body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A secret or a blocking pattern: this rule id.
    Secret(String),
    /// The body could not be decoded, hence not scanned (a bomb, corrupt data, an unknown
    /// coding).
    Undecodable(DecodeError),
}

/// What scanning a body concluded so far; shared with the handler, which reads it once the
/// upstream answered or failed.
#[derive(Debug, Default)]
pub struct BodyReport {
    /// Set when the body was cut.
    pub refusal: Option<Refusal>,
    /// Pattern rules found under `dlp.patterns: warn`.
    pub warn: Vec<String>,
    /// Bytes released upstream.
    pub bytes_up: u64,
}

/// The error a refused body ends with (its reason is in the [`BodyReport`]).
#[derive(Debug, thiserror::Error)]
#[error("request body refused by the DLP")]
pub struct BodyRefused;

/// A request body scanned on its way upstream.
pub struct ScannedBody {
    inner: Incoming,
    scanner: StreamScanner,
    dlp: Arc<Dlp>,
    host: String,
    /// Chunks scanned but not yet released, as they came (released by slicing, never copied).
    held: VecDeque<Bytes>,
    /// Bytes in `held`.
    held_len: usize,
    hold: usize,
    report: Arc<Mutex<BodyReport>>,
    done: bool,
}

impl ScannedBody {
    /// Wraps `inner`, going to `host`, scanning with `scanner`; the report is shared.
    pub fn new(
        inner: Incoming,
        scanner: StreamScanner,
        dlp: Arc<Dlp>,
        host: &str,
    ) -> (ScannedBody, Arc<Mutex<BodyReport>>) {
        let report = Arc::new(Mutex::new(BodyReport::default()));
        let hold = dlp.overlap();
        let body = ScannedBody {
            inner,
            scanner,
            dlp,
            host: host.to_string(),
            held: VecDeque::new(),
            held_len: 0,
            hold,
            report: report.clone(),
            done: false,
        };
        (body, report)
    }

    /// Boxed for the upstream request.
    pub fn boxed(self) -> UpBody {
        BodyExt::boxed_unsync(self)
    }

    fn report(&self) -> std::sync::MutexGuard<'_, BodyReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the DLP to what one step found; `Err` cuts the body.
    fn judge(&mut self, scanned: Result<Vec<ViewFindings>, DecodeError>) -> Result<(), BoxError> {
        let refusal = match scanned {
            Err(e) => Refusal::Undecodable(e),
            Ok(found) if found.is_empty() => return Ok(()),
            Ok(found) => match self.dlp.verdict(&self.host, &found) {
                Verdict::Clean => return Ok(()),
                Verdict::Warn(rules) => {
                    let mut report = self.report();
                    for rule in rules {
                        if !report.warn.contains(&rule) {
                            report.warn.push(rule);
                        }
                    }
                    return Ok(());
                }
                Verdict::Block(rule) => Refusal::Secret(rule),
            },
        };
        self.done = true;
        self.held.clear();
        self.held_len = 0;
        self.report().refusal = Some(refusal);
        Err(Box::new(BodyRefused))
    }

    fn release(&mut self, data: Bytes) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.report().bytes_up += data.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    /// The next piece of `held` beyond the last `keep` bytes, if there is one.
    fn take_held(&mut self, keep: usize) -> Option<Bytes> {
        let excess = self.held_len.checked_sub(keep).filter(|n| *n > 0)?;
        let front = self.held.front_mut()?;
        let piece = if front.len() <= excess {
            self.held.pop_front()?
        } else {
            front.split_to(excess)
        };
        self.held_len -= piece.len();
        Some(piece)
    }
}

impl Body for ScannedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.done {
                // The whole body scanned clean: what is held goes, a chunk per frame.
                return match self.take_held(0) {
                    Some(rest) => self.release(rest),
                    None => Poll::Ready(None),
                };
            }
            let hold = self.hold;
            if let Some(out) = self.take_held(hold) {
                return self.release(out);
            }
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                None => {
                    let scanned = self.scanner.finish();
                    if let Err(e) = self.judge(scanned) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    self.done = true;
                }
                Some(Err(e)) => {
                    self.done = true;
                    // An unfinished body was not all scanned: nothing more of it goes.
                    self.held.clear();
                    self.held_len = 0;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Some(Ok(frame)) => {
                    // Trailers are not forwarded: they would be an unscanned channel.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let scanned = self.scanner.feed(&data);
                    if let Err(e) = self.judge(scanned) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    if !data.is_empty() {
                        self.held_len += data.len();
                        self.held.push_back(data);
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.held_len == 0
    }

    fn size_hint(&self) -> SizeHint {
        // What the client declared is what goes up (or less, if it is cut), so hyper keeps the
        // client's Content-Length framing when there was one.
        let inner = self.inner.size_hint();
        let held = self.held_len as u64;
        if self.done {
            return SizeHint::with_exact(held);
        }
        if let Some(n) = inner.exact() {
            return SizeHint::with_exact(n + held);
        }
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint.set_lower(inner.lower() + held);
        hint
    }
}

/// A DLP refusal: 403, audited with the rule (never the value).
pub(crate) fn dlp_refusal(conn: &Conn, facts: &Facts, refusal: &Refusal) -> Response<RespBody> {
    let (why, message) = match refusal {
        Refusal::Secret(rule) => (
            format!("DLP: {rule}"),
            format!("bottle egress proxy: refused: the request contains a secret ({rule})\n"),
        ),
        Refusal::Undecodable(e) => (
            format!("DLP: body not scannable: {}", undecodable_kind(e)),
            format!("bottle egress proxy: refused: {e}\n"),
        ),
    };
    deny(conn, facts, StatusCode::FORBIDDEN, &why, message)
}

/// A short label for the audit; the message itself may quote a header value.
fn undecodable_kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Bomb { .. } => "decompression bomb",
        DecodeError::Corrupt { .. } => "corrupt compressed data",
        DecodeError::Unsupported(_) => "unsupported Content-Encoding",
    }
}
