//! Websocket traffic after an upgrade, scanned in both directions.
//!
//! Frames are parsed as they pass (across reads of any size), client payloads unmasked, and the
//! payload stream scanned with the same views and overlap as request bodies. Agent → upstream:
//! a secret (or a route token off its route) closes both connections before the read that
//! completes it is forwarded, so the upstream never receives the whole secret. Upstream → agent:
//! any route token (an echo of an injected credential) closes both connections likewise.
//! Compression extensions are stripped from the upgrade request, so payloads are never deflated.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use bottle_secret_scan::stream::StreamScanner;

use crate::dlp::{Dlp, Verdict};

/// Where the frame parser is.
#[derive(Debug)]
enum Stage {
    /// Reading a frame header; the bytes so far.
    Header(Vec<u8>),
    /// Inside a payload: bytes left, the mask (if any) and the position in it.
    Payload {
        left: u64,
        mask: Option<[u8; 4]>,
        at: usize,
    },
}

/// Extracts (unmasked) payload bytes from a stream of websocket frames.
#[derive(Debug)]
pub struct FrameParser {
    stage: Stage,
}

impl Default for FrameParser {
    fn default() -> Self {
        FrameParser {
            stage: Stage::Header(Vec::new()),
        }
    }
}

/// The header's length once its first two bytes are known.
fn header_len(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

impl FrameParser {
    /// The payload bytes in `data`, unmasked, in order.
    pub fn feed(&mut self, mut data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        while !data.is_empty() {
            match &mut self.stage {
                Stage::Header(head) => {
                    head.push(data[0]);
                    data = &data[1..];
                    if head.len() >= 2 && head.len() == header_len(head[1]) {
                        self.stage = parse_header(head);
                    }
                }
                Stage::Payload { left, mask, at } => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                    for &b in &data[..n] {
                        out.push(match mask {
                            Some(m) => b ^ m[*at % 4],
                            None => b,
                        });
                        *at += 1;
                    }
                    *left -= n as u64;
                    data = &data[n..];
                }
            }
            if matches!(self.stage, Stage::Payload { left: 0, .. }) {
                self.stage = Stage::Header(Vec::new());
            }
        }
        out
    }
}

fn parse_header(head: &[u8]) -> Stage {
    let len7 = head[1] & 0x7f;
    let (left, rest) = match len7 {
        126 => (
            u64::from(u16::from_be_bytes([head[2], head[3]])),
            &head[4..],
        ),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[2..10]);
            (u64::from_be_bytes(b), &head[10..])
        }
        n => (u64::from(n), &head[2..]),
    };
    let mask = (head[1] & 0x80 != 0).then(|| [rest[0], rest[1], rest[2], rest[3]]);
    Stage::Payload { left, mask, at: 0 }
}

/// How a websocket relay ended.
#[derive(Debug, Default)]
pub struct RelayEnd {
    /// Bytes forwarded agent → upstream.
    pub up: u64,
    /// Bytes forwarded upstream → agent.
    pub down: u64,
    /// Why it was closed by the DLP (a rule id), if it was.
    pub refused: Option<String>,
}

/// Relays one direction, scanning; returns bytes forwarded and a refusal if one cut it.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mut scanner: StreamScanner,
    judge: impl Fn(&[Vec<bottle_secret_scan::Finding>]) -> Option<String>,
) -> (u64, Option<String>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut parser = FrameParser::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let payload = parser.feed(&buf[..n]);
        // No content coding inside frames (extensions are stripped), so this cannot fail.
        let found = scanner.feed(&payload).unwrap_or_default();
        if let Some(rule) = judge(&found) {
            return (total, Some(rule));
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        total += n as u64;
    }
    let _ = to.shutdown().await;
    (total, None)
}

/// Relays a websocket between the agent (`client`) and `host` (`upstream`) until either side
/// ends or the DLP closes it.
pub async fn relay<C, U>(client: C, upstream: U, dlp: Arc<Dlp>, host: String) -> RelayEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (client_read, client_write) = tokio::io::split(client);
    let (upstream_read, upstream_write) = tokio::io::split(upstream);
    let scanner = || dlp.stream_scanner();
    let up = pump(client_read, upstream_write, scanner(), |found| {
        match dlp.verdict(&host, found) {
            Verdict::Block(rule) => Some(rule),
            Verdict::Clean | Verdict::Warn(_) => None,
        }
    });
    let down = pump(upstream_read, client_write, scanner(), |found| {
        dlp.inbound_verdict(found)
            .map(|rule| format!("{rule} (from upstream)"))
    });
    tokio::pin!(up, down);
    // Either direction ending ends the relay (the other half is dropped, closing it).
    let mut end = RelayEnd::default();
    tokio::select! {
        (n, refused) = &mut up => { end.up = n; end.refused = refused; }
        (n, refused) = &mut down => { end.down = n; end.refused = refused; }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![0x81];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if let Some(k) = mask {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        } else {
            f.extend_from_slice(payload);
        }
        f
    }

    #[test]
    fn payloads_are_unmasked_across_any_split() {
        let long = vec![b'z'; 70_000];
        let mut stream = frame(b"hello", Some([1, 2, 3, 4]));
        stream.extend(frame(&vec![b'y'; 300], None));
        stream.extend(frame(&long, Some([9, 8, 7, 6])));
        let mut want = b"hello".to_vec();
        want.extend(vec![b'y'; 300]);
        want.extend(&long);
        for cut in [1, 2, 3, 7, 100, 5000] {
            let mut p = FrameParser::default();
            let mut got = Vec::new();
            for piece in stream.chunks(cut) {
                got.extend(p.feed(piece));
            }
            assert!(got == want, "cut {cut}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut p = FrameParser::default();
        p.feed(&[0xff; 64]);
        p.feed(&[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        p.feed(&[0u8; 100]);
    }
}
