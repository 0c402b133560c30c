//! What the tool's end-to-end tests share: the in-process server's I/O
//! driver, taken from `RINGGATE_IO` as the server binary does, so that
//! `RINGGATE_IO=epoll cargo test` runs them on the fallback driver.

use ringgate::config::IoMode;

/// `RINGGATE_IO` (`uring`, `epoll`; anything else, or unset, `auto`).
pub fn driver() -> IoMode {
    match std::env::var("RINGGATE_IO").as_deref() {
        Ok("epoll") => IoMode::Epoll,
        Ok("uring") => IoMode::Uring,
        _ => IoMode::Auto,
    }
}
