//! The member's records (issue #16): the `[records]` section says where a member's
//! cancellation of an appointment goes back to (the scheduling system that booked it), where a
//! member's answers to a care plan go (Care Community), and
//! `[records.site]` what the portal's Records tab shows until a Configuration Manager saves
//! other switches at run time.

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[records]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// `[[destinations]]` an appointment a member (or their proxy) cancels is sent to, each
    /// rendered by its own mapping (`appointment-siu-s15` for an MLLP scheduler, FHIR JSON
    /// without one), besides every destination subscribed to `Appointment-changed`.
    #[serde(default)]
    pub appointment_cancellation_destinations: Vec<Spanned<String>>,
    /// `[[destinations]]` a member's answer to a care plan's questionnaire goes back to (Care
    /// Community): the QuestionnaireResponse and the plan with its new status, each rendered by
    /// the destination's mapping (FHIR JSON without one).
    #[serde(default)]
    pub care_plan_destinations: Vec<Spanned<String>>,
    /// `[records.site]`: the switches in force until a Configuration Manager saves others.
    #[serde(default)]
    pub site: Option<Spanned<RecordSwitches>>,
}

impl RecordsConfig {
    /// The switches `[records.site]` sets (every part on when it is absent).
    pub fn switches(&self) -> RecordSwitches {
        self.site
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default()
    }
}

/// What the Records tab shows: the tab at all, each part of it, which types under each, and
/// the info buttons that link a record to patient education.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordSwitches {
    /// The Records tab at all: off, none of its parts is served.
    pub records: bool,
    pub summary: bool,
    /// Which of [`SUMMARY_TYPES`] the Summary shows.
    pub summary_types: Vec<String>,
    pub results: bool,
    /// Which of [`RESULT_CATEGORIES`] Results shows.
    pub result_categories: Vec<String>,
    pub documents: bool,
    pub care_plans: bool,
    /// Each summary item and result carries an `info_url` made from [`Self::education_link`].
    pub info_buttons: bool,
    /// The patient-education link of an info button: `{code}`, `{system}` and `{name}` are
    /// replaced by the record's code, code system and name (URL-encoded).
    pub education_link: String,
    /// Appointments that carry a payment gateway's link show it as a pay link while upcoming.
    pub appointment_prepayment: bool,
    /// Tell an active member of a new result (a new report), by their preference.
    pub notify_results: bool,
    /// Tell an active member of a new document.
    pub notify_documents: bool,
    /// Tell an active member of a new booked appointment.
    pub notify_appointments: bool,
}

/// The Summary's types, as the portal names them.
pub const SUMMARY_TYPES: [&str; 7] = [
    "allergies",
    "conditions",
    "medications",
    "immunizations",
    "procedures",
    "care-team",
    "encounters",
];

/// The categories of results.
pub const RESULT_CATEGORIES: [&str; 2] = ["laboratory", "imaging"];

impl Default for RecordSwitches {
    fn default() -> RecordSwitches {
        RecordSwitches {
            records: true,
            summary: true,
            summary_types: SUMMARY_TYPES.iter().map(|t| t.to_string()).collect(),
            results: true,
            result_categories: RESULT_CATEGORIES.iter().map(|c| c.to_string()).collect(),
            documents: true,
            care_plans: true,
            info_buttons: false,
            education_link: String::new(),
            appointment_prepayment: false,
            notify_results: false,
            notify_documents: false,
            notify_appointments: false,
        }
    }
}

impl RecordSwitches {
    /// Why these switches cannot be in force, if they cannot: an unknown type or category, or
    /// info buttons without an http(s) link that names the record.
    pub fn check(&self) -> Result<(), String> {
        for kind in &self.summary_types {
            if !SUMMARY_TYPES.contains(&kind.as_str()) {
                return Err(format!(
                    "summary type `{kind}` is not one of {}",
                    SUMMARY_TYPES.join(", ")
                ));
            }
        }
        for category in &self.result_categories {
            if !RESULT_CATEGORIES.contains(&category.as_str()) {
                return Err(format!(
                    "result category `{category}` is not one of {}",
                    RESULT_CATEGORIES.join(", ")
                ));
            }
        }
        if self.info_buttons {
            let link = &self.education_link;
            let web = link.starts_with("https://") || link.starts_with("http://");
            let names_record = ["{code}", "{name}"].iter().any(|p| link.contains(p));
            if !web || !names_record {
                return Err(
                    "info buttons need an education_link: an http(s) URL with {code} or {name} in it".into(),
                );
            }
        }
        Ok(())
    }
}

impl super::Config {
    /// Checks `[records]`: every destination it names is defined, and the site switches.
    pub(super) fn validate_records(&self) -> Result<(), super::ConfigError> {
        for name in &self.records.appointment_cancellation_destinations {
            self.require_destination("records.appointment_cancellation_destinations".into(), name)?;
        }
        for name in &self.records.care_plan_destinations {
            self.require_destination("records.care_plan_destinations".into(), name)?;
        }
        match &self.records.site {
            Some(site) => site
                .get_ref()
                .check()
                .map_err(|message| self.error_at(site.span(), "records.site".into(), message)),
            None => Ok(()),
        }
    }
}
