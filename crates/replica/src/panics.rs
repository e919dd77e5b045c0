//! Panic messages: the text of a payload, and the hook that sends the engine threads' panics
//! to the log instead of the host's stderr.

use std::any::Any;
use std::sync::Once;

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic")
}

/// Routes panic messages of the engine's own threads (`litestream-*`) to the log, where the
/// supervisor's report of the same failure also goes; other threads keep the host's hook, so an
/// application's own panics print as before. Installed once per process.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("litestream"));
            if !ours {
                return previous(info);
            }
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!(%location, "panic: {}", panic_message(info.payload()));
        }));
    });
}
