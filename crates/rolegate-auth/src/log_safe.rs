//! Logging values that came from outside (token headers and claims, provider answers, paths)
//! without letting them forge log lines.
//!
//! Plain strings are logged with Debug formatting (`sub = ?user.sub`), which quotes and escapes
//! them. Values whose Display text is the useful part (errors that quote a token's `alg` or a
//! provider's error code) go through [`Escaped`].

use std::fmt::{self, Display};

/// Shows an untrusted value (a claim, a path, an error that quotes input) quoted and escaped
/// the way `{:?}` shows a string: newlines and other control characters, line separators
/// (`\u{2028}`) and bidi overrides become visible escapes and quotes are backslashed, so a value
/// can neither end its log line and forge the next one nor fake another field. Log such values
/// as `field = %Escaped(&value)`, or as `?value` when the value is a string already.
pub struct Escaped<T>(pub T);

impl<T: Display> Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.to_string().as_str(), f)
    }
}

impl<T: Display> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(self, f)
    }
}

/// Everything a plain fmt subscriber writes while `f` runs on this thread.
#[cfg(test)]
pub(crate) fn captured(f: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};

    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut buf) = self.0.lock() {
                buf.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || Sink(sink.clone()))
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buf.lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn control_characters_and_line_separators_are_escaped() {
        let hostile = "alg\nINFO signed in sub=admin\r\u{1b}[31m\u{2028}\u{202E}x";
        let shown = Escaped(hostile).to_string();
        assert!(!shown.contains(['\n', '\r', '\u{1b}', '\u{2028}', '\u{202E}']));
        assert_eq!(
            shown,
            "\"alg\\nINFO signed in sub=admin\\r\\u{1b}[31m\\u{2028}\\u{202e}x\""
        );
        assert_eq!(
            Escaped("plain ünïcode text").to_string(),
            "\"plain ünïcode text\"",
            "quoted, so a value cannot fake another field"
        );
    }

    #[test]
    fn wraps_any_display_value() {
        let err = crate::TokenError::DisallowedAlgorithm("RS256\nforged".into());
        assert_eq!(
            Escaped(&err).to_string(),
            "\"the token's algorithm RS256\\nforged is not allowed\""
        );
    }
}
