//! HTTP/1.1 on the wire, for the hand-written client: the answer's head, its framing, chunks.

use std::io::Write as _;
use std::ops::Range;

use super::Endpoint;

/// A request into `r`: request line, host, authorization, `headers`, then the body (typed JSON unless
/// `headers` name a content-type). Pieces copied in, not formatted: `write!` costs a formatter per
/// piece on every request.
pub fn render_request<H: AsRef<str>>(
    r: &mut Vec<u8>,
    ep: &Endpoint,
    method: &str,
    path_and_query: &str,
    headers: &[(H, H)],
    body: Option<&str>,
) {
    r.clear();
    for piece in [method, " ", path_and_query, " HTTP/1.1\r\nhost: ", &ep.host, "\r\n"] {
        r.extend_from_slice(piece.as_bytes());
    }
    if let Some(auth) = &ep.authorization {
        for piece in ["authorization: ", auth, "\r\n"] {
            r.extend_from_slice(piece.as_bytes());
        }
    }
    let mut typed = false;
    for (name, value) in headers {
        let (name, value) = (name.as_ref(), value.as_ref());
        typed |= name.eq_ignore_ascii_case("content-type");
        for piece in [name, ": ", value, "\r\n"] {
            r.extend_from_slice(piece.as_bytes());
        }
    }
    match body {
        Some(b) => {
            if !typed {
                r.extend_from_slice(b"content-type: application/json\r\n");
            }
            r.extend_from_slice(b"content-length: ");
            let _ = write!(r, "{}", b.len());
            r.extend_from_slice(b"\r\n\r\n");
            r.extend_from_slice(b.as_bytes());
        }
        None if matches!(method, "POST" | "PUT" | "PATCH") => r.extend_from_slice(b"content-length: 0\r\n\r\n"),
        None => r.extend_from_slice(b"\r\n"),
    }
}

/// An answer's head as parsed: what the body reader needs, and where the headers some callers read
/// are in the buffer (ranges, so nothing is copied).
#[derive(Debug, Clone)]
pub struct ParsedHead {
    pub status: u16,
    /// Bytes of the head, up to and including its blank line.
    pub len: usize,
    pub framing: Framing,
    pub keep_alive: bool,
    pub content_type: Option<Range<usize>>,
    pub session_id: Option<Range<usize>>,
    /// The header `served_by` named (`[target] served_by_header`).
    pub served_by: Option<Range<usize>>,
}

/// Parse an answer's head from `buf`; `Ok(None)` while it is incomplete. `head_request`: the answer
/// to a HEAD has no body whatever it says. `served_by`: a header to find too (lowercase).
pub fn parse_head(buf: &[u8], head_request: bool, served_by: Option<&str>) -> Result<Option<ParsedHead>, String> {
    // Left uninitialised: filling 48 empty headers first cost a 1.5 KiB memset per answer.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 48];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("a malformed answer: {e}")),
        Ok(httparse::Status::Complete(len)) => len,
    };
    let status = resp.code.unwrap_or(0);
    let mut framing = Framing::UntilClose;
    let mut keep_alive = resp.version == Some(1);
    let mut content_type = None;
    let mut session_id = None;
    let mut served = None;
    let range = |v: &[u8]| {
        let start = v.as_ptr() as usize - buf.as_ptr() as usize;
        start..start + v.len()
    };
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            match n {
                Some(n) => framing = Framing::Length(n),
                None => return Err("a malformed content-length".into()),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if contains_token(h.value, b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, b"close") {
                keep_alive = false;
            } else if contains_token(h.value, b"keep-alive") {
                keep_alive = true;
            }
        } else if h.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(range(h.value));
        } else if h.name.eq_ignore_ascii_case("mcp-session-id") {
            session_id = Some(range(h.value));
        } else if served_by.is_some_and(|name| h.name.eq_ignore_ascii_case(name)) {
            served = Some(range(h.value));
        }
    }
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some(ParsedHead {
        status,
        len,
        framing,
        keep_alive,
        content_type,
        session_id,
        served_by: served,
    }))
}

#[derive(Debug, Clone, Copy)]
pub enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

pub fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    Incomplete,
    Malformed,
    /// Data at `start..start + len` of the slice; the next chunk starts at `next`.
    Data {
        start: usize,
        len: usize,
        next: usize,
    },
    Last,
}

pub fn parse_chunk(buf: &[u8]) -> Chunk {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() > 1024 {
            Chunk::Malformed
        } else {
            Chunk::Incomplete
        };
    };
    let line = &buf[..eol];
    let size_part = line.split(|b| *b == b';').next().unwrap_or(line).trim_ascii();
    let Some(size) = std::str::from_utf8(size_part)
        .ok()
        .and_then(|s| usize::from_str_radix(s, 16).ok())
    else {
        return Chunk::Malformed;
    };
    let start = eol + 2;
    if size == 0 {
        // Trailers end with an empty line; without trailers that is the CRLF right here.
        let rest = &buf[start..];
        return if rest.starts_with(b"\r\n") || rest.windows(4).any(|w| w == b"\r\n\r\n") {
            Chunk::Last
        } else {
            Chunk::Incomplete
        };
    }
    // A size no body could have (`ffffffffffffffff`) is malformed, not an overflow.
    let Some(end) = start.checked_add(size).and_then(|e| e.checked_add(2)) else {
        return Chunk::Malformed;
    };
    if buf.len() < end {
        return Chunk::Incomplete;
    }
    if &buf[start + size..start + size + 2] != b"\r\n" {
        return Chunk::Malformed;
    }
    Chunk::Data {
        start,
        len: size,
        next: end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_parse_incrementally() {
        assert_eq!(parse_chunk(b"5\r\nhel"), Chunk::Incomplete);
        assert_eq!(
            parse_chunk(b"5\r\nhello\r\n0\r\n\r\n"),
            Chunk::Data {
                start: 3,
                len: 5,
                next: 10
            }
        );
        assert_eq!(parse_chunk(b"0\r\n\r\n"), Chunk::Last);
        assert_eq!(parse_chunk(b"0\r\n"), Chunk::Incomplete);
        assert_eq!(
            parse_chunk(b"a;ext=1\r\n0123456789\r\n"),
            Chunk::Data {
                start: 9,
                len: 10,
                next: 21
            }
        );
        assert_eq!(parse_chunk(b"zz\r\n"), Chunk::Malformed);
        assert_eq!(parse_chunk(b"2\r\nabXX"), Chunk::Malformed);
    }

    #[test]
    fn header_tokens() {
        assert!(contains_token(b"keep-alive, Close", b"close"));
        assert!(!contains_token(b"closed", b"close"));
    }

    mod generated {
        use proptest::prelude::*;

        use super::super::*;

        /// `body` sent chunked in pieces of `sizes` (cycled), with a chunk extension when `ext`.
        fn chunked(body: &[u8], sizes: &[usize], ext: bool) -> Vec<u8> {
            let mut out = Vec::new();
            let mut rest = body;
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at((*size).min(rest.len()));
                out.extend_from_slice(format!("{:x}{}\r\n", piece.len(), if ext { ";x=1" } else { "" }).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
                rest = tail;
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }

        /// Decode a whole chunked body as the request loop walks it.
        fn decode(buf: &[u8]) -> Result<Vec<u8>, String> {
            let mut out = Vec::new();
            let mut pos = 0;
            loop {
                match parse_chunk(&buf[pos..]) {
                    Chunk::Data { start, len, next } => {
                        out.extend_from_slice(&buf[pos + start..pos + start + len]);
                        pos += next;
                    }
                    Chunk::Last => return Ok(out),
                    other => return Err(format!("{other:?} at {pos}")),
                }
            }
        }

        proptest! {
            #[test]
            fn prop_any_bytes_are_a_head_a_chunk_or_an_error_never_a_panic(
                bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            ) {
                let _ = parse_head(&bytes, false, Some("x-served-by"));
                let _ = parse_head(&bytes, true, None);
                let _ = parse_chunk(&bytes);
            }

            #[test]
            fn prop_huge_chunk_sizes_are_malformed(hex in "[0-9a-fA-F]{16,40}") {
                let line = format!("{hex}\r\nabc");
                prop_assert!(matches!(parse_chunk(line.as_bytes()), Chunk::Malformed | Chunk::Incomplete));
            }

            #[test]
            fn prop_chunked_bodies_decode_to_what_was_sent_and_every_prefix_waits(
                body in proptest::collection::vec(any::<u8>(), 0..3000),
                sizes in proptest::collection::vec(1usize..700, 1..8),
                ext in any::<bool>(),
            ) {
                let wire = chunked(&body, &sizes, ext);
                prop_assert_eq!(decode(&wire).unwrap(), body);
                // Cut anywhere, what has arrived is a chunk or "more to come", never malformed.
                for cut in 0..wire.len() {
                    prop_assert!(!matches!(parse_chunk(&wire[..cut]), Chunk::Malformed), "cut at {}", cut);
                }
            }
        }
    }
}
