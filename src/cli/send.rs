//! `tributary send --to HOST:PORT FILE...`: send HL7 v2 files over MLLP and print each ACK.
//!
//! A file holds one message, several concatenated messages, or an FHS/BHS batch; each message is
//! sent on its own and its ACK printed. The bytes go out as they are in the file (a Latin-1 file
//! stays Latin-1), split at message boundaries only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tributary_adapter_mllp::Client;

use crate::hl7::split_batch;

#[derive(Args)]
pub struct SendArgs {
    /// Where to send: HOST:PORT of an MLLP listener.
    #[arg(long)]
    to: String,
    /// Seconds to wait for each ACK.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// HL7 v2 files (one message, concatenated messages, or a batch).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(args: SendArgs) -> ExitCode {
    let timeout = Duration::from_secs(args.timeout);
    let mut client = match Client::connect(&args.to, timeout).await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: cannot connect to {}: {e}", args.to);
            return ExitCode::FAILURE;
        }
    };
    let mut all_accepted = true;
    for file in &args.files {
        let messages = match read_messages(file) {
            Ok(messages) => messages,
            Err(e) => {
                eprintln!("error: {e}");
                all_accepted = false;
                continue;
            }
        };
        for (n, message) in messages.iter().enumerate() {
            let label = if messages.len() == 1 {
                file.display().to_string()
            } else {
                format!("{} message {}", file.display(), n + 1)
            };
            match client.send(message).await {
                Ok(ack) => {
                    let text = String::from_utf8_lossy(&ack);
                    let code = ack_code(&text);
                    all_accepted &= code == "AA" || code == "CA";
                    println!("{label}: {code}");
                    for segment in text.split(['\r', '\n']).filter(|s| !s.is_empty()) {
                        println!("  {segment}");
                    }
                }
                Err(e) => {
                    eprintln!("error: {label}: no ACK: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if all_accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The messages in a file, as bytes exactly as they are in the file.
fn read_messages(file: &PathBuf) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    // Latin-1 maps every byte to one char and back, so splitting this text loses no byte
    // whatever the file's real character set.
    let text: String = bytes.iter().map(|&b| b as char).collect();
    let messages = split_batch(&text).map_err(|e| format!("{}: {}", file.display(), e.text))?;
    Ok(messages
        .into_iter()
        .map(|m| m.chars().map(|c| c as u8).collect())
        .collect())
}

/// MSA-1 of an ACK.
fn ack_code(ack: &str) -> String {
    ack.split(['\r', '\n'])
        .find(|s| s.starts_with("MSA"))
        .and_then(|msa| msa.get(4..))
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect())
        .unwrap_or_else(|| "??".into())
}
