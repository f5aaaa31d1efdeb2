//! `/profile`: the user's profile, read on their behalf from Microsoft Graph's `/me`
//! (`downstream_apis.graph`, scope `User.Read`); `/profile/events`: their calendar, which needs
//! `Calendars.Read` beyond what the sign-in asked for, so its first visit goes through
//! incremental consent and comes back here.

use std::sync::Arc;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use rolegate_auth::{Auth, Downstream, Read, RequireRole, UserTokenError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::telemetry::Escaped;
use crate::templates::{Templates, base_context};

/// The downstream API the pages read (`downstream_apis.graph`).
const GRAPH: &str = "graph";

/// What the calendar page needs beyond `downstream_apis.graph.scopes`.
const CALENDAR_SCOPES: [&str; 1] = ["Calendars.Read"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/profile", web::get().to(profile))
        .route("/profile/events", web::get().to(events));
}

/// The fields of Graph's `user` resource the page shows.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct GraphUser {
    display_name: Option<String>,
    given_name: Option<String>,
    surname: Option<String>,
    job_title: Option<String>,
    mail: Option<String>,
    user_principal_name: Option<String>,
    office_location: Option<String>,
    preferred_language: Option<String>,
    #[serde(default)]
    business_phones: Vec<String>,
    id: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
struct GraphEvents {
    #[serde(default)]
    value: Vec<GraphEvent>,
}

#[derive(Debug, Deserialize, Serialize)]
struct GraphEvent {
    subject: Option<String>,
    start: Option<GraphTime>,
    end: Option<GraphTime>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct GraphTime {
    date_time: Option<String>,
    time_zone: Option<String>,
}

/// Why a Graph page could not be shown.
#[derive(Debug, thiserror::Error)]
enum GraphError {
    #[error(transparent)]
    Token(#[from] UserTokenError),
    #[error("Microsoft Graph answered {0}")]
    Status(u16),
    #[error("Microsoft Graph's answer could not be read")]
    Body,
}

async fn profile(
    req: HttpRequest,
    session: Session,
    _user: RequireRole<Read>,
    templates: web::Data<Arc<Templates>>,
) -> HttpResponse {
    let page = GraphPage {
        scopes: None,
        path: "/me",
        template: "profile.html",
        key: "me",
    };
    page.show::<GraphUser>(&req, &session, &templates).await
}

async fn events(
    req: HttpRequest,
    session: Session,
    _user: RequireRole<Read>,
    templates: web::Data<Arc<Templates>>,
) -> HttpResponse {
    let scopes: Vec<String> = CALENDAR_SCOPES.iter().map(|s| s.to_string()).collect();
    let page = GraphPage {
        scopes: Some(&scopes),
        path: "/me/events",
        template: "events.html",
        key: "events",
    };
    page.show::<GraphEvents>(&req, &session, &templates).await
}

/// One Graph resource shown on a page: read with a token for `scopes` (the API's own when
/// `None`), put into the template's context as `key`.
struct GraphPage<'a> {
    scopes: Option<&'a [String]>,
    path: &'static str,
    template: &'static str,
    key: &'static str,
}

impl GraphPage<'_> {
    async fn show<T: DeserializeOwned + Serialize>(
        &self,
        req: &HttpRequest,
        session: &Session,
        templates: &Templates,
    ) -> HttpResponse {
        let Some(auth) = req.app_data::<Auth>() else {
            return HttpResponse::InternalServerError().finish();
        };
        let read = match auth.downstream_for(req, session, GRAPH, self.scopes).await {
            Ok(graph) => read::<T>(&graph, self.path).await,
            Err(e) => Err(e.into()),
        };
        match read {
            Ok(value) => {
                let mut ctx = base_context(req);
                ctx.insert(self.key, &value);
                templates.page(StatusCode::OK, self.template, &ctx)
            }
            Err(e) => failed(req, session, auth, templates, e).await,
        }
    }
}

/// `GET base_url + path` as JSON.
async fn read<T: DeserializeOwned>(graph: &Downstream, path: &str) -> Result<T, GraphError> {
    let response = graph.send(graph.get(path)?).await?;
    if !response.status().is_success() {
        return Err(GraphError::Status(response.status().as_u16()));
    }
    response.json::<T>().await.map_err(|_| GraphError::Body)
}

/// Consent and claims challenges go round through the provider; an ended session to sign-in;
/// anything else is an error page that names the setting or the answer, never a token.
async fn failed(
    req: &HttpRequest,
    session: &Session,
    auth: &Auth,
    templates: &Templates,
    error: GraphError,
) -> HttpResponse {
    if let GraphError::Token(e) = &error
        && let Some(response) = auth.recover(req, session, e).await
    {
        return response;
    }
    let (status, title, message) = match &error {
        GraphError::Token(UserTokenError::UnknownApi(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Profile is not set up",
            "This page reads Microsoft Graph, and downstream_apis.graph is not configured."
                .to_owned(),
        ),
        GraphError::Token(e) => (
            e.status(),
            "Your profile could not be read",
            format!(
                "No token for Microsoft Graph could be had ({}).",
                e.reason()
            ),
        ),
        GraphError::Status(403) => (
            StatusCode::FORBIDDEN,
            "Microsoft Graph refused",
            "Microsoft Graph says your token does not allow this (insufficient privileges)."
                .to_owned(),
        ),
        GraphError::Status(code) => (
            StatusCode::BAD_GATEWAY,
            "Microsoft Graph failed",
            format!("Microsoft Graph answered HTTP {code}. Please try again in a minute."),
        ),
        GraphError::Body => (
            StatusCode::BAD_GATEWAY,
            "Microsoft Graph failed",
            "Microsoft Graph's answer could not be read.".to_owned(),
        ),
    };
    tracing::warn!(path = %Escaped(req.path()), error = %Escaped(&error), "graph page failed");
    let mut ctx = base_context(req);
    ctx.insert("title", title);
    ctx.insert("message", &message);
    ctx.insert("status", &status.as_u16());
    templates.page(status, "error.html", &ctx)
}
