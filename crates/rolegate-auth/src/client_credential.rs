//! How the application proves itself at the token endpoint: a client secret, or a certificate
//! whose private key signs a short-lived JWT (`private_key_jwt`, Entra's recommended credential).
//!
//! The certificate is loaded once (PEM certificate + PEM RSA key, PKCS#8 or PKCS#1), checked to
//! belong together, and kept as a signing key plus the public facts operators need to match it
//! with the app registration (subject, `x5t#S256` thumbprint, SHA-1 thumbprint, notAfter).

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is valid. Entra refuses more than 10 minutes.
pub(crate) const ASSERTION_LIFETIME_SECS: i64 = 300;

/// Smallest RSA key Entra accepts for a certificate credential.
const MIN_RSA_BITS: usize = 2048;

/// The builder field of the certificate file (settings: `auth.client_certificate.certificate_file`).
pub const CERTIFICATE_FILE_FIELD: &str = "client_certificate.certificate_file";
/// The builder field of the private key file (settings: `auth.client_certificate.private_key_file`).
pub const PRIVATE_KEY_FILE_FIELD: &str = "client_certificate.private_key_file";

/// The application's credential at the token endpoint.
#[derive(Clone)]
pub enum ClientCredential {
    /// A client secret, sent as `client_secret` (body or HTTP Basic).
    Secret(String),
    /// A certificate: each token call carries a fresh RS256 `client_assertion`, no secret.
    Certificate(ClientCertificate),
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("Secret(********)"),
            ClientCredential::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
        }
    }
}

/// A loaded client certificate and its private key. `Debug` shows only public facts.
#[derive(Clone)]
pub struct ClientCertificate {
    key: EncodingKey,
    subject: String,
    thumbprint: String,
    sha1_thumbprint: String,
    not_before: SystemTime,
    not_after: SystemTime,
    not_after_text: String,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.subject)
            .field("x5t#S256", &self.thumbprint)
            .field("not_after", &self.not_after_text)
            .finish_non_exhaustive()
    }
}

/// Which of the two files a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificatePart {
    /// The PEM certificate.
    Certificate,
    /// The PEM private key.
    PrivateKey,
}

impl CertificatePart {
    /// The builder field naming this file.
    pub fn field(self) -> &'static str {
        match self {
            CertificatePart::Certificate => CERTIFICATE_FILE_FIELD,
            CertificatePart::PrivateKey => PRIVATE_KEY_FILE_FIELD,
        }
    }
}

/// Why a certificate credential cannot be used. Messages name no key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// Which file.
        part: CertificatePart,
        /// The path as given.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The certificate is not a usable PEM X.509 RSA certificate.
    #[error("{0}")]
    BadCertificate(String),
    /// The private key is not a usable unencrypted PEM RSA key.
    #[error("{0}")]
    BadPrivateKey(String),
    /// The key's public half is not the certificate's public key.
    #[error(
        "the private key does not belong to the certificate (their public keys differ); use the key the certificate was issued for"
    )]
    Mismatch,
}

impl CertificateError {
    /// The builder field (file) the problem is about.
    pub fn field(&self) -> &'static str {
        match self {
            CertificateError::Unreadable { part, .. } => part.field(),
            CertificateError::BadCertificate(_) => CERTIFICATE_FILE_FIELD,
            CertificateError::BadPrivateKey(_) | CertificateError::Mismatch => {
                PRIVATE_KEY_FILE_FIELD
            }
        }
    }
}

impl ClientCertificate {
    /// Reads the two PEM files (they may be the same file holding both blocks).
    pub fn from_files(
        certificate: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
    ) -> Result<ClientCertificate, CertificateError> {
        let read = |part: CertificatePart, path: &Path| {
            std::fs::read(path).map_err(|e| CertificateError::Unreadable {
                part,
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        let cert = read(CertificatePart::Certificate, certificate.as_ref())?;
        let key = read(CertificatePart::PrivateKey, private_key.as_ref())?;
        ClientCertificate::from_pem(&cert, &key)
    }

    /// Parses a PEM certificate (the first `CERTIFICATE` block: the leaf of a chain) and a PEM
    /// RSA private key (`PRIVATE KEY` or `RSA PRIVATE KEY`), and checks that they match.
    pub fn from_pem(
        certificate: &[u8],
        private_key: &[u8],
    ) -> Result<ClientCertificate, CertificateError> {
        let der = first_block(certificate, &["CERTIFICATE"]).map_err(|e| {
            CertificateError::BadCertificate(format!(
                "is not a PEM certificate ({e}); it must hold a -----BEGIN CERTIFICATE----- block"
            ))
        })?;
        let cert = Certificate::from_der(&der.1).map_err(|e| {
            CertificateError::BadCertificate(format!("is not a valid X.509 certificate ({e})"))
        })?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| {
                CertificateError::BadCertificate(format!("unreadable public key ({e})"))
            })?;
        let public = RsaPublicKey::from_public_key_der(&spki).map_err(|_| {
            CertificateError::BadCertificate(
                "holds a key that is not RSA; Entra's private_key_jwt here needs an RSA certificate (RS256)"
                    .into(),
            )
        })?;
        let private = private_key_from_pem(private_key)?;
        if private.to_public_key() != public {
            return Err(CertificateError::Mismatch);
        }
        if public.size() * 8 < MIN_RSA_BITS {
            return Err(CertificateError::BadCertificate(format!(
                "holds a {}-bit RSA key; Entra needs at least {MIN_RSA_BITS} bits",
                public.size() * 8
            )));
        }
        let pkcs1 = private.to_pkcs1_der().map_err(|e| {
            CertificateError::BadPrivateKey(format!("cannot be encoded for signing ({e})"))
        })?;
        let validity = &cert.tbs_certificate.validity;
        Ok(ClientCertificate {
            key: EncodingKey::from_rsa_der(pkcs1.as_bytes()),
            subject: cert.tbs_certificate.subject.to_string(),
            thumbprint: b64url(&Sha256::digest(&der.1)),
            sha1_thumbprint: sha1_hex(&der.1),
            not_before: validity.not_before.to_system_time(),
            not_after: validity.not_after.to_system_time(),
            not_after_text: validity.not_after.to_string(),
        })
    }

    /// The certificate's subject, e.g. `CN=rolegate`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The `x5t#S256` thumbprint: base64url SHA-256 of the DER certificate.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The SHA-1 thumbprint in upper-case hex, as the Entra portal lists certificates.
    pub fn sha1_thumbprint(&self) -> &str {
        &self.sha1_thumbprint
    }

    /// The end of the validity period.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The end of the validity period as RFC 3339 UTC text.
    pub fn not_after_text(&self) -> &str {
        &self.not_after_text
    }

    /// Whether the certificate has expired at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.not_after
    }

    /// Whether the certificate's validity has not started at `now` (a clock or issuing mistake).
    pub fn is_not_yet_valid_at(&self, now: SystemTime) -> bool {
        now < self.not_before
    }

    /// Whole days left at `now` (0 when expired or expiring within a day).
    pub fn days_left_at(&self, now: SystemTime) -> u64 {
        self.not_after
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
            .as_secs()
            / 86_400
    }

    /// A signed client assertion for one token call: RS256, header `x5t#S256`, claims
    /// `aud` = the token endpoint, `iss` = `sub` = the client id, a random `jti`, `iat` = `nbf`
    /// = `now`, `exp` = `now` + 5 minutes.
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        #[derive(Serialize)]
        struct AssertionClaims<'a> {
            aud: &'a str,
            iss: &'a str,
            sub: &'a str,
            jti: String,
            iat: i64,
            nbf: i64,
            exp: i64,
        }
        let mut header = Header::new(Algorithm::RS256);
        header.x5t_s256 = Some(self.thumbprint.clone());
        let claims = AssertionClaims {
            aud: token_endpoint,
            iss: client_id,
            sub: client_id,
            jti: oauth2::CsrfToken::new_random_len(16).secret().clone(),
            iat: now,
            nbf: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

/// Seconds since the Unix epoch (negative before it, which no real clock is).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn private_key_from_pem(pem: &[u8]) -> Result<RsaPrivateKey, CertificateError> {
    let bad = |m: String| CertificateError::BadPrivateKey(m);
    let labels = [
        "PRIVATE KEY",
        "RSA PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "EC PRIVATE KEY",
    ];
    let (label, der) = first_block(pem, &labels).map_err(|e| {
        bad(format!(
            "is not a PEM private key ({e}); it must hold a -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY----- block"
        ))
    })?;
    match label.as_str() {
        "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| {
            bad("is not an RSA private key (PKCS#8); Entra's private_key_jwt here needs RSA (RS256)".into())
        }),
        "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(&der)
            .map_err(|e| bad(format!("is not a valid PKCS#1 RSA private key ({e})"))),
        "ENCRYPTED PRIVATE KEY" => Err(bad(
            "is encrypted; store it unencrypted with tight file permissions (`openssl pkey -in key.pem -out plain.pem`), or mount it from a secret store".into(),
        )),
        _ => Err(bad(
            "is an EC key; Entra's private_key_jwt here needs an RSA key (RS256)".into(),
        )),
    }
}

/// The label and DER bytes of the first PEM block whose label is one of `labels`.
fn first_block(pem: &[u8], labels: &[&str]) -> Result<(String, Vec<u8>), String> {
    let text = std::str::from_utf8(pem).map_err(|_| "the file is not text".to_owned())?;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let label_end = block[11..]
            .find("-----")
            .ok_or_else(|| "a BEGIN line is not closed".to_owned())?;
        let label = &block[11..11 + label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block
            .find(&end_marker)
            .ok_or_else(|| format!("no -----END {label}----- line"))?
            + end_marker.len();
        if labels.contains(&label) {
            let (found, der) = x509_cert::der::pem::decode_vec(&block.as_bytes()[..end])
                .map_err(|e| format!("the {label} block is not valid PEM: {e}"))?;
            return Ok((found.to_owned(), der));
        }
        rest = &block[end..];
    }
    Err(format!("no {} block found", labels[0]))
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest as _;
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const CERT: &[u8] = include_bytes!("../../../tests/api/fixtures/client-cert.pem");
    const KEY: &[u8] = include_bytes!("../../../tests/api/fixtures/client-key.pem");
    const KEY_PKCS1: &[u8] = include_bytes!("../../../tests/api/fixtures/client-key-pkcs1.pem");
    const OTHER_KEY: &[u8] = include_bytes!("../../../tests/api/fixtures/client-other-key.pem");
    const ENCRYPTED: &[u8] = include_bytes!("../../../tests/api/fixtures/client-key-encrypted.pem");
    const EC_CERT: &[u8] = include_bytes!("../../../tests/api/fixtures/client-cert-ec.pem");
    const EC_KEY: &[u8] = include_bytes!("../../../tests/api/fixtures/client-key-ec.pem");
    const EXPIRED: &[u8] = include_bytes!("../../../tests/api/fixtures/client-cert-expired.pem");
    const PUBLIC: &[u8] = include_bytes!("../../../tests/api/fixtures/client-cert.pub.pem");

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn loads_pkcs8_and_pkcs1_keys_and_reads_the_public_facts() {
        let a = ClientCertificate::from_pem(CERT, KEY).expect("PKCS#8");
        let b = ClientCertificate::from_pem(CERT, KEY_PKCS1).expect("PKCS#1");
        assert_eq!(a.subject(), "CN=rolegate-test-client");
        assert_eq!(a.thumbprint(), b.thumbprint());
        assert_eq!(a.thumbprint().len(), 43, "base64url SHA-256, no padding");
        assert_eq!(a.sha1_thumbprint().len(), 40);
        assert_eq!(a.not_after_text(), "2126-01-01T00:00:00Z");
        // 2026-01-01 is the first day of validity; 2126-01-01 the end.
        assert!(!a.is_expired_at(at(1_767_225_600)));
        assert!(!a.is_not_yet_valid_at(at(1_767_225_600)));
        assert!(a.is_not_yet_valid_at(at(1_767_225_599)));
        let debug = format!("{:?}", ClientCredential::Certificate(a));
        assert!(debug.contains("rolegate-test-client") && !debug.contains("key:"));
        assert_eq!(
            format!("{:?}", ClientCredential::Secret("hunter2".into())),
            "Secret(********)"
        );
    }

    #[test]
    fn a_combined_pem_file_works() {
        let both = [KEY, CERT].concat();
        assert!(ClientCertificate::from_pem(&both, &both).is_ok());
    }

    #[test]
    fn mismatched_encrypted_ec_and_garbage_are_refused_with_the_file() {
        let err = |c: &[u8], k: &[u8]| ClientCertificate::from_pem(c, k).unwrap_err();
        assert_eq!(err(CERT, OTHER_KEY), CertificateError::Mismatch);
        assert_eq!(err(CERT, OTHER_KEY).field(), PRIVATE_KEY_FILE_FIELD);
        assert!(err(CERT, ENCRYPTED).to_string().contains("encrypted"));
        assert!(
            err(CERT, EC_KEY)
                .to_string()
                .contains("not an RSA private key")
        );
        assert!(err(EC_CERT, EC_KEY).to_string().contains("not RSA"));
        assert_eq!(err(EC_CERT, EC_KEY).field(), CERTIFICATE_FILE_FIELD);
        for garbage in [
            &b""[..],
            b"\xff\xfe",
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n",
        ] {
            assert_eq!(err(garbage, KEY).field(), CERTIFICATE_FILE_FIELD);
            assert_eq!(err(CERT, garbage).field(), PRIVATE_KEY_FILE_FIELD);
        }
        let bad_der = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(err(bad_der, KEY).to_string().contains("X.509"));
        // A key in the certificate file is not a certificate.
        assert_eq!(err(KEY, KEY).field(), CERTIFICATE_FILE_FIELD);
        let missing = ClientCertificate::from_files("/nonexistent/c.pem", "/nonexistent/k.pem");
        assert_eq!(missing.unwrap_err().field(), CERTIFICATE_FILE_FIELD);
    }

    #[test]
    fn expiry_and_days_left() {
        let c = ClientCertificate::from_pem(EXPIRED, KEY).expect("loads; expiry is judged later");
        assert_eq!(c.not_after_text(), "2021-01-01T00:00:00Z");
        let end = 1_609_459_200; // 2021-01-01T00:00:00Z
        assert!(c.is_expired_at(at(end)));
        assert!(!c.is_expired_at(at(end - 1)));
        assert_eq!(c.days_left_at(at(end - 10 * 86_400)), 10);
        assert_eq!(c.days_left_at(at(end + 86_400)), 0);
    }

    #[test]
    fn the_assertion_is_rs256_with_the_thumbprint_and_short_lived() {
        let c = ClientCertificate::from_pem(CERT, KEY).unwrap();
        let now = unix_secs(SystemTime::now());
        let token = c
            .assertion("client-1", "https://idp.example/t/oauth2/v2.0/token", now)
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.x5t_s256.as_deref(), Some(c.thumbprint()));
        assert!(header.x5t.is_none());
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["https://idp.example/t/oauth2/v2.0/token"]);
        v.set_issuer(&["client-1"]);
        v.sub = Some("client-1".into());
        v.set_required_spec_claims(&["exp", "nbf", "iat", "aud", "iss", "sub", "jti"]);
        let key = DecodingKey::from_rsa_pem(PUBLIC).unwrap();
        let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v)
            .expect("verifies with the certificate's public key")
            .claims;
        assert_eq!(claims["iat"], now);
        assert_eq!(claims["nbf"], now);
        assert_eq!(claims["exp"], now + ASSERTION_LIFETIME_SECS);
        let again = c.assertion("client-1", "aud", now).unwrap();
        let jti = |t: &str| {
            jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(t)
                .unwrap()
                .claims["jti"]
                .clone()
        };
        assert_ne!(jti(&token), jti(&again));
    }
}
