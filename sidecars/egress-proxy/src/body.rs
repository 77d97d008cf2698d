//! Response bodies: the proxy's own short answers, and upstream bodies counted for the audit.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::audit::{AuditRecord, AuditSink};

/// The body type of every response the proxy gives.
pub type RespBody = BoxBody<Bytes, hyper::Error>;

/// A body holding `data`.
pub fn full(data: impl Into<Bytes>) -> RespBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> RespBody {
    full(Bytes::new())
}

/// An upstream body that counts its bytes and writes its audit record when it ends or is dropped.
pub struct Counted {
    inner: Incoming,
    bytes: u64,
    record: Option<AuditRecord>,
    sink: Arc<dyn AuditSink>,
}

impl Counted {
    /// Wraps `inner`; `record` is written with `bytes_down` filled in.
    pub fn new(inner: Incoming, record: AuditRecord, sink: Arc<dyn AuditSink>) -> Counted {
        Counted {
            inner,
            bytes: 0,
            record: Some(record),
            sink,
        }
    }

    fn finish(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.bytes_down = self.bytes;
            self.sink.record(record);
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.finish();
    }
}
