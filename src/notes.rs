//! The notes service: what creating or deleting a note means (validate, store, audit), called
//! by the page handlers and the JSON API alike so both behave the same.

use actix_web::HttpRequest;
use rolegate_auth::User;

use crate::audit::Audit;
use crate::db::Pool;
use crate::db::audit::Event;
use crate::db::notes::{self, FieldErrors, NewNote, Note};

/// Which surface a change came through, noted in the audit row.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    Page,
    Api,
}

impl Via {
    fn suffix(self) -> &'static str {
        match self {
            Via::Page => "",
            Via::Api => " (api)",
        }
    }
}

/// Why a note could not be created or deleted.
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("the note is invalid")]
    Invalid(FieldErrors),
    #[error("no such note")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Validates and stores a note by `user`, then audits it.
pub async fn create(
    pool: &Pool,
    audit: &Audit,
    req: &HttpRequest,
    user: &User,
    submitted: NewNote,
    via: Via,
) -> Result<Note, NotesError> {
    let valid = submitted.validate().map_err(NotesError::Invalid)?;
    let note = notes::create(pool, &valid, user.stable_id(), &user.name).await?;
    let detail = format!("note {} \"{}\"{}", note.id, note.title, via.suffix());
    audit
        .record(req, Event::NoteCreated, Some(user), detail)
        .await;
    Ok(note)
}

/// Deletes note `id`, then audits it.
pub async fn delete(
    pool: &Pool,
    audit: &Audit,
    req: &HttpRequest,
    user: &User,
    id: &str,
    via: Via,
) -> Result<(), NotesError> {
    let note = notes::find(pool, id).await?.ok_or(NotesError::NotFound)?;
    if !notes::delete(pool, id).await? {
        return Err(NotesError::NotFound);
    }
    let detail = format!("note {} \"{}\"{}", note.id, note.title, via.suffix());
    audit
        .record(req, Event::NoteDeleted, Some(user), detail)
        .await;
    Ok(())
}
