//! Notes: plain SQL through sqlx, times as unix seconds.

use crate::db::Pool;
use serde::Serialize;

use crate::clock::now;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Note {
    pub id: String,
    pub title: String,
    pub body: String,
    pub author_id: String,
    pub author_name: String,
    pub created_at: i64,
}

/// A note as submitted, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct NewNote {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: String,
}

pub const TITLE_MAX: usize = 200;
pub const BODY_MAX: usize = 10_000;
pub const PAGE_SIZE: i64 = 20;

/// Field name and message for each invalid field.
pub type FieldErrors = Vec<(&'static str, String)>;

impl NewNote {
    /// Trims and checks the lengths (in characters): title 1..=200, body up to 10,000.
    pub fn validate(&self) -> Result<NewNote, FieldErrors> {
        let title = self.title.trim().to_owned();
        let body = self.body.trim_end().to_owned();
        let mut errors = Vec::new();
        let title_len = title.chars().count();
        if title_len == 0 {
            errors.push(("title", "Give the note a title.".to_owned()));
        } else if title_len > TITLE_MAX {
            errors.push((
                "title",
                format!("The title is {title_len} characters; at most {TITLE_MAX}."),
            ));
        }
        if title.chars().any(char::is_control) {
            errors.push((
                "title",
                "The title cannot contain control characters.".to_owned(),
            ));
        }
        let body_len = body.chars().count();
        if body_len > BODY_MAX {
            errors.push((
                "body",
                format!("The text is {body_len} characters; at most {BODY_MAX}."),
            ));
        }
        if errors.is_empty() {
            Ok(NewNote { title, body })
        } else {
            Err(errors)
        }
    }
}

pub async fn create(
    pool: &Pool,
    note: &NewNote,
    author_id: &str,
    author_name: &str,
) -> Result<Note, sqlx::Error> {
    let note = Note {
        id: crate::db::new_id(),
        title: note.title.clone(),
        body: note.body.clone(),
        author_id: author_id.to_owned(),
        author_name: author_name.to_owned(),
        created_at: now(),
    };
    sqlx::query(
        "INSERT INTO notes (id, title, body, author_id, author_name, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&note.id)
    .bind(&note.title)
    .bind(&note.body)
    .bind(&note.author_id)
    .bind(&note.author_name)
    .bind(note.created_at)
    .execute(pool)
    .await?;
    Ok(note)
}

/// One page of notes, newest first, and whether there is a next page.
pub async fn page(pool: &Pool, page: i64) -> Result<(Vec<Note>, bool), sqlx::Error> {
    let (limit, offset) = crate::db::page_window(page, PAGE_SIZE);
    let notes: Vec<Note> = sqlx::query_as(
        "SELECT id, title, body, author_id, author_name, created_at FROM notes \
         ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok(crate::db::split_page(notes, PAGE_SIZE))
}

pub async fn find(pool: &Pool, id: &str) -> Result<Option<Note>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, title, body, author_id, author_name, created_at FROM notes WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Deletes a note; `false` when there was none with that id.
pub async fn delete(pool: &Pool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM notes WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes per author, most prolific first (the reports page).
pub async fn count_by_author(pool: &Pool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT author_name, COUNT(*) AS n FROM notes GROUP BY author_name ORDER BY n DESC, author_name LIMIT 100",
    )
    .fetch_all(pool)
    .await
}
