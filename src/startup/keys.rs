//! The session cookie key: `session.key`, else `session.key_file` (created in Development);
//! and the keys that seal tokens in sessions: `session.token_key` / `token_key_file`, else
//! derived from the cookie key, plus `session.token_keys_previous` for reading.

use std::path::Path;

use actix_web::cookie::Key;
use anyhow::Context as _;
use base64::Engine;
use rolegate_auth::{TokenKey, TokenKeys};

use crate::settings::{SESSION_KEY_LEN, Settings, decode_key};

pub fn session_key(s: &Settings) -> anyhow::Result<Key> {
    Ok(Key::from(&session_key_bytes(s)?[..]))
}

fn session_key_bytes(s: &Settings) -> anyhow::Result<Vec<u8>> {
    Ok(match (&s.session.key, &s.session.key_file) {
        (Some(key), _) => key.clone(),
        (None, Some(path)) => read_or_create_key_file(path, s.is_development())?,
        (None, None) => anyhow::bail!("session.key or session.key_file must be set"),
    })
}

/// The token keys: the current one encrypts, every one decrypts. Only key ids are logged.
pub fn token_keys(s: &Settings) -> anyhow::Result<TokenKeys> {
    let current = match (&s.session.token_key, &s.session.token_key_file) {
        (Some(key), _) => TokenKey::from_bytes(*key),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read session.token_key_file {}", path.display())
            })?;
            let key = crate::settings::decode_token_key(&text)
                .map_err(|m| anyhow::anyhow!("session.token_key_file {}: {m}", path.display()))?;
            TokenKey::from_bytes(key)
        }
        (None, None) => TokenKey::derive(&session_key_bytes(s)?),
    };
    let previous: Vec<TokenKey> = s
        .session
        .token_keys_previous
        .iter()
        .map(|k| TokenKey::from_bytes(*k))
        .collect();
    tracing::info!(
        key_id = current.id(),
        previous = ?previous.iter().map(TokenKey::id).collect::<Vec<_>>(),
        "session tokens are sealed with AES-256-GCM"
    );
    Ok(TokenKeys::new(current, previous))
}

fn read_or_create_key_file(path: &Path, may_create: bool) -> anyhow::Result<Vec<u8>> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read session.key_file {}", path.display()))?;
        return decode_key(&text)
            .map_err(|m| anyhow::anyhow!("session.key_file {}: {m}", path.display()));
    }
    anyhow::ensure!(
        may_create,
        "session.key_file {} does not exist",
        path.display()
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = Key::generate();
    let bytes = key.master()[..SESSION_KEY_LEN].to_vec();
    std::fs::write(
        path,
        base64::engine::general_purpose::STANDARD.encode(&bytes),
    )
    .with_context(|| format!("cannot write session.key_file {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    tracing::info!(path = %path.display(), "generated a development session key");
    Ok(bytes)
}
