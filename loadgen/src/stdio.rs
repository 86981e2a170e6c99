//! Writing to stdout and stderr when the reader may have gone: `stampede run … | head -2` closes the pipe
//! after two lines. A closed pipe is the end of output, not a failure — the run goes on and still writes
//! its results file (ripgrep and oha treat EPIPE the same way). `print!`/`eprintln!` would panic instead.
//! Use the `out!`, `outln!` and `errln!` macros (exported at the crate root).

use std::fmt;
use std::io::Write as _;

/// `text` as it may reach a terminal: control characters (C0 but tab, DEL, C1 — a CSI or OSC could
/// recolour, retitle or rewrite the user's terminal) written as `\u{..}`. A target's words (its
/// error messages, content types) pass through here before they are kept or shown.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let control = |c: char| (c.is_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c);
    if !text.chars().any(control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if control(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

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

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_written_out_and_plain_text_is_untouched() {
        assert!(matches!(printable("text/html; ok"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            printable("a\u{9b}31mb\x1b]0;x\x07\n"),
            "a\\u{9b}31mb\\u{1b}]0;x\\u{7}\\u{a}"
        );
        assert_eq!(printable("tab\there"), "tab\there");
    }
}
