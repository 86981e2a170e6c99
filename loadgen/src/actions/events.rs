//! Server-sent events as the HTML standard frames them, parsed incrementally from a body's bytes as
//! they arrive: lines end with LF, CRLF or CR (a CRLF split across reads is one ending), `data:`
//! lines join with LF, `event:` names the event (`message` when unnamed), comments and other fields
//! are skipped, and a blank line dispatches. An event bigger than the limit, or whose data is not
//! UTF-8, is an error rather than unbounded memory or a panic. The buffers are kept between
//! sessions, so a warm parser allocates nothing.

/// The largest event (its data and pending line) accepted.
pub const MAX_EVENT: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct EventParser {
    /// The current line when it spans reads.
    line: Vec<u8>,
    data: Vec<u8>,
    event: Vec<u8>,
    has_data: bool,
    /// The last byte was a CR: an LF right after it ends nothing more.
    after_cr: bool,
}

impl EventParser {
    /// Forget everything pending: a new stream starts.
    pub fn reset(&mut self) {
        self.line.clear();
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.after_cr = false;
    }

    /// Give back buffers a large event grew past `keep` bytes (between events only: nothing pending is
    /// lost), so a user holding a quiet stream after one big reply does not hold its size too.
    pub fn trim(&mut self, keep: usize) {
        for buf in [&mut self.line, &mut self.data, &mut self.event] {
            if buf.is_empty() && buf.capacity() > keep {
                *buf = Vec::new();
            }
        }
    }

    /// Whether an event has begun and not been dispatched (a stream ending now cut it short).
    pub fn pending(&self) -> bool {
        self.has_data || !self.line.is_empty()
    }

    /// Feed bytes; `on_event(name, data)` is called for each complete event and may stop the parse
    /// by answering `Some`, which `feed` then answers (the rest of `bytes` is left unread).
    pub fn feed<T>(
        &mut self,
        mut bytes: &[u8],
        mut on_event: impl FnMut(&[u8], &str) -> Option<T>,
    ) -> Result<Option<T>, Refused> {
        // An empty read leaves a CR pending: the LF that may follow it comes in a later one.
        if bytes.is_empty() {
            return Ok(None);
        }
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while !bytes.is_empty() {
            let Some(end) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                if self.line.len() + bytes.len() + self.data.len() > MAX_EVENT {
                    return Err(Refused::TooLarge);
                }
                self.line.extend_from_slice(bytes);
                return Ok(None);
            };
            let terminator = bytes[end];
            let dispatched = if self.line.is_empty() {
                self.line_done(&bytes[..end], &mut on_event)?
            } else {
                if self.line.len() + end + self.data.len() > MAX_EVENT {
                    return Err(Refused::TooLarge);
                }
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&bytes[..end]);
                let done = self.line_done(&line, &mut on_event);
                line.clear();
                self.line = line;
                done?
            };
            bytes = &bytes[end + 1..];
            if terminator == b'\r' {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            if dispatched.is_some() {
                return Ok(dispatched);
            }
        }
        Ok(None)
    }

    fn line_done<T>(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(&[u8], &str) -> Option<T>,
    ) -> Result<Option<T>, Refused> {
        if line.is_empty() {
            if !self.has_data {
                self.event.clear();
                return Ok(None);
            }
            let data = std::str::from_utf8(&self.data).map_err(|e| Refused::NotUtf8(e.to_string()))?;
            let name: &[u8] = if self.event.is_empty() { b"message" } else { &self.event };
            let out = on_event(name, data);
            self.data.clear();
            self.event.clear();
            self.has_data = false;
            return Ok(out);
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > MAX_EVENT {
                    return Err(Refused::TooLarge);
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            _ => {}
        }
        Ok(None)
    }
}

/// Why the parser stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// An event past [`MAX_EVENT`].
    TooLarge,
    /// An event's data that is not UTF-8.
    NotUtf8(String),
}

impl Refused {
    pub fn kind(&self) -> crate::data::FailureKind {
        match self {
            Refused::TooLarge => crate::data::FailureKind::TooLarge,
            Refused::NotUtf8(_) => crate::data::FailureKind::Protocol,
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooLarge => write!(f, "an event larger than {} KiB", MAX_EVENT >> 10),
            Refused::NotUtf8(e) => write!(f, "an event's data is not UTF-8 ({e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event of `chunks` fed one after another, as (name, data).
    fn events(chunks: &[&[u8]]) -> Result<Vec<(String, String)>, String> {
        let mut p = EventParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            p.feed(chunk, |name, data| {
                out.push((String::from_utf8_lossy(name).into_owned(), data.to_owned()));
                None::<()>
            })
            .map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    #[test]
    fn frames_split_anywhere_parse_the_same() {
        let whole: &[u8] =
            b": comment\r\nevent: message\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\nid: 3\rdata: z\r\r";
        let expected = vec![
            ("message".to_owned(), "{\"a\":1}".to_owned()),
            ("message".to_owned(), "x\ny".to_owned()),
            ("message".to_owned(), "z".to_owned()),
        ];
        assert_eq!(events(&[whole]).unwrap(), expected);
        for cut in 1..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(events(&[a, b]).unwrap(), expected, "split at {cut}");
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(events(&bytes).unwrap(), expected, "one byte at a time");
    }

    #[test]
    fn named_events_and_stopping_early() {
        let mut p = EventParser::default();
        let got = p
            .feed(b"event: endpoint\ndata: /m\n\ndata: 1\n\ndata: 2\n\n", |name, data| {
                (name == b"message").then(|| data.to_owned())
            })
            .unwrap();
        assert_eq!(got.as_deref(), Some("1"));
    }

    #[test]
    fn bad_events_are_errors_not_panics_or_memory() {
        let e = events(&[b"data: \xff\xfe\n\n"]).unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
        let big = vec![b'a'; 600 << 10];
        let mut p = EventParser::default();
        p.feed(b"data: ", |_, _| None::<()>).unwrap();
        p.feed(&big, |_, _| None::<()>).unwrap();
        let e = p.feed(&big, |_, _| None::<()>).unwrap_err();
        assert_eq!(e, Refused::TooLarge);
        assert!(e.to_string().contains("larger than 1024 KiB"), "{e}");
        let mut p = EventParser::default();
        p.feed(b"data: half", |_, _| None::<()>).unwrap();
        assert!(p.pending(), "a frame cut short is pending");
    }

    #[test]
    fn an_empty_read_between_cr_and_lf_keeps_them_one_line_ending() {
        assert_eq!(
            events(&[b"event: a\r", b"", b"\ndata: x\r\n\r\n"]).unwrap(),
            [("a".to_owned(), "x".to_owned())]
        );
    }

    mod generated {
        use proptest::prelude::*;

        use super::events;

        /// One event: its name (empty: unnamed) and its data lines.
        fn event() -> impl Strategy<Value = (String, Vec<String>)> {
            ("[a-z]{0,8}", proptest::collection::vec("[ -~&&[^\r\n]]{0,24}", 1..4))
        }

        proptest! {
            #[test]
            fn prop_events_split_at_any_two_points_parse_as_whole(
                evs in proptest::collection::vec(event(), 0..5),
                eol in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
                cuts in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            ) {
                let mut wire = String::new();
                let mut expected = Vec::new();
                for (name, lines) in &evs {
                    if !name.is_empty() {
                        wire += &format!("event: {name}{eol}");
                    }
                    for line in lines {
                        wire += &format!("data: {line}{eol}");
                    }
                    wire += eol;
                    let name = if name.is_empty() { "message" } else { name };
                    // The one space after the colon is the separator, not data.
                    let data: Vec<&str> = lines.iter().map(String::as_str).collect();
                    expected.push((name.to_owned(), data.join("\n")));
                }
                let bytes = wire.as_bytes();
                prop_assert_eq!(events(&[bytes]).unwrap(), expected.clone());
                let (mut a, mut b) = (cuts.0.index(bytes.len() + 1), cuts.1.index(bytes.len() + 1));
                if a > b {
                    std::mem::swap(&mut a, &mut b);
                }
                prop_assert_eq!(events(&[&bytes[..a], &bytes[a..b], &bytes[b..]]).unwrap(), expected);
            }

            #[test]
            fn prop_any_bytes_in_any_pieces_are_events_or_an_error(
                bytes in proptest::collection::vec(any::<u8>(), 0..1024),
                cut in any::<prop::sample::Index>(),
            ) {
                let at = cut.index(bytes.len() + 1);
                let _ = events(&[&bytes[..at], &bytes[at..]]);
            }
        }
    }
}
