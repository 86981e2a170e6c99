//! How many sessions the gateway holds at once: in all (`MAX_SESSIONS`) and per token subject
//! (`MAX_SESSIONS_PER_SUBJECT`). Sessions of every transport count, listen streams too; a session
//! past a cap is refused before it is registered, and counted.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;

/// The caps; `None` is no cap (the legacy profile's default, as the field's gateway had none).
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionCaps {
    pub total: Option<usize>,
    pub per_subject: Option<usize>,
}

/// A session refused at a cap, and the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Total(usize),
    Subject(usize),
}

impl Full {
    pub const LABELS: [&'static str; 2] = ["total", "subject"];

    pub(super) fn index(self) -> usize {
        match self {
            Full::Total(_) => 0,
            Full::Subject(_) => 1,
        }
    }

    /// 503 when the gateway is full (for everyone), 429 when this subject is.
    pub fn status(self) -> StatusCode {
        match self {
            Full::Total(_) => StatusCode::SERVICE_UNAVAILABLE,
            Full::Subject(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn message(self) -> String {
        match self {
            Full::Total(n) => format!("the gateway holds its maximum of {n} sessions (MAX_SESSIONS): try again later"),
            Full::Subject(n) => {
                format!(
                    "this token's subject holds its maximum of {n} sessions (MAX_SESSIONS_PER_SUBJECT): end one first"
                )
            }
        }
    }
}

/// The sessions each subject holds now.
#[derive(Default)]
pub(super) struct Held(HashMap<Arc<str>, usize>);

impl Held {
    /// Count one more session of `owner`'s, unless a cap says no (`total` is the number held now).
    pub(super) fn admit(&mut self, caps: SessionCaps, total: usize, owner: &Arc<str>) -> Result<(), Full> {
        if let Some(max) = caps.total
            && total >= max
        {
            return Err(Full::Total(max));
        }
        let held = self.0.entry(Arc::clone(owner)).or_default();
        if let Some(max) = caps.per_subject
            && *held >= max
        {
            return Err(Full::Subject(max));
        }
        *held += 1;
        Ok(())
    }

    pub(super) fn release(&mut self, owner: &str) {
        if let Some(held) = self.0.get_mut(owner) {
            *held -= 1;
            if *held == 0 {
                self.0.remove(owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_refuses_past_it_and_a_release_makes_room() {
        let caps = SessionCaps {
            total: Some(3),
            per_subject: Some(2),
        };
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut held = Held::default();
        assert_eq!(held.admit(caps, 0, &a), Ok(()));
        assert_eq!(held.admit(caps, 1, &a), Ok(()));
        assert_eq!(held.admit(caps, 2, &a), Err(Full::Subject(2)));
        assert_eq!(held.admit(caps, 2, &b), Ok(()));
        assert_eq!(held.admit(caps, 3, &b), Err(Full::Total(3)));
        held.release("a");
        assert_eq!(held.admit(caps, 2, &a), Ok(()));
        held.release("a");
        held.release("a");
        assert!(!held.0.contains_key("a"), "a subject with none is forgotten");
    }
}
