//! The three routes the module mounts: sign-in page, provider callback, sign-out.

use actix_session::Session;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::Auth;
use crate::error::AuthError;
use crate::flow::{self, CallbackParams};
use crate::id_token::{Claims, now};
use crate::live_roles;
use crate::log_safe::Escaped;
use crate::pages::{LoginPage, SignOutPage};
use crate::redirect::safe_next;
use crate::roles::RoleReadError;
use crate::session::{AccessToken, AuthSession, TokenSet, User};

/// Short-lived cookie that tells the sign-in page to say "you are signed out".
const FLASH_COOKIE: &str = "rolegate_flash";

/// `GET /login`: a page whose link starts a fresh sign-in at the provider.
pub(crate) async fn login(req: HttpRequest, session: Session) -> HttpResponse {
    let Some(auth) = req.app_data::<Auth>() else {
        return HttpResponse::InternalServerError().finish();
    };
    let next = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| safe_next(&v))
        .unwrap_or_else(|| "/".to_owned());
    let signed_out = signed_out_return(&req);

    let mut response = match auth.provider().await {
        Err(err) => {
            tracing::warn!(reason = err.reason(), error = %Escaped(&err), "sign-in page: provider unavailable");
            auth.pages().auth_error(&req, &err)
        }
        Ok(provider) => {
            let now = now();
            let (url, pending) = flow::begin(auth.config(), &provider, next.clone(), now);
            let ttl = auth.config().pending_ttl.as_secs() as i64;
            if let Err(e) = AuthSession(&session).push_pending(pending, now, ttl) {
                let err = AuthError::Session(e);
                tracing::error!(error = %Escaped(&err), "could not store the pending sign-in");
                return auth.pages().auth_error(&req, &err);
            }
            auth.pages().login(
                &req,
                &LoginPage {
                    sign_in_url: url.to_string(),
                    signed_out,
                    next,
                },
            )
        }
    };
    if req.cookie(FLASH_COOKIE).is_some() {
        let mut gone = flash_cookie(auth.config().login_path(), "");
        gone.make_removal();
        let _ = response.add_cookie(&gone);
    }
    response
}

/// The redirect path (`/getAToken`): checks everything the provider sent, then signs in.
pub(crate) async fn callback(req: HttpRequest, session: Session) -> HttpResponse {
    let Some(auth) = req.app_data::<Auth>() else {
        return HttpResponse::InternalServerError().finish();
    };
    match complete(&req, &session, auth).await {
        Ok(Completed::Restarted(location)) => HttpResponse::Found()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Ok(Completed::SignedIn(user, next, previous)) => {
            log_signed_in(&user);
            match previous {
                // A silent re-check: the same person, maybe with other roles.
                Some(previous) if previous != user.roles => {
                    tracing::info!(sub = ?user.sub, before = ?previous, after = ?user.roles, "roles changed at the identity provider");
                    auth.events().roles_changed(&req, &user, &previous).await;
                }
                Some(_) => {}
                None => auth.events().signed_in(&req, &user).await,
            }
            HttpResponse::Found()
                .insert_header((header::LOCATION, next))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Err((err, claims)) => {
            if matches!(err, AuthError::SignInRequired(_)) {
                // The silent re-check was refused: the signed-in session ends here.
                session.purge();
            }
            AuthSession(&session).discard_if_empty();
            log_refused(&err, claims.as_deref());
            auth.events()
                .sign_in_refused(&req, &err, claims.as_deref())
                .await;
            auth.pages().auth_error(&req, &err)
        }
    }
}

type Refusal = (AuthError, Option<Box<Claims>>);

/// How a callback ended well: signed in, or sent on to another B2C policy.
enum Completed {
    /// The user, where to go next, and the roles held before when this was a silent re-check
    /// of the same user.
    SignedIn(Box<User>, String, Option<Vec<String>>),
    /// B2C password reset: a new authorization request at the reset policy.
    Restarted(String),
}

/// B2C answers "forgot your password?" on the sign-in page with this error, and the app must
/// start the password-reset policy itself.
const B2C_PASSWORD_RESET: &str = "AADB2C90118";

/// Answers to a `prompt=none` request that mean the user must sign in interactively.
const SILENT_REFUSALS: [&str; 4] = [
    "login_required",
    "interaction_required",
    "consent_required",
    "account_selection_required",
];

/// Answers to an incremental consent that mean the user did not grant the scopes (Entra
/// sends `consent_required` with AADSTS65004 when the user cancels the consent page).
const CONSENT_REFUSALS: [&str; 3] = ["consent_required", "access_denied", "interaction_required"];

/// Claims come from the token: logged with Debug formatting, so `\n` stays `\n`.
fn log_signed_in(user: &User) {
    tracing::info!(sub = ?user.sub, oid = ?user.oid, role = ?user.role(), "signed in");
}

/// The error's text quotes provider codes and token headers: logged escaped.
fn log_refused(err: &AuthError, claims: Option<&Claims>) {
    tracing::warn!(
        reason = err.reason(),
        error = %Escaped(err),
        sub = claims.map(|c| tracing::field::debug(c.sub.as_str())),
        "sign-in refused"
    );
}

async fn complete(req: &HttpRequest, session: &Session, auth: &Auth) -> Result<Completed, Refusal> {
    let params = CallbackParams::parse(req.query_string()).map_err(|e| (e, None))?;
    let state = params.state.ok_or((AuthError::StateMissing, None))?;
    let typed = AuthSession(session);
    let pending = typed
        .take_pending(&state)
        .ok_or((AuthError::StateMismatch, None))?;
    let now = now();
    if now - pending.created_at > auth.config().pending_ttl.as_secs() as i64 {
        return Err((AuthError::StateExpired, None));
    }
    if let Some(code) = &params.error
        && pending.prompt.as_deref() == Some("none")
        && SILENT_REFUSALS.contains(&code.as_str())
    {
        return Err((AuthError::SignInRequired(code.clone()), None));
    }
    if let (Some(code), Some(scopes)) = (&params.error, &pending.consent)
        && CONSENT_REFUSALS.contains(&code.as_str())
    {
        return Err((
            AuthError::ConsentDeclined(crate::consent::describe(scopes)),
            None,
        ));
    }
    if let Some(code) = params.error {
        let reset = auth.config().b2c.reset_password.as_deref();
        let forgot = code == "access_denied"
            && params
                .error_description
                .as_deref()
                .is_some_and(|d| d.trim_start().starts_with(B2C_PASSWORD_RESET));
        if let (true, Some(policy)) = (forgot, reset) {
            let provider = auth.provider().await.map_err(|e| (e, None))?;
            let (url, fresh) =
                flow::begin_policy(auth.config(), &provider, pending.next, now, Some(policy));
            let ttl = auth.config().pending_ttl.as_secs() as i64;
            typed
                .push_pending(fresh, now, ttl)
                .map_err(|e| (AuthError::Session(e), None))?;
            tracing::info!(policy = ?policy, "B2C password reset asked (AADB2C90118): starting the reset-password policy");
            return Ok(Completed::Restarted(url.to_string()));
        }
        return Err((
            AuthError::ProviderError {
                code: code.chars().take(64).collect(),
                description: params
                    .error_description
                    .map(|d| d.chars().take(300).collect()),
            },
            None,
        ));
    }
    let provider = auth.provider().await.map_err(|e| (e, None))?;
    flow::check_iss_param(&provider, params.iss.as_deref()).map_err(|e| (e, None))?;
    let code = params
        .code
        .ok_or((AuthError::BadCallback("the callback has no code"), None))?;
    let (claims, granted) = flow::redeem(auth.config(), &provider, auth.http(), &pending, code)
        .await
        .map_err(|e| (e, None))?;
    let config = auth.config();
    let roles = match config.role_source.read(&claims) {
        Ok(roles) => roles,
        Err(RoleReadError::GroupsOverage) => {
            return Err((AuthError::GroupsOverage, Some(Box::new(claims))));
        }
        Err(wrong) => {
            let error = wrong
                .token_error()
                .map_or(AuthError::GroupsOverage, AuthError::InvalidIdToken);
            return Err((error, Some(Box::new(claims))));
        }
    };
    let mut user = User::from_claims(&claims, roles, now);
    user.rank_in(&config.roles);
    if user.role().is_none() {
        let any_of = config.roles.names().join(", ");
        return Err((AuthError::NoAppRole(any_of), Some(Box::new(claims))));
    }
    let previous = typed
        .user()
        .filter(|before| pending.prompt.as_deref() == Some("none") && before.sub == user.sub)
        .map(|before| before.roles);
    let mut tokens = TokenSet {
        id_token: granted.id_token.clone().unwrap_or_default(),
        login_hint: claims.login_hint.clone(),
        refresh_token: granted.refresh_token.clone(),
        access: Vec::new(),
    };
    tokens.put_access(AccessToken {
        token: granted.access_token.clone(),
        scopes: granted.scopes.clone(),
        expires_at: granted.expires_at,
    });
    let silent = pending.prompt.as_deref() == Some("none");
    let live = live_roles::initial(auth, tokens.refresh_token.is_some(), silent, now);
    let asked = pending
        .consent
        .as_ref()
        .and_then(|_| crate::consent::take_asked(session));
    typed
        .sign_in(&user, &tokens, &config.token_keys, &live, now)
        .map_err(|e| (AuthError::Session(e), None))?;
    crate::consent::restore_asked(session, asked);
    Ok(Completed::SignedIn(Box::new(user), pending.next, previous))
}

/// `GET /profile/edit` (mounted only with a B2C edit-profile policy): a new authorization
/// request at that policy; its callback is the normal one, which replaces the session's user
/// with the new ID token's. Anonymous callers go to the sign-in page first.
pub(crate) async fn profile_edit(req: HttpRequest, session: Session) -> HttpResponse {
    let Some(auth) = req.app_data::<Auth>() else {
        return HttpResponse::InternalServerError().finish();
    };
    let config = auth.config();
    let Some(policy) = config.b2c.edit_profile.as_deref() else {
        return HttpResponse::NotFound().finish();
    };
    let typed = AuthSession(&session);
    if typed.user().is_none() {
        let next: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", req.path())
            .finish();
        return HttpResponse::Found()
            .insert_header((header::LOCATION, format!("{}?{next}", config.login_path())))
            .finish();
    }
    let provider = match auth.provider().await {
        Ok(p) => p,
        Err(err) => {
            tracing::warn!(reason = err.reason(), error = %Escaped(&err), "profile edit: provider unavailable");
            return auth.pages().auth_error(&req, &err);
        }
    };
    let now = now();
    let (url, pending) = flow::begin_policy(config, &provider, "/".to_owned(), now, Some(policy));
    if let Err(e) = typed.push_pending(pending, now, config.pending_ttl.as_secs() as i64) {
        let err = AuthError::Session(e);
        tracing::error!(error = %Escaped(&err), "could not store the pending profile edit");
        return auth.pages().auth_error(&req, &err);
    }
    tracing::info!(policy = ?policy, "starting the B2C edit-profile policy");
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `GET /logout`: a "Sign out?" page whose form POSTs the session's CSRF token. A GET never
/// signs out, so a link or image on another site cannot end the user's session.
pub(crate) async fn logout_page(req: HttpRequest, session: Session) -> HttpResponse {
    let Some(auth) = req.app_data::<Auth>() else {
        return HttpResponse::InternalServerError().finish();
    };
    let signed_in = AuthSession(&session).user().is_some();
    // Anonymous visitors get the form too: a user refused at sign-in (no role) is still
    // signed in at the provider and may want to switch accounts there.
    let page = SignOutPage {
        action: auth.config().logout_path().to_owned(),
        csrf_token: crate::csrf::token(&session),
        signed_in,
    };
    auth.pages().sign_out(&req, &page)
}

/// The sign-out form: only the CSRF token.
#[derive(serde::Deserialize)]
pub(crate) struct SignOutForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /logout` with `csrf_token`: ends the server-side session, then signs out at the
/// provider. Without the session's token nothing changes (403 page).
pub(crate) async fn logout(
    req: HttpRequest,
    session: Session,
    form: Option<web::Form<SignOutForm>>,
) -> HttpResponse {
    let Some(auth) = req.app_data::<Auth>() else {
        return HttpResponse::InternalServerError().finish();
    };
    let presented = form.as_ref().map(|f| f.csrf_token.as_str());
    if !crate::csrf::verify(&session, presented) {
        let err = AuthError::SignOutUnconfirmed;
        tracing::warn!(
            reason = err.reason(),
            token = if presented.is_some_and(|t| !t.is_empty()) {
                "wrong"
            } else {
                "missing"
            },
            "sign-out refused"
        );
        return auth.pages().auth_error(&req, &err);
    }
    let typed = AuthSession(&session);
    let user = typed.user();
    let hints = typed.logout_hints(&auth.config().token_keys);
    session.purge();
    tracing::info!(
        sub = user.as_ref().map(|u| tracing::field::debug(u.sub.as_str())),
        "signed out"
    );
    auth.events().signed_out(&req, user.as_ref()).await;

    let config = auth.config();
    // Returned by the provider to the post-logout URL and checked there (`signed_out_return`);
    // some providers (glewlwyd) only honour post_logout_redirect_uri when `state` is present.
    let state = oauth2::CsrfToken::new_random_len(24).secret().clone();
    let end_session = auth
        .provider()
        .await
        .ok()
        .and_then(|p| p.metadata.end_session_endpoint.clone());
    let location = match end_session {
        Some(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair(
                        "post_logout_redirect_uri",
                        config.post_logout_redirect_url.as_str(),
                    )
                    .append_pair("client_id", &config.client_id)
                    .append_pair("state", &state);
                if let Some(hints) = &hints {
                    query.append_pair("id_token_hint", &hints.id_token);
                    if let Some(hint) = &hints.login_hint {
                        query.append_pair("logout_hint", hint);
                    }
                }
            }
            url.to_string()
        }
        None => config.login_path.clone(),
    };
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(flash_cookie(
            config.login_path(),
            &format!("{FLASH_SIGNED_OUT}.{state}"),
        ))
        .finish()
}

/// The flash cookie's value prefix; the sign-out's `state` follows a dot.
const FLASH_SIGNED_OUT: &str = "signed_out";

/// Whether `/login` is the return from a sign-out of this browser: the flash cookie is there
/// and, when the provider sends `state` back, it is the one the sign-out sent. A stray or
/// forged `state` is logged and shows the plain sign-in page (the session is gone either way,
/// and `/login` never redirects on it).
fn signed_out_return(req: &HttpRequest) -> bool {
    let flash = req.cookie(FLASH_COOKIE).map(|c| c.value().to_owned());
    let Some(flash) = flash.filter(|v| v.starts_with(FLASH_SIGNED_OUT)) else {
        if let Some(state) = query_state(req) {
            tracing::warn!(state = ?state, reason = "logout_state_unknown", "sign-out return: a state but no sign-out started in this browser");
        }
        return false;
    };
    match query_state(req) {
        None => true,
        Some(state) => {
            let expected = flash
                .strip_prefix(FLASH_SIGNED_OUT)
                .and_then(|v| v.strip_prefix('.'));
            let ok = expected == Some(state.as_str());
            if !ok {
                tracing::warn!(state = ?state, reason = "logout_state_mismatch", "sign-out return: the state is not the one this browser's sign-out sent");
            }
            ok
        }
    }
}

fn query_state(req: &HttpRequest) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.chars().take(256).collect())
}

fn flash_cookie(login_path: &str, value: &str) -> Cookie<'static> {
    Cookie::build(FLASH_COOKIE, value.to_owned())
        .path(login_path.to_owned())
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::minutes(5))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TokenError;
    use crate::log_safe::captured;

    const HOSTILE: &str = "sub-1\nINFO signed in sub=\"admin\"\r";

    fn claims() -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "https://idp.example", "sub": HOSTILE, "aud": "client", "exp": 2_000,
        }))
        .unwrap()
    }

    /// One line per event, the hostile value visible but escaped.
    fn assert_one_escaped_line(out: &str) {
        assert_eq!(out.lines().count(), 1, "a forged line: {out}");
        assert!(!out.contains('\r'), "{out}");
        assert!(out.contains(r"sub-1\nINFO"), "{out}");
    }

    #[test]
    fn a_sub_with_a_newline_is_logged_escaped_at_sign_in() {
        let user = User::from_claims(&claims(), vec![], 0);
        assert_one_escaped_line(&captured(|| log_signed_in(&user)));
    }

    #[test]
    fn refusals_log_claims_and_provider_text_escaped() {
        let claims = claims();
        for err in [
            AuthError::CodeRejected(HOSTILE.into()),
            AuthError::InvalidIdToken(TokenError::DisallowedAlgorithm(HOSTILE.into())),
            AuthError::NoAppRole("DemoApp.Read".into()),
        ] {
            assert_one_escaped_line(&captured(|| log_refused(&err, Some(&claims))));
        }
    }
}
