//! A request that is the same every time it is sent (no template variable in it): rendered once, so
//! a loop that only writes bytes and reads answers can run the action without it (`engine/direct`).

use super::http::OkStatuses;
use super::request::judge_status;
use crate::record::Outcome;

/// An action's whole request as bytes, and how its answer is judged.
#[derive(Debug, Clone)]
pub struct FixedRequest {
    /// Request line, headers and body, as written to the connection.
    pub bytes: Vec<u8>,
    /// A HEAD request: its answer has no body, whatever its head says.
    pub head: bool,
    pub ok: OkStatuses,
    pub expected: Vec<u16>,
}

impl FixedRequest {
    pub fn outcome(&self, status: u16) -> Outcome {
        judge_status(&self.ok, &self.expected, status)
    }
}

/// Values for a template that draws none.
pub(super) struct NoValues;

impl crate::lang::Values for NoValues {
    fn value(&mut self, _var: crate::lang::Var) -> &str {
        ""
    }
}
