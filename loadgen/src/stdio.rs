//! Writing to stdout and stderr when the reader may have gone: `stampede run … | head -2` closes the pipe
//! after two lines. A closed pipe is the end of output, not a failure — the run goes on and still writes
//! its results file (ripgrep and oha treat EPIPE the same way). `print!`/`eprintln!` would panic instead.
//! Use the `out!`, `outln!` and `errln!` macros (exported at the crate root).

use std::fmt;
use std::io::Write as _;

/// Write to stdout; a write error (a closed pipe, a full disk) ends this output quietly.
pub fn out(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_fmt(args).and_then(|()| stdout.flush());
}

/// Write to stderr; a write error ends this output quietly (there is nowhere left to report it).
pub fn err(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `print!` that treats a closed stdout as the end of output.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdio::out(format_args!($($arg)*)) };
}

/// `println!` that treats a closed stdout as the end of output.
#[macro_export]
macro_rules! outln {
    () => { $crate::stdio::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdio::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that treats a closed stderr as the end of output.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::stdio::err(format_args!("{}\n", format_args!($($arg)*))) };
}
