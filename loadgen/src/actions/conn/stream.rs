//! An answer read as it comes, for exchanges that are not one request and one whole answer: an MCP
//! session's replies, which may be an event stream, and its held `GET` stream. `open` sends the
//! request and reads the head; `next_data` hands out the body's bytes as they arrive (chunked
//! framing decoded), through the connection's one read buffer, so a stream of any length costs
//! the buffer's 4 KiB and no more.

use std::ops::Range;

use super::wire::{Framing, ParsedHead, parse_head};
use super::{Answer, Broken, Conn, Endpoint, write_request};
use crate::data::FailureKind;

/// Where the body being streamed is: `read[pos..filled]` is received and not yet handed out.
#[derive(Debug, Default)]
pub(super) struct Reading {
    active: bool,
    framing: Option<Framing>,
    keep_alive: bool,
    pos: usize,
    filled: usize,
    /// Length framing: bytes left; chunked: bytes left in the current chunk.
    left: usize,
    /// Chunked: the CRLF after a chunk's data is still to come.
    chunk_crlf: bool,
}

/// An answer's head: its status and where the headers the caller reads are in the buffer
/// (`Conn::head_value`, valid until the first `next_data`).
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub content_type: Option<Range<usize>>,
    pub session_id: Option<Range<usize>>,
}

const MAX_SIZE_LINE: usize = 1024;

/// A stream's first read buffer: its head and events are small, and thousands of held streams
/// each keep theirs (it grows like any other when an event needs more).
const STREAM_READ: usize = 1024;

impl Conn {
    /// Send a request (with `headers` besides host and authorization) and read the answer's head.
    /// The body is then read with `next_data`; a connection used before that fails unanswered is
    /// retried once on a fresh one, as `send` does.
    pub async fn open(
        &mut self,
        ep: &Endpoint,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Head, Answer> {
        self.render(ep, method, path_and_query, headers, body);
        self.reading = Reading::default();
        self.with_retry(ep, async |c| c.send_and_read_head().await).await
    }

    async fn send_and_read_head(&mut self) -> Result<Head, Broken> {
        let stream = self.stream.as_mut().expect("connected");
        if let Err(e) = write_request(stream, &self.request).await {
            return Err(Broken::Unanswered(format!("writing the request: {e}")));
        }
        if self.read.len() < STREAM_READ {
            self.read.resize(STREAM_READ, 0);
        }
        let mut filled = 0;
        let head: ParsedHead = loop {
            let n = Self::fill(stream, &mut self.read, filled).await?;
            if n == 0 {
                return Err(if filled == 0 {
                    Broken::Unanswered("connection closed before an answer".into())
                } else {
                    Broken::Protocol("connection closed inside the answer's head".into())
                });
            }
            filled += n;
            if let Some(head) =
                parse_head(&self.read[..filled], false, self.served_by_header.as_deref()).map_err(Broken::Protocol)?
            {
                break head;
            }
        };
        self.served_by.keep(head.served_by.clone().map(|r| &self.read[r]));
        self.reading = Reading {
            active: true,
            framing: Some(head.framing),
            keep_alive: head.keep_alive,
            pos: head.len,
            filled,
            left: match head.framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            chunk_crlf: false,
        };
        Ok(Head {
            status: head.status,
            content_type: head.content_type,
            session_id: head.session_id,
        })
    }

    /// A header's value from the head `open` answered.
    pub fn head_value(&self, range: &Range<usize>) -> &[u8] {
        &self.read[range.clone()]
    }

    /// The body's next bytes as they arrive; `None` at its end (the connection is then ready for
    /// the next request, or closed when the server said so).
    pub async fn next_data(&mut self) -> Result<Option<&[u8]>, (FailureKind, String)> {
        match self.next_range().await {
            Ok(Some(r)) => Ok(Some(&self.read[r])),
            Ok(None) => {
                let keep = self.reading.keep_alive && !matches!(self.reading.framing, Some(Framing::UntilClose));
                self.reading.active = false;
                if !keep {
                    self.close();
                }
                Ok(None)
            }
            Err(broken) => {
                self.reading.active = false;
                self.close();
                Err(broken.failure())
            }
        }
    }

    /// Whether a body is being read and not finished (the connection cannot take a request).
    pub fn mid_answer(&self) -> bool {
        self.reading.active
    }

    /// Drop the connection now, with a reset when `rst`; the next request connects afresh.
    pub fn cut(&mut self, rst: bool) {
        if let Some(stream) = self.close()
            && rst
        {
            // Closing this socket then sends a reset instead of a FIN.
            let _ = stream.tcp().set_zero_linger();
        }
        self.reading.active = false;
    }

    /// Forget the connection (after a timeout mid-answer, say): never reuse it.
    pub fn discard(&mut self) {
        self.cut(false);
    }

    async fn refill(&mut self) -> Result<(), Broken> {
        let r = &mut self.reading;
        if r.pos == r.filled {
            r.pos = 0;
            r.filled = 0;
        } else if r.filled == self.read.len() && r.pos > 0 {
            self.read.copy_within(r.pos..r.filled, 0);
            r.filled -= r.pos;
            r.pos = 0;
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| Broken::Protocol("not connected".into()))?;
        let got = Self::fill(stream, &mut self.read, r.filled).await?;
        if got == 0 {
            return Err(Broken::Protocol(
                match r.framing {
                    Some(Framing::Chunked) => "connection closed inside a chunked body",
                    _ => "connection closed inside the answer's body",
                }
                .into(),
            ));
        }
        r.filled += got;
        Ok(())
    }

    async fn next_range(&mut self) -> Result<Option<Range<usize>>, Broken> {
        if !self.reading.active {
            return Ok(None);
        }
        match self.reading.framing {
            None => Ok(None),
            Some(Framing::Length(_)) => {
                if self.reading.left == 0 {
                    return Ok(None);
                }
                if self.reading.pos == self.reading.filled {
                    self.refill().await?;
                }
                let r = &mut self.reading;
                let take = r.left.min(r.filled - r.pos);
                r.pos += take;
                r.left -= take;
                Ok(Some(r.pos - take..r.pos))
            }
            Some(Framing::UntilClose) => {
                if self.reading.pos == self.reading.filled {
                    let stream = self
                        .stream
                        .as_mut()
                        .ok_or_else(|| Broken::Protocol("not connected".into()))?;
                    self.reading.pos = 0;
                    let got = Self::fill(stream, &mut self.read, 0).await?;
                    if got == 0 {
                        return Ok(None);
                    }
                    self.reading.filled = got;
                }
                let r = &mut self.reading;
                let start = r.pos;
                r.pos = r.filled;
                Ok(Some(start..r.filled))
            }
            Some(Framing::Chunked) => loop {
                let r = &mut self.reading;
                if r.left > 0 {
                    if r.pos < r.filled {
                        let take = r.left.min(r.filled - r.pos);
                        r.pos += take;
                        r.left -= take;
                        r.chunk_crlf = r.left == 0;
                        return Ok(Some(r.pos - take..r.pos));
                    }
                } else if r.chunk_crlf {
                    if r.filled - r.pos >= 2 {
                        if &self.read[r.pos..r.pos + 2] != b"\r\n" {
                            return Err(Broken::Protocol("a malformed chunked body".into()));
                        }
                        r.pos += 2;
                        r.chunk_crlf = false;
                        continue;
                    }
                } else {
                    let pending = &self.read[r.pos..r.filled];
                    if let Some(eol) = pending.windows(2).position(|w| w == b"\r\n") {
                        let line = &pending[..eol];
                        let size_part = line.split(|b| *b == b';').next().unwrap_or(line).trim_ascii();
                        let size = std::str::from_utf8(size_part)
                            .ok()
                            .and_then(|s| usize::from_str_radix(s, 16).ok())
                            .ok_or_else(|| Broken::Protocol("a malformed chunked body".into()))?;
                        if size == 0 {
                            // The last chunk; trailers, if any, end with an empty line.
                            let rest = &pending[eol + 2..];
                            if rest.starts_with(b"\r\n") || rest.windows(4).any(|w| w == b"\r\n\r\n") {
                                r.framing = None;
                                return Ok(None);
                            }
                        } else {
                            r.pos += eol + 2;
                            r.left = size;
                            continue;
                        }
                    } else if pending.len() > MAX_SIZE_LINE {
                        return Err(Broken::Protocol("a malformed chunked body".into()));
                    }
                }
                self.refill().await?;
            },
        }
    }
}
