//! Same-site `next` targets: anything that could leave the site becomes `/`.

/// Longest `next` kept; longer ones are more likely an attack than a real page.
const MAX_NEXT_LEN: usize = 2048;

/// Returns `next` when it is a same-site absolute path, otherwise `/`.
///
/// Browsers treat `//host`, `/\host` and backslashes as other origins, and some servers decode
/// `%2F`/`%5C` before routing, so all of those are refused along with schemes and control
/// characters.
pub(crate) fn safe_next(next: &str) -> String {
    if is_safe_next(next) {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

fn is_safe_next(next: &str) -> bool {
    if next.is_empty() || next.len() > MAX_NEXT_LEN || !next.starts_with('/') {
        return false;
    }
    let second = next.as_bytes().get(1).copied();
    if matches!(second, Some(b'/') | Some(b'\\')) {
        return false;
    }
    if next.contains('\\') || next.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    let lower = next.to_ascii_lowercase();
    !(lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%00")
        || lower.contains("%09")
        || lower.contains("%0a")
        || lower.contains("%0d"))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn keeps_local_paths() {
        for ok in [
            "/",
            "/notes",
            "/notes?page=2",
            "/admin#top",
            "/a/b/c",
            "/api/me?x=%20",
        ] {
            assert_eq!(safe_next(ok), ok);
        }
    }

    #[test]
    fn refuses_everything_off_site() {
        for bad in [
            "",
            "notes",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2F%2Fevil.example",
            "/%2fevil.example",
            "/%5Cevil.example",
            "%2F%2Fevil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "http:/evil.example",
            "/\tevil",
            "/\nSet-Cookie: x",
            "/ evil",
            "/x%00y",
            "/x%0d%0aSet-Cookie:a",
            "/a\\b",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
        let long = format!("/{}", "a".repeat(3000));
        assert_eq!(safe_next(&long), "/");
    }
}
