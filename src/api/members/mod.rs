//! The member-accounts API under `/api`: enrollment (point-of-care, self-requested, automated),
//! activation tokens, membership status, member search, the audit trail and member settings,
//! each endpoint allowed only to the roles the seeds give its action.
//!
//! - [`reply`]: JSON answers and errors; running a domain action as a committer command.
//! - [`staff`]: Direct Enrollment User and Member Account Manager endpoints.
//! - [`requests`]: the enrollment request and exception queues.
//! - [`external`]: automated enrollment and the portal's member self-service.
//! - [`admin`]: audit, settings, notification state.
//! - [`proxies`]: proxy relationships, for staff and for the signed-in member.
//! - [`bills`]: the member's bills, the pay redirect and the gateway's payment notice.
//! - [`consents`]: the member's consents, their answers, and the consent switches.
//! - [`messages`]: the member's messages: boxes, writing and replying, the messaging switches.
//! - [`directory`]: the provider directory and the member's favourites.
//! - [`news`]: the news items, public and for members, and the feeds' state.
//! - [`branding`]: the portal's titles, palette and icon: public reads, a manager's changes.
//! - [`records`]: the member's records (results), for them and their granted proxies.
//! - [`openapi`]: the OpenAPI document.

// Handlers answer early with a ready Response; boxing each would only add noise.
#![allow(clippy::result_large_err)]

mod admin;
mod bills;
mod branding;
mod consents;
mod directory;
mod engagement;
mod external;
mod messages;
mod news;
pub(crate) mod openapi;
mod proxies;
mod records;
pub(super) mod reply;
mod requests;
mod signin;
mod staff;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};

use crate::api::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/patients", get(staff::search_patients))
        .route("/api/members", get(staff::search_members).post(staff::enroll))
        .route("/api/members/{id}", get(staff::member))
        .route("/api/members/{id}/contact", put(staff::edit_contact))
        .route("/api/members/{id}/token/resend", post(staff::resend))
        .route("/api/members/{id}/token/renew", post(staff::renew))
        .route("/api/members/{id}/token/regenerate", post(staff::regenerate))
        .route("/api/members/{id}/deactivate", post(staff::deactivate))
        .route("/api/members/{id}/reactivate", post(staff::reactivate))
        .route("/api/members/{id}/password-reset", post(staff::password_reset))
        .route("/api/notifications/{id}", get(admin::notification))
        .route(
            "/api/enrollment-requests",
            get(requests::list).post(requests::submit),
        )
        .route("/api/enrollment-requests/{id}", get(requests::get))
        .route("/api/enrollment-requests/{id}/claim", post(requests::claim))
        .route("/api/enrollment-requests/{id}/matches", get(requests::matches))
        .route("/api/enrollment-requests/{id}/approve", post(requests::approve))
        .route("/api/enrollment-requests/{id}/decline", post(requests::decline))
        .route("/api/enrollment-requests/{id}/forward", post(requests::forward))
        .route("/api/automated-enrollments", post(external::automated))
        .route("/api/activation", post(external::activate))
        .route("/api/password/forgot", post(external::forgot_password))
        .route("/api/password/reset", post(external::reset_password))
        .route("/api/username/forgot", post(external::forgot_username))
        .route("/api/audit", get(admin::audit_trail))
        .route(
            "/api/settings/members",
            get(admin::settings).put(admin::put_settings),
        )
        .route("/api/me/bills", get(bills::mine))
        .route("/api/me/bills/{id}/document", get(bills::my_document))
        .route("/api/me/bills/{id}/pay", post(bills::my_pay))
        .route("/api/me/principals/{id}/bills", get(bills::principal))
        .route(
            "/api/me/principals/{id}/bills/{bill}/document",
            get(bills::principal_document),
        )
        .route(
            "/api/me/principals/{id}/bills/{bill}/pay",
            post(bills::principal_pay),
        )
        .route("/api/bills/payment-notice", post(bills::payment_notice))
        .route("/api/me/consents", get(consents::mine))
        .route("/api/me/consents/{id}", put(consents::my_answers))
        .route("/api/me/principals/{id}/consents", get(consents::principal))
        .route(
            "/api/me/principals/{id}/consents/{consent}",
            put(consents::principal_answers),
        )
        .route(
            "/api/settings/consents",
            get(consents::switches).put(consents::put_switches),
        )
        .route("/api/me/messages", get(messages::list).post(messages::write))
        .route("/api/me/messages/{id}", get(messages::open).put(messages::mark))
        .route("/api/me/messages/{id}/reply", post(messages::reply))
        .route("/api/me/messages/{id}/attachments/{n}", get(messages::attachment))
        .route(
            "/api/me/principals/{id}/messages",
            get(messages::principal_list).post(messages::principal_write),
        )
        .route(
            "/api/me/principals/{id}/messages/{message}",
            get(messages::principal_open).put(messages::principal_mark),
        )
        .route(
            "/api/me/principals/{id}/messages/{message}/reply",
            post(messages::principal_reply),
        )
        .route(
            "/api/me/principals/{id}/messages/{message}/attachments/{n}",
            get(messages::principal_attachment),
        )
        .route(
            "/api/settings/messages",
            get(messages::get_switches).put(messages::put_switches),
        )
        .route("/api/me/providers", get(directory::search))
        .route("/api/me/favourites", get(directory::favourites))
        .route(
            "/api/me/favourites/{type}/{id}",
            put(directory::add).delete(directory::remove),
        )
        .route("/api/news", get(news::public))
        .route("/api/news/feeds", get(news::feeds))
        .route("/api/me/news", get(news::mine))
        .route("/api/branding", get(branding::public))
        .route("/api/branding/icon", get(branding::icon))
        .route("/api/settings/branding", put(branding::put_texts))
        .route("/api/settings/branding/icon", put(branding::put_icon))
        .route(
            "/api/settings/records",
            get(admin::record_switches).put(admin::put_record_switches),
        )
        // Engagement APIs (issue #7).
        .route("/api/members/{id}/profile", put(engagement::update_profile))
        .route("/api/invitations", post(engagement::invite))
        .route("/api/invitations/{id}", get(engagement::invitation))
        .route("/api/tasks", post(engagement::create_task))
        .route("/api/tasks/{id}", get(engagement::task))
        .route("/api/tasks/{id}/status", post(engagement::task_status))
        .route(
            "/api/tasks/{id}/questionnaire-response",
            post(engagement::questionnaire_response),
        )
        // Credentials and sign-in (issue #6).
        .route("/api/sign-in", post(signin::password))
        .route("/api/sign-in/code", post(signin::code))
        .route("/api/sign-in/external", post(signin::external))
        .route("/api/sign-out", post(signin::sign_out))
        .route("/api/me", get(signin::me))
        .route("/api/members/{id}/credentials", get(signin::member_credentials))
        // Proxy relationships (issue #6).
        .route("/api/proxies", post(proxies::create))
        .route("/api/proxies/{id}", get(proxies::get))
        .route("/api/proxies/{id}/revoke", post(proxies::revoke))
        .route("/api/members/{id}/proxies", get(proxies::of_member))
        .route("/api/proxy-relationship-types", get(proxies::relationship_types))
        .route("/api/me/proxies", get(proxies::mine))
        .route("/api/me/principals/{id}", get(proxies::principal))
        // The member's records (issue #16).
        .route("/api/me/results", get(records::mine))
        .route("/api/me/results/{id}/document", get(records::my_document))
        .route("/api/me/principals/{id}/results", get(records::principal))
        .route(
            "/api/me/principals/{id}/results/{report}/document",
            get(records::principal_document),
        )
        .route("/api/me/appointments", get(records::my_appointments))
        .route("/api/me/appointments/{id}/ics", get(records::my_appointment_ics))
        .route("/api/me/appointments/{id}/cancel", post(records::my_cancel))
        .route(
            "/api/me/principals/{id}/appointments",
            get(records::principal_appointments),
        )
        .route(
            "/api/me/principals/{id}/appointments/{appointment}/ics",
            get(records::principal_appointment_ics),
        )
        .route(
            "/api/me/principals/{id}/appointments/{appointment}/cancel",
            post(records::principal_cancel),
        )
        .route("/api/me/summary", get(records::my_summary))
        .route("/api/me/care-plans", get(records::my_care_plans))
        .route(
            "/api/me/care-plans/{id}/questionnaire-response",
            post(records::my_care_plan_answer),
        )
        .route(
            "/api/me/principals/{id}/care-plans",
            get(records::principal_care_plans),
        )
        .route(
            "/api/me/principals/{id}/care-plans/{plan}/questionnaire-response",
            post(records::principal_care_plan_answer),
        )
        .route("/api/me/principals/{id}/summary", get(records::principal_summary))
        .route("/api/me/documents", get(records::my_documents))
        .route(
            "/api/me/documents/{id}/content",
            get(records::my_document_content),
        )
        .route(
            "/api/me/principals/{id}/documents",
            get(records::principal_documents),
        )
        .route(
            "/api/me/principals/{id}/documents/{document}/content",
            get(records::principal_document_content),
        )
}

async fn openapi_json() -> Response {
    reply::ok(StatusCode::OK, openapi::document())
}
