//! A connection's bytes: bare system calls on its socket, and TLS (rustls, driven by the loop) over
//! them for https.

use std::io::{self, ErrorKind};
use std::os::fd::RawFd;

use rustls::ClientConnection;

/// A system call's return: a byte count, or the error it set.
fn returned(n: libc::c_long) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// send(2) as a bare system call: libc's wrapper is a cancellation point that switches the thread's
/// cancel state twice per call (2 % of the loop's CPU in perf).
pub(super) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes; `fd` is a socket its owner keeps open across the call.
    let n = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            libc::c_long::from(fd),
            buf.as_ptr(),
            buf.len(),
            libc::c_long::from(libc::MSG_NOSIGNAL),
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::c_long,
        )
    };
    returned(n)
}

/// recv(2) as a bare system call (as `send`).
pub(super) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `fd` as in `send`.
    let n = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            libc::c_long::from(fd),
            buf.as_mut_ptr(),
            buf.len(),
            0 as libc::c_long,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    };
    returned(n)
}

/// The socket as rustls reads and writes it.
pub(super) struct Fd(pub RawFd);

impl io::Read for Fd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        recv(self.0, buf)
    }
}

impl io::Write for Fd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send(self.0, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Send what TLS has to send: true when all of it went, false when the socket is full (its writable
/// edge says when to go on).
pub(super) fn flush(tls: &mut ClientConnection, fd: RawFd) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut Fd(fd)) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
