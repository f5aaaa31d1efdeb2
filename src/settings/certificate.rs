//! `auth.client_certificate.*`: the certificate credential's two PEM files, loaded and checked
//! while reading so that every bad file is a problem naming its key. Expiry is judged later,
//! against an explicit `now` (the auth builder refuses an expired certificate; `warnings_at`
//! tells about one that expires soon).

use std::time::SystemTime;

use rolegate_auth::ClientCertificate;

use super::sources::Reader;
use super::{Settings, env_var};

pub(super) const CERTIFICATE_FILE: &str = "auth.client_certificate.certificate_file";
pub(super) const PRIVATE_KEY_FILE: &str = "auth.client_certificate.private_key_file";
const SECRET: &str = "auth.client_secret";

/// Days before notAfter from which `check-config` and start-up warn.
pub const EXPIRY_WARNING_DAYS: u64 = 30;

/// The two paths as read (empty = unset) and the certificate when both load.
pub(super) struct Read {
    pub certificate_file: String,
    pub private_key_file: String,
    pub certificate: Option<ClientCertificate>,
}

pub(super) fn read(r: &mut Reader<'_>, client_secret: &str) -> Read {
    let certificate_file = r.string(CERTIFICATE_FILE, "");
    let private_key_file = r.string(PRIVATE_KEY_FILE, "");
    let mut out = Read {
        certificate_file,
        private_key_file,
        certificate: None,
    };
    let both = format!(
        "a certificate credential needs both {CERTIFICATE_FILE} ({}) and {PRIVATE_KEY_FILE} ({}), PEM paths; set the other one too, or unset both to use auth.client_secret",
        env_var(CERTIFICATE_FILE),
        env_var(PRIVATE_KEY_FILE)
    );
    match (
        out.certificate_file.is_empty(),
        out.private_key_file.is_empty(),
    ) {
        (true, true) => return out,
        (false, true) => {
            r.problem(PRIVATE_KEY_FILE, format!("is missing: {both}"));
            return out;
        }
        (true, false) => {
            r.problem(CERTIFICATE_FILE, format!("is missing: {both}"));
            return out;
        }
        (false, false) => {}
    }
    if !client_secret.trim().is_empty() {
        r.problem(
            SECRET,
            format!(
                "is set together with {CERTIFICATE_FILE} and {PRIVATE_KEY_FILE}; use one credential: unset the secret ({}='' counts as unset) to use the certificate, or unset the two certificate settings to keep the secret",
                env_var(SECRET)
            ),
        );
    }
    match ClientCertificate::from_files(&out.certificate_file, &out.private_key_file) {
        Ok(certificate) => out.certificate = Some(certificate),
        Err(e) => {
            let key = format!("auth.{}", e.field());
            let path = if key == CERTIFICATE_FILE {
                &out.certificate_file
            } else {
                &out.private_key_file
            };
            let message = match &e {
                rolegate_auth::CertificateError::Unreadable { .. } => {
                    format!("{e}; check the path and that rolegate's user may read the file")
                }
                _ => format!("{path} {e}"),
            };
            r.problem(&key, message);
        }
    }
    out
}

/// Whether a certificate setting was reported while reading: then the builder's "no
/// credential" problem on `auth.client_secret` is only its echo.
pub(super) fn failed(reported: &[super::Problem]) -> bool {
    reported
        .iter()
        .any(|p| p.key == CERTIFICATE_FILE || p.key == PRIVATE_KEY_FILE)
}

/// Warnings about the client certificate at `now`: it expires within
/// [`EXPIRY_WARNING_DAYS`], or its validity has not started yet.
pub fn warnings_at(s: &Settings, now: SystemTime) -> Vec<String> {
    let Some(cert) = &s.auth.client_certificate else {
        return Vec::new();
    };
    let name = format!("{} (x5t#S256 {})", cert.subject(), cert.thumbprint());
    let mut out = Vec::new();
    let days = cert.days_left_at(now);
    if !cert.is_expired_at(now) && days <= EXPIRY_WARNING_DAYS {
        out.push(format!(
            "{CERTIFICATE_FILE}: the client certificate {name} expires on {}, in {days} day(s); upload its successor to the app registration (Certificates & secrets) and switch {CERTIFICATE_FILE} and {PRIVATE_KEY_FILE} to it before then",
            cert.not_after_text()
        ));
    }
    if cert.is_not_yet_valid_at(now) {
        out.push(format!(
            "{CERTIFICATE_FILE}: the client certificate {name} is not valid yet (notBefore is in the future); check this machine's clock, the provider will refuse its assertions until then"
        ));
    }
    out
}
