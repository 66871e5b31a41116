//! A member's results and documents over HTTP against the real engine (issue 16): results fed
//! as ORU^R01 over MLLP, read back by the signed-in member with each value placed against its
//! range, filtered by name, date and category, the radiology PDF downloaded; documents fed as
//! MDM, text shown inline and a PDF downloaded; appointments fed as SIU, listed as next,
//! upcoming, past and cancelled, and downloaded as an iCalendar file read by python
//! `icalendar`; and by a proxy while their relationship grants it (403 for the other direction
//! and after it expires). With the site's notice switches on, a new result, document or
//! appointment (not a correction or a resend) emails the member.

use std::time::Duration;

use crate::common::peers::MllpPeer;
use crate::common::{code, segment};
use crate::credentials_support::{active_jane, as_member, session_of};
use crate::members_support::{World, start, variant};
use serde_json::{Value, json};

/// Sends a results or documents fixture about Jane (her MPI id in PID-3) and expects AA.
async fn feed_jane(w: &World, fixture: &str, control_id: &str) {
    let message = variant(
        &format!("ucr/{fixture}"),
        control_id,
        &[
            ("1000551903", "1000234567"),
            ("NGUYEN^LINH^THI", "DOE^JANE^QUINN"),
        ],
    );
    w.feed(&message).await;
}

fn result<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

/// A POST with a member session (the bearer) and a JSON body, if any.
async fn post_as_member(w: &World, path: &str, session: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = w
        .http
        .post(format!("{}{path}", w.engine.http))
        .bearer_auth(session);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A GET with a member session, keeping the raw body and content type (for documents).
async fn download(w: &World, path: &str, session: &str) -> (u16, String, Vec<u8>) {
    let response = w
        .http
        .get(format!("{}{path}", w.engine.http))
        .bearer_auth(session)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_member_reads_their_results_and_a_granted_proxy_reads_them_until_it_expires() {
    let w = start("[credentials]\nmode = \"portal\"\ntwo_factor = false\n").await;
    let jane = active_jane(&w).await;
    feed_jane(&w, "oru_r01_lab_panel.hl7", "JRES1").await;
    feed_jane(&w, "oru_r01_radiology_report.hl7", "JRES2").await;
    let jane_session = session_of(&w, "jane").await;

    let (status, mine) = as_member(&w, "GET", "/api/me/results", &jane_session).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["patient_id"], jane.as_str());
    let reports = mine["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2, "{mine}");
    // Newest first: the chest X-ray of 20 March, then the panel of 14 March.
    assert_eq!(reports[0]["category"], "imaging");
    assert_eq!(reports[0]["report_attached"], true);
    let panel = &reports[1];
    assert_eq!(panel["name"], "Comprehensive metabolic panel");
    assert_eq!(panel["category"], "laboratory");
    assert_eq!(panel["results"].as_array().unwrap().len(), 6);
    let glucose = result(panel, "Glucose");
    assert_eq!(
        (glucose["value"].clone(), glucose["unit"].clone()),
        (json!(5.6), json!("mmol/L"))
    );
    assert_eq!(
        glucose["range"],
        json!({"low": 3.9, "high": 5.5, "text": "3.9-5.5"})
    );
    assert_eq!(glucose["position"], "above");
    assert_eq!(glucose["flag"], "High");
    assert_eq!(result(panel, "Potassium")["position"], "within");
    assert_eq!(result(panel, "Sodium")["position"], "below");
    let creatinine = result(panel, "Creatinine");
    assert_eq!(creatinine["text"], ">60");
    assert_eq!(creatinine["position"], Value::Null, "no number, no position");

    // Narrowed by name, category and date; a bad date is a 400 that says why.
    let count = |answer: &Value| answer["reports"].as_array().unwrap().len();
    let (_, by_name) = as_member(&w, "GET", "/api/me/results?name=gluc", &jane_session).await;
    assert_eq!(count(&by_name), 1, "{by_name}");
    assert_eq!(by_name["reports"][0]["category"], "laboratory");
    let (_, imaging) = as_member(&w, "GET", "/api/me/results?category=imaging", &jane_session).await;
    assert_eq!(count(&imaging), 1, "{imaging}");
    let (_, later) = as_member(&w, "GET", "/api/me/results?from=2025-03-15", &jane_session).await;
    assert_eq!(count(&later), 1, "{later}");
    assert_eq!(later["reports"][0]["category"], "imaging");
    let (status, bad) = as_member(&w, "GET", "/api/me/results?from=March", &jane_session).await;
    assert_eq!((status, code(&bad)), (400, "bad-date"), "{bad}");

    // The radiology report's PDF, with its type; the panel has no document.
    let xray = reports[0]["id"].as_str().unwrap();
    let (status, content_type, bytes) =
        download(&w, &format!("/api/me/results/{xray}/document"), &jane_session).await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
    assert!(bytes.starts_with(b"%PDF-"));
    let panel_id = panel["id"].as_str().unwrap();
    let (status, none) = as_member(
        &w,
        "GET",
        &format!("/api/me/results/{panel_id}/document"),
        &jane_session,
    )
    .await;
    assert_eq!((status, code(&none)), (404, "no-document"), "{none}");

    // Sam, Jane's proxy for a few seconds, reads her results; she cannot read his; he has none.
    let sam = w.active_member(1, "SMITH", "sam", 2).await;
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    w.relate(&jane, &sam, ("expires_at", &expires_at)).await;
    let sam_session = session_of(&w, "sam").await;
    let (status, hers) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/results"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 200, "{hers}");
    assert_eq!(count(&hers), 2);
    let (status, _, bytes) = download(
        &w,
        &format!("/api/me/principals/{jane}/results/{xray}/document"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 200);
    assert!(bytes.starts_with(b"%PDF-"));
    let (_, his) = as_member(&w, "GET", "/api/me/results", &sam_session).await;
    assert_eq!(count(&his), 0, "{his}");
    let (status, answer) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{sam}/results"),
        &jane_session,
    )
    .await;
    assert_eq!((status, code(&answer)), (403, "no-proxy-access"), "{answer}");
    // Jane's report is not Sam's own, even by its id.
    let (status, _) = as_member(
        &w,
        "GET",
        &format!("/api/me/results/{xray}/document"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 404);

    // Past the expiry the relationship grants nothing.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let (status, answer) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/results"),
        &sam_session,
    )
    .await;
    assert_eq!((status, code(&answer)), (403, "no-proxy-access"), "{answer}");
    let (status, _, _) = download(
        &w,
        &format!("/api/me/principals/{jane}/results/{xray}/document"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_member_reads_their_documents_text_inline_and_a_pdf_downloaded_and_a_proxy_only_when_granted() {
    let w = start("[credentials]\nmode = \"portal\"\ntwo_factor = false\n").await;
    let jane = active_jane(&w).await;
    for (fixture, control_id) in [
        ("mdm_t02_discharge_summary.hl7", "JDOC1"),
        ("mdm_t06_addendum_pdf.hl7", "JDOC2"),
        ("mdm_t10_replacement.hl7", "JDOC3"),
    ] {
        feed_jane(&w, fixture, control_id).await;
    }
    let jane_session = session_of(&w, "jane").await;
    let (status, mine) = as_member(&w, "GET", "/api/me/documents", &jane_session).await;
    assert_eq!(status, 200, "{mine}");
    let documents = mine["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 3, "{mine}");
    // Newest first: the replacement (23 March), the addendum (22), the original (21).
    let (replacement, addendum, original) = (&documents[0], &documents[1], &documents[2]);
    assert_eq!(original["status"], "superseded");
    assert_eq!(original["replaced_by"], replacement["id"]);
    assert!(
        original["text"]
            .as_str()
            .unwrap()
            .contains("oral antibiotics & discharged home")
    );
    assert_eq!(addendum["content_type"], "application/pdf");
    assert_eq!(
        addendum["text"],
        Value::Null,
        "a PDF is downloaded, not shown inline"
    );
    assert_eq!(addendum["relates_to"][0]["code"], "appends");
    assert_eq!(addendum["relates_to"][0]["document"], original["id"]);
    let addendum_id = addendum["id"].as_str().unwrap();
    let (status, content_type, bytes) = download(
        &w,
        &format!("/api/me/documents/{addendum_id}/content"),
        &jane_session,
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
    assert!(bytes.starts_with(b"%PDF-"));

    // Sam reads Jane's documents while a relationship grants it, not before.
    let sam = w.active_member(1, "SMITH", "sam", 2).await;
    let sam_session = session_of(&w, "sam").await;
    let (status, answer) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/documents"),
        &sam_session,
    )
    .await;
    assert_eq!((status, code(&answer)), (403, "no-proxy-access"), "{answer}");
    let (status, _, _) = download(
        &w,
        &format!("/api/me/documents/{addendum_id}/content"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 404, "not Sam's own document");
    w.relate(&jane, &sam, ("expires_on", "2099-01-01")).await;
    let (status, hers) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/documents"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 200, "{hers}");
    assert_eq!(hers["documents"].as_array().unwrap().len(), 3);
    let (status, content_type, _) = download(
        &w,
        &format!("/api/me/principals/{jane}/documents/{addendum_id}/content"),
        &sam_session,
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
}

/// Reads an iCalendar file with python `icalendar` (another project's reading of RFC 5545):
/// each VEVENT's UID, SUMMARY, DTSTART and DTEND (UTC, ISO 8601), LOCATION, DESCRIPTION and URL.
fn read_ics(ics: &[u8]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("appointment.ics");
    std::fs::write(&path, ics).unwrap();
    let script = "import icalendar, json, sys, datetime\n\
        cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())\n\
        utc = lambda d: d.astimezone(datetime.timezone.utc).isoformat()\n\
        print(json.dumps([{'uid': str(e['UID']), 'summary': str(e['SUMMARY']),\n\
          'start': utc(e.decoded('DTSTART')), 'end': utc(e.decoded('DTEND')),\n\
          'location': str(e.get('LOCATION')), 'description': str(e.get('DESCRIPTION')),\n\
          'url': str(e.get('URL'))}\n\
          for e in cal.walk('VEVENT')]))\n";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "python icalendar could not read it (pip install icalendar): {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(ics)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn a_member_sees_their_appointments_downloads_one_as_icalendar_and_a_proxy_cancels_one() {
    // The scheduler that booked the appointments hears of a member's cancellation as an S15.
    let scheduler = MllpPeer::start("127.0.0.1:0", "AA").await;
    let w = start(&format!(
        "[credentials]\nmode = \"portal\"\ntwo_factor = false\n\
         [records]\nappointment_cancellation_destinations = [\"ucr-scheduling\"]\n\
         [[destinations]]\nname = \"ucr-scheduling\"\nkind = \"mllp\"\nmapping = \"appointment-siu-s15\"\n\
         [destinations.settings]\naddress = \"{}\"\n",
        scheduler.addr
    ))
    .await;
    let jane = active_jane(&w).await;
    let booking = |control_id: &str, appointment: &str, day: &str, event: &str| {
        variant(
            "ucr/siu_s12_booked.hl7",
            control_id,
            &[
                ("APT20250401-0931", appointment),
                ("20250401", day),
                ("SIU^S12^SIU_S12", event),
                ("1000551903", "1000234567"),
                ("NGUYEN^LINH^THI", "DOE^JANE^QUINN"),
                // Every booking here is a video visit.
                (
                    "RGS|1|A",
                    "ZTH|1|https://meet.example.org/visit/7Q2X9|Zoom\rRGS|1|A",
                ),
            ],
        )
    };
    w.feed(&booking("JAPT1", "APT-FUTURE-1", "20990401", "SIU^S12^SIU_S12"))
        .await;
    w.feed(&booking("JAPT2", "APT-FUTURE-2", "20990501", "SIU^S12^SIU_S12"))
        .await;
    w.feed(&booking("JAPT3", "APT-PAST-1", "20250401", "SIU^S12^SIU_S12"))
        .await;
    w.feed(&booking("JAPT4", "APT-CANCELLED", "20990601", "SIU^S15^SIU_S12"))
        .await;
    let jane_session = session_of(&w, "jane").await;

    let (status, mine) = as_member(&w, "GET", "/api/me/appointments", &jane_session).await;
    assert_eq!(status, 200, "{mine}");
    let starts = |list: &str| -> Vec<String> {
        mine[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["start"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        starts("upcoming"),
        ["2099-04-01T09:30:00-04:00", "2099-05-01T09:30:00-04:00"]
    );
    assert_eq!(starts("past"), ["2025-04-01T09:30:00-04:00"]);
    assert_eq!(starts("cancelled"), ["2099-06-01T09:30:00-04:00"]);
    let next = &mine["next"];
    assert_eq!(next["start"], "2099-04-01T09:30:00-04:00");
    assert_eq!(next["location"], "Family Medicine Clinic");
    assert_eq!(next["title"], "Follow-up visit");
    assert_eq!(next["with"][0], "DR KWAME OSEI");
    assert_eq!(next["telehealth"], true);
    assert_eq!(
        next["telehealth_link"],
        Value::Null,
        "the link shows on the visit's day only"
    );

    // The next appointment as an iCalendar event, read by python icalendar.
    let id = next["id"].as_str().unwrap();
    let (status, content_type, ics) =
        download(&w, &format!("/api/me/appointments/{id}/ics"), &jane_session).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/calendar; charset=utf-8")
    );
    let events = read_ics(&ics);
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["start"], "2099-04-01T13:30:00+00:00");
    assert_eq!(event["end"], "2099-04-01T14:00:00+00:00");
    assert_eq!(event["summary"], "Follow-up visit");
    assert_eq!(event["location"], "Family Medicine Clinic");
    assert!(
        event["description"].as_str().unwrap().contains("DR KWAME OSEI"),
        "{event}"
    );
    assert_eq!(
        event["url"], "https://meet.example.org/visit/7Q2X9",
        "the meeting link: {event}"
    );
    // A past or cancelled one is no calendar event to add.
    for list in ["past", "cancelled"] {
        let other = mine[list][0]["id"].as_str().unwrap();
        let (status, answer) = as_member(
            &w,
            "GET",
            &format!("/api/me/appointments/{other}/ics"),
            &jane_session,
        )
        .await;
        assert_eq!((status, code(&answer)), (409, "not-upcoming"), "{list}: {answer}");
    }

    // A proxy only with a grant.
    let sam = w.active_member(1, "SMITH", "sam", 2).await;
    let sam_session = session_of(&w, "sam").await;
    let (status, answer) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/appointments"),
        &sam_session,
    )
    .await;
    assert_eq!((status, code(&answer)), (403, "no-proxy-access"), "{answer}");
    w.relate(&jane, &sam, ("expires_on", "2099-01-01")).await;
    let (status, hers) = as_member(
        &w,
        "GET",
        &format!("/api/me/principals/{jane}/appointments"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 200, "{hers}");
    assert_eq!(hers["next"]["id"], id);
    let (status, _, ics) = download(
        &w,
        &format!("/api/me/principals/{jane}/appointments/{id}/ics"),
        &sam_session,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read_ics(&ics)[0]["start"], "2099-04-01T13:30:00+00:00");

    // Sam cancels it for Jane: it shows cancelled, the next one moves up, and the scheduler
    // receives an SIU^S15 naming the appointment, the patient and the reason.
    let (status, cancelled) = post_as_member(
        &w,
        &format!("/api/me/principals/{jane}/appointments/{id}/cancel"),
        &sam_session,
        Some(json!({ "reason": "cannot make it that day" })),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["appointment"]["status"], "cancelled");
    assert_eq!(cancelled["pushed"].as_array().unwrap().len(), 1, "{cancelled}");
    let s15 = scheduler.wait_for(1).await.remove(0);
    assert_eq!(segment(&s15, "MSH").unwrap()[8], "SIU^S15^SIU_S12", "{s15}");
    let sch = segment(&s15, "SCH").unwrap();
    assert!(
        sch[2].starts_with("APT-FUTURE-1^"),
        "SCH-2 is the filler's id: {s15}"
    );
    assert_eq!(sch[6], "^cannot make it that day");
    assert_eq!(sch[25], "Cancelled");
    assert!(
        segment(&s15, "PID").unwrap()[3].starts_with("1000234567^"),
        "{s15}"
    );
    let (_, after) = as_member(&w, "GET", "/api/me/appointments", &jane_session).await;
    assert_eq!(after["next"]["start"], "2099-05-01T09:30:00-04:00");
    assert_eq!(after["cancelled"].as_array().unwrap().len(), 2, "{after}");
    let (status, again) = post_as_member(
        &w,
        &format!("/api/me/appointments/{id}/cancel"),
        &jane_session,
        None,
    )
    .await;
    assert_eq!((status, code(&again)), (409, "not-upcoming"), "{again}");
}

#[tokio::test]
async fn a_member_is_told_of_a_new_result_document_and_appointment_when_the_site_switches_say_so() {
    let w = start("[credentials]\nmode = \"portal\"\ntwo_factor = false\n").await;
    active_jane(&w).await;
    // Her activation token, then the note that her account is active.
    let registered = crate::members_support::nth(&w.email, 2).await;
    assert!(registered.contains("now active"), "{registered}");
    let before = 2;

    // With the notice switches off (the default), a new result tells no one.
    feed_jane(&w, "oru_r01_lab_panel.hl7", "JNOTE1").await;
    crate::members_support::settle().await;
    assert_eq!(
        w.email.received().len(),
        before,
        "no notice while the switch is off"
    );

    // A Configuration Manager turns the notices on.
    let (_, mut switches) = w.get("/api/settings/records", "config").await;
    for key in ["notify_results", "notify_documents", "notify_appointments"] {
        switches[key] = json!(true);
    }
    switches["reason"] = json!("Tell members of new records");
    let (status, saved) = w
        .call("PUT", "/api/settings/records", Some("config"), Some(switches))
        .await;
    assert_eq!(status, 200, "{saved}");

    // A correction of a result she has been sent is no new result: still no notice.
    feed_jane(&w, "oru_r01_lab_correction.hl7", "JNOTE2").await;
    crate::members_support::settle().await;
    assert_eq!(w.email.received().len(), before);

    // A new report, a new document and a new appointment: one email each, by her preference,
    // saying there is something to see and where, never what it says.
    feed_jane(&w, "oru_r01_radiology_report.hl7", "JNOTE3").await;
    let result = crate::members_support::nth(&w.email, before + 1).await;
    assert!(result.contains("new test result"), "{result}");
    assert!(result.contains("https://portal.test/records/results"), "{result}");
    assert!(
        !result.contains("lungs"),
        "the result itself stays behind the sign-in: {result}"
    );
    feed_jane(&w, "mdm_t02_discharge_summary.hl7", "JNOTE4").await;
    let document = crate::members_support::nth(&w.email, before + 2).await;
    assert!(document.contains("new document"), "{document}");
    let booking = variant(
        "ucr/siu_s12_booked.hl7",
        "JNOTE5",
        &[
            ("1000551903", "1000234567"),
            ("NGUYEN^LINH^THI", "DOE^JANE^QUINN"),
        ],
    );
    w.feed(&booking).await;
    let appointment = crate::members_support::nth(&w.email, before + 3).await;
    assert!(appointment.contains("2025-04-01 09:30"), "{appointment}");
    assert!(
        appointment.contains("https://portal.test/appointments"),
        "{appointment}"
    );
    // The same booking sent again (a resend) is no new appointment.
    let again = variant(
        "ucr/siu_s12_booked.hl7",
        "JNOTE6",
        &[
            ("1000551903", "1000234567"),
            ("NGUYEN^LINH^THI", "DOE^JANE^QUINN"),
        ],
    );
    w.feed(&again).await;
    crate::members_support::settle().await;
    assert_eq!(w.email.received().len(), before + 3);
}

#[tokio::test]
async fn an_upcoming_appointment_shows_its_pay_link_when_the_site_enables_prepayment() {
    let w = start("[credentials]\nmode = \"portal\"\ntwo_factor = false\n").await;
    active_jane(&w).await;
    let booking = |control_id: &str, appointment: &str, day: &str| {
        let mut message = variant(
            "ucr/siu_s12_booked.hl7",
            control_id,
            &[
                ("APT20250401-0931", appointment),
                ("20250401", day),
                ("1000551903", "1000234567"),
                ("NGUYEN^LINH^THI", "DOE^JANE^QUINN"),
            ],
        );
        message.extend_from_slice(
            format!("ZPY|1|https://pay.example/checkout/{appointment}|45.00|USD\r").as_bytes(),
        );
        message
    };
    w.feed(&booking("JPAY1", "APT-PAY-1", "20990401")).await;
    w.feed(&booking("JPAY2", "APT-PAY-2", "20200401")).await;
    let session = session_of(&w, "jane").await;
    let (_, listed) = as_member(&w, "GET", "/api/me/appointments", &session).await;
    assert_eq!(listed["upcoming"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed["upcoming"][0].get("pay_link"),
        None,
        "pre-payment is off by default"
    );

    let (_, mut switches) = w.get("/api/settings/records", "config").await;
    switches["appointment_prepayment"] = json!(true);
    switches["reason"] = json!("Pre-payment pilot");
    let (status, _) = w
        .call("PUT", "/api/settings/records", Some("config"), Some(switches))
        .await;
    assert_eq!(status, 200);
    let (_, listed) = as_member(&w, "GET", "/api/me/appointments", &session).await;
    let next = &listed["next"];
    assert_eq!(
        next["pay_link"], "https://pay.example/checkout/APT-PAY-1",
        "{listed}"
    );
    assert_eq!(next["amount_due"]["value"].as_f64(), Some(45.0), "{next}");
    assert_eq!(next["amount_due"]["currency"], "USD");
    assert_eq!(
        listed["past"][0].get("pay_link"),
        None,
        "a past visit has nothing to pay ahead: {listed}"
    );
}
