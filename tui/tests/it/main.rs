//! The dashboard's integration tests. Each module says what it tests.

mod render;
mod tmux;
