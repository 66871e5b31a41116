//! The OpenAPI 3 description of `/api`, built from one table of the routes (a test checks that
//! every documented route answers and that the router serves nothing undocumented under /api).

use serde_json::{Map, Value, json};

/// One operation: method, path, summary, who may call it, query parameters, body fields
/// (`name:type`, `!` marks required), and the success status.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub roles: &'static str,
    pub query: &'static [&'static str],
    pub body: &'static [&'static str],
    pub success: u16,
}

/// The `roles` of the routes anyone may call, without a key (the portal front end's branding).
pub const PUBLIC: &str = "anyone (no key)";

/// The `roles` of the routes a signed-in member calls with their session token, not an API key.
pub const SIGNED_IN: &str = "a signed-in member (session token as the bearer)";

/// The `roles` of the self-service routes a member acts through the portal on: the portal's API
/// key as the bearer and the member's session token in `X-Member-Session`, both required.
pub const PORTAL_SESSION: &str =
    "external-system with scope self-service, and a member's session (X-Member-Session)";

const CONTACT: &[&str] = &[
    "email:string",
    "mobile:string",
    "carrier:string",
    "preference!:string",
    "locales:array",
];

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/patients",
        summary: "Search the synced patients to enroll one (each with `enrolled` and `membership_status`).",
        roles: "direct-enrollment-user",
        query: &[
            "name",
            "birth_date",
            "identifier",
            "email",
            "phone",
            "facility",
            "limit",
        ],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/members",
        summary: "Point-of-care enrollment: a token is issued and sent by the member's preference; when it cannot be sent, `instructions` holds printable activation instructions.",
        roles: "direct-enrollment-user",
        query: &[],
        body: &[
            "patient_id!:string",
            "email:string",
            "mobile:string",
            "carrier:string",
            "preference!:string",
            "locales:array",
            "proxy_only:boolean",
            "passphrase:string",
            "passphrase_confirm:string",
            "generate_passphrase:boolean",
        ],
        success: 201,
    },
    Operation {
        method: "get",
        path: "/api/members",
        summary: "Member search by name, birth date, MRN, email, phone; status `pending` or `activated`.",
        roles: "member-account-manager",
        query: &["name", "birth_date", "mrn", "email", "phone", "status", "limit"],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/members/{id}",
        summary: "A member's details.",
        roles: "member-account-manager",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/members/{id}/contact",
        summary: "Edit contact details, preference and locales (reason required).",
        roles: "member-account-manager",
        query: &[],
        body: &["contact!:object", "reason!:string"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/members/{id}/token/resend",
        summary: "Send the same activation token again, optionally after editing contact details (then with a reason).",
        roles: "member-account-manager",
        query: &[],
        body: &["contact:object", "reason:string"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/members/{id}/token/renew",
        summary: "Give the token a new lifetime of days + hours (1 h up to the maximum reset window); reason required; no notification.",
        roles: "member-account-manager",
        query: &[],
        body: &["days:integer", "hours:integer", "reason!:string"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/members/{id}/token/regenerate",
        summary: "Issue a new token (the old one is dead at once), valid days + hours; reason required; notification optional.",
        roles: "member-account-manager",
        query: &[],
        body: &[
            "days:integer",
            "hours:integer",
            "reason!:string",
            "notify:boolean",
            "contact:object",
        ],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/members/{id}/deactivate",
        summary: "Deactivate an active member (`minor`: inactive/minor); reason required.",
        roles: "member-account-manager",
        query: &[],
        body: &["reason!:string", "minor:boolean"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/members/{id}/reactivate",
        summary: "Reactivate an inactive member; reason required.",
        roles: "member-account-manager",
        query: &[],
        body: &["reason!:string"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/members/{id}/password-reset",
        summary: "Send the member a password reset link.",
        roles: "member-account-manager",
        query: &[],
        body: &["reason:string"],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/notifications/{id}",
        summary: "Delivery state of a notification (pending, delivered, dead-letter, discarded); never its content.",
        roles: "direct-enrollment-user, member-account-manager, enrollment-request-agent, enrollment-exception-agent",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/enrollment-requests",
        summary: "Self-requested enrollment: a request joins the request queue (no enrollment status yet).",
        roles: "external-system with scope self-service",
        query: &[],
        body: &[
            "family!:string",
            "given!:string",
            "birth_date!:string",
            "email:string",
            "mobile:string",
            "carrier:string",
            "preference:string",
            "locales:array",
            "identifier:string",
            "facility:string",
        ],
        success: 201,
    },
    Operation {
        method: "get",
        path: "/api/enrollment-requests",
        summary: "Open requests of a queue (`request` for request agents, `exception` for exception agents).",
        roles: "enrollment-request-agent, enrollment-exception-agent",
        query: &["queue", "limit"],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/enrollment-requests/{id}",
        summary: "A request with its full task history.",
        roles: "the agents of the request's queue",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/enrollment-requests/{id}/claim",
        summary: "Claim the task.",
        roles: "the agents of the request's queue",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/enrollment-requests/{id}/matches",
        summary: "Patients matching the request, optionally at one facility.",
        roles: "the agents of the request's queue",
        query: &["facility", "limit"],
        body: &[],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/enrollment-requests/{id}/approve",
        summary: "Approve: the patient is enrolled and a token issued and sent.",
        roles: "the agents of the request's queue (who claimed it)",
        query: &[],
        body: &["patient_id!:string"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/enrollment-requests/{id}/decline",
        summary: "Decline, with a message for the history; `send_message` also sends it to the requester.",
        roles: "the agents of the request's queue (who claimed it)",
        query: &[],
        body: &["message:string", "send_message:boolean"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/enrollment-requests/{id}/forward",
        summary: "Send to the exception queue with a message.",
        roles: "enrollment-request-agent (who claimed it)",
        query: &[],
        body: &["message!:string"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/automated-enrollments",
        summary: "Automated enrollment of the patient with this identifier; token (and passphrase if configured) generated and sent.",
        roles: "external-system with scope enroll",
        query: &[],
        body: &[
            "identifier!:string",
            "email:string",
            "mobile:string",
            "carrier:string",
            "preference:string",
            "locales:array",
            "proxy_only:boolean",
        ],
        success: 201,
    },
    Operation {
        method: "post",
        path: "/api/activation",
        summary: "Activate with the token (+ passphrase when set), choosing username and password; refusals: token-unknown, token-expired, token-superseded, token-used, passphrase-required, passphrase-wrong, username-taken, weak-password.",
        roles: "external-system with scope self-service",
        query: &[],
        body: &[
            "token!:string",
            "passphrase:string",
            "username!:string",
            "password!:string",
        ],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/password/forgot",
        summary: "A member forgot their password: a reset link is sent (the same answer whether or not the account exists).",
        roles: "external-system with scope self-service",
        query: &[],
        body: &["username!:string"],
        success: 202,
    },
    Operation {
        method: "post",
        path: "/api/password/reset",
        summary: "Set a new password with a reset link's token.",
        roles: "external-system with scope self-service",
        query: &[],
        body: &["token!:string", "password!:string"],
        success: 200,
    },
    Operation {
        method: "post",
        path: "/api/username/forgot",
        summary: "A member forgot their username: it is sent to their email address (the same answer either way).",
        roles: "external-system with scope self-service",
        query: &[],
        body: &["email!:string", "birth_date!:string"],
        success: 202,
    },
    Operation {
        method: "get",
        path: "/api/audit",
        summary: "The audit trail, oldest first, by member, target and/or actor.",
        roles: "member-account-manager, configuration-manager",
        query: &["member", "target", "actor", "limit"],
        body: &[],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/settings/members",
        summary: "Member settings in force.",
        roles: "configuration-manager",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/settings/members",
        summary: "Change pending user expiration, maximum reset window and the passphrase rule (reason required).",
        roles: "configuration-manager",
        query: &[],
        body: &[
            "pending_user_expiration_hours!:integer",
            "max_expiration_reset_hours!:integer",
            "passphrase_required!:boolean",
            "reason!:string",
        ],
        success: 200,
    },
    Operation {
        method: "get",
        path: "/api/settings/records",
        summary: "The Records tab's site switches in force (the last saved, else the config's [records.site]).",
        roles: "configuration-manager",
        query: &[],
        body: &[],
        success: 200,
    },
    Operation {
        method: "put",
        path: "/api/settings/records",
        summary: "Change the Records tab's site switches, in force at once: Records, Summary, Results, Documents and Care Plans on or off, the Summary types and result categories shown, info buttons and their education link template ({code}, {system}, {name}); reason required; audited as settings.update on settings/records. 400 for an unknown type or category, or info buttons without an http(s) link naming the record.",
        roles: "configuration-manager",
        query: &[],
        body: &[
            "records:boolean",
            "summary:boolean",
            "summary_types:array",
            "results:boolean",
            "result_categories:array",
            "documents:boolean",
            "care_plans:boolean",
            "info_buttons:boolean",
            "education_link:string",
            "reason!:string",
        ],
        success: 200,
    },
];

fn schema(fields: &[&str]) -> Value {
    let mut properties = Map::new();
    let mut required = vec![];
    for field in fields {
        let (name, kind) = field.split_once(':').unwrap_or((field, "string"));
        let name = match name.strip_suffix('!') {
            Some(n) => {
                required.push(json!(n));
                n
            }
            None => name,
        };
        let property = match (name, kind) {
            ("contact", _) => schema(CONTACT),
            ("preference", _) => json!({ "type": "string", "enum": ["email", "text", "both"] }),
            (_, "array") => json!({ "type": "array", "items": { "type": "string" } }),
            (_, "object") => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
            (_, kind) => json!({ "type": kind }),
        };
        properties.insert(name.to_string(), property);
    }
    let mut schema = json!({ "type": "object", "properties": properties, "additionalProperties": false });
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schema
}

/// The document served at `/api/openapi.json`.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS
        .iter()
        .chain(super::signin::OPERATIONS)
        .chain(super::engagement::OPERATIONS)
        .chain(super::proxies::OPERATIONS)
        .chain(super::records::OPERATIONS)
        .chain(super::branding::OPERATIONS)
        .chain(super::bills::OPERATIONS)
        .chain(super::news::OPERATIONS)
        .chain(super::consents::OPERATIONS)
        .chain(super::directory::OPERATIONS)
        .chain(super::messages::OPERATIONS)
    {
        let mut parameters: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        parameters.extend(op.query.iter().map(
            |name| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } }),
        ));
        let (description, security) = if op.roles == PUBLIC {
            ("Public: no key or session.".to_string(), json!([]))
        } else if op.roles == SIGNED_IN {
            (
                format!("Allowed: {}. Without a live session: 401.", op.roles),
                json!([{ "session": [] }]),
            )
        } else if op.roles == PORTAL_SESSION {
            (
                format!(
                    "Allowed: {}. Another client: 403; without a key or a live session: 401.",
                    op.roles
                ),
                json!([{ "apiKey": [], "memberSession": [] }]),
            )
        } else {
            (
                format!("Allowed: {}. Anyone else: 403; without a key: 401.", op.roles),
                json!([{ "apiKey": [] }]),
            )
        };
        let mut operation = json!({
            "summary": op.summary,
            "description": description,
            "x-roles": op.roles,
            "parameters": parameters,
            "security": security,
            "responses": {
                op.success.to_string(): { "description": "done", "content": { "application/json": { "schema": { "type": "object" } } } },
                "401": { "$ref": "#/components/responses/Error" },
                "403": { "$ref": "#/components/responses/Error" },
                "404": { "$ref": "#/components/responses/Error" },
                "409": { "$ref": "#/components/responses/Error" },
                "422": { "$ref": "#/components/responses/Error" },
                "429": { "$ref": "#/components/responses/TooMany" },
            },
        });
        if op.roles == PUBLIC {
            let responses = operation["responses"].as_object_mut().expect("an object");
            for code in ["401", "403", "409", "422"] {
                responses.remove(code);
            }
        }
        if !op.body.is_empty() {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": schema(op.body) } },
            });
        }
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tributary member accounts API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Enrollment (point-of-care, self-requested, automated), activation tokens, membership status, member search, audit. Authenticate with an API key as `Authorization: Bearer <key>` (or `X-API-Key`)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "An API key from [[api_clients]]" },
                "session": { "type": "http", "scheme": "bearer", "description": "A member's session token from a completed sign-in" },
                "memberSession": { "type": "apiKey", "in": "header", "name": "X-Member-Session", "description": "A member's session token, sent beside the portal's API key on self-service actions" }
            },
            "responses": {
                "TooMany": {
                    "description": "too many requests from this address ([http.rate_limit]) or too many failed sign-ins: wait as Retry-After says",
                    "headers": { "Retry-After": { "schema": { "type": "integer" }, "description": "seconds to wait" } },
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "properties": { "error": { "type": "string" }, "code": { "type": "string" } },
                        "required": ["error", "code"]
                    } } }
                },
                "Error": {
                    "description": "refused",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "properties": { "error": { "type": "string" }, "code": { "type": "string" } },
                        "required": ["error", "code"]
                    } } }
                }
            }
        }
    })
}
