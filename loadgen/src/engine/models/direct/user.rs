//! One load thread's share of the users, each a connection driven by readiness: connect, write the
//! request, read the answer (its head parsed in place, its body framed by length, chunks or close),
//! record, pick the next. Timeouts, connect pauses, the wanted count and the stops are looked at on a
//! scan every [`SCAN`], not per request.

use std::io::{ErrorKind, Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::Shared;
use super::io::{self, Fd, recv, send};
use crate::actions::conn::wire::{self, Chunk, Framing};
use crate::actions::conn::{INITIAL_READ, KEEP_BUFFER, MAX_ANSWER};
use crate::data::FailureKind;
use crate::engine::models::{Backoff, rng_for};
use crate::record::{Outcome, Sample};

/// How often timeouts, pauses, the wanted count and the stops are looked at.
const SCAN: Duration = Duration::from_millis(10);
/// Reads of one answer per turn: a fast long answer then waits its next turn (`Loop::more`) instead of
/// holding the thread, its other users and the scan.
const READS_PER_TURN: u32 = 16;

/// Where a user is.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Not running (above the wanted count, or done).
    Off,
    /// After a connect failure, until then.
    Paused(Instant),
    Connecting,
    Writing,
    Reading(Body),
}

/// How much of the answer is read.
#[derive(Debug, Clone, Copy)]
enum Body {
    Head,
    /// Body bytes still to come; the buffer is read from its start.
    Length(usize),
    /// Chunks from `read[pos..filled]` on.
    Chunked {
        pos: usize,
    },
    UntilClose,
}

/// Why an exchange failed (as `conn::Broken`: an unanswered one on a used connection is tried again).
enum Broken {
    Unanswered(String),
    Failed(FailureKind, String),
}

struct User {
    /// The user's index in the whole run.
    index: usize,
    rng: fastrand::Rng,
    backoff: Backoff,
    stream: Option<TcpStream>,
    /// https: the connection's TLS, its handshake driven by the same readiness as its requests.
    tls: Option<Box<rustls::ClientConnection>>,
    state: State,
    /// The connection has carried an exchange to its answer (so a failure on it before any byte of the
    /// next answer may be a stale keep-alive; on a new connection it is not).
    used: bool,
    /// When the current connect began (its timeout counts from there).
    connecting_since: Instant,
    retried: bool,
    /// The action under way, when it started, its request's bytes written.
    action: usize,
    started: Instant,
    written: usize,
    read: Vec<u8>,
    filled: usize,
    /// Answer bytes read in this exchange.
    bytes: u64,
    status: u16,
    keep_alive: bool,
    in_flight: bool,
}

pub(super) struct Loop<'a> {
    shared: &'a Shared,
    poll: Poll,
    users: Vec<User>,
    thread: usize,
    threads: usize,
    running: usize,
    /// Users whose answer had more to read when their turn ended, and whether their peer had hung up
    /// (epoll will not say again: they are read on before the next wait), and its spare.
    more: Vec<(usize, bool)>,
    more_spare: Vec<(usize, bool)>,
}

impl<'a> Loop<'a> {
    pub(super) fn new(shared: &'a Shared, poll: Poll, thread: usize, threads: usize) -> Loop<'a> {
        Loop {
            shared,
            poll,
            users: Vec::new(),
            thread,
            threads,
            running: 0,
            more: Vec::new(),
            more_spare: Vec::new(),
        }
    }

    /// Until the controller is done and every user here is off, or the hard stop.
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_scan = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_scan {
                if !self.scan(now) {
                    return;
                }
                next_scan = now + SCAN;
            }
            let wait = if self.more.is_empty() {
                next_scan.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!("the direct loop's epoll: {e}");
                    self.cut_all();
                    return;
                }
            }
            for event in &events {
                let hung_up = event.is_read_closed() || event.is_error();
                self.on_ready(event.token().0, event.is_readable() || hung_up, hung_up);
            }
            std::mem::swap(&mut self.more, &mut self.more_spare);
            for i in 0..self.more_spare.len() {
                let (u, hung_up) = self.more_spare[i];
                if matches!(self.users[u].state, State::Reading(_)) {
                    self.read_answer(u, hung_up);
                }
            }
            self.more_spare.clear();
        }
    }

    /// Timeouts, pauses, the wanted count, the stops. False: this loop is done.
    fn scan(&mut self, now: Instant) -> bool {
        let shared = self.shared;
        if shared.cut.load(Ordering::Relaxed) {
            self.cut_all();
            return false;
        }
        let want = shared.target.load(Ordering::Relaxed);
        // This thread's users below the wanted count: index = thread + k × threads.
        let mine = want.saturating_sub(self.thread).div_ceil(self.threads);
        while self.users.len() < mine {
            let index = self.thread + self.users.len() * self.threads;
            self.users.push(User::new(rng_for(&shared.ctx, index), index));
        }
        // Room for every user in the turn lists, so adding to them never allocates.
        // (Twice: a user read on from the last turn may end this one unfinished again.)
        let room = 2 * self.users.len();
        self.more.reserve(room.saturating_sub(self.more.len()));
        self.more_spare.reserve(room.saturating_sub(self.more_spare.len()));
        let timeout = shared.ctx.env.endpoint.timeout;
        let connect_timeout = shared.ctx.env.endpoint.connect_timeout;
        for u in 0..self.users.len() {
            let user = &self.users[u];
            match user.state {
                State::Off if user.index < want && !shared.over.load(Ordering::Relaxed) => {
                    self.running += 1;
                    shared.ctx.env.recorder.gauges.users.fetch_add(1, Ordering::Relaxed);
                    self.users[u].state = State::Paused(now);
                    self.next(u, now);
                }
                State::Paused(_) if shared.over.load(Ordering::Relaxed) || user.index >= want => self.leave(u),
                State::Paused(until) if now >= until => self.next(u, now),
                // The TLS handshake is part of connecting, as on tasks: within the connect timeout.
                State::Connecting | State::Writing | State::Reading(_)
                    if (matches!(user.state, State::Connecting) || user.handshaking())
                        && now.duration_since(user.connecting_since) > connect_timeout =>
                {
                    self.fail(u, Broken::Failed(FailureKind::Connect, "connect timed out".into()))
                }
                State::Writing | State::Reading(_) | State::Connecting
                    if now.duration_since(user.started) > timeout =>
                {
                    self.fail(u, Broken::Failed(FailureKind::Timeout, "timed out".into()))
                }
                _ => {}
            }
        }
        !(shared.over.load(Ordering::Relaxed) && self.running == 0)
    }

    /// Start user `u`'s next action, or let it go when the load no longer wants it.
    fn next(&mut self, u: usize, now: Instant) {
        let shared = self.shared;
        let ctx = &shared.ctx;
        let user = &mut self.users[u];
        let wanted = user.index < shared.target.load(Ordering::Relaxed);
        if !wanted || ctx.env.load_ended.load(Ordering::Relaxed) || !ctx.budget.take() {
            self.leave(u);
            return;
        }
        user.action = ctx.pick(&mut user.rng);
        user.started = now;
        user.retried = false;
        user.in_flight = true;
        ctx.env.recorder.gauges.in_flight.add(1);
        self.send(u);
    }

    /// Write the request, connecting first when there is no connection.
    fn send(&mut self, u: usize) {
        let user = &mut self.users[u];
        user.bytes = 0;
        user.filled = 0;
        user.written = 0;
        if user.stream.is_some() {
            user.state = State::Writing;
            self.write(u);
            return;
        }
        let connected = TcpStream::connect(self.shared.ctx.env.endpoint.addr).and_then(|mut s| {
            self.poll
                .registry()
                .register(&mut s, Token(u), Interest::READABLE | Interest::WRITABLE)?;
            Ok(s)
        });
        let tls = match &self.shared.ctx.env.endpoint.tls {
            Some(tls) => match tls.client() {
                Ok(mut client) => {
                    // The request is handed over whole (rustls holds 64 KiB by default).
                    client.set_buffer_limit(None);
                    Some(Box::new(client))
                }
                Err(e) => return self.fail(u, Broken::Failed(FailureKind::Connect, format!("TLS: {e}"))),
            },
            None => None,
        };
        match connected {
            Ok(s) => {
                user.stream = Some(s);
                user.tls = tls;
                user.used = false;
                user.connecting_since = Instant::now();
                user.state = State::Connecting;
            }
            Err(e) => self.fail(u, Broken::Failed(FailureKind::Connect, format!("connect: {e}"))),
        }
    }

    /// `hung_up`: the peer's end (or an error) came with this readiness, so reading goes on to it.
    /// An answer readable while the request was still being written (an early 413) is read once the
    /// writing ends: the edge that said so will not come again.
    fn on_ready(&mut self, u: usize, readable: bool, hung_up: bool) {
        let Some(user) = self.users.get_mut(u) else {
            return;
        };
        match user.state {
            State::Connecting => {
                let stream = user.stream.as_ref().expect("connecting");
                match stream.take_error() {
                    Ok(Some(e)) | Err(e) => {
                        return self.fail(u, Broken::Failed(FailureKind::Connect, format!("connect: {e}")));
                    }
                    Ok(None) => {}
                }
                // Not yet connected: a later event says when.
                if stream.peer_addr().is_err() {
                    return;
                }
                let _ = stream.set_nodelay(true);
                user.state = State::Writing;
                self.write(u);
            }
            State::Writing => self.write(u),
            State::Reading(_) => return self.read_answer(u, hung_up),
            State::Off | State::Paused(_) => return,
        }
        if readable && matches!(self.users[u].state, State::Reading(_)) {
            self.read_answer(u, hung_up);
        }
    }

    /// Read on user `u`'s answer, over TLS or plain.
    fn read_answer(&mut self, u: usize, hung_up: bool) {
        if self.users[u].tls.is_some() {
            self.read_tls(u, hung_up);
        } else {
            self.read(u, hung_up);
        }
    }

    fn write(&mut self, u: usize) {
        let request = &self.shared.requests[self.users[u].action].bytes;
        let user = &mut self.users[u];
        let stream = user.stream.as_mut().expect("connected");
        if let Some(tls) = user.tls.as_deref_mut() {
            // Taken whole (kept until the handshake is done, then sealed), then sent as records.
            if user.written == 0 {
                if let Err(e) = tls.writer().write_all(request) {
                    return self.fail(u, Broken::Unanswered(format!("writing the request: {e}")));
                }
                user.written = request.len();
            }
            match io::flush(tls, stream.as_raw_fd()) {
                Ok(true) => user.state = State::Reading(Body::Head),
                Ok(false) => {}
                Err(e) => self.fail(u, Broken::Unanswered(format!("writing the request: {e}"))),
            }
            return;
        }
        while user.written < request.len() {
            match send(stream.as_raw_fd(), &request[user.written..]) {
                Ok(n) => user.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.fail(u, Broken::Unanswered(format!("writing the request: {e}"))),
            }
        }
        // The answer cannot be there yet: its readiness says when (no read that would block).
        user.state = State::Reading(Body::Head);
    }

    /// Read what is there and take the answer as far as it goes (to the end of the stream when the peer
    /// `hung_up`: no later readiness would say so).
    fn read(&mut self, u: usize, hung_up: bool) {
        for _ in 0..READS_PER_TURN {
            if let Err(broken) = self.users[u].room_to_read() {
                return self.fail(u, broken);
            }
            let user = &mut self.users[u];
            let space = user.read.len() - user.filled;
            let stream = user.stream.as_mut().expect("connected");
            let n = match recv(stream.as_raw_fd(), &mut user.read[user.filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return self.fail(
                        u,
                        Broken::Failed(FailureKind::Protocol, format!("reading the answer: {e}")),
                    );
                }
            };
            if n == 0 {
                return self.closed(u);
            }
            user.bytes += n as u64;
            user.filled += n;
            match self.take(u) {
                Ok(true) => return self.answered(u),
                Ok(false) => {}
                Err(broken) => return self.fail(u, broken),
            }
            // A read that did not fill the buffer took all there was: the next readiness says when
            // there is more (the socket is edge-triggered), without a read that would block.
            if n < space && !hung_up {
                return;
            }
        }
        // Reserved for every user: no allocation.
        self.more.push((u, hung_up));
    }

    /// https: read the records that are there (the handshake's, then the answer's), send what they
    /// ask for (the handshake's end, the request it held), and take the answer's bytes as `read` takes
    /// plain ones. rustls buffers what it reads, so each turn reads on until the socket is empty.
    fn read_tls(&mut self, u: usize, hung_up: bool) {
        // What a full socket held back is sent first (this readiness may be its writable edge).
        let user = &mut self.users[u];
        let fd = user.stream.as_ref().expect("connected").as_raw_fd();
        if let Err(e) = io::flush(user.tls.as_deref_mut().expect("https"), fd) {
            return self.fail(u, Broken::Unanswered(format!("writing the request: {e}")));
        }
        for _ in 0..READS_PER_TURN {
            let user = &mut self.users[u];
            let fd = user.stream.as_ref().expect("connected").as_raw_fd();
            let tls = user.tls.as_deref_mut().expect("https");
            let ended = match tls.read_tls(&mut Fd(fd)) {
                Ok(n) => n == 0,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    return self.fail(
                        u,
                        Broken::Failed(FailureKind::Protocol, format!("reading the answer: {e}")),
                    );
                }
            };
            let handshaking = tls.is_handshaking();
            if let Err(e) = tls.process_new_packets() {
                // The alert rustls queued tells the server why.
                let _ = io::flush(tls, fd);
                // Said as the tasks' connect says it: a refused handshake is a connection not made.
                let broken = if handshaking {
                    Broken::Failed(FailureKind::Connect, format!("TLS handshake: {e}"))
                } else {
                    Broken::Failed(FailureKind::Protocol, format!("TLS: {e}"))
                };
                return self.fail(u, broken);
            }
            if let Err(e) = io::flush(tls, fd) {
                return self.fail(u, Broken::Unanswered(format!("writing the request: {e}")));
            }
            let mut closed = ended;
            loop {
                if let Err(broken) = self.users[u].room_to_read() {
                    return self.fail(u, broken);
                }
                let user = &mut self.users[u];
                let tls = user.tls.as_deref_mut().expect("https");
                match tls.reader().read(&mut user.read[user.filled..]) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        user.bytes += n as u64;
                        user.filled += n;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // Closed without TLS's close_notify: a connection's end all the same.
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
                match self.take(u) {
                    Ok(true) => return self.answered(u),
                    Ok(false) => {}
                    Err(broken) => return self.fail(u, broken),
                }
            }
            if closed {
                return self.closed(u);
            }
        }
        // Reserved for every user: no allocation.
        self.more.push((u, hung_up));
    }

    /// Parse what was read; true once the answer is whole.
    fn take(&mut self, u: usize) -> Result<bool, Broken> {
        let head_request = self.shared.requests[self.users[u].action].head;
        let user = &mut self.users[u];
        loop {
            match user.state {
                State::Reading(Body::Head) => {
                    let head = match wire::parse_head(&user.read[..user.filled], head_request, None) {
                        Ok(None) => return Ok(false),
                        Ok(Some(h)) => h,
                        Err(e) => return Err(Broken::Failed(FailureKind::Protocol, e)),
                    };
                    user.status = head.status;
                    user.keep_alive = head.keep_alive;
                    let in_buffer = user.filled - head.len;
                    user.state = State::Reading(match head.framing {
                        Framing::Length(n) if in_buffer >= n => return Ok(true),
                        Framing::Length(n) => {
                            user.filled = 0;
                            Body::Length(n - in_buffer)
                        }
                        Framing::Chunked => Body::Chunked { pos: head.len },
                        Framing::UntilClose => {
                            user.filled = 0;
                            Body::UntilClose
                        }
                    });
                }
                State::Reading(Body::Length(left)) => {
                    let got = user.filled;
                    user.filled = 0;
                    if got >= left {
                        return Ok(true);
                    }
                    user.state = State::Reading(Body::Length(left - got));
                    return Ok(false);
                }
                State::Reading(Body::UntilClose) => {
                    user.filled = 0;
                    return Ok(false);
                }
                State::Reading(Body::Chunked { pos }) => match wire::parse_chunk(&user.read[pos..user.filled]) {
                    Chunk::Incomplete => return Ok(false),
                    Chunk::Malformed => {
                        return Err(Broken::Failed(FailureKind::Protocol, "a malformed chunked body".into()));
                    }
                    Chunk::Data { next, .. } => user.state = State::Reading(Body::Chunked { pos: pos + next }),
                    Chunk::Last => return Ok(true),
                },
                _ => return Ok(false),
            }
        }
    }

    /// The connection ended: the end of an answer read until close, or a broken exchange.
    fn closed(&mut self, u: usize) {
        let user = &mut self.users[u];
        let broken = match user.state {
            State::Reading(Body::UntilClose) => {
                user.keep_alive = false;
                return self.answered(u);
            }
            State::Reading(Body::Head) if user.bytes == 0 => {
                Broken::Unanswered("connection closed before an answer".into())
            }
            State::Reading(Body::Head) => Broken::Failed(
                FailureKind::Protocol,
                "connection closed inside the answer's head".into(),
            ),
            State::Reading(Body::Chunked { .. }) => {
                Broken::Failed(FailureKind::Protocol, "connection closed inside a chunked body".into())
            }
            _ => Broken::Failed(
                FailureKind::Protocol,
                "connection closed inside the answer's body".into(),
            ),
        };
        self.fail(u, broken);
    }

    /// The answer is whole: judge, record, go on.
    fn answered(&mut self, u: usize) {
        let now = Instant::now();
        let user = &self.users[u];
        let outcome = self.shared.requests[user.action].outcome(user.status);
        self.record(u, now, outcome, Some(user.status), None);
        self.finish(u, true);
        let user = &mut self.users[u];
        if user.keep_alive {
            user.used = true;
        } else {
            self.close(u);
        }
        self.next(u, now);
    }

    /// The exchange failed: try a stale keep-alive's request again once, or record the failure.
    fn fail(&mut self, u: usize, broken: Broken) {
        let handshaking = self.users[u].handshaking();
        self.close(u);
        let user = &mut self.users[u];
        let (kind, message) = match broken {
            Broken::Unanswered(_) if user.used && !user.retried => {
                user.retried = true;
                return self.send(u);
            }
            Broken::Unanswered(message) => (FailureKind::Protocol, message),
            Broken::Failed(kind, message) => (kind, message),
        };
        // A connection that broke before its TLS handshake was done was never made (as on tasks).
        let (kind, message) = if handshaking && kind != FailureKind::Connect {
            (FailureKind::Connect, format!("TLS handshake: {message}"))
        } else {
            (kind, message)
        };
        let now = Instant::now();
        self.record(u, now, Outcome::Failed(kind), None, Some(&message));
        let unreachable = kind == FailureKind::Connect;
        self.finish(u, !unreachable);
        let user = &mut self.users[u];
        if unreachable {
            user.state = State::Paused(now + user.backoff.fail());
        } else {
            self.next(u, now);
        }
    }

    /// Record user `u`'s exchange as it ended at `now`.
    fn record(&self, u: usize, now: Instant, outcome: Outcome, status: Option<u16>, error: Option<&str>) {
        let user = &self.users[u];
        let ctx = &self.shared.ctx;
        let sample = Sample {
            latency: now.duration_since(user.started),
            outcome,
            status,
            rpc_error: None,
            error,
            bytes: Some(user.bytes),
            served_by: None,
        };
        ctx.env.recorder.record(ctx.slots[user.action].main, &sample);
    }

    /// The action is over (answered, or failed after the target was reached when `reached`).
    fn finish(&mut self, u: usize, reached: bool) {
        let user = &mut self.users[u];
        if user.in_flight {
            user.in_flight = false;
            self.shared.ctx.env.recorder.gauges.in_flight.add(-1);
        }
        if user.read.len() > KEEP_BUFFER {
            // A rare large answer grew the buffer: given back, so memory stays flat over a long run.
            user.read = vec![0; INITIAL_READ];
        }
        if reached {
            user.backoff.succeed();
        }
    }

    /// Close the connection: closing its socket takes it out of epoll too.
    fn close(&mut self, u: usize) {
        self.users[u].stream = None;
        self.users[u].tls = None;
    }

    /// The user stops running.
    fn leave(&mut self, u: usize) {
        self.close(u);
        let user = &mut self.users[u];
        if !matches!(user.state, State::Off) {
            user.state = State::Off;
            self.running -= 1;
            self.shared
                .ctx
                .env
                .recorder
                .gauges
                .users
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The hard stop: every request in flight is counted aborted, every user leaves.
    fn cut_all(&mut self) {
        for u in 0..self.users.len() {
            let user = &self.users[u];
            if user.in_flight {
                self.shared
                    .ctx
                    .env
                    .recorder
                    .abort(self.shared.ctx.slots[user.action].main);
                self.finish(u, false);
            }
            self.leave(u);
        }
    }
}

impl User {
    /// Room in the read buffer: doubled when full, up to the largest answer kept.
    fn room_to_read(&mut self) -> Result<(), Broken> {
        if self.filled == self.read.len() {
            if self.read.len() >= MAX_ANSWER {
                return Err(Broken::Failed(
                    FailureKind::TooLarge,
                    format!("an answer larger than {MAX_ANSWER} bytes"),
                ));
            }
            self.read.resize((self.read.len() * 2).max(INITIAL_READ), 0);
        }
        Ok(())
    }

    /// Its connection is https and the handshake not yet done.
    fn handshaking(&self) -> bool {
        self.tls.as_deref().is_some_and(|tls| tls.is_handshaking())
    }

    fn new(rng: fastrand::Rng, index: usize) -> User {
        User {
            index,
            rng,
            backoff: Backoff::default(),
            stream: None,
            tls: None,
            state: State::Off,
            used: false,
            connecting_since: Instant::now(),
            retried: false,
            action: 0,
            started: Instant::now(),
            written: 0,
            read: vec![0; INITIAL_READ],
            filled: 0,
            bytes: 0,
            status: 0,
            keep_alive: true,
            in_flight: false,
        }
    }
}
