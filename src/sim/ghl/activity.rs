//! Tasks and notes on contacts: the operations behind the task, task-search and note routes
//! and the admin edits, with the webhooks they raise and the contact timestamps they move.
//!
//! What moves the contact's `dateUpdated` is a switch each (ghl-api.md §11.3: not
//! documented), off by default. Events per ghl-api.md §8.3: TaskCreate, TaskComplete
//! (only on becoming completed: there is no reopen or TaskUpdate event), TaskDelete,
//! NoteCreate, NoteUpdate, NoteDelete.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::GhlError;
use super::model::{Note, Task};
use super::state::GhlState;

/// Fields of a task create or update (`CreateTaskParams` / `UpdateTaskBody`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskInput {
    pub title: Option<String>,
    /// Description.
    pub body: Option<String>,
    /// Due time.
    pub due_date: Option<DateTime<Utc>>,
    /// Done.
    pub completed: Option<bool>,
    /// Assignee user id.
    pub assigned_to: Option<String>,
}

impl TaskInput {
    /// Reads a body; `create` demands `title`, `dueDate` and `completed` (the spec's required
    /// fields), answering 422 with a message array otherwise.
    pub fn from_json(body: &Value, create: bool) -> Result<Self, GhlError> {
        let mut messages = Vec::new();
        let mut input = TaskInput::default();
        match body.get("title") {
            Some(Value::String(s)) if !s.is_empty() => input.title = Some(s.clone()),
            None | Some(Value::Null) if !create => {}
            _ => messages.push("title must be a string".to_owned()),
        }
        match body.get("body") {
            Some(Value::String(s)) => input.body = Some(s.clone()),
            None | Some(Value::Null) => {}
            _ => messages.push("body must be a string".to_owned()),
        }
        match body.get("assignedTo") {
            Some(Value::String(s)) => input.assigned_to = Some(s.clone()),
            None | Some(Value::Null) => {}
            _ => messages.push("assignedTo must be a string".to_owned()),
        }
        match body.get("dueDate") {
            Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
                Ok(at) => input.due_date = Some(at.with_timezone(&Utc)),
                Err(_) => messages.push("dueDate must be a valid ISO 8601 date string".to_owned()),
            },
            None | Some(Value::Null) if !create => {}
            _ => messages.push("dueDate must be a valid ISO 8601 date string".to_owned()),
        }
        match body.get("completed") {
            Some(Value::Bool(b)) => input.completed = Some(*b),
            None | Some(Value::Null) if !create => {}
            _ => messages.push("completed must be a boolean value".to_owned()),
        }
        if messages.is_empty() {
            Ok(input)
        } else {
            Err(GhlError::unprocessable(messages))
        }
    }
}

/// Filters of `POST /locations/{id}/tasks/search` (`TaskSearchParamsDto`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskQuery {
    /// Only tasks of these contacts.
    pub contact_ids: Option<Vec<String>>,
    /// Only done / open tasks.
    pub completed: Option<bool>,
    /// Only tasks assigned to these users.
    pub assigned_to: Option<Vec<String>>,
    /// Text in title or body.
    pub query: Option<String>,
    /// Page size (default 25).
    pub limit: usize,
    /// Offset (default 0).
    pub skip: usize,
}

impl TaskQuery {
    /// Reads a search body; wrong types give 422.
    pub fn from_json(body: &Value) -> Result<Self, GhlError> {
        let mut messages = Vec::new();
        let mut strings = |key: &str| -> Option<Vec<String>> {
            match body.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                ),
                Some(_) => {
                    messages.push(format!("each value in {key} must be a string"));
                    None
                }
            }
        };
        let contact_ids = strings("contactId");
        let assigned_to = strings("assignedTo");
        let mut number = |key: &str, default: usize| -> usize {
            match body.get(key) {
                None | Some(Value::Null) => default,
                Some(v) => match v.as_u64() {
                    Some(n) => n as usize,
                    None => {
                        messages.push(format!("{key} must be a number"));
                        default
                    }
                },
            }
        };
        let limit = number("limit", 25);
        let skip = number("skip", 0);
        let completed = match body.get("completed") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                messages.push("completed must be a boolean value".to_owned());
                None
            }
        };
        let query = body.get("query").and_then(Value::as_str).map(str::to_owned);
        if messages.is_empty() {
            Ok(Self {
                contact_ids,
                completed,
                assigned_to,
                query,
                limit,
                skip,
            })
        } else {
            Err(GhlError::unprocessable(messages))
        }
    }
}

impl GhlState {
    fn task_event_fields(&self, task: &Task, thin: bool) -> serde_json::Map<String, Value> {
        let mut fields = task.to_webhook_fields();
        if thin {
            fields.remove("contactId");
            fields.remove("body");
        }
        fields
    }

    fn bump_for_task(&mut self, contact_id: &str, now: DateTime<Utc>) {
        if self.switches.task_completion_bumps_contact {
            self.touch(contact_id, now);
        }
    }

    fn bump_for_note(&mut self, contact_id: &str, now: DateTime<Utc>) {
        if self.switches.note_bumps_contact {
            self.touch(contact_id, now);
        }
    }

    /// A contact's tasks, oldest first.
    pub fn tasks_of(&self, contact_id: &str) -> Result<Vec<&Task>, GhlError> {
        self.contact(contact_id)?;
        let mut tasks: Vec<&Task> = self
            .tasks
            .values()
            .filter(|t| t.contact_id == contact_id)
            .collect();
        tasks.sort_by_key(|t| t.seq);
        Ok(tasks)
    }

    /// One task of one contact.
    pub fn task(&self, contact_id: &str, task_id: &str) -> Result<&Task, GhlError> {
        self.contact(contact_id)?;
        self.tasks
            .get(task_id)
            .filter(|t| t.contact_id == contact_id)
            .ok_or_else(|| GhlError::not_found("Task"))
    }

    /// Creates a task (input from [`TaskInput::from_json`] with `create = true`).
    pub fn create_task(
        &mut self,
        now: DateTime<Utc>,
        contact_id: &str,
        input: &TaskInput,
    ) -> Result<Task, GhlError> {
        self.contact(contact_id)?;
        let id = self.new_id();
        self.next_seq += 1;
        let task = Task {
            id: id.clone(),
            contact_id: contact_id.to_owned(),
            title: input.title.clone().unwrap_or_default(),
            body: input.body.clone(),
            assigned_to: input.assigned_to.clone(),
            due_date: input.due_date.unwrap_or(now),
            completed: input.completed.unwrap_or(false),
            date_added: now,
            seq: self.next_seq,
        };
        self.tasks.insert(id, task.clone());
        let thin = self.switches.task_create_webhook_thin;
        let fields = self.task_event_fields(&task, thin);
        self.raise("TaskCreate", fields);
        if task.completed {
            let fields = self.task_event_fields(&task, false);
            self.raise("TaskComplete", fields);
        }
        self.bump_for_task(contact_id, now);
        Ok(task)
    }

    /// Updates the given fields of a task; completing it raises TaskComplete.
    pub fn update_task(
        &mut self,
        now: DateTime<Utc>,
        contact_id: &str,
        task_id: &str,
        input: &TaskInput,
    ) -> Result<Task, GhlError> {
        let mut task = self.task(contact_id, task_id)?.clone();
        let was_completed = task.completed;
        if let Some(title) = &input.title {
            task.title = title.clone();
        }
        if let Some(body) = &input.body {
            task.body = Some(body.clone());
        }
        if let Some(assigned_to) = &input.assigned_to {
            task.assigned_to = Some(assigned_to.clone());
        }
        if let Some(due) = input.due_date {
            task.due_date = due;
        }
        if let Some(completed) = input.completed {
            task.completed = completed;
        }
        let changed = self.tasks.get(task_id) != Some(&task);
        self.tasks.insert(task_id.to_owned(), task.clone());
        if task.completed && !was_completed {
            let fields = self.task_event_fields(&task, false);
            self.raise("TaskComplete", fields);
        }
        if changed {
            self.bump_for_task(contact_id, now);
        }
        Ok(task)
    }

    /// `PUT …/tasks/{id}/completed`: completes or reopens.
    pub fn set_task_completed(
        &mut self,
        now: DateTime<Utc>,
        contact_id: &str,
        task_id: &str,
        completed: bool,
    ) -> Result<Task, GhlError> {
        let input = TaskInput {
            completed: Some(completed),
            ..TaskInput::default()
        };
        self.update_task(now, contact_id, task_id, &input)
    }

    /// Deletes a task.
    pub fn delete_task(
        &mut self,
        now: DateTime<Utc>,
        contact_id: &str,
        task_id: &str,
    ) -> Result<(), GhlError> {
        self.task(contact_id, task_id)?;
        if let Some(task) = self.tasks.remove(task_id) {
            let fields = self.task_event_fields(&task, false);
            self.raise("TaskDelete", fields);
        }
        self.bump_for_task(contact_id, now);
        Ok(())
    }

    /// Finds a task by id alone (admin edits name only the task).
    pub fn task_by_id(&self, task_id: &str) -> Result<&Task, GhlError> {
        self.tasks
            .get(task_id)
            .ok_or_else(|| GhlError::not_found("Task"))
    }

    /// The location-wide task search, in creation order; `limit` is cut to the switch's cap.
    pub fn search_tasks(&self, query: &TaskQuery) -> Vec<&Task> {
        let limit = query
            .limit
            .min(self.switches.task_search_limit_cap as usize);
        let text = query.query.as_ref().map(|q| q.to_lowercase());
        let mut tasks: Vec<&Task> =
            self.tasks
                .values()
                .filter(|t| {
                    query
                        .contact_ids
                        .as_ref()
                        .is_none_or(|ids| ids.contains(&t.contact_id))
                })
                .filter(|t| query.completed.is_none_or(|c| t.completed == c))
                .filter(|t| {
                    query.assigned_to.as_ref().is_none_or(|users| {
                        t.assigned_to.as_ref().is_some_and(|a| users.contains(a))
                    })
                })
                .filter(|t| {
                    text.as_ref().is_none_or(|q| {
                        t.title.to_lowercase().contains(q)
                            || t.body
                                .as_ref()
                                .is_some_and(|b| b.to_lowercase().contains(q))
                    })
                })
                .collect();
        tasks.sort_by_key(|t| t.seq);
        tasks.into_iter().skip(query.skip).take(limit).collect()
    }

    /// A contact's notes, oldest first.
    pub fn notes_of(&self, contact_id: &str) -> Result<Vec<&Note>, GhlError> {
        self.contact(contact_id)?;
        let mut notes: Vec<&Note> = self
            .notes
            .values()
            .filter(|n| n.contact_id == contact_id)
            .collect();
        notes.sort_by(|a, b| a.date_added.cmp(&b.date_added).then(a.id.cmp(&b.id)));
        Ok(notes)
    }

    /// One note of one contact.
    pub fn note(&self, contact_id: &str, note_id: &str) -> Result<&Note, GhlError> {
        self.contact(contact_id)?;
        self.notes
            .get(note_id)
            .filter(|n| n.contact_id == contact_id)
            .ok_or_else(|| GhlError::not_found("Note"))
    }

    /// Finds a note by id alone (admin edits name only the note).
    pub fn note_by_id(&self, note_id: &str) -> Result<&Note, GhlError> {
        self.notes
            .get(note_id)
            .ok_or_else(|| GhlError::not_found("Note"))
    }

    /// Creates a note (`NotesDTO`: `body` required).
    pub fn create_note(
        &mut self,
        now: DateTime<Utc>,
        contact_id: &str,
        body: &Value,
    ) -> Result<Note, GhlError> {
        self.contact(contact_id)?;
        let text = match body.get("body") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(GhlError::unprocessable(vec![
                    "body should not be empty".into(),
                    "body must be a string".into(),
                ]));
            }
        };
        let id = self.new_id();
        let mut note = Note {
            id: id.clone(),
            contact_id: contact_id.to_owned(),
            body: text,
            user_id: None,
            title: None,
            color: None,
            pinned: false,
            date_added: now,
        };
        apply_note_fields(&mut note, body)?;
        self.notes.insert(id, note.clone());
        self.raise("NoteCreate", note.to_webhook_fields());
        self.bump_for_note(contact_id, now);
        Ok(note)
    }

    /// Updates a note (`UpdateNoteDTO`: all optional).
    pub fn update_note(
        &mut self,
        now: DateTime<Utc>,
        contact_id: &str,
        note_id: &str,
        body: &Value,
    ) -> Result<Note, GhlError> {
        let mut note = self.note(contact_id, note_id)?.clone();
        match body.get("body") {
            Some(Value::String(s)) => note.body = s.clone(),
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(GhlError::unprocessable(vec![
                    "body must be a string".into(),
                ]));
            }
        }
        apply_note_fields(&mut note, body)?;
        if self.notes.get(note_id) != Some(&note) {
            self.notes.insert(note_id.to_owned(), note.clone());
            self.raise("NoteUpdate", note.to_webhook_fields());
            self.bump_for_note(contact_id, now);
        }
        Ok(note)
    }

    /// Deletes a note.
    pub fn delete_note(
        &mut self,
        now: DateTime<Utc>,
        contact_id: &str,
        note_id: &str,
    ) -> Result<(), GhlError> {
        self.note(contact_id, note_id)?;
        if let Some(note) = self.notes.remove(note_id) {
            self.raise("NoteDelete", note.to_webhook_fields());
        }
        self.bump_for_note(contact_id, now);
        Ok(())
    }
}

fn apply_note_fields(note: &mut Note, body: &Value) -> Result<(), GhlError> {
    let mut messages = Vec::new();
    for (key, slot) in [
        ("userId", &mut note.user_id),
        ("title", &mut note.title),
        ("color", &mut note.color),
    ] {
        match body.get(key) {
            Some(Value::String(s)) => *slot = Some(s.clone()),
            None | Some(Value::Null) => {}
            Some(_) => messages.push(format!("{key} must be a string")),
        }
    }
    match body.get("pinned") {
        Some(Value::Bool(b)) => note.pinned = *b,
        None | Some(Value::Null) => {}
        Some(_) => messages.push("pinned must be a boolean value".to_owned()),
    }
    if messages.is_empty() {
        Ok(())
    } else {
        Err(GhlError::unprocessable(messages))
    }
}
