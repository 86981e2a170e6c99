//! The conformance suite's tasks fixtures (the `io.modelcontextprotocol/tasks` extension, SEP-2663):
//! tools the server runs as tasks for a client that declared the extension — the call answers at
//! once with a `CreateTaskResult` (`resultType: "task"`) and the client polls `tasks/get` until the
//! task is terminal, answers its input requests with `tasks/update`, or ends it with `tasks/cancel`.
//! For a client that did not declare it, a tool that may run as a task runs synchronously, and one
//! that must is refused with −32021 naming the extension.
//!
//! Tasks live in this process's memory for their `ttlMs`, at most [`MAX_TASKS`] at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use protocol::envelope::CLIENT_CAPABILITIES_KEY;
use protocol::error::{INTERNAL_ERROR, INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY};
use serde_json::{Map, Value, json};

pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";
const TTL: Duration = Duration::from_secs(60);
const POLL_INTERVAL_MS: u64 = 200;
const MAX_TASKS: usize = 10_000;
const MAX_SECONDS: u64 = 60;

/// A JSON-RPC error object (`code`, `message`, perhaps `data`).
pub type Refusal = Value;

/// Whether a tool may run as a task or must.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Support {
    Optional,
    Required,
}

/// The fixture tools: name, task support (`None`: never a task), description, input schema.
const TOOLS: [(&str, Option<Support>, &str); 7] = [
    ("greet", None, "Answers Hello, {name}! at once."),
    (
        "slow_compute",
        Some(Support::Optional),
        "Sleeps `seconds` (at most 60), then answers; a task for a client that declared the tasks extension.",
    ),
    (
        "failing_job",
        Some(Support::Required),
        "A task that ends in a tool error after half a second.",
    ),
    (
        "protocol_error_job",
        Some(Support::Optional),
        "A task that fails inside the server (a protocol error).",
    ),
    (
        "confirm_delete",
        Some(Support::Required),
        "A task that asks the client to confirm deleting `filename`.",
    ),
    (
        "multi_input",
        Some(Support::Required),
        "A task that asks the client two things at once.",
    ),
    (
        "test_tool_with_task",
        Some(Support::Required),
        "Asks the client's name (an input request), then runs as a task that greets it.",
    ),
];

fn support(name: &str) -> Option<Option<Support>> {
    TOOLS.iter().find(|(n, ..)| *n == name).map(|(_, s, _)| *s)
}

/// Whether `name` is one of these fixtures' tools.
pub fn serves(name: &str) -> bool {
    support(name).is_some()
}

/// The fixture tools, as `tools/list` lists them.
pub fn tools() -> impl Iterator<Item = Value> {
    TOOLS.iter().map(|(name, support, description)| {
        let properties = match *name {
            "greet" => json!({"name": {"type": "string"}}),
            "slow_compute" => json!({"seconds": {"type": "number"}, "label": {"type": "string"}}),
            "confirm_delete" => json!({"filename": {"type": "string"}}),
            _ => json!({}),
        };
        let mut tool = json!({"name": name, "description": description,
            "inputSchema": {"type": "object", "properties": properties}});
        if let Some(support) = support {
            let support = if *support == Support::Required {
                "required"
            } else {
                "optional"
            };
            tool["execution"] = json!({"taskSupport": support});
        }
        tool
    })
}

/// Where a task is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Working => "working",
            Status::InputRequired => "input_required",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    fn terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

struct Task {
    status: Status,
    created: SystemTime,
    updated: SystemTime,
    expires: Instant,
    /// What the tool asks the client and has not been answered, by key.
    pending: Map<String, Value>,
    /// The client's answers so far, by key.
    answers: Map<String, Value>,
    /// The argument the result names (`confirm_delete`'s file).
    subject: String,
    outcome: Option<Result<Value, Value>>,
    job: Option<tokio::task::AbortHandle>,
}

impl Task {
    fn settle(&mut self, status: Status, outcome: Result<Value, Value>) {
        self.status = status;
        self.outcome = Some(outcome);
        self.updated = SystemTime::now();
    }

    /// The task as `tasks/get` shows it (a `CreateTaskResult` leaves out what it ended with).
    fn view(&self, id: &str, detailed: bool) -> Value {
        let stamp = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
        let mut view = json!({"taskId": id, "status": self.status.as_str(),
            "createdAt": stamp(self.created), "lastUpdatedAt": stamp(self.updated),
            "ttlMs": TTL.as_millis() as u64, "pollIntervalMs": POLL_INTERVAL_MS});
        if !detailed {
            view["resultType"] = json!("task");
            return view;
        }
        match &self.outcome {
            Some(Ok(result)) => view["result"] = result.clone(),
            Some(Err(error)) => view["error"] = error.clone(),
            None => {}
        }
        if self.status == Status::InputRequired {
            view["inputRequests"] = Value::Object(self.pending.clone());
        }
        view
    }
}

/// The tasks this process holds.
#[derive(Clone, Default)]
pub struct Tasks(Arc<Mutex<HashMap<String, Task>>>);

fn refusal(code: i64, message: impl Into<String>) -> Refusal {
    json!({"code": code, "message": message.into()})
}

fn text(t: impl Into<String>, error: bool) -> Value {
    json!({"content": [{"type": "text", "text": t.into()}], "isError": error})
}

fn elicit(message: &str, field: &str, kind: &str) -> Value {
    json!({"method": "elicitation/create", "params": {"message": message,
        "requestedSchema": {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}}})
}

/// Whether the request declared the tasks extension (in the stateless era's `_meta`).
fn declared(params: &Value) -> bool {
    params["_meta"][CLIENT_CAPABILITIES_KEY]["extensions"]
        .get(EXTENSION)
        .is_some()
}

fn undeclared(what: &str) -> Refusal {
    json!({"code": MISSING_REQUIRED_CLIENT_CAPABILITY,
        "message": format!("{what} needs the {EXTENSION} extension"),
        "data": {"requiredCapabilities": {"extensions": {EXTENSION: {}}}}})
}

impl Tasks {
    /// A call of a fixture tool: a task for a client that declared the extension, else a synchronous
    /// answer (or the refusal of a tool that must be a task).
    pub async fn call(&self, params: &Value) -> Result<Value, Refusal> {
        let name = params["name"].as_str().unwrap_or_default();
        let arguments = &params["arguments"];
        let support = support(name).flatten();
        let as_task = support.is_some() && declared(params);
        if support == Some(Support::Required) && !as_task {
            return Err(undeclared(name));
        }
        let seconds = arguments["seconds"]
            .as_f64()
            .unwrap_or(0.0)
            .clamp(0.0, MAX_SECONDS as f64);
        let sleep = Duration::from_secs_f64(seconds);
        match (name, as_task) {
            ("greet", _) => Ok(text(
                format!("Hello, {}!", arguments["name"].as_str().unwrap_or("you")),
                false,
            )),
            ("slow_compute", false) => {
                tokio::time::sleep(sleep).await;
                Ok(text(
                    format!("computed {}", arguments["label"].as_str().unwrap_or("")),
                    false,
                ))
            }
            ("protocol_error_job", false) => {
                Err(refusal(INTERNAL_ERROR, "protocol_error_job failed inside the server"))
            }
            ("slow_compute", true) => {
                let label = arguments["label"].as_str().unwrap_or("").to_owned();
                Ok(self.start(String::new(), Map::new(), sleep, move || {
                    (Status::Completed, Ok(text(format!("computed {label}"), false)))
                }))
            }
            ("failing_job", true) => Ok(self.start(String::new(), Map::new(), Duration::from_millis(500), || {
                (
                    Status::Completed,
                    Ok(text("failing_job failed, as it always does", true)),
                )
            })),
            ("protocol_error_job", true) => {
                Ok(self.start(String::new(), Map::new(), Duration::from_millis(100), || {
                    (
                        Status::Failed,
                        Err(refusal(INTERNAL_ERROR, "protocol_error_job failed inside the server")),
                    )
                }))
            }
            ("confirm_delete", true) => {
                let file = arguments["filename"].as_str().unwrap_or("the file").to_owned();
                let mut asks = Map::new();
                asks.insert(
                    "confirm".into(),
                    elicit(&format!("Delete {file}?"), "confirm", "boolean"),
                );
                Ok(self.start(file, asks, Duration::ZERO, || unreachable!("asks first")))
            }
            ("multi_input", true) => {
                let mut asks = Map::new();
                asks.insert("name".into(), elicit("What is your name?", "name", "string"));
                asks.insert("confirm".into(), elicit("Go ahead?", "confirm", "boolean"));
                Ok(self.start(String::new(), asks, Duration::ZERO, || unreachable!("asks first")))
            }
            ("test_tool_with_task", true) => self.greet_as_task(params),
            _ => Err(refusal(INVALID_PARAMS, format!("Unknown tool: {name}"))),
        }
    }

    /// `test_tool_with_task`: the name by an input request first (2026-07-28's way), then a task.
    fn greet_as_task(&self, params: &Value) -> Result<Value, Refusal> {
        let answer = &params["inputResponses"]["user_name"];
        if !answer.is_object() {
            return Ok(json!({"resultType": protocol::mrtr::INPUT_REQUIRED,
                "inputRequests": {"user_name": elicit("What is your name?", "name", "string")}}));
        }
        let name = answer["content"]["name"].as_str().unwrap_or("you").to_owned();
        Ok(
            self.start(String::new(), Map::new(), Duration::from_millis(100), move || {
                (Status::Completed, Ok(text(format!("Hello, {name}!"), false)))
            }),
        )
    }

    /// Create a task, held before its `CreateTaskResult` is answered (so a `tasks/get` right after
    /// finds it): one that asks waits for `tasks/update`; any other settles after `after`.
    fn start(
        &self,
        subject: String,
        asks: Map<String, Value>,
        after: Duration,
        ends: impl FnOnce() -> (Status, Result<Value, Value>) + Send + 'static,
    ) -> Value {
        let id = format!("task-{:016x}", fastrand::u64(..));
        let now = SystemTime::now();
        let mut task = Task {
            status: if asks.is_empty() {
                Status::Working
            } else {
                Status::InputRequired
            },
            created: now,
            updated: now,
            expires: Instant::now() + TTL,
            pending: asks,
            answers: Map::new(),
            subject,
            outcome: None,
            job: None,
        };
        if task.pending.is_empty() {
            let tasks = self.clone();
            let job_id = id.clone();
            task.job = Some(
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let (status, outcome) = ends();
                    if let Some(task) = tasks.0.lock().expect("tasks lock").get_mut(&job_id)
                        && !task.status.terminal()
                    {
                        task.settle(status, outcome);
                    }
                })
                .abort_handle(),
            );
        }
        let created = task.view(&id, false);
        let mut tasks = self.0.lock().expect("tasks lock");
        if tasks.len() >= MAX_TASKS {
            let now = Instant::now();
            tasks.retain(|_, t| t.expires > now);
        }
        tasks.insert(id, task);
        created
    }

    /// `tasks/get`, `tasks/update` and `tasks/cancel`; `None` for any other method.
    pub fn answer(&self, method: &str, params: &Value) -> Option<Result<Value, Refusal>> {
        if !matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel") {
            return None;
        }
        if !declared(params) {
            return Some(Err(undeclared(method)));
        }
        let id = params["taskId"].as_str().unwrap_or_default();
        let mut tasks = self.0.lock().expect("tasks lock");
        let Some(task) = tasks.get_mut(id).filter(|t| t.expires > Instant::now()) else {
            return Some(Err(refusal(INVALID_PARAMS, format!("Unknown task: {id}"))));
        };
        let ack = json!({"resultType": "complete"});
        Some(match method {
            "tasks/get" => Ok(task.view(id, true)),
            "tasks/cancel" => {
                if !task.status.terminal() {
                    if let Some(job) = task.job.take() {
                        job.abort();
                    }
                    task.settle(
                        Status::Cancelled,
                        Err(refusal(INTERNAL_ERROR, "cancelled by the client")),
                    );
                    task.outcome = None;
                }
                Ok(ack)
            }
            _ => match params.get("inputResponses") {
                Some(Value::Object(responses)) => {
                    update(task, responses);
                    Ok(ack)
                }
                _ => Err(refusal(INVALID_PARAMS, "inputResponses must be an object")),
            },
        })
    }
}

/// Take the answers to what the task asked (others are ignored); once nothing is pending, it ends.
fn update(task: &mut Task, responses: &Map<String, Value>) {
    if task.status != Status::InputRequired {
        return;
    }
    for (key, response) in responses {
        if task.pending.remove(key).is_some() {
            task.answers.insert(key.clone(), response.clone());
        }
    }
    task.updated = SystemTime::now();
    if !task.pending.is_empty() {
        return;
    }
    let confirmed = |key: &str| {
        let answer = &task.answers[key];
        answer["action"] == "accept" && answer["content"]["confirm"] != json!(false)
    };
    let result = if task.answers.contains_key("name") {
        let name = task.answers["name"]["content"]["name"].as_str().unwrap_or("you");
        text(format!("Hello, {name}; confirmed: {}", confirmed("confirm")), false)
    } else if confirmed("confirm") {
        text(format!("Deleted {}", task.subject), false)
    } else {
        text(format!("Kept {}", task.subject), false)
    };
    task.settle(Status::Completed, Ok(result));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_extension(extra: Value) -> Value {
        let mut params = json!({"_meta": {CLIENT_CAPABILITIES_KEY: {"extensions": {EXTENSION: {}}}}});
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        params
    }

    #[tokio::test]
    async fn a_task_asks_until_every_input_is_answered_and_a_cancel_is_idempotent() {
        let tasks = Tasks::default();
        let created = tasks
            .call(&with_extension(json!({"name": "multi_input"})))
            .await
            .unwrap();
        assert_eq!(created["resultType"], "task");
        let id = created["taskId"].as_str().unwrap();
        let get = |tasks: &Tasks| {
            tasks
                .answer("tasks/get", &with_extension(json!({"taskId": id})))
                .unwrap()
                .unwrap()
        };
        assert_eq!(get(&tasks)["inputRequests"].as_object().unwrap().len(), 2);
        let partial =
            json!({"taskId": id, "inputResponses": {"name": {"action": "accept", "content": {"name": "Ada"}}}});
        tasks.answer("tasks/update", &with_extension(partial)).unwrap().unwrap();
        let after = get(&tasks);
        assert_eq!(after["status"], "input_required");
        assert_eq!(
            after["inputRequests"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["confirm"]
        );
        let rest =
            json!({"taskId": id, "inputResponses": {"confirm": {"action": "accept", "content": {"confirm": true}}}});
        tasks.answer("tasks/update", &with_extension(rest)).unwrap().unwrap();
        let done = get(&tasks);
        assert_eq!(done["status"], "completed");
        assert!(
            done["result"]["content"][0]["text"].as_str().unwrap().contains("Ada"),
            "{done}"
        );
        let cancel = tasks
            .answer("tasks/cancel", &with_extension(json!({"taskId": id})))
            .unwrap();
        assert_eq!(cancel.unwrap(), json!({"resultType": "complete"}));
        assert_eq!(get(&tasks)["status"], "completed");
    }

    #[tokio::test]
    async fn without_the_extension_tasks_are_refused_or_run_synchronously() {
        let tasks = Tasks::default();
        let refused = tasks.call(&json!({"name": "failing_job"})).await.unwrap_err();
        assert_eq!(refused["code"], MISSING_REQUIRED_CLIENT_CAPABILITY);
        assert!(
            refused["data"]["requiredCapabilities"]["extensions"]
                .get(EXTENSION)
                .is_some()
        );
        let sync = tasks
            .call(&json!({"name": "slow_compute", "arguments": {"seconds": 0}}))
            .await
            .unwrap();
        assert!(sync.get("taskId").is_none() && sync["content"].is_array(), "{sync}");
        let get = tasks.answer("tasks/get", &json!({"taskId": "x"})).unwrap().unwrap_err();
        assert_eq!(get["code"], MISSING_REQUIRED_CLIENT_CAPABILITY);
        let unknown = tasks
            .answer("tasks/get", &with_extension(json!({"taskId": "x"})))
            .unwrap()
            .unwrap_err();
        assert_eq!(unknown["code"], INVALID_PARAMS);
    }

    #[tokio::test]
    async fn a_cancelled_task_stays_cancelled_when_its_job_would_have_ended() {
        let tasks = Tasks::default();
        let args = json!({"name": "slow_compute", "arguments": {"seconds": 0.05}});
        let id = tasks.call(&with_extension(args)).await.unwrap()["taskId"]
            .as_str()
            .unwrap()
            .to_owned();
        tasks
            .answer("tasks/cancel", &with_extension(json!({"taskId": id})))
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = tasks
            .answer("tasks/get", &with_extension(json!({"taskId": id})))
            .unwrap()
            .unwrap();
        assert_eq!(got["status"], "cancelled");
        assert!(got.get("result").is_none() && got.get("error").is_none(), "{got}");
    }
}
